"""Score detected shot boundaries against ground truth (the shots.json that ``dvtr synth`` writes).

Convention (close to TRECVID shot-boundary scoring): a hard cut is the index of the first frame of the new
shot; a gradual transition is the inclusive range of its mixed frames. A detection matches a true transition
when their frame ranges are at most ``tolerance`` frames apart, so a detected cut anywhere inside a dissolve
or fade (± tolerance) matches it. Matching is one-to-one, closest pairs first; unmatched detections are false
positives, unmatched truths are misses.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from dvtr_bench.video.segmenters import Transition


@dataclass
class CutScore:
    precision: float
    recall: float
    f1: float
    tp: int
    fp: int
    fn: int
    false_positives: list[Transition] = field(default_factory=list)
    misses: list[Transition] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"precision": self.precision, "recall": self.recall, "f1": self.f1, "tp": self.tp, "fp": self.fp,
                "fn": self.fn}


def truth_transitions(entry: dict[str, Any]) -> list[Transition]:
    """Transitions of one video of a shots.json (``{"transitions": [...]}``) as :class:`Transition`."""
    out = []
    for tr in entry.get("transitions", []):
        if tr["kind"] == "cut":
            out.append(Transition("cut", int(tr["frame"]), int(tr["frame"]), 1.0))
        else:
            out.append(Transition(tr["kind"], int(tr["start_frame"]), int(tr["end_frame"]), 1.0))
    return out


def load_shots(path: str | Path) -> dict[str, list[Transition]]:
    """``{video_id: [Transition, ...]}`` from a shots.json file."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return {vid: truth_transitions(entry) for vid, entry in data.get("videos", {}).items()}


def _gap(a: Transition, b: Transition) -> int:
    if a.end_frame < b.start_frame:
        return b.start_frame - a.end_frame
    if b.end_frame < a.start_frame:
        return a.start_frame - b.end_frame
    return 0


def evaluate_cuts(detected: Sequence[Transition], truth: Sequence[Transition], tolerance: int = 2) -> CutScore:
    """Precision, recall and F1 of ``detected`` against ``truth`` (see the module docstring)."""
    pairs = []
    for i, d in enumerate(detected):
        for j, t in enumerate(truth):
            gap = _gap(d, t)
            if gap <= tolerance:
                centre = abs((d.start_frame + d.end_frame) - (t.start_frame + t.end_frame)) / 2
                pairs.append((gap, centre, i, j))
    pairs.sort()
    used_d: set[int] = set()
    used_t: set[int] = set()
    for _, _, i, j in pairs:
        if i in used_d or j in used_t:
            continue
        used_d.add(i)
        used_t.add(j)
    tp = len(used_d)
    fp = len(detected) - tp
    fn = len(truth) - len(used_t)
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return CutScore(precision, recall, f1, tp, fp, fn,
                    false_positives=[d for i, d in enumerate(detected) if i not in used_d],
                    misses=[t for j, t in enumerate(truth) if j not in used_t])


def evaluate_many(results: dict[str, Sequence[Transition]], truth: dict[str, Sequence[Transition]],
                  tolerance: int = 2) -> CutScore:
    """Pooled score over several videos (micro-averaged: counts are summed before the ratios)."""
    tp = fp = fn = 0
    fps: list[Transition] = []
    misses: list[Transition] = []
    for vid, t in truth.items():
        s = evaluate_cuts(results.get(vid, []), t, tolerance)
        tp, fp, fn = tp + s.tp, fp + s.fp, fn + s.fn
        fps += s.false_positives
        misses += s.misses
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return CutScore(precision, recall, f1, tp, fp, fn, fps, misses)
