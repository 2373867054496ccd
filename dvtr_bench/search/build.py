"""``build_index``: the clips of a dataset, or of raw footage, embedded by one model into an index folder.

Raw footage goes through the dataset build pipeline first (any segmenter, one pure job per video, staged under
``INDEX/clips/build/jobs/``), so an interrupted index of a large archive resumes where its cutting stopped, and
the clips it searches are exactly the clips a dataset build would make. Clips then go through the evaluation
runner's encoding: the same stored frames, the method's own ``FrameSpec``, the same padding and masks, the same
``encode_video`` (with float16 autocast on CUDA, as the runner uses it). Each frame is decoded once, for the model
and the thumbnail strip together.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import torch
from torch.utils.data import DataLoader

from dvtr_bench._version import __version__
from dvtr_bench.engine.data import ClipFrames, LoaderFailure, assembled, prepare, raise_failures
from dvtr_bench.errors import ConfigError, InputError
from dvtr_bench.progress import Progress, ProgressFn
from dvtr_bench.provenance import git_commit, hardware
from dvtr_bench.search import index as I
from dvtr_bench.search.frames import STRIP_FRAME_SIZE, STRIP_FRAMES, telemetry_of, thumbnail_strip
from dvtr_bench.search.model import LoadedModel, scoring_note

META_COLUMNS = ("clip_id", "video_id", "split", "start_s", "end_s", "label", "captions", "meta")


@dataclass
class IndexResult:
    """What :func:`build_index` wrote."""

    path: Path
    n_clips: int
    dim: int
    kind: str
    size_bytes: int
    manifest: dict[str, Any]
    footage: Any = None                       # the BuildResult when raw footage was cut first
    failed_videos: list[tuple[str, str]] = field(default_factory=list)

    @property
    def partial(self) -> bool:
        return bool(self.failed_videos)


def resolve_source(source: str | Path) -> tuple[str, Any]:
    """``("dataset", folder or repo id)`` or ``("footage", [video paths])``; InputError for anything else."""
    from dvtr_bench.dataset.hub import is_dataset_dir
    from dvtr_bench.video.probe import VIDEO_EXTENSIONS, list_videos

    p = Path(source).expanduser()
    if p.is_dir() and is_dataset_dir(p):
        return "dataset", p
    if p.is_dir():
        if (p / "data").is_dir():
            raise InputError("looks like a dataset folder but has no README.md (dataset card); rebuild it with "
                             "`dvtr build-dataset`", file=p)
        videos = list_videos([p])
        if not videos:
            raise InputError("neither a dvtr dataset folder (README.md + data/) nor a folder with video files ("
                             + " ".join(VIDEO_EXTENSIONS) + ")", file=p)
        return "footage", videos
    if p.is_file():
        return "footage", [p]
    if str(source).count("/") == 1 and not str(source).startswith((".", "/", "~")):
        return "dataset", str(source)     # a Hub repo id; load_dataset says clearly if it cannot be fetched
    raise InputError("no such file or folder", file=p)


class _StripFrames(ClipFrames):
    """ClipFrames that also returns the thumbnail strip, made from the frames decoded for the model."""

    def __init__(self, split: Any, spec: Any, name: str, thumb_frames: int):
        super().__init__(split, spec, name=name)
        self.thumb_frames = thumb_frames

    def __getitem__(self, i: int) -> tuple[int, torch.Tensor, torch.Tensor, bytes]:
        raw = self.decode(i)
        strip = thumbnail_strip(list(raw.numpy()), self.thumb_frames)
        frames, mask = prepare(raw, self.spec, self.num_frames)
        return int(i), frames, mask, strip


    def __getitems__(self, indices: list[int]) -> Any:
        # A whole batch per worker call, and a clip's InputError as a value: raised in the main process as it was
        try:
            return _collate([self[i] for i in indices])
        except InputError as exc:
            return LoaderFailure.of(exc)


def _collate(batch: list[tuple[int, torch.Tensor, torch.Tensor, bytes]]) -> tuple[list[int], torch.Tensor,
                                                                                 torch.Tensor, list[bytes]]:
    return [b[0] for b in batch], torch.stack([b[1] for b in batch]), torch.stack([b[2] for b in batch]), \
        [b[3] for b in batch]


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)   # one decoding core per worker, as the runner's loaders do


def _video_sources(dataset_dir: Path | None) -> dict[str, str]:
    """video_id -> source file, from the dataset's build record (absent for a Hub dataset without build/)."""
    if dataset_dir is None:
        return {}
    try:
        doc = json.loads((Path(dataset_dir) / "build" / "build.json").read_text(encoding="utf-8"))
        return {vid: str(v.get("path")) for vid, v in (doc.get("videos") or {}).items() if v.get("path")}
    except (OSError, ValueError, AttributeError):
        return {}


def build_index(source: str | Path, out: str | Path, model: LoadedModel, *, splits: Sequence[str] | None = None,
                kind: str = "exact", nlist: int | None = None, nprobe: int | None = None,
                hnsw_m: int = I.DEFAULT_HNSW_M, ef_construction: int = I.DEFAULT_EF_CONSTRUCTION,
                ef_search: int = I.DEFAULT_EF_SEARCH, batch_size: int = 32, num_workers: int = 0,
                device: str | torch.device = "cpu", thumb_frames: int = STRIP_FRAMES, build_config: Any = None,
                annotations: str | Path | None = None, workers: int | None = None, resume: bool = True,
                write_block: int = 1024, progress: ProgressFn | None = None) -> IndexResult:
    """Embed every clip of ``source`` with ``model`` and write an index folder at ``out``.

    Args:
        source: a dvtr dataset folder (or Hub repo id), or raw footage: a video file or a folder of them.
        out: the index folder (created; an index already there is replaced when this one is complete).
        model: from :func:`dvtr_bench.search.model.load_run` or :func:`~dvtr_bench.search.model.load_zero_shot`.
        splits: the dataset splits to index (default: all of them).
        kind: ``"exact"`` (faiss IndexFlatIP), or for large archives ``"ivf"`` (IndexIVFFlat) or ``"hnsw"``.
        nlist, nprobe: IVF lists and lists scanned per query (default: about 4 sqrt(n), and nlist / 16).
        hnsw_m, ef_construction, ef_search: HNSW graph degree, build breadth, default search breadth.
        batch_size, num_workers, device: clips per forward pass, frame-decoding worker processes, device.
        thumb_frames: frames per thumbnail strip.
        build_config: a :class:`dvtr_bench.dataset.BuildConfig` for raw footage (segmenter and clip lengths);
            uncaptioned clips are always kept, and every clip goes to one split.
        annotations: optional caption file for raw footage (captions and metadata such as telemetry attach to
            the clips they overlap).
        workers, resume: footage cutting jobs in parallel; reuse staged per-video results.
        write_block: clips held in memory between writes.
        progress: callback; tasks of the build pipeline, then ``"index"`` counted in clips.

    Raises:
        InputError: unusable source (no frames, no videos, nothing could be cut), bad split names.
    """
    from dvtr_bench.dataset.hub import open_dataset

    t_start = time.perf_counter()
    out = Path(out)
    src_kind, src = resolve_source(source)
    footage = None
    failed: list[tuple[str, str]] = []
    dataset_dir: Path | None = None
    build_s = 0.0
    if src_kind == "footage":
        from dataclasses import replace

        from dvtr_bench.dataset.config import BuildConfig
        from dvtr_bench.dataset.pipeline import build

        cfg = replace(build_config or BuildConfig(), keep_uncaptioned=True, splits={"test": 1.0},
                      split_from_annotations=False, stratify=False, pretty_name="dvtr index clips")
        dataset_dir = out / I.CLIPS
        t0 = time.perf_counter()
        footage = build([str(Path(v).resolve()) for v in src], annotations, dataset_dir, cfg, progress,
                        workers=workers, resume=resume)
        build_s = time.perf_counter() - t0
        failed = list(footage.failed)
        if footage.n_clips == 0:
            why = "; ".join(f"{v}: {r}" for v, r in failed[:3]) or "the segmenter found no clip long enough"
            raise InputError(f"no clip could be cut from the footage ({why})", file=source)
        ds = open_dataset(dataset_dir)
    else:
        if isinstance(src, Path):
            dataset_dir = src
        ds = open_dataset(src)
    parts = dict(ds)
    if splits:
        missing = [s for s in splits if s not in parts]
        if missing:
            raise InputError(f"the dataset has no {', '.join(missing)} split (it has {', '.join(parts)})", file=source)
        parts = {s: parts[s] for s in splits}
    for name, split in parts.items():
        if "frames" not in split.column_names:
            raise InputError(f"the dataset has no stored frames (its {name} split has no 'frames' column): index a "
                             "dataset built by `dvtr build-dataset`, or the raw footage itself", file=source)
    n_total = sum(len(s) for s in parts.values())
    if n_total == 0:
        raise InputError("the dataset has no clip to index", file=source)
    if kind not in I.KINDS:
        raise ConfigError(f"unknown index kind {kind!r}; choose one of {', '.join(I.KINDS)}")
    if kind == "ivf":
        nlist = int(nlist or I.default_nlist(n_total))
        if not 1 <= nlist <= n_total:
            raise ConfigError(f"nlist must be between 1 and the number of clips ({n_total}), got {nlist}")
        nprobe = int(min(nprobe or I.default_nprobe(nlist), nlist))

    method = model.method
    device = torch.device(device)
    method.to(device).eval()
    sources = _video_sources(dataset_dir)
    writer = I.IndexWriter(out, n_total)
    done = 0
    model_s = 0.0     # encode_video alone: the evaluation runner's clips/s measures this part
    t_enc = time.perf_counter()
    try:
        for name, split in parts.items():
            cols = [c for c in META_COLUMNS if c in split.column_names]
            meta = split.select_columns(cols).to_list()
            frames = _StripFrames(split, method.frame_spec, name=f"{source} ({name})", thumb_frames=thumb_frames)
            order = list(range(len(split)))
            loader = DataLoader(frames, batch_sampler=[order[s:s + batch_size] for s in range(0, len(order), batch_size)],
                                num_workers=num_workers, collate_fn=assembled,
                                worker_init_fn=_worker_init if num_workers > 0 else None,
                                prefetch_factor=4 if num_workers > 0 else None)
            pending: list[tuple[list[int], dict[str, torch.Tensor], list[bytes]]] = []
            n_pending = 0
            for idx, x, mask, strips in raise_failures(iter(loader)):
                t_model = time.perf_counter()
                with torch.no_grad(), torch.autocast(device_type=device.type, dtype=torch.float16,
                                                     enabled=device.type == "cuda"):
                    emb = method.encode_video(x.to(device, non_blocking=True), mask.to(device))
                emb = {k: v.float() if v.is_floating_point() else v for k, v in emb.items()}
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                model_s += time.perf_counter() - t_model
                pending.append((idx, emb, strips))
                n_pending += len(idx)
                done += len(idx)
                if progress is not None:
                    el = time.perf_counter() - t_enc
                    progress(Progress("index", completed=done, total=n_total, info={"clips/s": done / max(el, 1e-9)}))
                if n_pending >= write_block:
                    _flush(writer, method, model, pending, meta, sources, thumb_frames)
                    pending, n_pending = [], 0
            if pending:
                _flush(writer, method, model, pending, meta, sources, thumb_frames)
        encode_s = time.perf_counter() - t_enc
        t_faiss = time.perf_counter()
        manifest = {
            "dvtr_version": __version__, "git_commit": git_commit(),
            "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "model": model.identity, "model_details": model.details,
            "source": {"kind": src_kind, "path": str(source), "dataset": str(dataset_dir) if dataset_dir else str(src),
                       "splits": list(parts), "videos": (footage.n_videos if footage else None),
                       "failed_videos": [{"video_id": v, "reason": r} for v, r in failed]},
            "search": {"kind": kind, "metric": "inner_product",
                       **({"nlist": nlist, "nprobe": nprobe} if kind == "ivf" else {}),
                       **({"hnsw_m": hnsw_m, "ef_construction": ef_construction, "ef_search": ef_search}
                          if kind == "hnsw" else {})},
            "scoring": {"dot_product": bool(model.identity.get("dot_product")),
                        "rerank": not model.identity.get("dot_product"), "note": scoring_note(model.identity)},
            "thumbs": {"frames": thumb_frames, "frame_size": list(STRIP_FRAME_SIZE)},
            "timings": {"cut_footage_s": build_s, "encode_s": encode_s,
                        "clips_per_s": n_total / max(encode_s, 1e-9), "model_s": model_s,
                        "model_clips_per_s": n_total / max(model_s, 1e-9)},
            "device": str(device), "hardware": hardware(),
        }
        writer.finish(manifest, kind=kind, hnsw_m=hnsw_m, ef_construction=ef_construction, nlist=nlist)
    except BaseException:
        writer.abort()
        raise
    faiss_s = time.perf_counter() - t_faiss
    # the timings that could only be known after the manifest was first written
    man_path = out / I.MANIFEST
    doc = json.loads(man_path.read_text(encoding="utf-8"))
    doc["timings"].update(faiss_build_s=faiss_s, total_s=time.perf_counter() - t_start)
    man_path.write_text(json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    return IndexResult(path=out, n_clips=n_total, dim=int(doc["dim"]), kind=kind, size_bytes=int(doc["size_bytes"]),
                       manifest=doc, footage=footage, failed_videos=failed)


def _flush(writer: I.IndexWriter, method: Any, model: LoadedModel,
           pending: Iterable[tuple[list[int], dict[str, torch.Tensor], list[bytes]]], meta: list[dict[str, Any]],
           sources: dict[str, str], thumb_frames: int) -> None:
    from dvtr_bench.models.base import concat_embeddings

    pending = list(pending)
    idx = [i for p in pending for i in p[0]]
    strips = [s for p in pending for s in p[2]]
    emb = concat_embeddings([p[1] for p in pending])
    with torch.no_grad():
        vec = method.video_vector(emb).float().cpu().numpy()
    keep = None if model.identity.get("dot_product") else {k: v.cpu().numpy() for k, v in emb.items()}
    rows = []
    for i in idx:
        m = meta[i]
        rows.append({"clip_id": m.get("clip_id"), "video_id": m.get("video_id"),
                     "source": sources.get(m.get("video_id"), m.get("video_id")), "split": m.get("split"),
                     "start_s": m.get("start_s"), "end_s": m.get("end_s"), "label": m.get("label"),
                     "captions": list(m.get("captions") or []),
                     "telemetry": _json_or_none(telemetry_of(m.get("meta"), m.get("start_s"), m.get("end_s")))})
    writer.add(rows, vec, strips, thumb_frames, keep)


def _json_or_none(x: Any) -> str | None:
    return None if x is None else json.dumps(x, sort_keys=True)
