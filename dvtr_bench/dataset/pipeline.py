"""``dvtr build-dataset`` as a library call: footage + caption annotations -> a dataset in Hub layout.

Flow: list videos -> read and validate annotations -> one job per video (skipped when its staged result under
``build/jobs/`` has the same key) -> stage each result atomically as it completes -> assign splits per video ->
audit -> write shards (folder swap), ``build/manifest.parquet``, ``build/build.json`` and ``README.md``.

Because every job's output is staged before the next step and the final files are written from the staged
results only, a build killed at any point and re-run produces the same dataset as an uninterrupted one.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from dvtr_bench._version import __version__
from dvtr_bench.dataset.audit import DatasetAudit, audit_dataset
from dvtr_bench.dataset.config import BuildConfig
from dvtr_bench.dataset.hub import MIN_DATASETS_VERSION, card_yaml, dataset_info_yaml, write_atomic, write_shards
from dvtr_bench.dataset.job import STATUS_OK, JobResult, JobSpec, file_name_of, run_job
from dvtr_bench.dataset.schema import CLIP_COLUMNS, FORMAT_VERSION, SPLITS, clip_arrow_schema
from dvtr_bench.dataset.splits import assign_splits, splits_from_records, video_labels
from dvtr_bench.errors import InputError
from dvtr_bench.progress import Progress, ProgressFn, no_progress
from dvtr_bench.provenance import canonical_json, config_hash, file_sha256, git_commit, package_versions

MANIFEST_COLUMNS = ("video_id", "path", "status", "reason", "key", "duration_s", "fps", "width", "height", "codec",
                    "vfr", "rotation", "telemetry_source", "telemetry_samples", "n_frames", "n_transitions",
                    "n_clips", "n_captions", "n_uncaptioned_dropped", "n_unattached_records", "probe_s", "pass_s",
                    "export_s", "total_s", "resumed")


@dataclass
class BuildResult:
    out_dir: Path
    n_videos: int
    n_ok: int
    n_failed: int
    n_resumed: int
    n_clips: int
    n_captions: int
    per_split: dict[str, dict[str, int]]
    failed: list[tuple[str, str]]
    audit: DatasetAudit | None
    annotation_problems: list[Any] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    shards: dict[str, list[str]] = field(default_factory=dict)
    caption_match: "CaptionMatch | None" = None
    telemetry_warnings: list[str] = field(default_factory=list)   # unreadable sidecar lines, with file and line
    split_source: str = ""               # where the splits came from, in words
    zero_clip_cause: str | None = None   # why no clip was made (then no dataset was written)

    @property
    def partial(self) -> bool:
        return self.n_failed > 0


# ------------------------------------------------------------------------------------------- staging

def _job_path(out: Path, video_id: str) -> Path:
    return out / "build" / "jobs" / f"{file_name_of(video_id)}.parquet"


def stage_result(out: Path, res: JobResult) -> None:
    """Write a job's rows + status to ``build/jobs/<video_id>.parquet`` (temp file + rename)."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    if not res.ok:
        write_atomic(out / "build" / "jobs" / f"{file_name_of(res.video_id)}.failed.json",
                     json.dumps(res.status, indent=1, default=str))
        return
    schema = _staging_schema()
    table = pa.Table.from_pylist([{c: r.get(c) for c in schema.names} for r in res.rows], schema=schema)
    status = {k: v for k, v in res.status.items() if k != "traceback"}
    table = table.replace_schema_metadata({**(schema.metadata or {}),
                                           b"dvtr_job": json.dumps({"key": res.key, "status": status},
                                                                   default=str).encode("utf-8")})
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    write_atomic(_job_path(out, res.video_id), buf.getvalue())
    (out / "build" / "jobs" / f"{file_name_of(res.video_id)}.failed.json").unlink(missing_ok=True)


def load_staged(out: Path, video_id: str, key: str | None = None) -> JobResult | None:
    """The staged result of a video, or None when absent, unreadable or made with another key."""
    import pyarrow.parquet as pq

    p = _job_path(out, video_id)
    if not p.is_file():
        return None
    try:
        table = pq.read_table(p)
        meta = json.loads(table.schema.metadata[b"dvtr_job"])
    except Exception:  # noqa: BLE001 - a damaged staging file is simply recomputed
        return None
    if key is not None and meta.get("key") != key:
        return None
    return JobResult(video_id, meta["key"], meta["status"], table.to_pylist())


def _staging_schema() -> Any:
    import pyarrow as pa

    base = clip_arrow_schema()
    fields = [f for f in base if f.name != "split"] + [pa.field("_phash", pa.int64())]
    return pa.schema(fields, metadata=base.metadata)


# --------------------------------------------------------------------------------------------- build

def build(inputs: Sequence[str | Path], annotations: str | Path | None, out_dir: str | Path,
          config: BuildConfig | None = None, progress: ProgressFn | None = None, *, workers: int | None = None,
          executor: str = "process", ray_address: str | None = None, annotation_format: str | None = None,
          resume: bool = True, annotation_options: dict[str, Any] | None = None) -> BuildResult:
    """Build a dataset (see the module docstring). Raises InputError/ConfigError for unusable input or
    options (before any video is decoded); per-video failures are recorded in the manifest and counted in the
    result instead. A build that makes no clip writes no dataset: ``result.zero_clip_cause`` says why.

    ``annotation_options`` go to the annotation reader (``delimiter``, ``caption_sep``, ``split_files``).
    Only one build at a time may write ``out_dir`` (:class:`~dvtr_bench.dataset.outdir.BuildLock`).
    """
    from dvtr_bench.dataset.outdir import BuildLock

    config = config or BuildConfig()
    # Again here, not only when the config was made: it is mutable, and a bad option must stop the build
    # before any job runs rather than fail every video.
    config.validate()
    with BuildLock(out_dir):
        return _build_locked(inputs, annotations, Path(out_dir), config, progress or no_progress, workers,
                             executor, ray_address, annotation_format, resume, dict(annotation_options or {}))


# Problems that make an annotation file unusable for a build: a caption that is empty or not text would go
# into the dataset as ground truth. The others (unknown videos, times beyond a video, ...) are summarised.
FATAL_PROBLEMS = ("empty_caption", "undecodable_caption", "no_captions")


def _fatal_problems(problems: Sequence[Any], annotations: str | Path) -> None:
    bad = [p for p in problems if p.code in FATAL_PROBLEMS]
    if not bad:
        return
    shown = "; ".join(str(p) for p in bad[:3])
    more = f" (and {len(bad) - 3} more)" if len(bad) > 3 else ""
    raise InputError(f"{len(bad)} caption(s) empty, missing or not text, e.g. {shown}{more}; fix them (dvtr annotations "
                     f"validate {annotations} lists every one) and build again")


@dataclass
class CaptionMatch:
    """How the caption records' video ids met the footage's: counted, with examples, for the summary."""

    records: int = 0
    unmatched_records: int = 0
    unmatched_ids: list[str] = field(default_factory=list)      # up to 5 examples
    matched_by_name: int = 0                                    # ids that matched a video's file name only
    videos: int = 0
    videos_without_records: int = 0
    video_examples: list[str] = field(default_factory=list)     # up to 5 footage ids

    def line(self) -> str | None:
        """One line for the terminal, or None when every record found its video and every video its records."""
        parts = []
        if self.unmatched_records:
            parts.append(f"{self.unmatched_records} of {self.records} caption records name no video "
                         f"(e.g. {', '.join(repr(i) for i in self.unmatched_ids)})")
        if self.videos_without_records and self.records:
            parts.append(f"{self.videos_without_records} of {self.videos} videos have no caption record "
                         f"(e.g. {', '.join(repr(i) for i in self.video_examples)})")
        return "; ".join(parts) or None


def _match_records(records: list[Any], by_id: dict[str, Path]) -> tuple[list[Any], CaptionMatch]:
    """Point each record at its video: by id, else by the video's file name when exactly one video has it
    (annotations name videos by file, ids are paths under the input folder)."""
    import dataclasses

    from dvtr_bench.annotations import video_id_from_path

    by_name: dict[str, list[str]] = defaultdict(list)
    for vid, path in by_id.items():
        by_name[video_id_from_path(path)].append(vid)
    out, unmatched, by_file = [], [], 0
    for r in records:
        if r.video_id not in by_id and len(by_name.get(r.video_id, ())) == 1:
            r = dataclasses.replace(r, video_id=by_name[r.video_id][0])
            by_file += 1
        elif r.video_id not in by_id:
            unmatched.append(r.video_id)
        out.append(r)
    covered = {r.video_id for r in out}
    missing = [v for v in by_id if v not in covered]
    ids = list(dict.fromkeys(unmatched))
    return out, CaptionMatch(records=len(records), unmatched_records=len(unmatched), unmatched_ids=ids[:5],
                             matched_by_name=by_file, videos=len(by_id), videos_without_records=len(missing),
                             video_examples=missing[:5])


def _split_rule(config: BuildConfig, records: Sequence[Any], annotations: str | Path | None) -> tuple[bool, str]:
    """Whether splits come from the caption records, and where they come from in words.

    ``split_from_annotations`` None (the default) takes them from the annotations whenever the records carry
    them (CLIP4Clip split lists, an MSR-VTT ``split`` field, a ``split`` column), so a public caption set keeps
    its published splits; True requires them, False draws new ones.
    """
    given = [r for r in records if r.split]
    want = config.split_from_annotations
    if want is False or (want is None and not given):
        how = (f"drawn per source video, seed {config.split_seed}, fractions "
               + ", ".join(f"{k} {v:.2f}" for k, v in config.splits.items())
               + (", stratified by label" if config.stratify else ""))
        if given:
            how += f" (the {len(given)} split assignments in the annotations were not used: --redraw-splits)"
        return False, how
    if want is None:
        # Decided here, before any video is decoded: a partial or conflicting assignment stops the build now.
        per: dict[str, set[str]] = defaultdict(set)
        for r in records:
            per[r.video_id].add(r.split or "")
        bad = [v for v, ss in per.items() if len(ss) != 1 or "" in ss]
        if bad:
            raise InputError(f"the annotations give splits for some videos but not consistently ({len(bad)} "
                             f"videos with none or several, e.g. {', '.join(repr(v) for v in bad[:3])}); "
                             "fix them, or pass --redraw-splits to draw new ones", annotations)
    return True, "taken from the annotations"


def _annotation_files(annotations: str | Path | None, fmt: str | None, options: dict[str, Any]) -> list[str]:
    """Every file a read of the annotations reads (a CLIP4Clip pickle and its split lists), for provenance."""
    if annotations is None:
        return []
    from dvtr_bench.annotations.formats import FORMATS, sniff_format

    return [str(f) for f in FORMATS[fmt or sniff_format(annotations)].input_files(Path(annotations), **options)]


def zero_clip_cause(statuses: Sequence[dict[str, Any]], match: "CaptionMatch", config: BuildConfig,
                    has_annotations: bool) -> str:
    """Why a build made no clip, in one line with counts and examples."""
    ok = [s for s in statuses if s["status"] == STATUS_OK]
    if not ok:
        return f"no video could be built ({len(statuses)} failed; see build/manifest.parquet)"
    if has_annotations and match.records and match.unmatched_records == match.records:
        return (f"none of the {match.records} caption records names one of the {match.videos} videos: records "
                f"name e.g. {', '.join(repr(i) for i in match.unmatched_ids[:3])}, videos are e.g. "
                f"{', '.join(repr(v) for v in sorted(s['video_id'] for s in ok)[:3])} (ids are file paths under "
                "the input folder without the extension)")
    cut = sum(int(s.get("n_clips") or 0) + int(s.get("n_uncaptioned_dropped") or 0) for s in ok)
    if cut == 0:
        longest = max((float(s.get("longest_span_s") or 0.0) for s in ok), default=0.0)
        min_len = config.min_len if config.min_len is not None else config.make_segmenter().params().get("min_len")
        return (f"every span is shorter than the minimum clip length ({min_len:g} s; the longest is "
                f"{longest:.2f} s): lower --min-len" if min_len else
                "the segmenter found no span in any video")
    dropped = sum(int(s.get("n_uncaptioned_dropped") or 0) for s in ok)
    unattached = sum(int(s.get("n_unattached_records") or 0) for s in ok)
    return (f"{dropped} clips were cut but none received a caption ({unattached} caption records matched no "
            f"clip by id or time; {match.unmatched_records} of {match.records} name no video): check the records' "
            "times and clip ids, lower --min-overlap, or pass --keep-uncaptioned")


def _build_locked(inputs: Sequence[str | Path], annotations: str | Path | None, out: Path, config: BuildConfig,
                  progress: ProgressFn, workers: int | None, executor: str, ray_address: str | None,
                  annotation_format: str | None, resume: bool, annotation_options: dict[str, Any]) -> BuildResult:
    from dvtr_bench.annotations import read_annotations, validate
    from dvtr_bench.dataset.executors import run_jobs
    from dvtr_bench.dataset.outdir import remove_stale_temp
    from dvtr_bench.video.probe import footage_ids, probe
    from dvtr_bench.video.segmenters import segmenter_class

    t_start = time.perf_counter()
    by_id = footage_ids(list(inputs), config.video_ids)
    if not by_id:
        raise InputError("no video files found (looked for .mp4 .mov .mkv .avi .m4v .webm)",
                         ", ".join(str(i) for i in inputs))

    # Headers only (milliseconds per file): durations let validation flag times beyond a video's end and give
    # the footage progress bar a total. A file that cannot be probed fails later in its own job, with the reason.
    durations: dict[str, float | None] = {}
    infos: dict[str, dict[str, Any]] = {}
    for vid, path in by_id.items():
        try:
            info = probe(path)
        except InputError:
            durations[vid] = None
            continue
        durations[vid] = info.duration_s
        infos[vid] = info.to_dict()
    records: list[Any] = []
    problems: list[Any] = []
    match = CaptionMatch(videos=len(by_id))
    if annotations is not None:
        from dvtr_bench.annotations.formats import FORMATS, sniff_format

        annotation_format = annotation_format or sniff_format(annotations)
        unknown = sorted(set(annotation_options) - set(FORMATS[annotation_format].options))
        if unknown:
            raise InputError(f"the {annotation_format} annotation format takes no {', '.join(unknown)} option",
                             annotations)
        records = read_annotations(annotations, format=annotation_format, **annotation_options)
        records, match = _match_records(records, by_id)
        problems = validate(records, videos=durations, file=str(annotations))
        _fatal_problems(problems, annotations)
    elif segmenter_class(config.segmenter).spans_from_records:
        raise InputError(f"the {config.segmenter!r} segmenter cuts the caption records' spans: it needs --annotations")
    if config.split_from_annotations and annotations is None:
        raise InputError("splits from annotations need --annotations")
    use_record_splits, split_source = _split_rule(config, records, annotations)
    annotation_files = _annotation_files(annotations, annotation_format, annotation_options)
    if use_record_splits and len(annotation_files) > 1:
        split_source += " (" + ", ".join(Path(f).name for f in annotation_files[1:]) + ")"
    per_video: dict[str, list[Any]] = defaultdict(list)
    for r in records:
        per_video[r.video_id].append(r)

    out.mkdir(parents=True, exist_ok=True)
    (out / "build" / "jobs").mkdir(parents=True, exist_ok=True)
    remove_stale_temp(out)   # a killed build's debris; the lock says no other build is writing here
    job_cfg = config.job_config()
    from dvtr_bench.video.telemetry import find_sidecar

    sidecars = {vid: find_sidecar(path) for vid, path in by_id.items()}
    specs = [JobSpec(vid, str(path), per_video.get(vid, []), job_cfg, annotations is not None, str(out),
                     telemetry_path=None if sidecars[vid] is None else str(sidecars[vid]), info=infos.get(vid))
             for vid, path in sorted(by_id.items())]

    results: dict[str, JobResult] = {}
    resumed: set[str] = set()
    todo: list[JobSpec] = []
    for spec in specs:
        staged = load_staged(out, spec.video_id, spec.key()) if resume else None
        if staged is not None:
            results[spec.video_id] = staged
            resumed.add(spec.video_id)
        else:
            todo.append(spec)

    total_footage = 0.0
    progress(Progress("videos", completed=len(resumed), total=len(specs)))
    progress(Progress("footage", completed=0, total=round(sum(durations.get(s.video_id) or 0.0 for s in todo), 1)))
    progress(Progress("clips", completed=sum(len(r.rows) for r in results.values()), total=None))
    t_jobs = time.perf_counter()
    inline = executor == "process" and (workers is not None and workers <= 1 or len(todo) <= 1)
    seen_footage = [0.0]   # footage already reported by in-process passes (10 s steps)

    def footage_events(ev: Progress) -> None:
        seen_footage[0] += ev.advance or 0.0
        el = max(1e-6, time.perf_counter() - t_jobs)
        progress(Progress("footage", advance=ev.advance, info={"footage s/s": (total_footage + seen_footage[0]) / el}))

    if inline:
        # One job at a time in this process: report footage while a long video decodes, not only at its end.
        jobs = (run_job(spec, footage_events) for spec in todo)
    else:
        jobs = run_jobs(run_job, todo, executor=executor, workers=workers, ray_address=ray_address)
    for res in jobs:
        stage_result(out, res)
        results[res.video_id] = res
        dur = float(res.status.get("duration_s") or 0.0)
        total_footage += dur
        rest, seen_footage[0] = max(0.0, dur - seen_footage[0]), 0.0
        el = max(1e-6, time.perf_counter() - t_jobs)
        progress(Progress("videos", advance=1, info={"failed": sum(not r.ok for r in results.values())}))
        progress(Progress("clips", advance=len(res.rows)))
        progress(Progress("footage", advance=rest, info={"footage s/s": total_footage / el}))
    jobs_s = time.perf_counter() - t_jobs

    # ---- assemble
    t_asm = time.perf_counter()
    ok = {vid: r for vid, r in results.items() if r.ok}
    rows = [row for vid in sorted(ok) for row in ok[vid].rows]
    statuses = []
    for spec in specs:
        st = dict(results[spec.video_id].status)
        st["resumed"] = spec.video_id in resumed
        statuses.append(st)
    failed = [(s["video_id"], str(s.get("reason"))) for s in statuses if s["status"] != STATUS_OK]
    if not rows:
        # No dataset: loaders would fail on an empty one. The manifest still says what each video gave; a
        # dataset already in the folder is left as it was.
        _write_manifest(out, statuses)
        return BuildResult(out_dir=out, n_videos=len(specs), n_ok=len(ok), n_failed=len(failed),
                           n_resumed=len(resumed), n_clips=0, n_captions=0, per_split={}, failed=failed, audit=None,
                           annotation_problems=problems, timings={"total_s": time.perf_counter() - t_start},
                           caption_match=match, split_source=split_source,
                           telemetry_warnings=[w for st in statuses for w in (st.get("telemetry_warnings") or [])],
                           zero_clip_cause=zero_clip_cause(statuses, match, config, annotations is not None))
    vids_with_rows = sorted({r["video_id"] for r in rows})
    if use_record_splits:
        split_of = splits_from_records(records, vids_with_rows)
    else:
        labels = video_labels([(r["video_id"], r["label"]) for r in rows]) if config.stratify else None
        split_of = assign_splits(vids_with_rows, config.splits, config.split_seed, labels)
    for r in rows:
        r["split"] = split_of[r["video_id"]]
    order = {s: i for i, s in enumerate(SPLITS)}
    rows.sort(key=lambda r: (order.get(r["split"], 9), r["video_id"], r["start_s"], r["end_s"], r["clip_id"]))
    audit = audit_dataset(rows, config.near_dup_bits)
    by_split: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_split[r["split"]].append(r)
    shards = write_shards(by_split, out, int(config.shard_max_mb * (1 << 20)))
    per_split = {s: {"clips": len(by_split[s]), "captions": sum(len(r["captions"]) for r in by_split[s]),
                     "videos": len({r["video_id"] for r in by_split[s]})} for s in SPLITS if by_split.get(s)}

    _write_manifest(out, statuses)
    telemetry_warnings = [w for st in statuses for w in (st.get("telemetry_warnings") or [])]
    timings = {"jobs_s": jobs_s, "assemble_s": time.perf_counter() - t_asm,
               "total_s": time.perf_counter() - t_start,
               "pass_s": sum(float(s.get("pass_s") or 0) for s in statuses if not s["resumed"]),
               "export_s": sum(float(s.get("export_s") or 0) for s in statuses if not s["resumed"])}
    result = BuildResult(out_dir=out, n_videos=len(specs), n_ok=len(ok), n_failed=len(failed), n_resumed=len(resumed),
                         n_clips=len(rows), n_captions=sum(len(r["captions"]) for r in rows), per_split=per_split,
                         failed=failed, audit=audit, annotation_problems=problems, timings=timings, shards=shards,
                         caption_match=match, split_source=split_source, telemetry_warnings=telemetry_warnings)
    build_json = _build_json(config, annotations, annotation_files, by_id, specs, results, result, executor, workers)
    write_atomic(out / "build" / "build.json", json.dumps(build_json, indent=2, sort_keys=True, default=str) + "\n")
    write_atomic(out / "README.md", dataset_card(config, result, build_json))
    return result


def _write_manifest(out: Path, statuses: list[dict[str, Any]]) -> None:
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([
        ("video_id", pa.string()), ("path", pa.string()), ("status", pa.string()), ("reason", pa.string()),
        ("key", pa.string()), ("duration_s", pa.float64()), ("fps", pa.float64()), ("width", pa.int32()),
        ("height", pa.int32()), ("codec", pa.string()), ("vfr", pa.bool_()), ("rotation", pa.int32()),
        ("telemetry_source", pa.string()), ("telemetry_samples", pa.int64()), ("telemetry_warnings", pa.string()),
        ("n_frames", pa.int64()),
        ("n_transitions", pa.int64()), ("n_clips", pa.int64()), ("n_captions", pa.int64()),
        ("n_uncaptioned_dropped", pa.int64()), ("n_unattached_records", pa.int64()), ("probe_s", pa.float64()),
        ("pass_s", pa.float64()), ("export_s", pa.float64()), ("total_s", pa.float64()), ("resumed", pa.bool_()),
        ("transitions", pa.string()),
    ])
    rows = []
    for s in statuses:
        row = {c: s.get(c) for c in MANIFEST_COLUMNS}
        row["reason"] = None if row["reason"] is None else str(row["reason"])
        row["transitions"] = json.dumps(s.get("transitions")) if s.get("transitions") is not None else None
        row["telemetry_warnings"] = (json.dumps(s["telemetry_warnings"], ensure_ascii=False)
                                     if s.get("telemetry_warnings") else None)
        rows.append(row)
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), buf)
    write_atomic(out / "build" / "manifest.parquet", buf.getvalue())


def _build_json(config: BuildConfig, annotations: Any, annotation_files: list[str], by_id: dict[str, Path],
                specs: list[JobSpec],
                results: dict[str, JobResult], result: BuildResult, executor: str, workers: int | None) -> dict:
    from dvtr_bench.protocol import v1

    return {
        "format_version": FORMAT_VERSION,
        "dvtr_version": __version__,
        "git_commit": git_commit(),
        "protocol_version": v1.VERSION,
        "config": config.to_dict(),
        "config_hash": config_hash(config.to_dict()),
        "columns": list(CLIP_COLUMNS),
        # Every file the annotations were read from (a CLIP4Clip pickle and its split lists): the splits are
        # part of the dataset as much as the captions.
        "annotations": None if annotations is None else {
            "path": str(annotations), "sha256": file_sha256(annotation_files[0]),
            "files": [{"path": f, "sha256": file_sha256(f)} for f in annotation_files]},
        "videos": {spec.video_id: {"path": spec.video_path, "job_key": results[spec.video_id].key,
                                   "status": results[spec.video_id].status["status"]} for spec in specs},
        "dataset_fingerprint": config_hash(canonical_json(sorted(
            (r.video_id, r.key) for r in results.values() if r.ok))),
        "counts": {"videos": result.n_videos, "ok": result.n_ok, "failed": result.n_failed,
                   "clips": result.n_clips, "captions": result.n_captions, "per_split": result.per_split},
        "run": {"executor": executor, "workers": workers, "resumed_videos": result.n_resumed,
                "timings": result.timings},
        "versions": package_versions(),
    }


def telemetry_card_lines(result: BuildResult) -> list[str]:
    """The card's telemetry section: how many clips have it, and the ranges of altitude, speed and distance."""
    import pyarrow.parquet as pq

    tel = []
    for names in result.shards.values():
        for n in names:
            col = pq.read_table(result.out_dir / "data" / n, columns=["telemetry"]).column("telemetry").to_pylist()
            tel += [t for t in col if t]
    if not tel:
        return []

    def rng(key: str, unit: str) -> str:
        vals = [v for t in tel for v in ([t[key]] if t.get(key) is not None else [])]
        return f"{min(vals):.1f}-{max(vals):.1f} {unit}" if vals else "-"

    alts = [v for t in tel for v in (t.get("start_rel_alt_m"), t.get("end_rel_alt_m")) if v is not None]
    lines = ["## Telemetry", "",
             f"{len(tel)} of {result.n_clips} clips carry flight telemetry from their video's DJI .SRT sidecar "
             "(column `telemetry`).", "", "| | range |", "| --- | --- |",
             f"| altitude above take-off | {f'{min(alts):.1f}-{max(alts):.1f} m' if alts else '-'} |",
             f"| ground speed (clip mean) | {rng('ground_speed_mps', 'm/s')} |",
             f"| climb rate | {rng('climb_rate_mps', 'm/s')} |",
             f"| distance flown per clip | {rng('distance_m', 'm')} |",
             f"| total distance flown in clips | {sum(t.get('distance_m') or 0.0 for t in tel) / 1000:.2f} km |", ""]
    if result.telemetry_warnings:
        lines += [f"Unreadable sidecar lines: {len(result.telemetry_warnings)} (see `build/manifest.parquet`, "
                  "`telemetry_warnings`).", ""]
    return lines


def dataset_card(config: BuildConfig, result: BuildResult, build_json: dict[str, Any]) -> str:
    """README.md: YAML header for the Hub, then statistics, the audit and build provenance."""
    splits = [s for s in SPLITS if s in result.per_split]
    info = dataset_info_yaml({s: [result.out_dir / "data" / n for n in names] for s, names in result.shards.items()})
    lines = [card_yaml(splits, result.n_clips, config.license, config.pretty_name, license_name=config.license_name,
                       license_link=config.license_link, dataset_info=info), f"# {config.pretty_name}", "",
             "Drone video-text retrieval dataset built with `dvtr build-dataset` "
             f"(dvtr {build_json['dvtr_version']}, protocol v{build_json['protocol_version']}). One row per clip: "
             f"captions plus {config.num_frames} protocol frames (JPEG, short side {config.frame_short_side} px) "
             "taken at the middles of equal segments of the clip, so every model sees identical pixels.", "",
             "```python", "import dvtr_bench", "ds = dvtr_bench.load_dataset(\"<this folder or repo id>\")",
             "# or: datasets.load_dataset(\"<this folder or repo id>\")", "```", "",
             f"Reading it needs `datasets` >= {MIN_DATASETS_VERSION} (older versions do not know the `List` "
             "feature type). After a rebuild in the same folder use `dvtr_bench.load_dataset`: `datasets."
             "load_dataset(folder)` keys its cache on the folder's name and may return the previous build's rows, "
             "while `dvtr_bench.load_dataset` keys it on the shards themselves.", "",
             "## Statistics", "", "| split | videos | clips | captions |", "| --- | ---: | ---: | ---: |"]
    for s in splits:
        c = result.per_split[s]
        lines.append(f"| {s} | {c['videos']} | {c['clips']} | {c['captions']} |")
    lines.append(f"| **all** | {sum(c['videos'] for c in result.per_split.values())} | {result.n_clips} | "
                 f"{result.n_captions} |")
    lines += ["", f"Source videos: {result.n_videos} ({result.n_ok} built, {result.n_failed} failed; see "
              "`build/manifest.parquet`).", ""]
    if result.failed:
        lines += ["Failed videos:", ""] + [f"- `{v}`: {r}" for v, r in result.failed[:20]] + [""]
    seg_params = config.make_segmenter().params()   # with the defaults filled in
    split_how = result.split_source
    lines += ["## How it was built", "",
              f"- Segmenter: `{config.segmenter}` {json.dumps(seg_params, sort_keys=True)} (per clip in "
              "`segmenter` / `segmenter_params`).",
              f"- Splits: {split_how}. Clips of one source video are always in one split.",
              f"- Captions attach to clips by clip id, else by time overlap ({config.overlap} >= "
              f"{config.min_overlap:g}); clips without captions are "
              f"{'kept' if config.keep_uncaptioned else 'dropped'}.",
              f"- Clip export: {'H.264, short side %d px, keyframe every %.2g s' % (config.clip_short_side, config.clip_gop_s) if config.export_clips else 'none'}.",
              "", "## Audit", ""]
    if result.audit is not None:
        lines.append(result.audit.to_markdown())
    if result.annotation_problems:
        lines += [f"Annotation problems reported by validation: {len(result.annotation_problems)} "
                  "(run `dvtr annotations validate`).", ""]
    lines += telemetry_card_lines(result)
    lines += ["## Columns", "", "| column | description |", "| --- | --- |"]
    lines += [f"| `{k}` | {v} |" for k, v in CLIP_COLUMNS.items()]
    lines += ["", "## Provenance", "",
              f"- dvtr {build_json['dvtr_version']}, git `{build_json['git_commit']}`, format v{FORMAT_VERSION}",
              f"- config hash `{build_json['config_hash'][:16]}`, dataset fingerprint "
              f"`{build_json['dataset_fingerprint'][:16]}`",
              "- full config, package versions and per-video job keys: `build/build.json`", ""]
    return "\n".join(lines)
