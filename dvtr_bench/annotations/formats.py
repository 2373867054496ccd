"""Readers and writers of caption annotations in the formats researchers actually have.

Every reader returns canonical :class:`CaptionRecord` objects with normalised ids and a :class:`SourceRef`
naming the file and the record (JSONL/CSV: ``line N``; Parquet: ``row N`` (0-based, as pandas and pyarrow
count); MSR-VTT JSON: ``videos[i]`` / ``sentences[j]``; CLIP4Clip: ``key 'id'`` or ``<list file>: line N``).

Errors in a single record raise :class:`InputError` by default. Pass ``problems=[]`` to collect them as
:class:`Problem` objects instead and skip the broken records, so that ``validate`` can list every problem
of a file in one pass. File-level errors (unreadable file, a refused pickle, JSON that does not parse as a
whole) always raise.

Undecodable bytes in text files are kept as lone surrogates (``errors="surrogateescape"``) rather than
stopping the reader, so validation can report the exact caption that holds them.
"""

from __future__ import annotations

import csv
import json
import math
import pickle
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from dvtr_bench.annotations.record import (CaptionRecord, SourceRef, normalize_id, normalize_split,
                                           write_jsonl)
from dvtr_bench.annotations.safe_pickle import load_plain
from dvtr_bench.annotations.validate import Problem
from dvtr_bench.errors import InputError

FORMATS = ("jsonl", "json", "csv", "parquet", "msrvtt", "clip4clip")
WRITE_FORMATS = ("jsonl", "json", "csv", "parquet", "msrvtt", "clip4clip")

CLIP4CLIP_CAPTIONS = "raw-captions.pkl"
CLIP4CLIP_SPLITS = {"train": "train_list.txt", "validation": "val_list.txt", "test": "test_list.txt"}

# Tabular column names accepted for each canonical field (case-insensitive, surrounding spaces ignored).
_COLUMN_ALIASES = {
    "video_id": ("video_id", "video", "video_name", "vid"),
    "clip_id": ("clip_id", "clip"),
    "start_s": ("start_s", "start", "start_time", "start time"),
    "end_s": ("end_s", "end", "end_time", "end time"),
    "caption": ("caption", "sentence", "text"),
    "captions": ("captions",),
    "label": ("label", "category"),
    "split": ("split",),
    "meta": ("meta",),
}


class _Sink:
    """Raise record errors, or collect them as problems when a list is given."""

    def __init__(self, problems: list[Problem] | None):
        self.problems = problems

    def error(self, exc: InputError, code: str = "parse") -> None:
        if self.problems is None:
            raise exc
        self.problems.append(Problem(exc.file, None if exc.record is None else str(exc.record), exc.reason, code))


# ---------------------------------------------------------------------------------------------- sniffing

def sniff_format(path: str | Path) -> str:
    """Guess the annotation format of ``path`` from its extension, then from its content."""
    p = Path(path)
    if p.is_dir():
        if (p / CLIP4CLIP_CAPTIONS).exists():
            return "clip4clip"
        raise InputError(f"a folder is read only in the CLIP4Clip layout, and it has no {CLIP4CLIP_CAPTIONS}", p)
    if not p.exists():
        raise InputError("no such file", p)
    ext = p.suffix.lower()
    by_ext = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".tsv": "csv", ".parquet": "parquet",
              ".pq": "parquet", ".pkl": "clip4clip", ".pickle": "clip4clip"}
    if ext in by_ext:
        return by_ext[ext]
    with open(p, "rb") as f:
        head = f.read(4096)
    if head.startswith(b"PAR1"):
        return "parquet"
    if head[:1] == b"\x80":
        return "clip4clip"
    text = head.decode("utf-8", "replace").lstrip("\ufeff \t\r\n")
    if ext == ".json" or text.startswith(("{", "[")):
        if text.startswith("["):
            return "json"
        if text.startswith("{"):
            # One record object per line is JSONL; one object holding "videos"/"sentences" is MSR-VTT.
            if ext == ".json":
                return "msrvtt"
            first_line = text.split("\n", 1)[0]
            try:
                obj = json.loads(first_line)
            except json.JSONDecodeError:
                return "msrvtt"
            return "msrvtt" if isinstance(obj, dict) and ("videos" in obj or "sentences" in obj) else "jsonl"
    return "csv"


# ---------------------------------------------------------------------------------------------- reading

def read_annotations(path: str | Path, format: str | None = None, *, problems: list[Problem] | None = None,
                     **kw: Any) -> list[CaptionRecord]:
    """Read an annotation file (or a CLIP4Clip folder) into canonical records.

    ``format`` is one of :data:`FORMATS`, or None to sniff it. Extra keywords go to the reader
    (CSV/Parquet: ``caption_sep``; CSV: ``delimiter``; CLIP4Clip: ``split_files``). With
    ``problems=[]`` record-level errors are collected there instead of raised.
    """
    fmt = format or sniff_format(path)
    readers: dict[str, Callable[..., list[CaptionRecord]]] = {
        "jsonl": read_jsonl, "json": read_json, "csv": read_csv, "parquet": read_parquet,
        "msrvtt": read_msrvtt, "clip4clip": read_clip4clip,
    }
    if fmt not in readers:
        raise InputError(f"unknown annotation format {fmt!r}; expected one of {', '.join(FORMATS)}", path)
    if not Path(path).exists():
        raise InputError("no such file", path)
    return readers[fmt](path, problems=problems, **kw)


def read_jsonl(path: str | Path, *, problems: list[Problem] | None = None) -> list[CaptionRecord]:
    """Canonical JSON Lines (see annotations/schema.json): one record object per line."""
    sink, out = _Sink(problems), []
    with _open_text(path) as f:
        for lineno, line in enumerate(f, start=1):
            if lineno == 1:
                line = line.lstrip("\ufeff")
            if not line.strip():
                continue
            try:
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InputError(f"invalid JSON: {exc.msg} (column {exc.colno})", path, f"line {lineno}") from None
                out.append(CaptionRecord.from_dict(obj, path, f"line {lineno}"))
            except InputError as exc:
                sink.error(exc)
    return out


def read_json(path: str | Path, *, problems: list[Problem] | None = None) -> list[CaptionRecord]:
    """A JSON array of canonical records (or an object with a "records" array)."""
    data = _load_json(path)
    if isinstance(data, dict) and isinstance(data.get("records"), list):
        data = data["records"]
    if not isinstance(data, list):
        raise InputError("expected a JSON array of caption records", path)
    sink, out = _Sink(problems), []
    for i, obj in enumerate(data):
        try:
            out.append(CaptionRecord.from_dict(obj, path, f"records[{i}]"))
        except InputError as exc:
            sink.error(exc)
    return out


def read_csv(path: str | Path, *, problems: list[Problem] | None = None, caption_sep: str = "|",
             delimiter: str | None = None) -> list[CaptionRecord]:
    """CSV/TSV with a header row.

    Columns: ``video_id`` and either ``caption`` (one caption per row; rows with the same video_id,
    clip_id, start_s and end_s are grouped into one record, in file order) or ``captions`` (all captions
    of the record in one cell, separated by ``caption_sep``, default ``|``, or written as a JSON list);
    optional ``clip_id``, ``start_s``, ``end_s``, ``label``, ``split``, ``meta`` (a JSON object). Aliases:
    sentence/text for caption, start/end/"start time" for the times, category for label. Other columns
    are ignored. Empty cells are missing values. The delimiter is a tab for .tsv, else a comma.
    """
    if delimiter is None:
        delimiter = "\t" if Path(path).suffix.lower() == ".tsv" else ","
    with _open_text(path, newline="", bom=True) as f:
        reader = csv.reader(f, delimiter=delimiter)
        try:
            header = next(reader)
        except StopIteration:
            raise InputError("empty file: no header row", path) from None
        except csv.Error as exc:
            raise InputError(f"unreadable CSV header: {exc}", path, "line 1") from None
        columns = _map_columns(header, path)

        def rows() -> Iterable[tuple[str, dict[str, Any] | InputError]]:
            while True:
                try:
                    row = next(reader)
                except StopIteration:
                    return
                except csv.Error as exc:
                    yield f"line {reader.line_num}", InputError(f"unreadable CSV: {exc}", path, f"line {reader.line_num}")
                    continue
                if not any(cell.strip() for cell in row):
                    continue
                if len(row) > len(header):
                    yield (f"line {reader.line_num}",
                           InputError(f"{len(row)} cells but the header has {len(header)} columns", path,
                                      f"line {reader.line_num}"))
                    continue
                values = {field: (row[i] if i < len(row) else "") for field, i in columns.items()}
                yield f"line {reader.line_num}", {k: (v if v.strip() else None) for k, v in values.items()}

        return _records_from_rows(rows(), path, caption_sep, problems, plural="lines")


def read_parquet(path: str | Path, *, problems: list[Problem] | None = None,
                 caption_sep: str = "|") -> list[CaptionRecord]:
    """Parquet with the CSV columns; ``captions`` may be a list<string> column, ``meta`` a JSON string or struct."""
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError, ... for a damaged file
        raise InputError(f"not a readable Parquet file: {exc}", path) from None
    columns = _map_columns(table.column_names, path)
    # Column-wise conversion is several times faster than building one dict per row.
    data = {field: table.column(col).to_pylist() for field, col in columns.items()}

    def rows() -> Iterable[tuple[str, dict[str, Any] | InputError]]:
        for i in range(table.num_rows):
            values = {}
            for field in columns:
                v = data[field][i]
                if isinstance(v, bytes):
                    v = v.decode("utf-8", "surrogateescape")
                elif isinstance(v, list):
                    v = [c.decode("utf-8", "surrogateescape") if isinstance(c, bytes) else c for c in v]
                elif isinstance(v, float) and math.isnan(v):
                    v = None  # pandas stores missing floats as NaN
                values[field] = v
            yield f"row {i}", values

    return _records_from_rows(rows(), path, caption_sep, problems, plural="rows")


def read_msrvtt(path: str | Path, *, problems: list[Problem] | None = None) -> list[CaptionRecord]:
    """MSR-VTT-style JSON: ``{"videos": [...], "sentences": [...]}``.

    Each ``videos`` entry is one record: ``video_id`` (the video file the captions describe), optional
    ``clip_id``, ``split`` ("validate" counts as validation), ``"start time"``/``"end time"`` (or
    start_s/end_s), ``category``/``label``, ``meta``. Each sentence ``{"video_id", "caption", "sen_id"}``
    (plus ``clip_id`` when entries share a video) attaches to its entry. In the original MSR-VTT the
    entries carry a YouTube ``url`` and their times locate the clip inside that YouTube video, not inside
    the local file; for such entries the times are kept in ``meta`` (``url``, ``source_start_s``,
    ``source_end_s``) and the record covers the whole local file.
    """
    data = _load_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("videos"), list) \
            or not isinstance(data.get("sentences"), list):
        raise InputError('expected an object with "videos" and "sentences" arrays (MSR-VTT layout)', path)
    sink = _Sink(problems)
    records: list[CaptionRecord] = []
    by_clip: dict[str, CaptionRecord] = {}
    by_video: dict[str, list[CaptionRecord]] = {}
    for i, v in enumerate(data["videos"]):
        loc = f"videos[{i}]"
        try:
            if not isinstance(v, dict):
                raise InputError(f"expected an object, got {type(v).__name__}", path, loc)
            start = _first(v, "start_s", "start time", "start_time")
            end = _first(v, "end_s", "end time", "end_time")
            meta = dict(v.get("meta") or {}) if isinstance(v.get("meta") or {}, dict) else v.get("meta")
            if v.get("url") is not None:
                # Original MSR-VTT: the times locate the clip in the YouTube video, not in the local file.
                if isinstance(meta, dict):
                    meta.update({"url": v["url"], "source_start_s": start, "source_end_s": end})
                start = end = None
            rec = CaptionRecord.from_dict({
                "video_id": v.get("video_id"), "clip_id": v.get("clip_id"), "captions": [],
                "start_s": start, "end_s": end, "label": _first(v, "label", "category"),
                "split": v.get("split"), "meta": meta,
            }, path, loc)
            if rec.clip_id is not None:
                if rec.clip_id in by_clip:
                    raise InputError(f"clip_id {rec.clip_id!r} is also used by {by_clip[rec.clip_id].source.record}",
                                     path, loc)
                by_clip[rec.clip_id] = rec
            by_video.setdefault(rec.video_id, []).append(rec)
            records.append(rec)
        except InputError as exc:
            sink.error(exc)
    for j, s in enumerate(data["sentences"]):
        loc = f"sentences[{j}]"
        try:
            if not isinstance(s, dict):
                raise InputError(f"expected an object, got {type(s).__name__}", path, loc)
            cap = s.get("caption", s.get("sentence"))
            if not isinstance(cap, str):
                raise InputError("caption must be a string", path, loc)
            target = None
            if s.get("clip_id") is not None:
                target = by_clip.get(normalize_id(s["clip_id"]))
                if target is None:
                    raise InputError(f"sentence refers to unknown clip_id {s['clip_id']!r}", path, loc)
            else:
                if s.get("video_id") is None:
                    raise InputError("sentence has no video_id", path, loc)
                vid = normalize_id(s["video_id"])
                # A sentence names its entry by clip_id when it has one, else by video_id.
                cands = by_clip.get(vid) and [by_clip[vid]] or by_video.get(vid, [])
                if not cands:
                    raise InputError(f"sentence refers to unknown video_id {s['video_id']!r}", path, loc)
                if len(cands) > 1:
                    raise InputError(f"video_id {vid!r} has {len(cands)} entries; give the sentence a clip_id",
                                     path, loc)
                target = cands[0]
            target.captions.append(cap)
        except InputError as exc:
            sink.error(exc)
    return records


def read_clip4clip(path: str | Path, *, problems: list[Problem] | None = None,
                   split_files: dict[str, str | Path] | None = None) -> list[CaptionRecord]:
    """The CLIP4Clip/MSVD layout: ``raw-captions.pkl`` plus ``train_list.txt``/``val_list.txt``/``test_list.txt``.

    ``path`` is the folder or the pickle itself. The pickle maps each video id (the clip file's stem) to
    a list of captions, each a list of tokens (joined with single spaces) or a string. It is loaded with
    a restricted unpickler: plain containers and strings only, anything else is refused and never run.
    Split lists hold one video id per line; they are looked up next to the pickle unless ``split_files``
    maps split names to other paths, and missing lists are skipped.
    """
    p = Path(path)
    pkl = p / CLIP4CLIP_CAPTIONS if p.is_dir() else p
    folder = pkl.parent
    data = load_plain(pkl)
    if not isinstance(data, dict):
        raise InputError(f"expected a dict of video id -> captions, got {type(data).__name__}", pkl)
    sink = _Sink(problems)
    records: dict[str, CaptionRecord] = {}
    for key, caps in data.items():
        if isinstance(key, bytes):
            key = key.decode("utf-8", "surrogateescape")
        loc = f"key {key!r}"
        try:
            if not isinstance(key, (str, int)):
                raise InputError(f"video id must be a string, got {type(key).__name__}", pkl, loc)
            if not isinstance(caps, (list, tuple)):
                raise InputError(f"captions must be a list, got {type(caps).__name__}", pkl, loc)
            texts = []
            for n, cap in enumerate(caps):
                if isinstance(cap, (list, tuple)):
                    toks = [t.decode("utf-8", "surrogateescape") if isinstance(t, bytes) else t for t in cap]
                    if not all(isinstance(t, str) for t in toks):
                        raise InputError(f"caption {n + 1}: tokens must be strings", pkl, loc)
                    texts.append(" ".join(toks))
                elif isinstance(cap, bytes):
                    texts.append(cap.decode("utf-8", "surrogateescape"))
                elif isinstance(cap, str):
                    texts.append(cap)
                else:
                    raise InputError(f"caption {n + 1}: expected a token list or a string, got "
                                     f"{type(cap).__name__}", pkl, loc)
            rec = CaptionRecord.from_dict({"video_id": key, "captions": texts}, pkl, loc)
            if rec.video_id in records:
                raise InputError(f"video id {rec.video_id!r} appears twice after normalisation "
                                 f"(also {records[rec.video_id].source.record})", pkl, loc)
            records[rec.video_id] = rec
        except InputError as exc:
            sink.error(exc)
    lists = {s: Path(f) for s, f in (split_files or {}).items()} if split_files else \
        {s: folder / name for s, name in CLIP4CLIP_SPLITS.items()}
    assigned: dict[str, str] = {}
    for split, list_path in lists.items():
        split = normalize_split(split) or split
        if not list_path.exists():
            if split_files:
                raise InputError("split list not found", list_path)
            continue
        with _open_text(list_path) as f:
            for lineno, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                vid = normalize_id(line)
                loc = f"line {lineno}"
                try:
                    if vid not in records:
                        raise InputError(f"{vid!r} is listed for {split} but has no captions in {pkl.name}",
                                         list_path, loc)
                    if vid in assigned and assigned[vid] != split:
                        raise InputError(f"{vid!r} is listed for {split} and for {assigned[vid]}", list_path, loc)
                    assigned[vid] = split
                    records[vid].split = split
                except InputError as exc:
                    sink.error(exc, "split_conflict" if vid in records else "unknown_video")
    return list(records.values())


# ---------------------------------------------------------------------------------------------- helpers

def _open_text(path: str | Path, newline: str | None = None, bom: bool = False):
    try:
        return open(path, encoding="utf-8-sig" if bom else "utf-8", errors="surrogateescape", newline=newline)
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", path) from None


def _load_json(path: str | Path) -> Any:
    with _open_text(path, bom=True) as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as exc:
            raise InputError(f"invalid JSON: {exc.msg}", path, f"line {exc.lineno}") from None


def _first(d: dict[str, Any], *keys: str) -> Any:
    for k in keys:
        if d.get(k) is not None:
            return d[k]
    return None


def _map_columns(header: Sequence[str], path: str | Path) -> dict[str, int]:
    """Canonical field -> column index; requires video_id and caption(s)."""
    lookup = {str(h).strip().lower(): i for i, h in enumerate(header)}
    columns: dict[str, int] = {}
    for field, aliases in _COLUMN_ALIASES.items():
        for a in aliases:
            if a in lookup:
                columns[field] = lookup[a]
                break
    if "video_id" not in columns:
        raise InputError(f"no video_id column (columns: {', '.join(map(str, header))})", path)
    if ("caption" in columns) == ("captions" in columns):
        raise InputError("need exactly one of the columns caption (one caption per row) or captions "
                         f"(all captions in one cell); columns: {', '.join(map(str, header))}", path)
    return columns


def _split_captions(cell: Any, sep: str, path: str | Path, loc: str) -> list[str]:
    if cell is None:
        return []
    if isinstance(cell, (list, tuple)):
        return [c if c is not None else "" for c in cell]
    s = str(cell)
    if s.lstrip().startswith("["):
        try:
            parsed = json.loads(s)
        except json.JSONDecodeError:
            parsed = None
        if isinstance(parsed, list) and all(isinstance(c, str) for c in parsed):
            return parsed
    return [c.strip() for c in s.split(sep)]


def _parse_meta(cell: Any, path: str | Path, loc: str) -> dict[str, Any]:
    if cell is None or cell == "":
        return {}
    if isinstance(cell, dict):
        return cell
    try:
        meta = json.loads(cell)
    except (TypeError, json.JSONDecodeError):
        raise InputError("meta is not valid JSON", path, loc) from None
    if not isinstance(meta, dict):
        raise InputError("meta must be a JSON object", path, loc)
    return meta


def _records_from_rows(rows: Iterable[tuple[str, dict[str, Any] | InputError]], path: str | Path,
                       caption_sep: str, problems: list[Problem] | None, plural: str) -> list[CaptionRecord]:
    """Turn tabular rows into records, grouping one-caption-per-row rows that describe the same span."""
    sink = _Sink(problems)
    groups: dict[tuple, tuple[CaptionRecord, list[str]]] = {}
    # Raw (video_id, clip_id, start, end) cells -> group key: the rows after a record's first one skip the
    # full parse (MSR-VTT-style CSVs repeat those cells on twenty rows per clip).
    known: dict[tuple, tuple] = {}
    out: list[CaptionRecord] = []
    for loc, values in rows:
        if isinstance(values, InputError):
            sink.error(values)
            continue
        try:
            if "captions" in values:
                caps = _split_captions(values["captions"], caption_sep, path, loc)
                out.append(_record(values, caps, path, loc))
                continue
            # An empty caption cell still counts as a caption, so that validation reports it.
            caps = [str(values["caption"]) if values.get("caption") is not None else ""]
            raw = (values.get("video_id"), values.get("clip_id"), values.get("start_s"), values.get("end_s"))
            hashable = all(isinstance(v, (str, int, float, type(None))) for v in raw)
            key = known.get(raw) if hashable else None
            if key is None:
                rec = _record(values, caps, path, loc)
                key = (rec.video_id, rec.clip_id, rec.start_s, rec.end_s)
                if hashable:
                    known[raw] = key
                if key not in groups:
                    groups[key] = (rec, [loc])
                    out.append(rec)
                    continue
                label, split, meta = rec.label, rec.split, rec.meta
            else:
                label = None if values.get("label") is None else str(values["label"]) or None
                split = normalize_split(values.get("split"))
                meta = _parse_meta(values.get("meta"), path, loc)
            first, locs = groups[key]
            for attr, b in (("label", label), ("split", split)):
                a = getattr(first, attr)
                if a is not None and b is not None and a != b:
                    raise InputError(f"{attr} {b!r} conflicts with {a!r} given for the same record at {locs[0]}",
                                     path, loc)
                if a is None and b is not None:
                    setattr(first, attr, b)
            if meta:
                if first.meta and first.meta != meta:
                    raise InputError(f"meta conflicts with the meta given for the same record at {locs[0]}",
                                     path, loc)
                first.meta = meta
            first.captions.extend(caps)
            locs.append(loc)
        except InputError as exc:
            sink.error(exc)
    for first, locs in groups.values():
        if len(locs) > 1:
            first.source = SourceRef(str(path), _join_locs(locs, plural))
    return out


def _record(values: dict[str, Any], caps: list[str], path: str | Path, loc: str) -> CaptionRecord:
    return CaptionRecord.from_dict({
        "video_id": values.get("video_id"), "clip_id": values.get("clip_id"), "captions": caps,
        "start_s": values.get("start_s"), "end_s": values.get("end_s"), "label": values.get("label"),
        "split": values.get("split"), "meta": _parse_meta(values.get("meta"), path, loc),
    }, path, loc)


def _join_locs(locs: list[str], plural: str) -> str:
    nums = [loc.split(" ", 1)[1] for loc in locs]
    shown = ", ".join(nums[:8]) + (f", ... ({len(nums)} in all)" if len(nums) > 8 else "")
    return f"{plural} {shown}"


# ---------------------------------------------------------------------------------------------- writing

def output_format(path: str | Path) -> str:
    """The format implied by an output path's extension (a path without one is a CLIP4Clip folder)."""
    p = Path(path)
    ext = p.suffix.lower()
    table = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".tsv": "csv", ".parquet": "parquet",
             ".pq": "parquet", ".pkl": "clip4clip"}
    if ext in table:
        return table[ext]
    if ext == ".json":
        return "msrvtt"
    if ext == "" or p.is_dir():
        return "clip4clip"
    raise InputError(f"cannot tell the output format from the extension {ext!r}; pass it explicitly", p)


def write_annotations(records: Sequence[CaptionRecord], path: str | Path, format: str | None = None) -> str:
    """Write ``records`` to ``path`` in ``format`` (default: from the extension). Returns the format used.

    Formats hold different amounts: ``clip4clip`` keeps only ids, captions and splits (keyed by clip_id
    when set, else video_id); ``msrvtt`` and ``csv`` keep everything; ``csv`` writes one row per caption
    with ``meta`` on the first row of each record.
    """
    fmt = format or output_format(path)
    writers: dict[str, Callable[[Sequence[CaptionRecord], Path], None]] = {
        "jsonl": lambda r, p: write_jsonl(r, p), "json": _write_json, "csv": write_csv,
        "parquet": write_parquet, "msrvtt": write_msrvtt, "clip4clip": write_clip4clip,
    }
    if fmt not in writers:
        raise InputError(f"cannot write format {fmt!r}; expected one of {', '.join(WRITE_FORMATS)}", path)
    _check_encodable(records)
    writers[fmt](records, Path(path))
    return fmt


def _check_encodable(records: Sequence[CaptionRecord]) -> None:
    # Readers keep bytes that are not UTF-8 as lone surrogates for validation; no output format can hold them.
    for r in records:
        for n, text in enumerate([r.video_id, r.clip_id or "", r.label or "", *r.captions]):
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                what = ("video_id", "clip_id", "label")[n] if n < 3 else f"caption {n - 2}"
                src = r.source
                raise InputError(f"{what} holds bytes that are not valid UTF-8; fix the input's encoding first "
                                 "(dvtr annotations validate lists them all)", src.file if src else None,
                                 src.record if src else None) from None


def _write_json(records: Sequence[CaptionRecord], path: Path) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        json.dump([r.to_dict() for r in records], f, ensure_ascii=False, indent=1, sort_keys=True)
        f.write("\n")


def _num(v: float | None) -> str:
    return "" if v is None else repr(float(v))


def write_csv(records: Sequence[CaptionRecord], path: str | Path) -> None:
    """One row per caption: video_id, clip_id, start_s, end_s, label, split, caption, meta (JSON, first row)."""
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["video_id", "clip_id", "start_s", "end_s", "label", "split", "caption", "meta"])
        for r in records:
            meta = json.dumps(r.meta, ensure_ascii=False, sort_keys=True) if r.meta else ""
            for k, cap in enumerate(r.captions or [""]):
                w.writerow([r.video_id, r.clip_id or "", _num(r.start_s), _num(r.end_s), r.label or "",
                            r.split or "", cap, meta if k == 0 else ""])


def write_parquet(records: Sequence[CaptionRecord], path: str | Path) -> None:
    """One row per record; captions as list<string>, meta as a JSON string."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([("video_id", pa.string()), ("clip_id", pa.string()), ("start_s", pa.float64()),
                        ("end_s", pa.float64()), ("label", pa.string()), ("split", pa.string()),
                        ("captions", pa.list_(pa.string())), ("meta", pa.string())])
    cols: dict[str, list[Any]] = {name: [] for name in schema.names}
    for r in records:
        cols["video_id"].append(r.video_id)
        cols["clip_id"].append(r.clip_id)
        cols["start_s"].append(r.start_s)
        cols["end_s"].append(r.end_s)
        cols["label"].append(r.label)
        cols["split"].append(r.split)
        cols["captions"].append(list(r.captions))
        cols["meta"].append(json.dumps(r.meta, ensure_ascii=False, sort_keys=True) if r.meta else None)
    pq.write_table(pa.table(cols, schema=schema), path)


def write_msrvtt(records: Sequence[CaptionRecord], path: str | Path) -> None:
    """MSR-VTT-style JSON; entries carry clip_id when records have one, and sentences name their entry."""
    videos, sentences = [], []
    for r in records:
        entry: dict[str, Any] = {"video_id": r.video_id}
        if r.clip_id:
            entry["clip_id"] = r.clip_id
        if r.split:
            entry["split"] = "validate" if r.split == "validation" else r.split
        if r.start_s is not None:
            entry["start time"] = r.start_s
        if r.end_s is not None:
            entry["end time"] = r.end_s
        if r.label is not None:
            entry["label"] = r.label
        if r.meta:
            entry["meta"] = r.meta
        videos.append(entry)
        for cap in r.captions:
            s: dict[str, Any] = {"video_id": r.video_id, "caption": cap, "sen_id": len(sentences)}
            if r.clip_id:
                s["clip_id"] = r.clip_id
            sentences.append(s)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        json.dump({"info": {"format": "MSR-VTT style, written by dvtr"}, "videos": videos,
                   "sentences": sentences}, f, ensure_ascii=False, indent=1)
        f.write("\n")


def write_clip4clip(records: Sequence[CaptionRecord], path: str | Path) -> None:
    """A CLIP4Clip/MSVD folder: raw-captions.pkl (id -> token lists) plus one list file per split."""
    p = Path(path)
    folder, pkl = (p.parent, p) if p.suffix.lower() == ".pkl" else (p, p / CLIP4CLIP_CAPTIONS)
    folder.mkdir(parents=True, exist_ok=True)
    data: dict[str, list[list[str]]] = {}
    splits: dict[str, list[str]] = {s: [] for s in CLIP4CLIP_SPLITS}
    for r in records:
        key = r.clip_id or r.video_id
        if key in data:
            raise InputError(f"two records share the id {key!r}; the CLIP4Clip layout keys captions by one id "
                             "per clip file", None, r.where())
        data[key] = [c.split() for c in r.captions]
        if r.split in splits:
            splits[r.split].append(key)
    with open(pkl, "wb") as f:
        pickle.dump(data, f, protocol=4)
    for split, ids in splits.items():
        if ids:
            (folder / CLIP4CLIP_SPLITS[split]).write_text("".join(i + "\n" for i in ids), encoding="utf-8")
