"""Shot boundaries (hard cuts and gradual transitions) detected while the video decodes.

This module is the streaming side: it keeps the per-frame series and decides in batches as frames arrive. The
detection rules themselves are pure array functions in :mod:`dvtr_bench.video.shot_analysis`.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from dvtr_bench.errors import ConfigError
# The module, not its names: shot_analysis imports this package's base, so either may be imported first.
from dvtr_bench.video import shot_analysis as sa
from dvtr_bench.video.probe import VideoInfo
from dvtr_bench.video.segmenters.base import Segmenter, Span, Transition, limit_lengths, register_segmenter


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

    def shot_params(self, fps: float) -> sa.ShotParams:
        """This segmenter's detection settings in frames at ``fps``."""
        return sa.ShotParams.for_fps(
            fps, threshold=self.threshold, min_score=self.min_score, window=self.window, gradual_k=self.gradual_k,
            gradual_threshold=self.gradual_threshold, gradual_min=self.gradual_min, max_gradual=self.max_gradual,
            dip=self.dip, flat_std=self.flat_std, min_shot=self.min_shot)

    # -- state -------------------------------------------------------------------------------------

    def start(self, info: VideoInfo, records: Sequence[Any] = ()) -> list[Span] | None:
        super().start(info, records)
        fps = info.fps if info.fps and info.fps > 0 else 25.0
        self._p = self.shot_params(fps)
        self._times: list[float] = []
        self._s: list[float] = []
        self._g: list[float] = []        # g[j] for j < len(_g); NaN where undefined
        self._flat: list[bool] = []
        self._std: list[float] = []
        self._mean: list[float] = []
        self._ring: list[tuple[np.ndarray, np.ndarray]] = []  # last 2k+1 tiny frames, exposure stats
        self._window_fn: np.ndarray | None = None
        self._lo = 0                       # first frame not yet covered by final decisions
        self._shot_start = 0               # first frame of the open shot
        self._next_check = self._p.guard
        self._first: int | None = None     # first frame after the opening fade-in, once settled
        return None

    def push(self, index: int, t: float, tiny: np.ndarray) -> list[Span]:
        import cv2

        if self._window_fn is None:
            self._window_fn = cv2.createHanningWindow((tiny.shape[1], tiny.shape[0]), cv2.CV_32F)
        self._times.append(t)
        stats = sa.exposure_stats(tiny)
        self._std.append(float(stats[19]))
        self._mean.append(float(tiny[..., 0].mean()))
        self._flat.append(bool(sa.uniform_frames(self._std[-1], self._mean[-1], self.flat_std)))
        prev = self._ring[-1] if self._ring else None
        self._s.append(0.0 if prev is None else sa.tiny_distance(prev[0], tiny, self._window_fn, prev[1], stats))
        self._ring.append((tiny, stats))
        k = self._p.k
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
                self._g.append(sa.tiny_distance(self._ring[0][0], tiny, self._window_fn, self._ring[0][1], stats)
                               if j + k == i
                               else float("nan"))
        horizon = i - k - self._p.m
        # Decide in batches: each decision looks at a window of frames, so deciding every frame would cost
        # O(window) per frame for nothing.
        if horizon >= self._next_check:
            self._next_check = horizon + max(16, self._p.guard // 2)
            return self._decide(horizon, final=False)
        return []

    def finish(self, n_frames: int, end_s: float) -> list[Span]:
        n = len(self._times)
        if n == 0:
            return []
        while len(self._g) < n:
            self._g.append(float("nan"))
        spans = self._decide(n - 1, final=True)
        # A closing fade-out to black (or white) is not a boundary, but its frames belong to no clip.
        end = self._closing()
        if end < n:
            spans += self._close_shot(self._shot_start, end, self._times[end])
        else:
            spans += self._close_shot(self._shot_start, n, end_s)
        return spans

    def keep_from(self) -> int:
        return self._shot_start

    # -- decisions ---------------------------------------------------------------------------------

    def _opening(self) -> int:
        """First frame after an opening fade-in (see :func:`shot_analysis.edge_fades`); settled, and then kept,
        once a ramp's length of frames has followed the opening uniform run."""
        if self._first is not None:
            return self._first
        n = len(self._std)
        head = min(n, self._p.guard)
        # Only the head can hold the fade: look at more of it as frames arrive, never at the whole video.
        while head < n and sa.uniform_frames(self._std[head - 1], self._mean[head - 1], self.flat_std):
            head = min(n, head + self._p.guard)
        first, _ = sa.edge_fades(np.asarray(self._std[:head]), np.asarray(self._mean[:head]), self.flat_std,
                                 self._p.guard)
        if n > first + self._p.guard:
            self._first = first
        return first

    def _closing(self) -> int:
        """The frame where a closing fade-out starts (``len`` when there is none); only meaningful at the end."""
        n = len(self._std)
        tail = max(0, n - 2 * self._p.guard)
        while tail > 0 and sa.uniform_frames(self._std[tail], self._mean[tail], self.flat_std):
            tail = max(0, tail - self._p.guard)
        first, end = sa.edge_fades(np.asarray(self._std[tail:]), np.asarray(self._mean[tail:]), self.flat_std,
                                   self._p.guard)
        if tail > 0 and first == end == 0:
            return n
        return tail + end if end < n - tail else n

    def _decide(self, hi: int, final: bool) -> list[Span]:
        s = np.asarray(self._s, dtype=np.float64)
        g = np.asarray(self._g, dtype=np.float64)
        n = len(s)
        # Until the video ends, a fade to black at the end of what has arrived may be the middle of a fade
        # through black: only the opening fade is an edge yet.
        edges = (self._opening(), self._closing() if final else n)
        found = sa.find_transitions(s, g, self._std, self._mean, self._lo, hi, self._p, self.transitions,
                                    edges=edges)
        # Away from the end of the video, only decisions that frames still to come cannot change are final.
        cutoff = hi if final else hi - self._p.guard
        spans: list[Span] = []
        accepted = [tr for tr in found if tr.end_frame <= cutoff]
        last_end = self.transitions[-1].end_frame if self.transitions else None
        for tr in sa.merge_transitions(accepted, self._flat, self._p.min_gap, self._p.max_gap, last_end):
            spans += self._emit(tr, n)
        undecided = [tr.start_frame for tr in found if tr.end_frame > cutoff]
        nxt = min([cutoff + 1] + undecided)
        if accepted:
            nxt = max(nxt, accepted[-1].end_frame + 1)
        self._lo = max(self._lo, nxt)
        return spans

    def _emit(self, tr: Transition, n: int) -> list[Span]:
        self.transitions.append(tr)
        end = tr.start_frame                      # exclusive: first mixed frame / first frame of new shot
        spans = self._close_shot(self._shot_start, end, self._times[end] if end < n else None)
        self._shot_start = tr.end_frame + 1 if tr.kind == "gradual" else tr.end_frame
        return spans

    def _close_shot(self, start: int, end: int, end_s: float | None) -> list[Span]:
        if start == 0:
            # The first shot is closed only once a transition after it is final, so its opening fade-in (if
            # any) is complete in the arrays: its frames belong to no clip.
            start = self._opening()
        if end <= start or start >= len(self._times):
            return []
        s0 = self._times[start]
        e0 = end_s if end_s is not None else self._times[end - 1]
        out = []
        for s, e in limit_lengths(s0, e0, self.min_len, self.max_len):
            out.append(Span(round(s, 6), round(e, 6), start_frame=start, end_frame=end))
        return out
