"""Caption-level audit of a dataset: pure functions over captions per clip and split assignments.

The build adds frame-level checks (near-duplicate clips) and renders :class:`CaptionAudit` into the
dataset card with :meth:`CaptionAudit.to_markdown`.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Sequence

from dvtr_bench.annotations.record import SPLIT_NAMES, CaptionRecord

# Word-count buckets; the last ones bracket protocol v1's 32-token truncation (a word is at least one token).
LENGTH_BUCKETS: tuple[tuple[int, int | None], ...] = (
    (0, 0), (1, 4), (5, 8), (9, 12), (13, 16), (17, 24), (25, 32), (33, None))


def word_count(caption: str) -> int:
    return len(caption.split())


_TRAILING_PUNCT = re.compile(r"[\s.!?;,]+$")


def caption_key(caption: str) -> str:
    """Comparison key for "identical" captions: case, spacing and final punctuation are ignored."""
    return _TRAILING_PUNCT.sub("", " ".join(caption.split()).casefold())


@dataclass
class Distribution:
    """Summary of a list of non-negative integers, with a histogram."""

    n: int
    min: int | None
    max: int | None
    mean: float | None
    median: float | None
    histogram: dict[str, int]

    @classmethod
    def of(cls, values: Sequence[int], buckets: Sequence[tuple[int, int | None]] | None = None) -> "Distribution":
        if buckets is None:
            hist = {str(k): v for k, v in sorted(Counter(values).items())}
        else:
            hist = {}
            for lo, hi in buckets:
                name = str(lo) if hi == lo else (f"{lo}-{hi}" if hi is not None else f">{lo - 1}")
                hist[name] = sum(1 for v in values if v >= lo and (hi is None or v <= hi))
        if not values:
            return cls(0, None, None, None, None, hist)
        return cls(len(values), min(values), max(values), round(statistics.fmean(values), 3),
                   float(statistics.median(values)), hist)


@dataclass
class AmbiguousCaption:
    """One caption text owned by several clips: in text->video retrieval it has several right answers."""

    caption: str
    clip_ids: list[str]
    splits: list[str] = field(default_factory=list)   # splits of those clips, when known

    @property
    def crosses_splits(self) -> bool:
        """True when the clips sharing the caption sit in different splits."""
        return len(self.splits) > 1


@dataclass
class SplitAmbiguity:
    """Identical captions inside one split, and the best Recall@1 they leave any model on it.

    Within a split (the test split is what evaluation sees), a caption whose text is also a caption of another
    clip of the split is one query text with several right answers: whatever the model, its text embedding is
    the same for all of them, so text->video can rank only one of those clips first. The ceilings are the best
    R@1 any model can reach under protocol v1's rules: text->video counts, for each distinct text, the captions
    of the clip owning most copies of it; video->text needs a caption of the clip's own that no other clip of
    the split has (ties rank pessimistically). Texts are compared as written, spacing normalised.
    """

    split: str
    clips: int
    captions: int
    shared_captions: int                  # captions whose text another clip of the split also has
    clips_without_unique_caption: int
    t2v_r1_ceiling: float                 # percent
    v2t_r1_ceiling: float                 # percent

    @property
    def shared_share(self) -> float:
        return self.shared_captions / self.captions if self.captions else 0.0


def _text_key(caption: str) -> str:
    return " ".join(caption.split())


def split_ambiguity(captions: Mapping[str, Sequence[str]], splits: Mapping[str, str | None]) -> dict[str, SplitAmbiguity]:
    """:class:`SplitAmbiguity` of every split (clips without a split are left out)."""
    by_split: dict[str, list[str]] = defaultdict(list)
    for clip_id in captions:
        if splits.get(clip_id):
            by_split[str(splits[clip_id])].append(clip_id)
    out: dict[str, SplitAmbiguity] = {}
    order = {s: i for i, s in enumerate(SPLIT_NAMES)}
    for split in sorted(by_split, key=lambda x: (order.get(x, 99), x)):
        ids = by_split[split]
        copies: dict[str, Counter] = defaultdict(Counter)     # text -> clip -> how many of its captions
        for c in ids:
            for cap in captions[c]:
                copies[_text_key(cap)][c] += 1
        n_caps = sum(len(captions[c]) for c in ids)
        shared = sum(sum(owners.values()) for owners in copies.values() if len(owners) > 1)
        best = sum(max(owners.values()) for owners in copies.values())
        unique = {c for owners in copies.values() if len(owners) == 1 for c in owners}
        with_caps = [c for c in ids if captions[c]]
        out[split] = SplitAmbiguity(
            split=split, clips=len(ids), captions=n_caps, shared_captions=shared,
            clips_without_unique_caption=sum(1 for c in with_caps if c not in unique),
            t2v_r1_ceiling=round(100.0 * best / n_caps, 2) if n_caps else 100.0,
            v2t_r1_ceiling=round(100.0 * sum(1 for c in with_caps if c in unique) / len(with_caps), 2)
            if with_caps else 100.0)
    return out


@dataclass
class CaptionAudit:
    """Everything the caption audit found; ``to_dict`` for JSON, ``to_markdown`` for the dataset card."""

    clips: int
    captions: int
    videos: int | None
    per_split: dict[str, dict[str, int]]
    caption_words: Distribution
    captions_per_clip: Distribution
    clips_without_captions: list[str]
    ambiguous_captions: list[AmbiguousCaption]
    videos_in_several_splits: dict[str, list[str]]
    notes: list[str] = field(default_factory=list)
    split_ambiguity: dict[str, SplitAmbiguity] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when nothing needs attention (no leak, no ambiguous ground truth, every clip captioned)."""
        return not (self.videos_in_several_splits or self.ambiguous_captions or self.clips_without_captions)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_markdown(self, max_items: int = 10, heading_level: int = 3) -> str:
        """A Markdown section: tables of counts and distributions, then each finding (first ``max_items``)."""
        h = "#" * heading_level
        lines = [f"{h} Caption audit", ""]
        lines += ["| split | clips | captions | videos |", "| --- | ---: | ---: | ---: |"]
        for split, c in self.per_split.items():
            lines.append(f"| {split} | {c['clips']} | {c['captions']} | {c.get('videos', '')} |")
        lines.append(f"| **all** | {self.clips} | {self.captions} | {'' if self.videos is None else self.videos} |")
        lines += ["", "Caption length in words:", ""]
        lines += _dist_table(self.caption_words, "words")
        lines += ["", "Captions per clip:", ""]
        lines += _dist_table(self.captions_per_clip, "captions")
        lines += [""]
        if self.split_ambiguity:
            lines += ["Identical captions within each split (what evaluation sees) and the Recall@1 they leave any "
                      "model:", "",
                      "| split | clips | captions | captions shared with another clip | clips with no caption of "
                      "their own | T2V R@1 ceiling | V2T R@1 ceiling |",
                      "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
            for a in self.split_ambiguity.values():
                lines.append(f"| {a.split} | {a.clips} | {a.captions} | {a.shared_captions} "
                             f"({100 * a.shared_share:.1f} %) | {a.clips_without_unique_caption} | "
                             f"{a.t2v_r1_ceiling:.2f} | {a.v2t_r1_ceiling:.2f} |")
            lines += [""]
        findings = [
            ("Source videos present in more than one split (leak)",
             [f"`{v}`: {', '.join(s)}" for v, s in self.videos_in_several_splits.items()]),
            ("Identical captions owned by different clips (ambiguous ground truth)",
             [f"\"{_md_escape(a.caption)}\": {', '.join(f'`{c}`' for c in a.clip_ids)}"
              + (f" (across {' / '.join(a.splits)})" if a.crosses_splits else "")
              for a in self.ambiguous_captions]),
            ("Clips without captions", [f"`{c}`" for c in self.clips_without_captions]),
        ]
        for title, items in findings:
            if not items:
                lines.append(f"- {title}: none.")
                continue
            lines.append(f"- {title}: **{len(items)}**")
            lines += [f"  - {it}" for it in items[:max_items]]
            if len(items) > max_items:
                lines.append(f"  - ... and {len(items) - max_items} more")
        for note in self.notes:
            lines.append(f"- {note}")
        return "\n".join(lines) + "\n"


def _dist_table(d: Distribution, unit: str) -> list[str]:
    if d.n == 0:
        return ["(none)"]
    out = [f"min {d.min}, median {d.median:g}, mean {d.mean:g}, max {d.max} {unit} (n = {d.n})", "",
           "| " + " | ".join(d.histogram) + " |", "|" + " ---: |" * len(d.histogram),
           "| " + " | ".join(str(v) for v in d.histogram.values()) + " |"]
    return out


def _md_escape(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def caption_length_distribution(captions: Mapping[str, Sequence[str]]) -> Distribution:
    """Word counts of every caption, bucketed by :data:`LENGTH_BUCKETS`."""
    return Distribution.of([word_count(c) for caps in captions.values() for c in caps], LENGTH_BUCKETS)


def captions_per_clip(captions: Mapping[str, Sequence[str]]) -> Distribution:
    return Distribution.of([len(caps) for caps in captions.values()])


def ambiguous_captions(captions: Mapping[str, Sequence[str]],
                       splits: Mapping[str, str | None] | None = None) -> list[AmbiguousCaption]:
    """Captions (compared by :func:`caption_key`) that belong to more than one clip, most widespread first.

    With ``splits`` each finding also lists the splits of the clips involved.
    """
    owners: dict[str, list[str]] = defaultdict(list)
    text: dict[str, str] = {}
    for clip_id, caps in captions.items():
        for c in caps:
            k = caption_key(c)
            if not k:
                continue
            text.setdefault(k, c)
            if clip_id not in owners[k]:
                owners[k].append(clip_id)
    order = {s: i for i, s in enumerate(SPLIT_NAMES)}

    def split_list(ids: list[str]) -> list[str]:
        if not splits:
            return []
        found = {splits[c] for c in ids if splits.get(c) is not None}
        return sorted(found, key=lambda x: (order.get(x, 99), x))  # type: ignore[arg-type]

    found = [AmbiguousCaption(text[k], ids, split_list(ids)) for k, ids in owners.items() if len(ids) > 1]
    return sorted(found, key=lambda a: (-len(a.clip_ids), a.caption))


def videos_in_several_splits(video_of: Mapping[str, str], splits: Mapping[str, str | None]) -> dict[str, list[str]]:
    """Source videos whose clips are assigned to more than one split (clips of one flight share scenery)."""
    seen: dict[str, set[str]] = defaultdict(set)
    for clip_id, video in video_of.items():
        s = splits.get(clip_id)
        if s is not None:
            seen[video].add(s)
    order = {s: i for i, s in enumerate(SPLIT_NAMES)}
    return {v: sorted(s, key=lambda x: (order.get(x, 99), x)) for v, s in sorted(seen.items()) if len(s) > 1}


def audit_captions(captions: Mapping[str, Sequence[str]], splits: Mapping[str, str | None] | None = None,
                   video_of: Mapping[str, str] | None = None) -> CaptionAudit:
    """Audit captions per clip (``clip_id -> captions``), with optional split and source video per clip."""
    splits = splits or {}
    per_split: dict[str, dict[str, int]] = {}
    if splits:
        names = sorted({s or "(none)" for s in (splits.get(c) for c in captions)},
                       key=lambda x: (SPLIT_NAMES.index(x) if x in SPLIT_NAMES else 99, x))
        for name in names:
            ids = [c for c in captions if (splits.get(c) or "(none)") == name]
            entry = {"clips": len(ids), "captions": sum(len(captions[c]) for c in ids)}
            if video_of is not None:
                entry["videos"] = len({video_of[c] for c in ids if c in video_of})
            per_split[name] = entry
    return CaptionAudit(
        clips=len(captions), captions=sum(len(c) for c in captions.values()),
        videos=None if video_of is None else len({video_of[c] for c in captions if c in video_of}),
        per_split=per_split,
        caption_words=caption_length_distribution(captions),
        captions_per_clip=captions_per_clip(captions),
        clips_without_captions=[c for c, caps in captions.items() if not caps],
        ambiguous_captions=ambiguous_captions(captions, splits),
        videos_in_several_splits=videos_in_several_splits(video_of, splits) if video_of is not None else {},
        split_ambiguity=split_ambiguity(captions, splits) if splits else {},
    )


def record_key(r: CaptionRecord) -> str:
    """A clip key for a record before any clips exist: clip_id, else video_id plus span, else video_id."""
    if r.clip_id:
        return r.clip_id
    if r.has_span:
        return f"{r.video_id}@{r.start_s:g}-{r.end_s:g}"
    return r.video_id


def audit_records(records: Sequence[CaptionRecord]) -> CaptionAudit:
    """Audit an annotation file on its own: each record stands for one clip (see :func:`record_key`).

    Records that share a key are merged; the merge is reported in ``notes``.
    """
    captions: dict[str, list[str]] = {}
    splits: dict[str, str | None] = {}
    video_of: dict[str, str] = {}
    merged = 0
    for r in records:
        k = record_key(r)
        if k in captions:
            merged += 1
        captions.setdefault(k, []).extend(r.captions)
        if splits.get(k) is None:
            splits[k] = r.split
        video_of.setdefault(k, r.video_id)
    audit = audit_captions(captions, splits if any(v is not None for v in splits.values()) else None, video_of)
    if merged:
        audit.notes.append(f"{merged} record(s) share a clip key with an earlier record and were merged.")
    return audit
