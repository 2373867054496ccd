"""Parquet with the CSV columns; ``captions`` may be a list<string> column and ``meta`` a JSON string or struct."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterable, Sequence

from dvtr_bench.annotations.formats._common import _head, _map_columns, _meta_json, _records_from_rows
from dvtr_bench.annotations.formats.base import AnnotationFormat, register_format
from dvtr_bench.annotations.record import CaptionRecord
from dvtr_bench.annotations.validate import Problem
from dvtr_bench.errors import InputError


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


def write_parquet(records: Sequence[CaptionRecord], path: str | Path) -> None:
    """One row per record; captions as list<string>, meta as a JSON string."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([("video_id", pa.string()), ("clip_id", pa.string()), ("start_s", pa.float64()),
                        ("end_s", pa.float64()), ("label", pa.string()), ("split", pa.string()),
                        ("captions", pa.list_(pa.string())), ("meta", pa.string())])
    cols: dict[str, list[Any]] = {name: [] for name in schema.names}
    for r in records:
        cols["video_id"].append(r.video_id_as_given)
        cols["clip_id"].append(r.clip_id_as_given)
        cols["start_s"].append(r.start_s)
        cols["end_s"].append(r.end_s)
        cols["label"].append(r.label)
        cols["split"].append(r.split)
        cols["captions"].append(list(r.captions))
        cols["meta"].append(_meta_json(r.meta) if r.meta else None)
    pq.write_table(pa.table(cols, schema=schema), path)


def _sniff(path: Path) -> bool:
    return _head(path).startswith(b"PAR1")


PARQUET = register_format(AnnotationFormat(
    name="parquet", title="Parquet",
    description="Parquet with the CSV columns; captions as a list<string> column, meta as JSON text",
    extensions=(".parquet", ".pq"), read=read_parquet, write=write_parquet, sniff=_sniff,
    options=("caption_sep",),
))
