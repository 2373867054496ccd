"""Canonical JSON Lines: one record object per line (see annotations/schema.json); what ``dvtr synth`` writes."""

from __future__ import annotations

import json
from pathlib import Path

from dvtr_bench.annotations.formats._common import _looks_like_jsonl, _open_text, _Sink, _text_head
from dvtr_bench.annotations.formats.base import AnnotationFormat, register_format
from dvtr_bench.annotations.record import CaptionRecord, write_jsonl
from dvtr_bench.annotations.validate import Problem
from dvtr_bench.errors import InputError


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


def _sniff(path: Path) -> bool:
    return _looks_like_jsonl(_text_head(path))


JSONL = register_format(AnnotationFormat(
    name="jsonl", title="JSON Lines",
    description="canonical JSON Lines: one record object per line (annotations/schema.json)",
    extensions=(".jsonl", ".ndjson"), read=read_jsonl, write=write_jsonl, sniff=_sniff,
))
