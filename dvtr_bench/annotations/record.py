"""The canonical caption record: what every annotation reader produces and every writer consumes.

One record describes one captioned span of one source video. When ``start_s``/``end_s`` are absent the
record describes a whole video, or a clip that is matched by ``clip_id``.

Every reader attaches a :class:`SourceRef` (file + record locator) to the records it produces, so that
validation can point the user at the exact line or row. The source is not part of the record's value: it
does not take part in equality and is never written out.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

from dvtr_bench.errors import InputError

SCHEMA_VERSION = 1

# Extensions dropped from ids, so that "flight_000.MP4", " flight_000 " and a file flight_000.mp4 all match.
VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v")

# Spellings of split names met in the wild (MSR-VTT says "validate", CLIP4Clip files say "val").
_SPLIT_ALIASES = {
    "train": "train", "training": "train",
    "val": "validation", "valid": "validation", "validate": "validation", "validation": "validation",
    "dev": "validation",
    "test": "test", "testing": "test",
}

SPLIT_NAMES = ("train", "validation", "test")

FIELDS = ("video_id", "captions", "clip_id", "start_s", "end_s", "label", "split", "meta")
_FIELD_SET = frozenset(FIELDS)


def normalize_id(value: Any) -> str:
    """Normalise a video or clip id: surrounding whitespace and a video file extension are dropped.

    A value that looks like a path to a video file ("videos/flight_000.mp4") becomes the file's stem, so
    ids match the stems of the footage files whichever way the annotation spelled them.
    """
    s = str(value).strip()
    lower = s.lower()
    if lower.endswith(VIDEO_EXTENSIONS):
        if "/" in s or "\\" in s:
            s = re.split(r"[/\\]", s)[-1]
        s = os.path.splitext(s)[0].strip()
    return s


_TIMESTAMP = re.compile(r"^\s*(?:(\d+):)?(\d{1,2}):(\d{1,2}(?:[.,]\d*)?)\s*$")


def parse_seconds(value: Any) -> float:
    """Seconds from a number, a numeric string, or a ``[H:]MM:SS[.fff]`` timestamp as spreadsheets write them."""
    if isinstance(value, str):
        m = _TIMESTAMP.match(value)
        if m:
            h, mnt, sec = m.groups()
            if int(mnt) >= 60 or float(sec.replace(",", ".")) >= 60:
                raise ValueError(f"not a timestamp: {value!r}")
            return int(h or 0) * 3600 + int(mnt) * 60 + float(sec.replace(",", "."))
    return float(value)


def video_id_from_path(path: str | Path) -> str:
    """The video id of a footage file: its normalised file name (the same rule as in annotations)."""
    return normalize_id(Path(path).name)


def normalize_split(value: Any) -> str | None:
    """Map common split spellings to "train" / "validation" / "test"; other names are kept (validation flags them)."""
    if value is None:
        return None
    s = str(value).strip()
    if not s:
        return None
    return _SPLIT_ALIASES.get(s.lower(), s)


@dataclass(frozen=True)
class SourceRef:
    """Where a record came from: the file and a human locator inside it ("line 3", "rows 2, 5", "video 'x'")."""

    file: str | None
    record: str | None

    def __str__(self) -> str:
        parts = [p for p in (self.file, self.record) if p]
        return ": ".join(parts) if parts else "<unknown source>"


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
    # Provenance for error messages only: not compared, not serialised.
    source: SourceRef | None = field(default=None, compare=False, repr=False)
    # The video_id and clip_id exactly as the input spelled them, when that differs from the normalised ids
    # (" Party_042 " in USRD, "flight_000.MP4"): ids match footage normalised, and writers give them back as given.
    given_ids: tuple[str | None, str | None] | None = field(default=None, compare=False, repr=False)

    @property
    def video_id_as_given(self) -> str:
        """``video_id`` as the input spelled it (byte for byte), while it still normalises to ``video_id``."""
        given = self.given_ids[0] if self.given_ids else None
        return given if given is not None and normalize_id(given) == self.video_id else self.video_id

    @property
    def clip_id_as_given(self) -> str | None:
        """``clip_id`` as the input spelled it, while it still normalises to ``clip_id``."""
        given = self.given_ids[1] if self.given_ids else None
        return given if given is not None and self.clip_id is not None and normalize_id(given) == self.clip_id \
            else self.clip_id

    def to_dict(self, as_given: bool = False) -> dict[str, Any]:
        """The record as a plain dict; ``as_given=True`` gives the ids as the input spelled them (for writers)."""
        d: dict[str, Any] = {
            "video_id": self.video_id_as_given if as_given else self.video_id, "captions": list(self.captions),
            "clip_id": self.clip_id_as_given if as_given else self.clip_id,
            "start_s": self.start_s, "end_s": self.end_s, "label": self.label, "split": self.split,
            "meta": self.meta,
        }
        # Keep files small and diff-friendly: optional fields appear only when set.
        return {k: v for k, v in d.items() if v is not None and not (k == "meta" and not v)}

    @property
    def has_span(self) -> bool:
        """True when both start_s and end_s are given."""
        return self.start_s is not None and self.end_s is not None

    def where(self) -> str:
        """Short locator for messages: source plus ids."""
        ids = f"video_id={self.video_id!r}" + (f", clip_id={self.clip_id!r}" if self.clip_id else "")
        return f"{self.source} ({ids})" if self.source else ids

    @classmethod
    def from_dict(cls, d: dict[str, Any], file: str | Path | None = None,
                  record: str | int | None = None) -> "CaptionRecord":
        """Build a record from a plain dict, raising :class:`InputError` naming file and record.

        Ids are normalised (:func:`normalize_id`) and split names mapped to the canonical three
        (:func:`normalize_split`). The returned record carries ``source=SourceRef(file, record)``.
        """
        if not isinstance(d, dict):
            raise InputError(f"expected an object, got {type(d).__name__}", file, record)
        unknown = d.keys() - _FIELD_SET
        if unknown:
            raise InputError(f"unknown field(s) {sorted(unknown)}", file, record)
        video_id = None if d.get("video_id") is None else normalize_id(d["video_id"])
        if not video_id:
            raise InputError("missing video_id", file, record)
        caps = d.get("captions")
        if isinstance(caps, str):
            caps = [caps]
        if isinstance(caps, tuple):
            caps = list(caps)
        if not isinstance(caps, list) or not all(isinstance(c, str) for c in caps):
            raise InputError("captions must be a list of strings", file, record)
        times = {}
        for key in ("start_s", "end_s"):
            v = d.get(key)
            if isinstance(v, str) and not v.strip():
                v = None
            if v is not None:
                if isinstance(v, bool):
                    raise InputError(f"{key} is not a number: {v!r}", file, record)
                try:
                    v = parse_seconds(v)
                except (TypeError, ValueError):
                    raise InputError(f"{key} is not a number of seconds or a [H:]MM:SS[.fff] timestamp: {v!r}",
                                     file, record) from None
                if not math.isfinite(v):
                    raise InputError(f"{key} is not finite: {v!r}", file, record)
            times[key] = v
        meta = d.get("meta") or {}
        if not isinstance(meta, dict):
            raise InputError("meta must be an object", file, record)
        clip_id = None if d.get("clip_id") is None else normalize_id(d["clip_id"])
        label = None if d.get("label") is None else str(d["label"])
        raw_v = d["video_id"] if isinstance(d.get("video_id"), str) and d["video_id"] != video_id else None
        raw_c = d["clip_id"] if isinstance(d.get("clip_id"), str) and d["clip_id"] != clip_id else None
        return cls(
            video_id=video_id, captions=list(caps),
            clip_id=clip_id or None,
            start_s=times["start_s"], end_s=times["end_s"],
            label=label if label else None,
            split=normalize_split(d.get("split")), meta=meta,
            source=SourceRef(None if file is None else str(file), None if record is None else str(record)),
            given_ids=(raw_v, raw_c) if raw_v is not None or raw_c is not None else None,
        )


def write_jsonl(records: Iterable[CaptionRecord], path: str | Path) -> None:
    """Write records as JSON Lines, one record per line, keys in a fixed order (byte-stable)."""
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for r in records:
            f.write(json.dumps(r.to_dict(as_given=True), ensure_ascii=False, sort_keys=True) + "\n")


def iter_jsonl(path: str | Path) -> Iterator[CaptionRecord]:
    """Read canonical JSON Lines; errors name the file and the 1-based line number.

    Bytes that are not UTF-8 do not stop the reader: they are kept as lone surrogates
    (``errors="surrogateescape"``) so that validation can report the caption that holds them.
    """
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            if lineno == 1:
                line = line.lstrip("\ufeff")
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"invalid JSON: {exc.msg}", path, f"line {lineno}") from None
            yield CaptionRecord.from_dict(obj, path, f"line {lineno}")
