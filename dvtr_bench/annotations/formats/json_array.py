"""A JSON array of canonical records, or an object whose "records" member is that array."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from dvtr_bench.annotations.formats._common import _load_json, _Sink, _text_head
from dvtr_bench.annotations.formats.base import AnnotationFormat, register_format
from dvtr_bench.annotations.record import CaptionRecord
from dvtr_bench.annotations.validate import Problem
from dvtr_bench.errors import InputError


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


def write_json(records: Sequence[CaptionRecord], path: str | Path) -> None:
    """A JSON array of canonical records, keys sorted (byte-stable)."""
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        json.dump([r.to_dict(as_given=True) for r in records], f, ensure_ascii=False, indent=1, sort_keys=True)
        f.write("\n")


def _sniff(path: Path) -> bool:
    return _text_head(path).startswith("[")


# .json is shared with MSR-VTT, which is what a bare .json output path means; write this one with --to json.
JSON = register_format(AnnotationFormat(
    name="json", title="JSON array",
    description='a JSON array of canonical records (or an object with a "records" array)',
    extensions=(".json",), read=read_json, write=write_json, sniff=_sniff,
))
