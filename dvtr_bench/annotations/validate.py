"""Validation of caption records: every problem, each with its file and record.

:func:`validate` never stops at the first problem: a user fixing a ten-thousand-line annotation file
wants the whole list in one pass. Problems carry a machine-readable ``code`` so tools can filter them.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from dvtr_bench.annotations.audit import caption_key
from dvtr_bench.annotations.record import SPLIT_NAMES, CaptionRecord, normalize_id

ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True)
class Problem:
    """One problem found in an annotation file.

    ``record`` locates it in the file ("line 3", "row 7", "video 'x'"); ``code`` is stable for tools:
    parse, unknown_video, bad_span, partial_span, negative_time, beyond_video, no_captions, empty_caption,
    undecodable_caption, duplicate_clip_id, duplicate_record, repeated_caption, unknown_split, bad_id.
    Warnings (``severity="warning"``) do not make ``dvtr annotations validate`` fail.
    """

    file: str | None
    record: str | None
    message: str
    code: str = "invalid"
    video_id: str | None = None
    clip_id: str | None = None
    severity: str = ERROR

    def __str__(self) -> str:
        where = ": ".join(p for p in (self.file, self.record) if p)
        ids = ""
        if self.video_id is not None:
            ids = f" [video_id={self.video_id}" + (f", clip_id={self.clip_id}" if self.clip_id else "") + "]"
        tag = "" if self.severity == ERROR else f"{self.severity}: "
        return f"{where or '<unknown>'}{ids}: {tag}{self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "record": self.record, "code": self.code, "severity": self.severity,
                "video_id": self.video_id, "clip_id": self.clip_id, "message": self.message}


# C0/C1 control characters other than tab and newlines: they come from binary garbage or broken decoding.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_PRIVATE_USE = re.compile("[\ue000-\uf8ff\U000f0000-\U000ffffd\U00100000-\U0010fffd]")
# Typical UTF-8-read-as-Latin-1/CP1252 sequences, used when ftfy is unavailable.
_MOJIBAKE = re.compile(r"Ã[\u0080-\u00bf]|Â[\u00a0-\u00bf]|â€[\u0090-\u00bf\u2018-\u203a™]|Ã©|Ã¨|Ã¼|Ã¶|Ã¤")


def _looks_mojibake(text: str) -> bool:
    try:
        from ftfy.badness import is_bad  # ftfy comes with open_clip; a heuristic stands in without it
    except ImportError:  # pragma: no cover - ftfy is installed with open_clip_torch
        return bool(_MOJIBAKE.search(text))
    return bool(is_bad(text)) or bool(_MOJIBAKE.search(text))


def caption_problem(text: str) -> str | None:
    """Why a caption is unusable (empty or undecodable), or None when it is fine."""
    if not text.strip():
        return "empty caption" if not text else "caption is only whitespace"
    if text.isascii():
        # Fast path for the common case: ASCII holds no mojibake, surrogates or private-use characters.
        m = _CONTROL.search(text)
        return None if m is None else f"caption holds control character U+{ord(m.group()):04X}: {text!r}"
    m = _SURROGATE.search(text)
    if m:
        # Readers keep undecodable bytes as lone surrogates (surrogateescape) so they can be reported here.
        cp = ord(m.group())
        detail = f" (byte 0x{cp - 0xdc00:02x})" if 0xdc80 <= cp <= 0xdcff else ""
        return f"caption holds bytes that are not valid UTF-8{detail}: {text.encode('utf-8', 'backslashreplace').decode()!r}"
    if "\ufffd" in text:
        return f"caption holds U+FFFD replacement characters (decoded with errors replaced upstream): {text!r}"
    m = _CONTROL.search(text)
    if m:
        return f"caption holds control character U+{ord(m.group()):04X}: {text!r}"
    if _looks_mojibake(text):
        return f"caption looks like mojibake (UTF-8 decoded as Latin-1/CP1252?): {text!r}"
    if _PRIVATE_USE.search(text):
        return f"caption holds private-use characters: {text!r}"
    return None


def validate(records: Sequence[CaptionRecord], videos: Mapping[str, float | None] | None = None,
             file: str | Path | None = None, *, tolerance_s: float = 1e-3) -> list[Problem]:
    """List every problem of ``records``.

    ``videos`` maps known video ids (normalised like annotation ids) to their duration in seconds, or
    None when the duration is unknown; when given, records of other videos are reported, and times beyond
    a known duration (plus ``tolerance_s`` of float slack) too. ``file`` names records that carry no
    source of their own.
    """
    file = None if file is None else str(file)
    known = None if videos is None else {normalize_id(k): v for k, v in videos.items()}
    problems: list[Problem] = []

    def add(r: CaptionRecord, code: str, msg: str, severity: str = ERROR) -> None:
        src_file = r.source.file if r.source and r.source.file else file
        src_rec = r.source.record if r.source else None
        problems.append(Problem(src_file, src_rec, msg, code, r.video_id, r.clip_id, severity))

    by_clip: dict[str, list[int]] = defaultdict(list)
    by_value: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(records):
        if not r.video_id or r.video_id != r.video_id.strip():
            add(r, "bad_id", f"video_id {r.video_id!r} is empty or has surrounding whitespace")
        if known is not None and r.video_id not in known:
            add(r, "unknown_video", f"unknown video {r.video_id!r}: no such video among the {len(known)} given")
        if (r.start_s is None) != (r.end_s is None):
            given = "start_s" if r.start_s is not None else "end_s"
            add(r, "partial_span", f"only {given} is given; give both start_s and end_s or neither")
        for key in ("start_s", "end_s"):
            v = getattr(r, key)
            if v is not None and v < 0:
                add(r, "negative_time", f"{key} = {v:g} is negative")
        if r.has_span and r.start_s >= r.end_s:  # type: ignore[operator]
            add(r, "bad_span", f"start_s = {r.start_s:g} is not before end_s = {r.end_s:g}")
        duration = None if known is None else known.get(r.video_id)
        if duration is not None:
            for key in ("start_s", "end_s"):
                v = getattr(r, key)
                if v is not None and v > duration + tolerance_s:
                    add(r, "beyond_video", f"{key} = {v:g} s is beyond the end of the video ({duration:g} s)")
        if not r.captions:
            add(r, "no_captions", "record has no captions")
        seen: dict[str, int] = {}
        for j, c in enumerate(r.captions):
            why = caption_problem(c)
            if why:
                add(r, "undecodable_caption" if "empty" not in why and "whitespace" not in why
                    else "empty_caption", f"caption {j + 1}: {why}")
            key = caption_key(c)
            if key and key in seen:
                add(r, "repeated_caption", f"caption {j + 1} repeats caption {seen[key] + 1} of the same record: "
                    f"{c!r}", WARNING)
            seen.setdefault(key, j)
        if r.split is not None and r.split not in SPLIT_NAMES:
            add(r, "unknown_split", f"split {r.split!r} is not one of {', '.join(SPLIT_NAMES)}")
        if r.clip_id is not None:
            by_clip[r.clip_id].append(i)
        by_value[repr(r.to_dict())].append(i)

    for clip_id, idx in by_clip.items():
        if len(idx) > 1:
            first = records[idx[0]]
            for i in idx[1:]:
                identical = records[i] == first
                add(records[i], "duplicate_record" if identical else "duplicate_clip_id",
                    (f"duplicate record: identical to {_loc(first)}" if identical
                     else f"duplicate clip_id {clip_id!r}: also used by {_loc(first)}"))
    for idx in by_value.values():
        if len(idx) > 1 and records[idx[0]].clip_id is None:
            first = records[idx[0]]
            for i in idx[1:]:
                add(records[i], "duplicate_record", f"duplicate record: identical to {_loc(first)}")
    return problems


def _loc(r: CaptionRecord) -> str:
    return str(r.source) if r.source else f"video_id={r.video_id!r}"


def has_errors(problems: Sequence[Problem]) -> bool:
    """True when any problem is an error (warnings alone do not fail a validation)."""
    return any(p.severity == ERROR for p in problems)
