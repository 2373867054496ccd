"""Split assignment: per source video, never per clip.

Clips cut from one flight share scenery, light and objects; putting some in train and some in test leaks.
Assignment is deterministic from a seed: videos are ordered by a hash of (seed, video_id), so it does not depend on
the order files were listed in, and the number of videos per split follows the fractions by largest remainder.
With stratification, each label's videos are split on their own, so every split sees every label in proportion.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter, defaultdict
from typing import Mapping, Sequence

from dvtr_bench.errors import InputError
from dvtr_bench.protocol.v1 import SPLITS


def _order_key(seed: int, video_id: str) -> str:
    return hashlib.sha256(f"{seed}\x00{video_id}".encode("utf-8")).hexdigest()


def split_counts(n: int, fractions: Mapping[str, float]) -> dict[str, int]:
    """Videos per split for ``n`` videos: largest remainder, and at least one video for every split with a
    non-zero fraction whenever there are enough videos (an empty test split is never what a user wants)."""
    names = [s for s in SPLITS if fractions.get(s, 0) > 0]
    total = sum(fractions[s] for s in names)
    raw = {s: n * fractions[s] / total for s in names}
    counts = {s: math.floor(raw[s]) for s in names}
    for s in sorted(names, key=lambda s: (-(raw[s] - counts[s]), SPLITS.index(s)))[:n - sum(counts.values())]:
        counts[s] += 1
    if n >= len(names):
        for s in names:
            while counts[s] == 0:
                donor = max(names, key=lambda d: (counts[d], -SPLITS.index(d)))
                counts[donor] -= 1
                counts[s] += 1
    return counts


def assign_splits(video_ids: Sequence[str], fractions: Mapping[str, float], seed: int = 0,
                  labels: Mapping[str, str | None] | None = None) -> dict[str, str]:
    """``{video_id: split}``; stratified by ``labels`` (video -> label) when given."""
    vids = sorted(set(video_ids))
    if labels is None:
        groups = {None: vids}
    else:
        groups = defaultdict(list)
        for v in vids:
            groups[labels.get(v)].append(v)
    out: dict[str, str] = {}
    if labels is None:
        order = sorted(vids, key=lambda v: _order_key(seed, v))
        counts = split_counts(len(order), fractions)
        i = 0
        for s in SPLITS:
            for v in order[i:i + counts.get(s, 0)]:
                out[v] = s
            i += counts.get(s, 0)
        return out
    # Stratified: per label, largest remainder; the label's rounding leftovers are spread so that the global
    # counts stay close to the fractions (otherwise many small labels would all round towards train).
    names = [s for s in SPLITS if fractions.get(s, 0) > 0]
    total = sum(fractions[s] for s in names)
    deficit = {s: 0.0 for s in names}
    for label in sorted(groups, key=lambda x: (x is None, str(x))):
        order = sorted(groups[label], key=lambda v: _order_key(seed, v))
        n = len(order)
        raw = {s: n * fractions[s] / total for s in names}
        counts = {s: math.floor(raw[s]) for s in names}
        rest = n - sum(counts.values())
        for s in sorted(names, key=lambda s: (-(raw[s] - counts[s] + deficit[s]), SPLITS.index(s)))[:rest]:
            counts[s] += 1
        for s in names:
            deficit[s] += raw[s] - counts[s]
        i = 0
        for s in names:
            for v in order[i:i + counts[s]]:
                out[v] = s
            i += counts[s]
    return out


def video_labels(clip_labels: Sequence[tuple[str, str | None]]) -> dict[str, str | None]:
    """The label of each video: the most frequent label among its clips (ties: alphabetical)."""
    per: dict[str, Counter] = defaultdict(Counter)
    for vid, lab in clip_labels:
        per[vid][lab] += 0 if lab is None else 1
    out: dict[str, str | None] = {}
    for vid, c in per.items():
        best = sorted(((-n, str(lab)) for lab, n in c.items() if lab is not None and n > 0))
        out[vid] = best[0][1] if best else None
    return out


def splits_from_records(records: Sequence[object], video_ids: Sequence[str]) -> dict[str, str]:
    """Each video's split as the annotation file fixes it; every video must have exactly one."""
    per: dict[str, set[str]] = defaultdict(set)
    for r in records:
        if getattr(r, "split", None):
            per[r.video_id].add(r.split)
    problems = []
    out: dict[str, str] = {}
    for v in sorted(set(video_ids)):
        s = per.get(v, set())
        if len(s) == 1:
            out[v] = next(iter(s))
        elif not s:
            problems.append(f"{v}: no split given")
        else:
            problems.append(f"{v}: several splits {sorted(s)} (splits are per source video)")
    if problems:
        raise InputError("cannot take splits from the annotations: " + "; ".join(problems[:10])
                         + (f" (+{len(problems) - 10} more)" if len(problems) > 10 else ""))
    return out
