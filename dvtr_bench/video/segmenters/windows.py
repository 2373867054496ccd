"""Fixed-length windows with optional overlap, for long continuous takes."""

from __future__ import annotations

from typing import Any, Sequence

from dvtr_bench.errors import ConfigError
from dvtr_bench.video.probe import VideoInfo
from dvtr_bench.video.segmenters.base import Segmenter, Span, register_segmenter


@register_segmenter
class WindowSegmenter(Segmenter):
    """Fixed-length windows with optional overlap, for long continuous takes.

    Windows start at 0, every ``length - overlap`` seconds. The tail shorter than ``length`` becomes a last,
    shorter clip when it is at least ``min_len`` long.
    """

    name = "windows"
    description = "fixed windows from 0 s (length, overlap), for long continuous takes"

    def __init__(self, length: float = 10.0, overlap: float = 0.0, min_len: float | None = None,
                 max_len: float | None = None):
        if length <= 0:
            raise ConfigError(f"window length must be > 0, got {length}")
        if not 0 <= overlap < length:
            raise ConfigError(f"window overlap must be in [0, length), got {overlap} for length {length}")
        if max_len is not None and max_len < length:
            raise ConfigError(f"max clip length {max_len} is shorter than the window length {length}")
        self.length = float(length)
        self.overlap = float(overlap)
        self.min_len = float(min_len) if min_len is not None else self.length / 2
        self.max_len = max_len

    def params(self) -> dict[str, Any]:
        return {"length": self.length, "overlap": self.overlap, "min_len": self.min_len, "max_len": self.max_len}

    def spans_for(self, duration: float) -> list[Span]:
        step = self.length - self.overlap
        spans: list[Span] = []
        k = 0
        while True:
            s = k * step
            if s >= duration - 1e-9:
                break
            e = min(s + self.length, duration)
            if e - s >= self.min_len - 1e-9:
                spans.append(Span(round(s, 6), round(e, 6)))
            if s + self.length >= duration - 1e-9:
                break
            k += 1
        return spans

    def start(self, info: VideoInfo, records: Sequence[Any] = ()) -> list[Span] | None:
        super().start(info, records)
        return self.spans_for(info.duration_s)
