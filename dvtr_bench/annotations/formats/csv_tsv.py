"""CSV and TSV with a header row: one caption per row, or all captions of a record in one cell.

The module is not called ``csv`` so that it never stands in for the standard library's ``csv`` it uses.
"""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path
from typing import Any, Iterable, Sequence

from dvtr_bench.annotations.formats._common import _map_columns, _meta_json, _open_text, _records_from_rows
from dvtr_bench.annotations.formats.base import AnnotationFormat, register_format
from dvtr_bench.annotations.record import CaptionRecord
from dvtr_bench.annotations.validate import Problem
from dvtr_bench.errors import InputError


def _delimiter(path: str | Path) -> str:
    # Read and write agree on it, so a .tsv written by dvtr reads back.
    return "\t" if Path(path).suffix.lower() == ".tsv" else ","


# Delimiters a header line is tried with, in order of preference: spreadsheets in locales with a decimal comma
# write ";", some exports use tabs or "|".
SNIFFED_DELIMITERS = (",", ";", "\t", "|")


def sniff_delimiter(header_line: str, path: str | Path) -> str:
    """The delimiter that splits ``header_line`` into columns dvtr recognises (a video id and a caption
    column), trying :data:`SNIFFED_DELIMITERS` in order; the extension's default when none does."""
    for d in SNIFFED_DELIMITERS:
        try:
            header = next(csv.reader([header_line], delimiter=d))
        except (csv.Error, StopIteration):
            continue
        try:
            _map_columns(header, path)
        except InputError:
            continue
        return d
    return _delimiter(path)


def read_csv(path: str | Path, *, problems: list[Problem] | None = None, caption_sep: str = "|",
             delimiter: str | None = None) -> list[CaptionRecord]:
    """CSV/TSV with a header row.

    Columns: ``video_id`` and either ``caption`` (one caption per row; rows with the same video_id,
    clip_id, start_s and end_s are grouped into one record, in file order) or ``captions`` (all captions
    of the record in one cell, separated by ``caption_sep``, default ``|``, or written as a JSON list);
    optional ``clip_id``, ``start_s``, ``end_s``, ``label``, ``split``, ``meta`` (a JSON object). Aliases:
    sentence/text for caption, start/end/"start time" for the times, category for label. Other columns
    are ignored. Empty cells are missing values; a record given by one row whose caption cell is empty has
    no captions (what :func:`write_csv` writes for one). The delimiter is ``delimiter`` when given, else the
    one of ``,`` ``;`` tab ``|`` that splits the header into recognised columns (a tab for .tsv by default).
    """
    with _open_text(path, newline="", bom=True) as f:
        if delimiter is None:
            delimiter = sniff_delimiter(f.readline(), path)
            f.seek(0)
        reader = csv.reader(f, delimiter=delimiter)
        try:
            header = next(reader)
        except StopIteration:
            raise InputError("empty file: no header row", path) from None
        except csv.Error as exc:
            raise InputError(f"unreadable CSV header: {exc}", path, "line 1") from None
        try:
            columns = _map_columns(header, path)
        except InputError as exc:
            shown = "tab" if delimiter == "\t" else repr(delimiter)
            raise InputError(f"{exc.reason} (read with the delimiter {shown}; pass --delimiter for another)",
                             path) from None

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


def _num(v: float | None) -> str:
    return "" if v is None else repr(float(v))


def write_csv(records: Sequence[CaptionRecord], path: str | Path) -> None:
    """One row per caption: video_id, clip_id, start_s, end_s, label, split, caption, meta (JSON, first row).

    Tab-separated when ``path`` ends in .tsv, else comma-separated.
    """
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, delimiter=_delimiter(path), lineterminator="\n")
        w.writerow(["video_id", "clip_id", "start_s", "end_s", "label", "split", "caption", "meta"])
        for r in records:
            meta = _meta_json(r.meta) if r.meta else ""
            for k, cap in enumerate(r.captions or [""]):
                w.writerow([r.video_id_as_given, r.clip_id_as_given or "", _num(r.start_s), _num(r.end_s), r.label or "",
                            r.split or "", cap, meta if k == 0 else ""])


def _reshape(record: CaptionRecord) -> CaptionRecord:
    # A record is rows of captions: one without captions is one row with an empty caption cell, and reads back
    # without captions; so does a record whose only caption is empty (the two cannot be told apart).
    return dataclasses.replace(record, captions=[]) if record.captions == [""] else record


CSV = register_format(AnnotationFormat(
    name="csv", title="CSV/TSV",
    description="CSV/TSV with a header row: one caption per row, or all of a record's in a captions column",
    extensions=(".csv", ".tsv"), read=read_csv, write=write_csv, options=("caption_sep", "delimiter"),
    reshape=_reshape,
    # Text that is neither JSON nor a known binary layout is most likely a table from a spreadsheet.
    fallback=True,
))
