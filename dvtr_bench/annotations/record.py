"""The canonical caption record: what every annotation reader produces and every writer consumes.

One record describes one captioned span of one source video. When ``start_s``/``end_s`` are absent the
record describes a whole video, or a clip that is matched by ``clip_id``.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

from dvtr_bench.errors import InputError

SCHEMA_VERSION = 1


@dataclass
class CaptionRecord:
    video_id: str
    captions: list[str]
    clip_id: str | None = None
    start_s: float | None = None
    end_s: float | None = None
    label: str | None = None          # scene kind or any class label, used for stratified splits
    split: str | None = None          # "train" / "validation" / "test" when the annotation fixes it
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        # Keep files small and diff-friendly: optional fields appear only when set.
        return {k: v for k, v in d.items() if v is not None and not (k == "meta" and not v)}

    @classmethod
    def from_dict(cls, d: dict[str, Any], file: str | Path | None = None,
                  record: str | int | None = None) -> "CaptionRecord":
        """Build a record from a plain dict, raising :class:`InputError` naming file and record."""
        if not isinstance(d, dict):
            raise InputError(f"expected an object, got {type(d).__name__}", file, record)
        unknown = set(d) - {f for f in cls.__dataclass_fields__}
        if unknown:
            raise InputError(f"unknown field(s) {sorted(unknown)}", file, record)
        if "video_id" not in d or d["video_id"] in (None, ""):
            raise InputError("missing video_id", file, record)
        caps = d.get("captions")
        if isinstance(caps, str):
            caps = [caps]
        if not isinstance(caps, list) or not all(isinstance(c, str) for c in caps):
            raise InputError("captions must be a list of strings", file, record)
        times = {}
        for key in ("start_s", "end_s"):
            v = d.get(key)
            if v is not None:
                try:
                    v = float(v)
                except (TypeError, ValueError):
                    raise InputError(f"{key} is not a number: {v!r}", file, record) from None
                if not math.isfinite(v):
                    raise InputError(f"{key} is not finite: {v!r}", file, record)
            times[key] = v
        meta = d.get("meta") or {}
        if not isinstance(meta, dict):
            raise InputError("meta must be an object", file, record)
        return cls(
            video_id=str(d["video_id"]), captions=list(caps),
            clip_id=None if d.get("clip_id") is None else str(d["clip_id"]),
            start_s=times["start_s"], end_s=times["end_s"],
            label=None if d.get("label") is None else str(d["label"]),
            split=None if d.get("split") is None else str(d["split"]), meta=meta,
        )


def write_jsonl(records: Iterable[CaptionRecord], path: str | Path) -> None:
    """Write records as JSON Lines, one record per line, keys in a fixed order (byte-stable)."""
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for r in records:
            f.write(json.dumps(r.to_dict(), ensure_ascii=False, sort_keys=True) + "\n")


def iter_jsonl(path: str | Path) -> Iterator[CaptionRecord]:
    """Read canonical JSON Lines; errors name the file and the 1-based line number."""
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"invalid JSON: {exc.msg}", path, f"line {lineno}") from None
            yield CaptionRecord.from_dict(obj, path, f"line {lineno}")
