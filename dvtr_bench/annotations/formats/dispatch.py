"""Choosing a format for a path, and reading or writing through the registry."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from dvtr_bench.annotations.formats.base import (FORMATS, WRITE_FORMATS, formats_for_extension, output_choice)
from dvtr_bench.annotations.record import CaptionRecord
from dvtr_bench.annotations.validate import Problem
from dvtr_bench.errors import InputError


def _and(names: Sequence[str], word: str = "and") -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} {word} {names[-1]}"


def sniff_format(path: str | Path) -> str:
    """Guess the annotation format of ``path`` from its extension, then from its content."""
    p = Path(path)
    if p.is_dir():
        folders = [f for f in FORMATS.values() if f.folder_marker]
        for fmt in folders:
            if (p / fmt.folder_marker).exists():
                return fmt.name
        if not folders:
            raise InputError("a folder is not an annotation file", p)
        raise InputError(f"a folder is read only in the {_and([f.title for f in folders], 'or')} layout, and it "
                         f"has no {_and([f.folder_marker for f in folders], 'or')}", p)
    if not p.exists():
        raise InputError("no such file", p)
    claimants = formats_for_extension(p.suffix)
    if len(claimants) == 1:
        return claimants[0].name
    # A shared extension (.json) is settled by the formats that share it before any other is asked.
    for fmt in claimants:
        if fmt.sniff is not None and fmt.sniff(p):
            return fmt.name
    for fmt in FORMATS.values():
        if fmt not in claimants and fmt.sniff is not None and fmt.sniff(p):
            return fmt.name
    for fmt in FORMATS.values():
        if fmt.fallback:
            return fmt.name
    raise InputError("cannot tell the annotation format from the extension or the content; pass it explicitly", p)


def output_format(path: str | Path) -> str:
    """The format implied by an output path's extension (a path without one is a folder layout)."""
    p = Path(path)
    ext = p.suffix.lower()
    chosen, writers = output_choice(ext)
    if chosen is not None:
        return chosen.name
    if writers:
        raise InputError(f"the extension {ext!r} is written by several formats ({', '.join(f.name for f in writers)}); "
                         "pass one explicitly", p)
    if ext == "" or p.is_dir():
        for fmt in WRITE_FORMATS.values():
            if fmt.folder_marker:
                return fmt.name
    raise InputError(f"cannot tell the output format from the extension {ext!r}; pass it explicitly", p)


def read_annotations(path: str | Path, format: str | None = None, *, problems: list[Problem] | None = None,
                     **kw: Any) -> list[CaptionRecord]:
    """Read an annotation file (or a folder layout such as CLIP4Clip's) into canonical records.

    ``format`` is one of :data:`FORMATS`, or None to sniff it. Extra keywords go to the reader; each format
    lists the ones it takes in its ``options`` (CSV/Parquet: ``caption_sep``; CSV: ``delimiter``; CLIP4Clip:
    ``split_files``). With ``problems=[]`` record-level errors are collected there instead of raised.
    """
    fmt = format or sniff_format(path)
    if fmt not in FORMATS:
        raise InputError(f"unknown annotation format {fmt!r}; expected one of {', '.join(FORMATS)}", path)
    if not Path(path).exists():
        raise InputError("no such file", path)
    return FORMATS[fmt].read(path, problems=problems, **kw)


def write_annotations(records: Sequence[CaptionRecord], path: str | Path, format: str | None = None) -> str:
    """Write ``records`` to ``path`` in ``format`` (default: from the extension). Returns the format used.

    Formats hold different amounts: each format's ``holds`` names the fields it keeps and its ``hold(record)``
    gives what a record reads back as (``clip4clip`` keeps only ids, captions and splits, keyed by clip_id when
    set, else video_id). ``csv`` writes one row per caption with ``meta`` on the first row of each record.
    """
    fmt = format or output_format(path)
    if fmt not in WRITE_FORMATS:
        raise InputError(f"cannot write format {fmt!r}; expected one of {', '.join(WRITE_FORMATS)}", path)
    _check_encodable(records)
    writer = WRITE_FORMATS[fmt].write
    assert writer is not None  # WRITE_FORMATS holds only formats with a writer
    writer(records, Path(path))
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
