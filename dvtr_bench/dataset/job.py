"""One job per source video: a pure function of (video file, its caption records, job config) -> rows + status.

Purity is what makes a build resumable (a finished job's result is staged under its key and reused), parallel
(jobs share nothing) and distributable (a Ray task runs the same function). The only side effect is the optional
clip export, whose files are written atomically under the dataset folder.

Rows carry everything of the final clip row except ``split``, which depends on all videos and is assigned when
the dataset is assembled.
"""

from __future__ import annotations

import json
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dvtr_bench.errors import DvtrError, InputError
from dvtr_bench.provenance import config_hash, file_fingerprint

STATUS_OK = "ok"
STATUS_FAILED = "failed"
# Part of every job key: bumped when the same inputs and config give other rows (detector, rotation, telemetry),
# so a build after an upgrade does not resume from results staged by the old code.
JOB_VERSION = 2


@dataclass
class JobSpec:
    video_id: str
    video_path: str
    records: list[Any]                   # CaptionRecord of this video (empty when it has none)
    config: dict[str, Any]               # BuildConfig.job_config()
    has_annotations: bool = True         # False when the build has no annotation file at all
    out_dir: str | None = None           # dataset root, for clip export
    telemetry_path: str | None = None    # the video's DJI .SRT sidecar, when it has one
    info: dict[str, Any] | None = None   # its probe (VideoInfo.to_dict), when the build already has it

    def key(self) -> str:
        """Identity of the job's result: changes when the video, its records or the config change."""
        fp = file_fingerprint(self.video_path) if Path(self.video_path).exists() else None
        if fp is not None:
            fp = {k: v for k, v in fp.items() if k != "mtime"}   # a copy or touch must not invalidate a build
        tp = None
        if self.telemetry_path and Path(self.telemetry_path).exists():
            tp = {k: v for k, v in file_fingerprint(self.telemetry_path).items() if k != "mtime"}
        return config_hash({"job_version": JOB_VERSION, "video_id": self.video_id, "file": fp, "config": self.config,
                            "records": [r.to_dict() for r in self.records],
                            "has_annotations": self.has_annotations, "telemetry": tp})[:32]


@dataclass
class JobResult:
    video_id: str
    key: str
    status: dict[str, Any]
    rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status["status"] == STATUS_OK


def file_name_of(some_id: str) -> str:
    """A video or clip id as one file name: ids are paths under the input folder (``A/DJI_0001``), file names
    are not. Plain ids (letters, digits, ``_-.`` and spaces) are unchanged."""
    from urllib.parse import quote

    return quote(some_id, safe=" _-.,+=()[]{}@~")


def clip_id_for(video_id: str, start_s: float, end_s: float) -> str:
    """Stable clip id from the source and its span in milliseconds (same config -> same ids)."""
    return f"{video_id}_{int(round(start_s * 1000)):08d}-{int(round(end_s * 1000)):08d}"


def frame_hash(jpegs: list[bytes]) -> int:
    """64-bit difference hash of the clip's mean frame: near-duplicate clips have close hashes."""
    import io

    from PIL import Image

    acc = None
    for b in jpegs:
        img = np.asarray(Image.open(io.BytesIO(b)).convert("L").resize((9, 8), Image.BILINEAR), np.float32)
        acc = img if acc is None else acc + img
    bits = (acc[:, 1:] > acc[:, :-1]).flatten()
    return int(np.packbits(bits).view(">u8")[0].astype(np.int64))


def run_job(spec: JobSpec, progress: Any = None) -> JobResult:
    """Process one source video; never raises for bad input (the status says why it failed).

    ``progress`` (in-process runs only) receives "footage" events every 10 s of decoded footage.
    """
    from dvtr_bench.dataset.config import segmenter_kwargs
    from dvtr_bench.video.probe import VideoInfo, probe
    from dvtr_bench.video.process import SamplingConfig, process_video
    from dvtr_bench.video.segmenters import make_segmenter

    t0 = time.perf_counter()
    key = spec.key()
    cfg = spec.config
    status: dict[str, Any] = {"video_id": spec.video_id, "path": spec.video_path, "key": key,
                              "status": STATUS_FAILED, "reason": None, "duration_s": None, "fps": None,
                              "width": None, "height": None, "codec": None, "vfr": None, "n_frames": 0,
                              "n_clips": 0, "n_captions": 0, "n_transitions": 0, "n_uncaptioned_dropped": 0,
                              "n_unattached_records": 0, "probe_s": 0.0, "pass_s": 0.0, "export_s": 0.0,
                              "total_s": 0.0}
    try:
        # The build probed every file already (durations for validation): probing again costs a decode of the
        # first frame (rotation) per video, a fixed cost that dominates short footage.
        info = VideoInfo(**spec.info) if spec.info else probe(spec.video_path)
        status.update(duration_s=info.duration_s, fps=info.fps, width=info.display_width,
                      height=info.display_height, codec=info.codec, vfr=info.vfr, rotation=info.rotation)
        status["probe_s"] = time.perf_counter() - t0
        segmenter = make_segmenter(cfg["segmenter"], **segmenter_kwargs(
            cfg["segmenter"], cfg.get("segmenter_params"), cfg.get("min_len"), cfg.get("max_len")))
        sampling = SamplingConfig(num_frames=cfg["num_frames"], short_side=cfg["frame_short_side"],
                                  jpeg_quality=cfg["jpeg_quality"])
        track = None
        if spec.telemetry_path:
            from dvtr_bench.video.telemetry import read_srt

            # A damaged sidecar costs warnings (file and line), never the video.
            track = read_srt(spec.telemetry_path, cfg.get("telemetry_gps_order", "auto"))
            status["telemetry_source"] = Path(spec.telemetry_path).name
            status["telemetry_samples"] = len(track)
            status["telemetry_warnings"] = list(track.warnings)
        elif getattr(segmenter, "uses_telemetry", False):
            raise InputError("the telemetry segmenter needs the video's DJI .SRT sidecar next to it (same name)",
                             spec.video_path)
        result = process_video(spec.video_path, segmenter, sampling, records=spec.records, info=info,
                               progress=progress, telemetry=track)
        missing = info.duration_s - result.end_s
        if missing > max(1.0, 0.05 * info.duration_s):
            # A file cut short after its index (e.g. moov at the front) decodes "fine" and just stops early.
            raise InputError(f"truncated: decoded {result.end_s:.2f} s of the {info.duration_s:.2f} s the "
                             "container announces", spec.video_path)
        status["pass_s"] = result.timings.get("pass_s", 0.0)
        status["n_frames"] = result.n_frames
        status["n_transitions"] = len(result.transitions)
        status["longest_span_s"] = _longest_span_s(result)
        rows = _rows(spec, segmenter, result, status, track)
        if cfg.get("export_clips") and rows and spec.out_dir:
            from dvtr_bench.video.export import export_clips

            te = time.perf_counter()
            folder = file_name_of(spec.video_id)
            sub = Path(spec.out_dir) / "clips" / folder
            names = {file_name_of(r["clip_id"]): r for r in rows}
            written = export_clips(spec.video_path, [(n, r["start_s"], r["end_s"]) for n, r in names.items()], sub,
                                   fps=info.fps, short_side=cfg["clip_short_side"], gop_s=cfg["clip_gop_s"],
                                   crf=cfg["clip_crf"], rotation=info.rotation)
            for n, r in names.items():
                if n in written:
                    r["clip_path"] = f"clips/{folder}/{n}.mp4"
            status["export_s"] = time.perf_counter() - te
        status["n_clips"] = len(rows)
        status["n_captions"] = sum(len(r["captions"]) for r in rows)
        status["status"] = STATUS_OK
        status["total_s"] = time.perf_counter() - t0
        return JobResult(spec.video_id, key, status, rows)
    except InputError as exc:
        status["reason"] = exc.reason
    except DvtrError as exc:
        status["reason"] = str(exc)
    except Exception as exc:  # noqa: BLE001 - one broken video must not stop a build of thousands
        status["reason"] = f"{type(exc).__name__}: {exc}"
        status["traceback"] = traceback.format_exc(limit=5)
    status["total_s"] = time.perf_counter() - t0
    return JobResult(spec.video_id, key, status, [])


def _longest_span_s(result: Any) -> float:
    """The longest stretch between detected transitions (the whole video without any), in seconds: what a
    build that made no clip reports against --min-len."""
    fps = result.info.fps or 25.0
    bounds, start = [], 0
    for t in sorted(result.transitions, key=lambda t: t.start_frame):
        bounds.append(t.start_frame - start)
        start = t.end_frame + (1 if t.kind != "cut" else 0)
    bounds.append(result.n_frames - start)
    return round(max(bounds) / fps, 3)


def _rows(spec: JobSpec, segmenter: Any, result: Any, status: dict[str, Any],
          track: Any = None) -> list[dict[str, Any]]:
    from dvtr_bench.annotations import align
    from dvtr_bench.video.telemetry import clip_telemetry

    cfg = spec.config
    info = result.info
    seg_params = json.dumps(segmenter.params(), sort_keys=True)
    clips = []
    for c in result.clips:
        sp = c.span
        cid = sp.clip_id or clip_id_for(spec.video_id, sp.start_s, sp.end_s)
        clips.append({"video_id": spec.video_id, "clip_id": cid, "start_s": sp.start_s, "end_s": sp.end_s,
                      "sampled": c})
    # Two annotation records with the same span would give one id twice: keep the first, like align does.
    seen: set[str] = set()
    clips = [c for c in clips if not (c["clip_id"] in seen or seen.add(c["clip_id"]))]
    captions: dict[str, list[str]] = {}
    labels: dict[str, str | None] = {}
    metas: dict[str, Any] = {}
    if segmenter.spans_from_records:
        for c in clips:
            sp = c["sampled"].span
            captions[c["clip_id"]] = list(sp.captions or ())
            labels[c["clip_id"]] = sp.label
            metas[c["clip_id"]] = sp.meta.get("meta")
    elif spec.records:
        al = align(spec.records, [{k: c[k] for k in ("video_id", "clip_id", "start_s", "end_s")} for c in clips],
                   min_overlap=cfg.get("min_overlap", 0.5), overlap=cfg.get("overlap", "iou"))
        status["n_unattached_records"] = len(al.unattached)
        captions = al.captions
        labels = al.labels()
        for cid, recs in al.records.items():
            if len(recs) == 1 and recs[0].meta:
                metas[cid] = recs[0].meta
    rows = []
    dropped = 0
    for c in clips:
        cid = c["clip_id"]
        caps = captions.get(cid, [])
        if not caps and spec.has_annotations and not cfg.get("keep_uncaptioned"):
            dropped += 1
            continue
        sc = c["sampled"]
        rows.append({
            "clip_id": cid, "video_id": spec.video_id, "start_s": float(c["start_s"]), "end_s": float(c["end_s"]),
            "fps": float(info.fps), "width": int(info.display_width), "height": int(info.display_height),
            "captions": list(caps),
            "frames": [{"bytes": b, "path": None} for b in sc.frames],
            "frame_times_s": [float(t) for t in sc.frame_times_s],
            "segmenter": segmenter.name, "segmenter_params": seg_params,
            "label": labels.get(cid) or sc.span.label,
            "clip_path": None,
            "meta": None if metas.get(cid) is None else json.dumps(metas[cid], sort_keys=True, ensure_ascii=False),
            "telemetry": clip_telemetry(track, float(c["start_s"]), float(c["end_s"])),
            "_phash": frame_hash(sc.frames),
        })
    status["n_uncaptioned_dropped"] = dropped
    status["transitions"] = [t.to_dict() for t in result.transitions]
    return rows
