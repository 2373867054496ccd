"""Helpers shared by the format modules: error collection, text and JSON opening, sniffing, tabular rows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Any, Iterable, Sequence

from dvtr_bench.annotations.record import CaptionRecord, SourceRef, normalize_split
from dvtr_bench.annotations.validate import Problem
from dvtr_bench.errors import InputError

# Enough to see a magic number, a BOM and the first JSON line of any file we sniff.
SNIFF_BYTES = 4096

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


# ---------------------------------------------------------------------------------------------- files

def _open_text(path: str | Path, newline: str | None = None, bom: bool = False) -> IO[str]:
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


# ---------------------------------------------------------------------------------------------- sniffing

def _head(path: Path) -> bytes:
    with open(path, "rb") as f:
        return f.read(SNIFF_BYTES)


def _text_head(path: Path) -> str:
    """The start of the file as text, without a BOM or leading whitespace (bad bytes replaced: only a guess)."""
    return _head(path).decode("utf-8", "replace").lstrip("\ufeff \t\r\n")


def _looks_like_jsonl(text: str) -> bool:
    """True when the first line is a whole JSON object that is not an MSR-VTT document.

    JSON Lines and MSR-VTT JSON both start with ``{``: a record object is complete on its line, while an MSR-VTT
    document either spans several lines or holds "videos"/"sentences" at the top.
    """
    if not text.startswith("{"):
        return False
    try:
        obj = json.loads(text.split("\n", 1)[0])
    except json.JSONDecodeError:
        return False
    return not (isinstance(obj, dict) and ("videos" in obj or "sentences" in obj))


# ---------------------------------------------------------------------------------------------- tabular rows

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
        elif first.captions == [""]:
            # One row with an empty caption cell: a record without captions (how writers store one), not a
            # record with one empty caption; validation reports it as "no captions".
            first.captions = []
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


def _meta_json(meta: dict[str, Any]) -> str:
    """meta as the JSON text the tabular writers store in one cell."""
    return json.dumps(meta, ensure_ascii=False, sort_keys=True)
