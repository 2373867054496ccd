"""Flight phases from the video's telemetry sidecar: hover, transit, climb, descend, turn."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from dvtr_bench.errors import ConfigError, InputError
from dvtr_bench.video.probe import VideoInfo
from dvtr_bench.video.segmenters.base import Segmenter, Span, limit_lengths, register_segmenter

PHASES = ("hover", "transit", "climb", "descend", "turn")


def flight_phases(t: np.ndarray, speed: np.ndarray, climb: np.ndarray, turn: np.ndarray, hover_speed: float,
                  climb_rate: float, turn_rate: float, min_run: float) -> list[tuple[float, float, str]]:
    """Runs of one phase as (start_s, end_s, phase), from resampled motion series (``telemetry.motion_series``).

    A sample climbs or descends when the vertical speed reaches ``climb_rate``; else it turns when the heading
    changes by ``turn_rate`` degrees per second; else it hovers under ``hover_speed``, and is in transit above.
    Runs shorter than ``min_run`` seconds join the longer of their neighbours (GPS and barometer noise must not
    make one-sample phases).
    """
    if t.size == 0:
        return []
    lab = np.where(climb >= climb_rate, 2, np.where(climb <= -climb_rate, 3,
                   np.where(turn >= turn_rate, 4, np.where(speed < hover_speed, 0, 1))))
    step = float(t[1] - t[0]) if t.size > 1 else 1.0
    runs: list[list[Any]] = []
    for i, v in enumerate(lab.tolist()):
        if runs and runs[-1][2] == v:
            runs[-1][1] = i + 1
        else:
            runs.append([i, i + 1, v])
    while len(runs) > 1:
        k = min(range(len(runs)), key=lambda j: runs[j][1] - runs[j][0])
        if (runs[k][1] - runs[k][0]) * step >= min_run:
            break
        left = runs[k - 1] if k > 0 else None
        right = runs[k + 1] if k + 1 < len(runs) else None
        into = left if right is None or (left is not None and left[1] - left[0] >= right[1] - right[0]) else right
        into[0], into[1] = min(into[0], runs[k][0]), max(into[1], runs[k][1])
        del runs[k]
        # neighbours that now share a phase become one run
        merged: list[list[Any]] = []
        for r in runs:
            if merged and merged[-1][2] == r[2]:
                merged[-1][1] = r[1]
            else:
                merged.append(r)
        runs = merged
    return [(float(t[a]), float(t[b - 1]) + step, PHASES[v]) for a, b, v in runs]


@register_segmenter
class TelemetrySegmenter(Segmenter):
    """Clips are the flight's phases read from its DJI .SRT sidecar: hovering, transit, climbing, descending,
    turning (see :func:`flight_phases`). Each clip's ``label`` is its phase. Spans are known before decoding."""

    name = "telemetry"
    description = "flight phases from the video's DJI .SRT sidecar: hover, transit, climb, descend, turn"
    uses_telemetry = True

    def __init__(self, hover_speed: float = 0.7, climb_rate: float = 0.5, turn_rate: float = 3.0,
                 min_run: float = 1.0, min_len: float | None = 2.0, max_len: float | None = None):
        if hover_speed <= 0 or climb_rate <= 0 or turn_rate <= 0:
            raise ConfigError("hover_speed, climb_rate and turn_rate must be > 0")
        if min_len is not None and max_len is not None and max_len < min_len:
            raise ConfigError(f"max_len {max_len} < min_len {min_len}")
        self.hover_speed, self.climb_rate, self.turn_rate = float(hover_speed), float(climb_rate), float(turn_rate)
        self.min_run = float(min_run)
        self.min_len, self.max_len = min_len, max_len

    def params(self) -> dict[str, Any]:
        return {"hover_speed": self.hover_speed, "climb_rate": self.climb_rate, "turn_rate": self.turn_rate,
                "min_run": self.min_run, "min_len": self.min_len, "max_len": self.max_len}

    def start(self, info: VideoInfo, records: Sequence[Any] = (), telemetry: Any = None) -> list[Span] | None:
        super().start(info, records)
        from dvtr_bench.video.telemetry import motion_series

        if telemetry is None or not telemetry.samples:
            raise InputError("the telemetry segmenter needs the video's DJI .SRT sidecar next to it (same name), "
                             "with readable samples", info.path)
        m = motion_series(telemetry)
        spans = []
        for s, e, phase in flight_phases(m["t"], m["speed"], m["climb"], m["turn"], self.hover_speed,
                                         self.climb_rate, self.turn_rate, self.min_run):
            s, e = max(0.0, s), min(info.duration_s, e)
            for a, b in limit_lengths(s, e, self.min_len, self.max_len):
                spans.append(Span(round(a, 6), round(b, 6), label=phase))
        return spans
