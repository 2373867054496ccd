"""The numeric core of shot-boundary detection, as functions of per-frame arrays.

:class:`~dvtr_bench.video.segmenters.shots.ShotSegmenter` decodes nothing itself and keeps only bookkeeping: it
collects, for every frame ``i`` of a video,

* ``s[i]``: the distance between frames ``i - 1`` and ``i`` (:func:`tiny_distance`; ``s[0] = 0``),
* ``g[j]``: the distance between frames ``j - k`` and ``j + k`` (NaN where undefined),
* ``std[i]``, ``mean[i]``: the standard deviation and mean of frame ``i``'s luma,

and hands them to :func:`find_transitions` and :func:`merge_transitions`. Everything here is a pure function of
those arrays and of :class:`ShotParams`, so each rule can be tested on a hand-made array without a video.

Indices in the results are frame indices of the arrays passed in. Distances are on the 0-255 scale.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from dvtr_bench.video.segmenters.base import Transition

# Luma means outside [UNIFORM_DARK, UNIFORM_BRIGHT] are black or white: only such uniform frames can be the
# middle of a fade. Uniform frames of another brightness are scenery (calm water, snow, fog).
UNIFORM_DARK = 40
UNIFORM_BRIGHT = 215


@dataclass(frozen=True)
class ShotParams:
    """The detector's settings, with durations converted to frames at one video's frame rate (make them with
    :meth:`for_fps`)."""

    threshold: float            # hard cut: s over its local median, as a ratio
    min_score: float            # hard cut: minimum s
    window: int                 # hard cut: half-width (frames) of the local median and maximum of s
    k: int                      # g compares frames j - k and j + k
    m: int                      # half-width (frames) of the local median of g
    guard: int                  # longest plausible run of elevated g (frames)
    min_gap: int                # transitions closer than this (frames) merge
    max_hold: int               # longest run of uniform frames that can be the middle of a fade (frames)
    max_gap: float              # longest run of uniform frames that merges two transitions (frames)
    gradual_threshold: float    # gradual: g over its local median, as a ratio
    gradual_min: float          # gradual: minimum g
    dip: float                  # dissolve: minimum relative depth of the dip in contrast
    flat_std: float             # uniform frame: luma standard deviation under this

    @classmethod
    def for_fps(cls, fps: float, *, threshold: float, min_score: float, window: int, gradual_k: float,
                gradual_threshold: float, gradual_min: float, max_gradual: float, dip: float, flat_std: float,
                min_shot: float) -> "ShotParams":
        """Settings in seconds (as :class:`ShotSegmenter` takes them, which holds their defaults) converted to
        frames at ``fps``."""
        k = max(2, int(round(gradual_k * fps)))
        return cls(threshold=threshold, min_score=min_score, window=window, k=k,
                   m=max(4 * k, int(round(3.0 * fps))),
                   guard=2 * k + int(round(max_gradual * fps)) + 2,
                   min_gap=max(1, int(round(min_shot * fps))),
                   max_hold=int(round(max_gradual * fps)), max_gap=max_gradual * fps,
                   gradual_threshold=gradual_threshold, gradual_min=gradual_min, dip=dip, flat_std=flat_std)


# ------------------------------------------------------------------------------------------- distances

def tiny_distance(a: np.ndarray, b: np.ndarray, window: np.ndarray) -> float:
    """Motion-compensated difference of two tiny YUV frames (mean absolute difference, 0-255 scale).

    The global translation between the frames is estimated by phase correlation on luma and undone before
    comparing, so a pan or a slow yaw over homogeneous ground scores low while a change of content scores
    high. The smaller of the compensated and the plain difference is kept, in case the estimate is wrong.
    ``window`` is the Hanning window of the frame size (``cv2.createHanningWindow``), made once per video.
    """
    import cv2

    plain = float(np.mean(np.abs(a - b)))
    (dx, dy), _ = cv2.phaseCorrelate(a[..., 0], b[..., 0], window)
    h, w = a.shape[:2]
    m = int(math.ceil(max(abs(dx), abs(dy)))) + 1
    if m * 2 >= min(h, w) - 4:
        return plain
    moved = cv2.warpAffine(a, np.float32([[1, 0, dx], [0, 1, dy]]), (w, h), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REFLECT)
    comp = float(np.mean(np.abs(moved[m:h - m, m:w - m] - b[m:h - m, m:w - m])))
    return min(plain, comp)


# ------------------------------------------------------------------------------------- building blocks

def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Inclusive (start, end) index pairs of the runs of True in a boolean array."""
    if not mask.size:
        return []
    d = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    starts = np.flatnonzero(d == 1)
    ends = np.flatnonzero(d == -1) - 1
    return list(zip(starts.tolist(), ends.tolist()))


def uniform_frames(std: np.ndarray | float, mean: np.ndarray | float, flat_std: float) -> np.ndarray:
    """Which frames are uniform black or white (what the middle of a fade looks like), from luma std and mean.

    Works on arrays and on single values (then a numpy bool)."""
    std, mean = np.asarray(std), np.asarray(mean)
    return (std < flat_std) & ((mean < UNIFORM_DARK) | (mean > UNIFORM_BRIGHT))


def _sliding(x: np.ndarray, half: int, **pad: object) -> np.ndarray:
    """Windows of ``2 * half + 1`` values centred on each element of ``x``, padded as ``np.pad`` says."""
    return np.lib.stride_tricks.sliding_window_view(np.pad(x, half, **pad), 2 * half + 1)


def local_median(x: np.ndarray, half: int) -> np.ndarray:
    """Median of each element's neighbourhood of ``half`` values each side (edges repeat the end values)."""
    return np.median(_sliding(x, half, mode="edge"), axis=1)


def local_nanmedian(x: np.ndarray, half: int) -> np.ndarray:
    """Median of each element's neighbourhood ignoring NaN (beyond the ends counts as NaN); NaN when the whole
    neighbourhood is."""
    win = _sliding(x, half, mode="constant", constant_values=np.nan)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # all-NaN neighbourhoods are expected at the edges
        return np.nanmedian(win, axis=1)


def hard_cut_mask(s: np.ndarray, window: int, threshold: float, min_score: float) -> np.ndarray:
    """Frames where a hard cut starts: ``s`` is the maximum of its neighbourhood (``window`` frames each side),
    at least ``min_score``, and at least ``threshold`` times the neighbourhood's median plus one grey level, so
    the bar follows the footage's own level of motion."""
    win = _sliding(s, window, mode="edge")
    base = np.median(win, axis=1)
    is_max = s >= win.max(axis=1)
    return (s >= min_score) & is_max & (s >= threshold * base + 1.0)


def elevated_g(g: np.ndarray, half: int, gradual_threshold: float, gradual_min: float) -> np.ndarray:
    """Frames whose long-range distance ``g`` is at least ``gradual_min`` and ``gradual_threshold`` times its
    local median (``half`` frames each side, NaN ignored, a NaN median counting as 0)."""
    base = local_nanmedian(g, half)
    with np.errstate(all="ignore"):
        return np.isfinite(g) & (g >= gradual_min) & (g >= gradual_threshold * np.nan_to_num(base) + 1.0)


def gradual_runs(g: np.ndarray, p: ShotParams) -> list[tuple[int, int]]:
    """Runs (inclusive index pairs) of elevated ``g`` long enough to be a gradual transition and no longer than
    the longest plausible one (``p.guard``)."""
    return [(r0, r1) for r0, r1 in runs(elevated_g(g, p.m, p.gradual_threshold, p.gradual_min))
            if max(2, p.k // 2) <= r1 - r0 + 1 <= p.guard]


def fade_spans(std: np.ndarray, mean: np.ndarray, flat_std: float, max_hold: int, max_side: int,
               first: int = 0, last: int | None = None) -> list[tuple[int, int, float]]:
    """Fades: a short run of uniform black or white frames, extended over the frames whose contrast falls into
    it and rises out of it. Returns (first frame, last frame, score) for runs that touch [first, last].

    Runs longer than ``max_hold`` are scenery, not a transition; each ramp is followed at most ``max_side``
    frames. A fade that reaches either end of the arrays is not a boundary between shots.
    """
    last = len(std) - 1 if last is None else last
    out = []
    for r0, r1 in runs(uniform_frames(std, mean, flat_std)):
        if r1 < first or r0 > last or r1 - r0 + 1 > max_hold:
            continue
        a = r0
        while a > 0 and r0 - a < max_side and std[a - 1] > std[a] + 0.05:
            a -= 1
        b = r1
        while b < len(std) - 1 and b - r1 < max_side and std[b + 1] > std[b] + 0.05:
            b += 1
        if a == 0 or b == len(std) - 1:
            continue  # the video starts or ends in a fade: not a boundary between shots
        if (r0 - a) + (b - r1) < 2:
            continue  # no ramp into or out of the uniform frames: cuts to black are found as cuts
        out.append((a, b, round(float(std[a] + std[b]), 3)))
    return out


def dissolve_spans(std: np.ndarray, g: np.ndarray, p: ShotParams, first: int = 1,
                   last: int | None = None) -> list[tuple[int, int, float]]:
    """Dissolves between two textured shots: a mix of two unrelated images has a lower contrast than either, so
    a dissolve is a dip in ``std``, deep enough (``p.dip``), of plausible length, whose two sides differ (``g``
    at the bottom at least ``p.gradual_min``). Returns (first frame, last frame, score) for dips whose bottom is
    in [first, last]. ``g`` may be shorter than ``std`` (its tail not known yet)."""
    out: list[tuple[int, int, float]] = []
    n = len(std)
    if n < 5:
        return out
    sm = np.convolve(np.pad(std, 1, mode="edge"), np.ones(3) / 3, mode="valid")
    max_len = p.guard - 2 * p.k
    min_side = max(2, p.k // 3)
    j = max(1, first)
    last = min(n - 2, n if last is None else last)
    while j <= last:
        lo_w, hi_w = max(0, j - 3), min(n, j + 4)
        if sm[j] > sm[lo_w:hi_w].min() or sm[j] < p.flat_std:
            j += 1
            continue
        a = j
        while a > 0 and j - a < max_len and sm[a - 1] > sm[a] + 0.02:
            a -= 1
        b = j
        while b < n - 1 and b - j < max_len and sm[b + 1] > sm[b] + 0.02:
            b += 1
        top = min(sm[a], sm[b])
        if (j - a >= min_side and b - j >= min_side and b - a <= max_len and top > 0
                and (top - sm[j]) / top >= p.dip and b < n - 1 and a > 0):
            gj = g[j] if j < len(g) else float("nan")
            if np.isfinite(gj) and gj >= p.gradual_min:
                # the dip's flanks include a little of each shot's own drift: trim one frame each side
                out.append((a + 1, b - 1, round(float(gj), 3)))
                j = b + 1
                continue
        j += 1
    return out


# ------------------------------------------------------------------------------------------ decisions

def find_transitions(s: np.ndarray, g: np.ndarray, std: Sequence[float] | np.ndarray,
                     mean: Sequence[float] | np.ndarray, lo: int, hi: int, p: ShotParams,
                     prior: Sequence[Transition] = ()) -> list[Transition]:
    """Transitions lying within frames [lo, hi], sorted, before merging (see :func:`merge_transitions`).

    Looks at up to ``p.guard`` frames before ``lo`` (a transition may have started there) and ``p.m`` frames
    beyond either side for the local baselines. ``prior`` are transitions already decided: a run of elevated
    ``g`` that overlaps one of them (or a cut or fade found here) is that transition seen from afar, not a new
    one. ``std`` and ``mean`` may be lists: only the part around [lo, hi] is converted.
    """
    n = len(s)
    hi = min(hi, n - 1)
    if hi < max(lo, 1):
        return []
    k, m = p.k, p.m
    ctx0 = max(0, lo - p.guard)
    a0, a1 = max(0, ctx0 - m), min(n, hi + m + 1)
    sd = np.asarray(std[a0:a1], dtype=np.float64)
    # 1. hard cuts
    ss = s[a0:a1]
    cuts = [Transition("cut", a0 + int(i), a0 + int(i), round(float(ss[i]), 3))
            for i in np.flatnonzero(hard_cut_mask(ss, p.window, p.threshold, p.min_score))
            if a0 + i >= max(1, ctx0)]
    # 2. fades and dissolves
    mn = np.asarray(mean[a0:a1], dtype=np.float64)
    gg = g[a0:a1]
    grads = [Transition("gradual", a0 + a, a0 + b, sc)
             for a, b, sc in fade_spans(sd, mn, p.flat_std, p.max_hold, p.guard, ctx0 - a0, hi - a0)]
    grads += [Transition("gradual", a0 + a, a0 + b, sc)
              for a, b, sc in dissolve_spans(sd, gg, p, max(1, ctx0 - a0), hi - a0)]
    # 3. other gradual transitions (wipes, ...): a run of high g that nothing above explains
    explained = [(c.start_frame - k - 1, c.end_frame + k + 1) for c in [*cuts, *grads, *prior]]
    for r0, r1 in gradual_runs(gg, p):
        r0, r1 = r0 + a0, r1 + a0
        if r1 < ctx0 or r0 > hi:
            continue
        if any(x0 <= r1 and r0 <= x1 for x0, x1 in explained):
            continue
        # the run spans k frames of each shot on either side of the mixed frames
        ga, gb = r0 + k, r1 - k
        if ga > gb:
            ga = gb = (r0 + r1 + 1) // 2
        grads.append(Transition("gradual", max(ga, 1), max(gb, 1), round(float(np.nanmax(g[r0:r1 + 1])), 3)))
    # A hard cut inside a gradual transition is part of it (a fade to black can start with a cut).
    spans = [(t.start_frame - 1, t.end_frame + 1) for t in grads]
    cuts = [c for c in cuts if not any(x0 <= c.start_frame <= x1 for x0, x1 in spans)]
    found = sorted(cuts + grads, key=lambda tr: (tr.start_frame, tr.end_frame))
    return [tr for tr in found if tr.start_frame >= lo and tr.end_frame <= hi]


def merge_transitions(found: Sequence[Transition], uniform: Sequence[bool], min_gap: int, max_gap: float,
                      last_end: int | None = None) -> list[Transition]:
    """Merge transitions too close to be separate shots (closer than ``min_gap`` frames), or separated only by
    uniform frames (at most ``max_gap`` of them; a fade out to black followed by a fade in is one transition).

    ``uniform[f]`` says whether frame ``f`` is uniform (:func:`uniform_frames`). ``last_end`` is the last frame of
    the transition decided before these: one closer to it than ``min_gap`` is dropped.
    """
    out: list[Transition] = []
    for tr in sorted(found, key=lambda t: t.start_frame):
        prev = out[-1] if out else None
        if prev is None and last_end is not None and tr.start_frame - last_end < min_gap:
            continue  # too close to an already emitted boundary
        if prev is not None:
            gap = range(prev.end_frame + 1, tr.start_frame)
            if tr.start_frame - prev.end_frame < min_gap or (
                    len(gap) <= max_gap and all(uniform[f] for f in gap)):
                kind = "gradual" if (prev.kind == "gradual" or tr.kind == "gradual"
                                      or tr.start_frame > prev.end_frame + 1) else "cut"
                out[-1] = Transition(kind, prev.start_frame, max(prev.end_frame, tr.end_frame),
                                     max(prev.score, tr.score))
                continue
        out.append(tr)
    return out
