"""Dataset audit: the caption-level audit of :mod:`dvtr_bench.annotations.audit` plus frame-level checks.

Frame level: near-duplicate clips, found by the Hamming distance between 64-bit difference hashes of each clip's
mean frame (computed by the job). Pairs across splits are the ones that matter most: they leak test content into
training even when videos are split correctly (the same place flown twice).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from dvtr_bench.annotations import audit_captions


@dataclass
class NearDuplicate:
    clip_a: str
    clip_b: str
    distance: int
    split_a: str
    split_b: str

    @property
    def cross_split(self) -> bool:
        return self.split_a != self.split_b


@dataclass
class DatasetAudit:
    captions: Any                         # annotations.audit.CaptionAudit
    near_duplicates: list[NearDuplicate] = field(default_factory=list)
    near_dup_bits: int = 6

    @property
    def videos_in_several_splits(self) -> dict[str, list[str]]:
        return self.captions.videos_in_several_splits

    def to_dict(self) -> dict[str, Any]:
        return {"captions": self.captions.to_dict(), "near_dup_bits": self.near_dup_bits,
                "near_duplicates": [{**vars(d), "cross_split": d.cross_split} for d in self.near_duplicates]}

    def to_markdown(self, max_items: int = 10) -> str:
        lines = [self.captions.to_markdown(max_items=max_items, heading_level=3).rstrip(), "", "### Frame audit", ""]
        cross = [d for d in self.near_duplicates if d.cross_split]
        lines.append(f"Near-duplicate clip pairs (dHash of the mean frame, Hamming distance <= {self.near_dup_bits} "
                     f"of 64 bits): **{len(self.near_duplicates)}**, of which across splits: **{len(cross)}**.")
        shown = sorted(self.near_duplicates, key=lambda d: (not d.cross_split, d.distance, d.clip_a, d.clip_b))
        if shown:
            lines += ["", "| clip | clip | distance | splits |", "| --- | --- | ---: | --- |"]
            for d in shown[:max_items]:
                lines.append(f"| `{d.clip_a}` | `{d.clip_b}` | {d.distance} | {d.split_a} / {d.split_b} |")
            if len(shown) > max_items:
                lines.append(f"| ... {len(shown) - max_items} more | | | |")
        return "\n".join(lines) + "\n"


def near_duplicates(clip_ids: Sequence[str], hashes: Sequence[int], splits: Sequence[str],
                    max_bits: int = 6, chunk: int = 2048) -> list[NearDuplicate]:
    """All pairs of clips whose 64-bit hashes differ in at most ``max_bits`` bits (chunked, O(n^2/chunk))."""
    n = len(clip_ids)
    if n < 2:
        return []
    h = np.asarray(hashes, dtype=np.int64).view(np.uint64)
    out: list[NearDuplicate] = []
    for a0 in range(0, n, chunk):
        block = h[a0:a0 + chunk]
        dist = np.bitwise_count(block[:, None] ^ h[None, :])
        ii, jj = np.nonzero(dist <= max_bits)
        for i, j in zip(ii.tolist(), jj.tolist()):
            i += a0
            if j <= i:
                continue
            out.append(NearDuplicate(clip_ids[i], clip_ids[j], int(dist[i - a0, j]), splits[i], splits[j]))
    return out


def audit_dataset(rows: Sequence[dict[str, Any]], near_dup_bits: int = 6) -> DatasetAudit:
    """Audit assembled rows (each with clip_id, video_id, split, captions and the job's ``_phash``)."""
    captions = {r["clip_id"]: list(r["captions"]) for r in rows}
    splits = {r["clip_id"]: r["split"] for r in rows}
    video_of = {r["clip_id"]: r["video_id"] for r in rows}
    cap = audit_captions(captions, splits, video_of)
    dups = near_duplicates([r["clip_id"] for r in rows], [r["_phash"] for r in rows], [r["split"] for r in rows],
                           near_dup_bits)
    return DatasetAudit(cap, dups, near_dup_bits)
