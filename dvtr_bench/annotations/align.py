"""Attach caption records to clips: by clip id when it matches, else by time overlap.

The clip type belongs to the build; here a clip is anything with ``video_id``, ``clip_id``, ``start_s`` and
``end_s`` (attributes or mapping keys), see :class:`Clip`.

Rules, in order, for each record:

1. ``clip_id`` equal to a clip's id (after id normalisation) -> that clip.
2. both times given -> among the clips of the same video, the one whose span overlaps the record's span the
   most under ``overlap`` ("iou": intersection over union, default; "record": share of the record's span
   covered; "clip": share of the clip's span covered), if that fraction is at least ``min_overlap``. Ties go
   to the earliest clip. A record attaches to one clip only.
3. no times and no clip id -> a whole-video record: with ``whole_video="single"`` (default) it attaches when
   its video has exactly one clip; with ``"all"`` to every clip of its video; with ``"none"`` never.

Everything else is returned in :attr:`Alignment.unattached` with the reason.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any, Iterable, Literal, Mapping, Protocol, Sequence, runtime_checkable

from dvtr_bench.annotations.record import CaptionRecord, normalize_id


@runtime_checkable
class Clip(Protocol):
    """The minimum a clip must expose to receive captions."""

    video_id: str
    clip_id: str
    start_s: float
    end_s: float


@dataclass(frozen=True)
class Attachment:
    """Record ``record_index`` gave its captions to ``clip_id``; ``method`` says how."""

    record_index: int
    clip_id: str
    method: str                      # "clip_id" | "overlap" | "whole_video"
    overlap: float | None = None     # the overlap fraction for method "overlap"


@dataclass(frozen=True)
class Unattached:
    record_index: int
    record: CaptionRecord
    reason: str

    def __str__(self) -> str:
        return f"{self.record.where()}: {self.reason}"


@dataclass(frozen=True)
class AlignedCaptions:
    """What one clip received: its captions and the label, split and meta of the records that gave them."""

    captions: list[str]
    label: str | None
    split: str | None
    meta: dict[str, Any]
    record_indices: list[int]


@dataclass
class Alignment:
    """Result of :func:`align`.

    ``captions`` has an entry for every clip (in the order clips were given), possibly empty; captions
    of several records attached to one clip are concatenated in record order.
    """

    captions: dict[str, list[str]] = field(default_factory=dict)
    records: dict[str, list[CaptionRecord]] = field(default_factory=dict)
    attachments: list[Attachment] = field(default_factory=list)
    unattached: list[Unattached] = field(default_factory=list)

    def labels(self) -> dict[str, str | None]:
        """Per clip, the first label among its attached records (None when none has one)."""
        return {cid: next((r.label for r in recs if r.label is not None), None) for cid, recs in self.records.items()}

    def splits(self) -> dict[str, str | None]:
        """Per clip, the split its attached records fix (first one given), or None."""
        return {cid: next((r.split for r in recs if r.split is not None), None) for cid, recs in self.records.items()}

    def per_clip(self) -> dict[str, AlignedCaptions]:
        """Every clip id -> :class:`AlignedCaptions` (label/split: first given by its records; meta: of its
        first record that has one)."""
        idx: dict[str, list[int]] = {cid: [] for cid in self.captions}
        for a in self.attachments:
            idx[a.clip_id].append(a.record_index)
        labels, splits = self.labels(), self.splits()
        return {cid: AlignedCaptions(list(self.captions[cid]), labels[cid], splits[cid],
                                     next((r.meta for r in self.records[cid] if r.meta), {}), idx[cid])
                for cid in self.captions}

    def uncaptioned(self) -> list[str]:
        """Ids of clips that received no caption."""
        return [cid for cid, caps in self.captions.items() if not caps]

    def summary(self) -> dict[str, int]:
        by_method: dict[str, int] = {}
        for a in self.attachments:
            by_method[a.method] = by_method.get(a.method, 0) + 1
        return {"clips": len(self.captions), "captioned_clips": len(self.captions) - len(self.uncaptioned()),
                "attachments": len(self.attachments), "unattached_records": len(self.unattached),
                **{f"by_{k}": v for k, v in sorted(by_method.items())}}


@dataclass(frozen=True)
class _C:
    video_id: str
    clip_id: str
    start_s: float
    end_s: float
    order: int


def _as_clip(c: Any, order: int) -> _C:
    get = (lambda k: c[k]) if isinstance(c, Mapping) else (lambda k: getattr(c, k))
    try:
        return _C(normalize_id(get("video_id")), normalize_id(get("clip_id")), float(get("start_s")),
                  float(get("end_s")), order)
    except (KeyError, AttributeError, TypeError, ValueError) as exc:
        raise TypeError(f"clip {order} lacks video_id/clip_id/start_s/end_s: {exc}") from None


def overlap_fraction(a: tuple[float, float], b: tuple[float, float],
                     measure: Literal["iou", "record", "clip"] = "iou") -> float:
    """Overlap of span ``a`` (the record's) with span ``b`` (the clip's) under ``measure``."""
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    if inter <= 0:
        return 0.0
    if measure == "iou":
        denom = max(a[1], b[1]) - min(a[0], b[0])
    elif measure == "record":
        denom = a[1] - a[0]
    elif measure == "clip":
        denom = b[1] - b[0]
    else:
        raise ValueError(f"unknown overlap measure {measure!r}; expected iou, record or clip")
    return inter / denom if denom > 0 else 0.0


def align(records: Sequence[CaptionRecord], clips: Iterable[Clip | Mapping[str, Any]], *,
          min_overlap: float = 0.5, overlap: Literal["iou", "record", "clip"] = "iou",
          whole_video: Literal["single", "all", "none"] = "single") -> Alignment:
    """Attach the captions of ``records`` to ``clips`` (see the module docstring for the rules)."""
    if not 0.0 <= min_overlap <= 1.0:
        raise ValueError(f"min_overlap must be in [0, 1], got {min_overlap}")
    if whole_video not in ("single", "all", "none"):
        raise ValueError(f"whole_video must be 'single', 'all' or 'none', got {whole_video!r}")
    cs = [_as_clip(c, i) for i, c in enumerate(clips)]
    by_id: dict[str, _C] = {}
    by_video: dict[str, list[_C]] = {}
    for c in cs:
        if c.clip_id in by_id:
            raise ValueError(f"clip id {c.clip_id!r} is given twice")
        by_id[c.clip_id] = c
        by_video.setdefault(c.video_id, []).append(c)
    # Per video: clips sorted by start, their starts, and the running maximum of their ends, so that the clips
    # overlapping a span are found by bisection instead of scanning hours of footage for every record.
    index: dict[str, tuple[list[_C], list[float], list[float]]] = {}
    for vid, lst in by_video.items():
        lst.sort(key=lambda c: (c.start_s, c.order))
        max_end, run = [], float("-inf")
        for c in lst:
            run = max(run, c.end_s)
            max_end.append(run)
        index[vid] = (lst, [c.start_s for c in lst], max_end)

    out = Alignment(captions={c.clip_id: [] for c in cs}, records={c.clip_id: [] for c in cs})

    def attach(i: int, r: CaptionRecord, c: _C, method: str, frac: float | None = None) -> None:
        out.captions[c.clip_id].extend(r.captions)
        out.records[c.clip_id].append(r)
        out.attachments.append(Attachment(i, c.clip_id, method, frac))

    def skip(i: int, r: CaptionRecord, reason: str) -> None:
        out.unattached.append(Unattached(i, r, reason))

    for i, r in enumerate(records):
        vid = normalize_id(r.video_id)
        cid = None if r.clip_id is None else normalize_id(r.clip_id)
        if cid is not None and cid in by_id:
            c = by_id[cid]
            if c.video_id != vid:
                skip(i, r, f"clip {cid!r} belongs to video {c.video_id!r}, not {vid!r}")
            else:
                attach(i, r, c, "clip_id")
            continue
        candidates = by_video.get(vid, [])
        if (r.start_s is None) != (r.end_s is None):
            skip(i, r, "only one of start_s/end_s is given")
            continue
        if not candidates:
            skip(i, r, f"no clip comes from video {vid!r}")
            continue
        if r.has_span:
            span = (float(r.start_s), float(r.end_s))  # type: ignore[arg-type]
            if span[1] <= span[0]:
                skip(i, r, f"empty span {span[0]:g}-{span[1]:g} s")
                continue
            best, best_key = None, (0.0, 0.0)
            lst, starts, max_end = index[vid]
            j = bisect.bisect_left(starts, span[1])  # clips from j on start at or after the span's end
            overlapping = []
            while j > 0 and max_end[j - 1] > span[0]:
                j -= 1
                overlapping.append(lst[j])
            for c in sorted(overlapping, key=lambda c: (c.start_s, c.order)):
                frac = overlap_fraction(span, (c.start_s, c.end_s), overlap)
                inter = max(0.0, min(span[1], c.end_s) - max(span[0], c.start_s))
                if (frac, inter) > best_key:  # strict: earliest clip wins a tie
                    best, best_key = c, (frac, inter)
            if best is None:
                skip(i, r, f"span {span[0]:g}-{span[1]:g} s overlaps no clip of video {vid!r}")
            elif best_key[0] < min_overlap:
                skip(i, r, f"best overlap is {best_key[0]:.0%} ({overlap}) with clip {best.clip_id!r} "
                     f"({best.start_s:g}-{best.end_s:g} s), below the minimum {min_overlap:.0%}")
            else:
                attach(i, r, best, "overlap", best_key[0])
            continue
        if cid is not None:
            skip(i, r, f"clip_id {cid!r} matches no clip and the record has no times to match by")
            continue
        if whole_video == "all" or (whole_video == "single" and len(candidates) == 1):
            for c in candidates:
                attach(i, r, c, "whole_video")
        elif whole_video == "none":
            skip(i, r, "the record covers a whole video and whole-video records are not attached")
        else:
            skip(i, r, f"the record covers the whole video, which has {len(candidates)} clips; "
                 "attach it to every clip with whole_video='all'")
    return out
