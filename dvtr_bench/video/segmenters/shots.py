"""Shot boundaries (hard cuts and gradual transitions) detected while the video decodes."""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from dvtr_bench.errors import ConfigError
from dvtr_bench.video.probe import VideoInfo
from dvtr_bench.video.segmenters.base import Segmenter, Span, Transition, limit_lengths, register_segmenter


def tiny_distance(a: np.ndarray, b: np.ndarray, window: np.ndarray) -> float:
    """Motion-compensated difference of two tiny YUV frames (mean absolute difference, 0-255 scale).

    The global translation between the frames is estimated by phase correlation on luma and undone before
    comparing, so a pan or a slow yaw over homogeneous ground scores low while a change of content scores
    high. The smaller of the compensated and the plain difference is kept, in case the estimate is wrong.
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


@register_segmenter
class ShotSegmenter(Segmenter):
    """Shot boundaries (hard cuts and gradual transitions) with adaptive thresholds, on tiny frames.

    Two motion-compensated frame distances are computed on a tiny YUV copy of every frame (96 px wide):
    ``s[i]`` between consecutive frames, and ``g[j]`` between frames ``j - k`` and ``j + k`` (k = ``gradual_k``
    seconds). A hard cut is a frame whose ``s`` is a local maximum, above ``min_score`` and ``threshold`` times
    the median of its neighbours (the baseline follows the footage's own motion level). A gradual transition
    (dissolve, fade, wipe) is a run of ``g`` above ``gradual_min`` and ``gradual_threshold`` times its local
    median that no hard cut explains; its mixed frames are estimated as the run shrunk by k at both ends.
    Transitions closer than ``min_shot`` seconds, or separated only by uniform (black/white) frames, merge.
    Spans between transitions become clips after ``min_len``/``max_len``.
    """

    name = "shots"
    description = "the shots between detected hard cuts and gradual transitions (dissolves, fades, wipes)"
    uses_frames = True

    def __init__(self, threshold: float = 3.0, min_score: float = 6.0, window: int = 8,
                 gradual_k: float = 0.4, gradual_threshold: float = 2.5, gradual_min: float = 6.0,
                 max_gradual: float = 2.5, dip: float = 0.15, flat_std: float = 3.0, min_shot: float = 0.5,
                 min_len: float | None = 1.0,
                 max_len: float | None = None, tiny_width: int = 96):
        if threshold <= 1 or gradual_threshold <= 1:
            raise ConfigError("shot thresholds are ratios to the local baseline and must be > 1")
        if min_len is not None and max_len is not None and max_len < min_len:
            raise ConfigError(f"max_len {max_len} < min_len {min_len}")
        self.threshold = float(threshold)
        self.min_score = float(min_score)
        self.window = int(window)
        self.gradual_k = float(gradual_k)
        self.gradual_threshold = float(gradual_threshold)
        self.gradual_min = float(gradual_min)
        self.max_gradual = float(max_gradual)
        self.dip = float(dip)
        self.flat_std = float(flat_std)
        self.min_shot = float(min_shot)
        self.min_len = min_len
        self.max_len = max_len
        self.tiny_width = int(tiny_width)

    def params(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "min_score": self.min_score, "window": self.window,
                "gradual_k": self.gradual_k, "gradual_threshold": self.gradual_threshold,
                "gradual_min": self.gradual_min, "max_gradual": self.max_gradual, "dip": self.dip,
                "flat_std": self.flat_std, "min_shot": self.min_shot,
                "min_len": self.min_len, "max_len": self.max_len, "tiny_width": self.tiny_width}

    # -- state -------------------------------------------------------------------------------------

    def start(self, info: VideoInfo, records: Sequence[Any] = ()) -> list[Span] | None:
        super().start(info, records)
        fps = info.fps if info.fps and info.fps > 0 else 25.0
        self._fps = fps
        self._k = max(2, int(round(self.gradual_k * fps)))
        self._m = max(4 * self._k, int(round(3.0 * fps)))                 # half-window of the g baseline
        self._guard = 2 * self._k + int(round(self.max_gradual * fps)) + 2   # longest plausible g run
        self._min_gap = max(1, int(round(self.min_shot * fps)))
        self._times: list[float] = []
        self._s: list[float] = []
        self._g: list[float] = []        # g[j] for j < len(_g); NaN where undefined
        self._flat: list[bool] = []
        self._std: list[float] = []
        self._mean: list[float] = []
        self._ring: list[np.ndarray] = []  # last 2k+1 tiny frames
        self._window_fn: np.ndarray | None = None
        self._lo = 0                       # first frame not yet covered by final decisions
        self._shot_start = 0               # first frame of the open shot
        self._next_check = self._guard
        return None

    def push(self, index: int, t: float, tiny: np.ndarray) -> list[Span]:
        import cv2

        if self._window_fn is None:
            self._window_fn = cv2.createHanningWindow((tiny.shape[1], tiny.shape[0]), cv2.CV_32F)
        self._times.append(t)
        self._std.append(float(tiny[..., 0].std()))
        self._mean.append(float(tiny[..., 0].mean()))
        # uniform black or white frames (the middle of a fade), as in _fades
        self._flat.append(self._std[-1] < self.flat_std and not 40 <= self._mean[-1] <= 215)
        prev = self._ring[-1] if self._ring else None
        self._s.append(0.0 if prev is None else tiny_distance(prev, tiny, self._window_fn))
        self._ring.append(tiny)
        k = self._k
        if len(self._ring) > 2 * k + 1:
            self._ring.pop(0)
        i = len(self._times) - 1
        # g is centred: g[j] compares j-k with j+k, known once frame j+k has arrived.
        while len(self._g) < i - k + 1:
            j = len(self._g)
            if j - k < 0:
                self._g.append(float("nan"))
            elif j % 2 and self._g and np.isfinite(self._g[-1]):
                # g changes slowly (it spans 2k frames): computing it every other frame halves its cost
                self._g.append(self._g[-1])
            else:
                self._g.append(tiny_distance(self._ring[0], tiny, self._window_fn) if j + k == i
                               else float("nan"))
        horizon = i - k - self._m
        # Decide in batches: each decision looks at a window of frames, so deciding every frame would cost
        # O(window) per frame for nothing.
        if horizon >= self._next_check:
            self._next_check = horizon + max(16, self._guard // 2)
            return self._decide(horizon, final=False)
        return []

    def finish(self, n_frames: int, end_s: float) -> list[Span]:
        n = len(self._times)
        if n == 0:
            return []
        while len(self._g) < n:
            self._g.append(float("nan"))
        spans = self._decide(n - 1, final=True)
        spans += self._close_shot(self._shot_start, n, end_s)
        return spans

    def keep_from(self) -> int:
        return self._shot_start

    # -- analysis ----------------------------------------------------------------------------------

    def _decide(self, hi: int, final: bool) -> list[Span]:
        s = np.asarray(self._s, dtype=np.float64)
        g = np.asarray(self._g, dtype=np.float64)
        n = len(s)
        found = self._find(s, g, self._lo, hi)
        # Away from the end of the video, only decisions that frames still to come cannot change are final.
        cutoff = hi if final else hi - self._guard
        spans: list[Span] = []
        accepted = [tr for tr in found if tr.end_frame <= cutoff]
        for tr in self._merge(accepted):
            spans += self._emit(tr, n)
        undecided = [tr.start_frame for tr in found if tr.end_frame > cutoff]
        nxt = min([cutoff + 1] + undecided)
        if accepted:
            nxt = max(nxt, accepted[-1].end_frame + 1)
        self._lo = max(self._lo, nxt)
        return spans

    def _find(self, s: np.ndarray, g: np.ndarray, lo: int, hi: int) -> list[Transition]:
        n = len(s)
        hi = min(hi, n - 1)
        if hi < max(lo, 1):
            return []
        k, m, w = self._k, self._m, self.window
        ctx0 = max(0, lo - self._guard)
        # Work on the region [ctx0, hi] plus context on both sides for the baselines.
        a0, a1 = max(0, ctx0 - m), min(n, hi + m + 1)
        std = np.asarray(self._std[a0:a1], dtype=np.float64)
        # 1. hard cuts: a local maximum of s well above the median of its neighbours.
        ss = s[a0:a1]
        pad = np.pad(ss, w, mode="edge")
        win = np.lib.stride_tricks.sliding_window_view(pad, 2 * w + 1)
        base = np.median(win, axis=1)
        is_max = ss >= win.max(axis=1)
        cut_mask = (ss >= self.min_score) & is_max & (ss >= self.threshold * base + 1.0)
        cuts = [Transition("cut", a0 + int(i), a0 + int(i), round(float(ss[i]), 3))
                for i in np.flatnonzero(cut_mask) if a0 + i >= max(1, ctx0)]
        # 2. fades: a run of uniform frames, extended over the frames whose contrast falls into it / rises out.
        mean = np.asarray(self._mean[a0:a1], dtype=np.float64)
        grads = self._fades(std, mean, a0, ctx0, hi) + self._dissolves(std, g, a0, ctx0, hi)
        # 3. other gradual transitions (wipes, ...): a run of high g that nothing above explains.
        gg = g[a0:a1]
        gpad = np.pad(gg, m, mode="constant", constant_values=np.nan)
        gwin = np.lib.stride_tricks.sliding_window_view(gpad, 2 * m + 1)
        with np.errstate(all="ignore"):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                gbase = np.nanmedian(gwin, axis=1)
            elevated = np.isfinite(gg) & (gg >= self.gradual_min) & (gg >= self.gradual_threshold * np.nan_to_num(gbase) + 1.0)
        explained = [(c.start_frame - k - 1, c.end_frame + k + 1) for c in cuts + grads + self.transitions]
        for r0, r1 in _runs(elevated):
            r0, r1 = r0 + a0, r1 + a0
            if r1 < ctx0 or r0 > hi:
                continue
            length = r1 - r0 + 1
            if length < max(2, k // 2) or length > self._guard:
                continue
            if any(x0 <= r1 and r0 <= x1 for x0, x1 in explained):
                continue
            ga, gb = r0 + k, r1 - k
            if ga > gb:
                ga = gb = (r0 + r1 + 1) // 2
            grads.append(Transition("gradual", max(ga, 1), max(gb, 1), round(float(np.nanmax(g[r0:r1 + 1])), 3)))
        # A hard cut inside a gradual transition is part of it (a fade to black can start with a cut).
        spans = [(t.start_frame - 1, t.end_frame + 1) for t in grads]
        cuts = [c for c in cuts if not any(x0 <= c.start_frame <= x1 for x0, x1 in spans)]
        found = sorted(cuts + grads, key=lambda tr: (tr.start_frame, tr.end_frame))
        return [tr for tr in found if tr.start_frame >= lo and tr.end_frame <= hi]

    def _fades(self, std: np.ndarray, mean: np.ndarray, a0: int, ctx0: int, hi: int) -> list[Transition]:
        out = []
        # A fade passes through a short run of black (or white) uniform frames. Uniform frames of another
        # brightness, or long runs, are scenery (calm water, snow, fog), not a transition.
        flat = (std < self.flat_std) & ((mean < 40) | (mean > 215))
        max_side = self._guard
        max_hold = int(round(self.max_gradual * self._fps))
        for r0, r1 in _runs(flat):
            if a0 + r1 < ctx0 or a0 + r0 > hi or r1 - r0 + 1 > max_hold:
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
            out.append(Transition("gradual", a0 + a, a0 + b, round(float(std[a] + std[b]), 3)))
        return out

    def _dissolves(self, std: np.ndarray, g: np.ndarray, a0: int, ctx0: int, hi: int) -> list[Transition]:
        """A dissolve between two textured shots shows as a dip in frame contrast: a mix of two unrelated
        images has a lower variance than either. Find dips deep enough, of plausible length, whose two sides
        differ (long-range distance g elevated at the bottom)."""
        out = []
        n = len(std)
        if n < 5:
            return out
        sm = np.convolve(np.pad(std, 1, mode="edge"), np.ones(3) / 3, mode="valid")
        max_len = self._guard - 2 * self._k
        min_side = max(2, self._k // 3)
        j = max(1, ctx0 - a0)
        last = min(n - 2, hi - a0)
        while j <= last:
            lo_w, hi_w = max(0, j - 3), min(n, j + 4)
            if sm[j] > sm[lo_w:hi_w].min() or sm[j] < self.flat_std:
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
                    and (top - sm[j]) / top >= self.dip and b < n - 1 and a > 0):
                gj = g[a0 + j] if a0 + j < len(g) else float("nan")
                if np.isfinite(gj) and gj >= self.gradual_min:
                    # the dip's flanks include a little of each shot's own drift: trim one frame each side
                    out.append(Transition("gradual", a0 + a + 1, a0 + b - 1, round(float(gj), 3)))
                    j = b + 1
                    continue
            j += 1
        return out

    def _merge(self, trs: list[Transition]) -> list[Transition]:
        """Merge transitions too close to be separate shots, or separated only by uniform frames (a fade
        out to black followed by a fade in is one transition)."""
        out: list[Transition] = []
        last_end = self.transitions[-1].end_frame if self.transitions else None
        for tr in sorted(trs, key=lambda t: t.start_frame):
            prev = out[-1] if out else None
            if prev is None and last_end is not None and tr.start_frame - last_end < self._min_gap:
                continue  # too close to an already emitted boundary
            if prev is not None:
                gap = range(prev.end_frame + 1, tr.start_frame)
                if tr.start_frame - prev.end_frame < self._min_gap or (
                        len(gap) <= self.max_gradual * self._fps and all(self._flat[f] for f in gap)):
                    kind = "gradual" if (prev.kind == "gradual" or tr.kind == "gradual"
                                          or tr.start_frame > prev.end_frame + 1) else "cut"
                    out[-1] = Transition(kind, prev.start_frame, max(prev.end_frame, tr.end_frame),
                                         max(prev.score, tr.score))
                    continue
            out.append(tr)
        return out

    def _emit(self, tr: Transition, n: int) -> list[Span]:
        self.transitions.append(tr)
        end = tr.start_frame                      # exclusive: first mixed frame / first frame of new shot
        spans = self._close_shot(self._shot_start, end, self._times[end] if end < n else None)
        self._shot_start = tr.end_frame + 1 if tr.kind == "gradual" else tr.end_frame
        return spans

    def _close_shot(self, start: int, end: int, end_s: float | None) -> list[Span]:
        if end <= start or start >= len(self._times):
            return []
        s0 = self._times[start]
        e0 = end_s if end_s is not None else self._times[end - 1]
        out = []
        for s, e in limit_lengths(s0, e0, self.min_len, self.max_len):
            out.append(Span(round(s, 6), round(e, 6), start_frame=start, end_frame=end))
        return out


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Inclusive (start, end) index pairs of the runs of True in a boolean array."""
    if not mask.size:
        return []
    d = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    starts = np.flatnonzero(d == 1)
    ends = np.flatnonzero(d == -1) - 1
    return list(zip(starts.tolist(), ends.tolist()))
