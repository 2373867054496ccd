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


# A dissolve's contrast dip is confirmed by a long-range distance of this share of ``gradual_min``: exposure
# compensation takes out the brightness part of the difference between the two shots, and the dip itself is
# already strong evidence (an exposure ramp changes contrast one way, it does not dip and recover).
DISSOLVE_CONFIRM = 0.6

# ------------------------------------------------------------------------------------------- distances

def tiny_distance(a: np.ndarray, b: np.ndarray, window: np.ndarray, a_stats: np.ndarray | None = None,
                  b_stats: np.ndarray | None = None) -> float:
    """Motion- and exposure-compensated difference of two tiny YUV frames (0-255 scale), robust to objects
    crossing part of the picture.

    The frames are first brought to one exposure and white balance (:func:`match_exposure`; ``a_stats`` and
    ``b_stats`` are their :func:`exposure_stats`, computed here when not given), so the camera following the
    light does not count as a change. The global translation between the frames is estimated by phase
    correlation on luma and undone before comparing, so a pan or a slow yaw over homogeneous ground scores low
    while a change of content scores high; the smaller of the compensated and the plain difference is kept, in
    case the estimate is wrong. The difference is the :func:`robust_mean` over blocks of the frame, so a car or
    a hand passing the camera fast does not count either. ``window`` is the Hanning window of the frame size
    (``cv2.createHanningWindow``), made once per video.
    """
    import cv2

    a, b = match_exposure(a, b, a_stats, b_stats)
    plain = robust_mean(cv2.absdiff(a, b))
    (dx, dy), _ = cv2.phaseCorrelate(a[..., 0], b[..., 0], window)
    h, w = a.shape[:2]
    m = int(math.ceil(max(abs(dx), abs(dy)))) + 1
    if m * 2 >= min(h, w) - 4:
        return plain
    moved = cv2.warpAffine(a, np.float32([[1, 0, dx], [0, 1, dy]]), (w, h), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REFLECT)
    comp = robust_mean(cv2.absdiff(moved[m:h - m, m:w - m], b[m:h - m, m:w - m]))
    return min(plain, comp)


# How far match_exposure may shift a frame's colour (chroma levels): a white-balance drift of a drone camera
# within a second stays inside it, while a change of scene (a field to water) keeps most of its difference.
MAX_CHROMA_SHIFT = 3.0
# The grid of blocks a difference is averaged over (rows, columns), and the share of the most changed blocks
# left out: an object crossing up to a quarter of the picture does not raise the distance.
BLOCKS = (4, 6)
TRIM_BLOCKS = 0.4


_QUANTILES = np.linspace(0.0, 1.0, 17)
_RAMP = np.arange(17) * 1e-3
_LEVELS = np.arange(256, dtype=np.float64)


def _quantiles(channel: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Quantiles of a channel holding whole grey levels 0-255, from its histogram (far cheaper than sorting)."""
    counts = np.bincount(np.clip(channel, 0, 255).astype(np.uint8).ravel(), minlength=256)
    cum = np.cumsum(counts)
    return np.searchsorted(cum, q * (cum[-1] - 1), side="right").astype(np.float64)


def exposure_stats(tiny: np.ndarray) -> np.ndarray:
    """What :func:`match_exposure` needs of one tiny YUV frame (grey levels 0-255), computed once per frame:
    17 luma quantiles (0, 1/16, ..., 1), the median U and V, and the luma standard deviation."""
    half = np.array([0.5])
    return np.concatenate([_quantiles(tiny[..., 0], _QUANTILES), _quantiles(tiny[..., 1], half),
                           _quantiles(tiny[..., 2], half), [float(tiny[..., 0].std())]])


def match_exposure(a: np.ndarray, b: np.ndarray, a_stats: np.ndarray | None = None,
                   b_stats: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``a`` and ``b`` (tiny YUV, float32) brought to one exposure and white balance.

    The luma of the frame with the lower contrast is mapped through the monotone tone curve that gives it the
    other frame's luma distribution (quantile matching): an exposure change, including the highlights a brighter
    exposure clips, is undone whatever the camera's tone curve, while two different pictures stay different (the
    flatter one is stretched, never the other flattened). Chroma is shifted by the difference of the median
    chroma, at most ``MAX_CHROMA_SHIFT`` (white balance moves every colour alike). ``a_stats``/``b_stats`` are
    the frames' :func:`exposure_stats`, computed here when not given.
    """
    sa_ = exposure_stats(a) if a_stats is None else a_stats
    sb = exposure_stats(b) if b_stats is None else b_stats
    swap = sa_[19] > sb[19]
    (lo, slo), (hi, shi) = ((b, sb), (a, sa_)) if swap else ((a, sa_), (b, sb))
    shift = np.clip(shi[17:19] - slo[17:19], -MAX_CHROMA_SHIFT, MAX_CHROMA_SHIFT)
    if np.mean(np.abs(shi[:17] - slo[:17])) < 1.0 and np.max(np.abs(shift)) < 0.5:
        return a, b    # the same exposure already (consecutive frames, mostly): spare the mapping
    ql = np.maximum.accumulate(slo[:17] + _RAMP)    # strictly increasing, as np.interp needs
    out = np.empty_like(lo)
    lut = np.interp(_LEVELS, ql, shi[:17]).astype(np.float32)
    out[..., 0] = lut[np.clip(lo[..., 0], 0, 255).astype(np.intp)]
    out[..., 1:] = lo[..., 1:] + shift.astype(np.float32)
    return (hi, out) if swap else (out, hi)


def robust_mean(diff: np.ndarray, blocks: tuple[int, int] = BLOCKS, trim: float = TRIM_BLOCKS) -> float:
    """Mean of an absolute difference image (H x W or H x W x C, float32) over a grid of blocks, leaving out
    the ``trim`` share of the blocks that changed most: a change of the whole picture scores its mean, a change
    confined to a few blocks (a car or a hand passing the camera) scores what the rest of the picture did."""
    import cv2

    rows, cols = min(blocks[0], diff.shape[0]), min(blocks[1], diff.shape[1])
    cells = cv2.resize(diff, (cols, rows), interpolation=cv2.INTER_AREA)   # block means, every channel at once
    vals = np.sort(cells.reshape(rows * cols, -1).mean(axis=1))
    keep = max(1, int(round(vals.size * (1.0 - trim))))
    return float(vals[:keep].mean())


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


def edge_fades(std: np.ndarray, mean: np.ndarray, flat_std: float, max_side: int) -> tuple[int, int]:
    """Where the picture proper starts and ends, given an opening fade-in or a closing fade-out.

    Returns ``(first, end)``: ``first`` is the frame where the rise in contrast out of an opening run of uniform
    black or white frames ends (0 when the video does not start uniform), ``end`` the frame after the last one
    before the closing fall into a final uniform run (``len(std)`` when the video does not end uniform). Such
    fades are not boundaries between shots, but their frames belong to no clip either: stored as protocol
    frames they would be almost black. Each ramp is followed at most ``max_side`` frames.
    """
    n = len(std)
    flat = uniform_frames(np.asarray(std), np.asarray(mean), flat_std)
    if n == 0 or flat.all():
        return 0, n
    first, end = 0, n
    if flat[0]:
        r1 = int(np.argmin(flat)) - 1            # last frame of the opening uniform run
        b = r1
        while b < n - 1 and b - r1 < max_side and std[b + 1] > std[b] + 0.05:
            b += 1
        first = b if b > r1 else r1 + 1          # b: the first frame the rise reached (the picture proper)
    if flat[-1]:
        r0 = n - int(np.argmin(flat[::-1]))      # first frame of the closing uniform run
        a = r0
        while a > first and r0 - a < max_side and std[a - 1] > std[a] + 0.05:
            a -= 1
        end = a + 1 if a < r0 else r0            # a: the last frame before the fall
    return first, max(first, end)


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
            if np.isfinite(gj) and gj >= DISSOLVE_CONFIRM * p.gradual_min:
                # the dip's flanks include a little of each shot's own drift: trim one frame each side
                out.append((a + 1, b - 1, round(float(gj), 3)))
                j = b + 1
                continue
        j += 1
    return out


# ------------------------------------------------------------------------------------------ decisions

def find_transitions(s: np.ndarray, g: np.ndarray, std: Sequence[float] | np.ndarray,
                     mean: Sequence[float] | np.ndarray, lo: int, hi: int, p: ShotParams,
                     prior: Sequence[Transition] = (), edges: tuple[int, int] | None = None) -> list[Transition]:
    """Transitions lying within frames [lo, hi], sorted, before merging (see :func:`merge_transitions`).

    Looks at up to ``p.guard`` frames before ``lo`` (a transition may have started there) and ``p.m`` frames
    beyond either side for the local baselines. ``prior`` are transitions already decided: a run of elevated
    ``g`` that overlaps one of them (or a cut or fade found here) is that transition seen from afar, not a new
    one. ``std`` and ``mean`` may be lists: only the part around [lo, hi] is converted. ``edges`` is
    :func:`edge_fades`' (first, end): a run of elevated ``g`` reaching into the opening fade-in or the closing
    fade-out is that fade, which is no boundary.
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
    # A contrast dip around a hard cut is the cut with the camera re-exposing for the new shot (its contrast
    # climbing back), not a dissolve: the cut wins, and the new shot's frames stay in its clip.
    cut_frames = [c.start_frame for c in cuts]
    grads += [Transition("gradual", a0 + a, a0 + b, sc)
              for a, b, sc in dissolve_spans(sd, gg, p, max(1, ctx0 - a0), hi - a0)
              if not any(a0 + a - 1 <= f <= a0 + b + 1 for f in cut_frames)]
    # 3. other gradual transitions (wipes, ...): a run of high g that nothing above explains
    explained = [(c.start_frame - k - 1, c.end_frame + k + 1) for c in [*cuts, *grads, *prior]]
    if edges is not None:
        if edges[0] > 0:
            explained.append((0, edges[0] + k))
        if edges[1] < n:
            explained.append((edges[1] - k, n))
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
