"""The single decode pass: segmentation and protocol frame sampling share one sequential decode.

Two paths, chosen by the segmenter:

* **planned spans** (fixed windows, annotation-aligned): every clip and so every protocol time is known before
  decoding. Frames are decoded and dropped; only the frame nearest each protocol time is downscaled, converted
  to RGB and JPEG-encoded. Cost ~ a bare decode.
* **data-driven spans** (shot cuts): every frame is downscaled once to the protocol size (short side 224,
  YUV 4:2:0) and a 96-px copy feeds the detector. Downscaled frames of the open shot are kept in a
  :class:`FrameBuffer`; when the detector closes a shot, the 12 frames nearest the protocol times are picked
  from it and the buffer is emptied up to the next shot. The buffer holds at most ``max_buffer_frames`` frames
  (about 135 KB each at 224p): past that it keeps every other frame, so a take of hours costs bounded memory and
  the picked frame is at most a few source frames away from its protocol time; the stored
  ``frame_times_s`` are always the true times of the frames stored.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from dvtr_bench.progress import Progress, ProgressFn
from dvtr_bench.protocol import v1
from dvtr_bench.video.decode import Scaler, iter_frames, iter_frames_ahead, scaled_size
from dvtr_bench.video.probe import VideoInfo, probe
from dvtr_bench.video.segmenters import Segmenter, Span, Transition


@dataclass(frozen=True)
class SamplingConfig:
    """How protocol frames are taken from each clip (protocol v1 by default)."""

    num_frames: int = v1.NUM_FRAMES
    short_side: int = v1.FRAME_SHORT_SIDE
    jpeg_quality: int = v1.JPEG_QUALITY
    max_buffer_frames: int = 900

    def to_dict(self) -> dict[str, Any]:
        return {"num_frames": self.num_frames, "short_side": self.short_side, "jpeg_quality": self.jpeg_quality,
                "placement": "middles of equal segments (dvtr_bench.protocol.v1.frame_times)",
                "max_buffer_frames": self.max_buffer_frames}


@dataclass
class SampledClip:
    span: Span
    frames: list[bytes]            # JPEG
    frame_times_s: list[float]     # true pts time of each stored frame
    frame_indices: list[int]


@dataclass
class PassResult:
    info: VideoInfo
    clips: list[SampledClip]
    transitions: list[Transition]
    n_frames: int
    end_s: float                   # end of the last frame (its time + one frame duration)
    timings: dict[str, float] = field(default_factory=dict)


def encode_jpeg(rgb: np.ndarray, quality: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def tiny_yuv(small: Any, width: int, scaler: Scaler | None = None) -> np.ndarray:
    """A ``width``-px wide float32 YUV image (H, W, 3) from a (downscaled) frame, for the detector.

    One swscale call to planar 4:4:4 at the tiny size (area filter), then a single copy into an H x W x 3 array.
    """
    h = max(8, int(round(width * small.height / small.width)))
    t = (scaler or Scaler())(small, width, h, "yuv444p")
    out = np.empty((h, width, 3), np.float32)
    for c, plane in enumerate(t.planes[:3]):
        out[..., c] = np.frombuffer(plane, np.uint8).reshape(h, plane.line_size)[:, :width]
    return out


class FrameBuffer:
    """Downscaled frames of the open shot, thinned by halves once it exceeds ``cap`` entries."""

    def __init__(self, cap: int):
        self.cap = max(2 * v1.NUM_FRAMES, cap)
        self.entries: list[tuple[int, float, Any]] = []
        self.stride = 1
        self.base = 0

    def add(self, index: int, t: float, small: Any) -> None:
        if (index - self.base) % self.stride:
            return
        self.entries.append((index, t, small))
        if len(self.entries) > self.cap:
            self.entries = self.entries[::2]
            self.stride *= 2
            self.base = self.entries[0][0]

    def drop_before(self, index: int) -> None:
        if self.entries and self.entries[0][0] >= index:
            return
        self.entries = [e for e in self.entries if e[0] >= index]
        self.stride = 1
        self.base = index

    def pick(self, span: Span, times: np.ndarray) -> list[tuple[int, float, Any]]:
        lo = span.start_frame if span.start_frame is not None else -1
        hi = span.end_frame if span.end_frame is not None else 1 << 62
        cand = [e for e in self.entries if lo <= e[0] < hi and span.start_s - 1e-6 <= e[1] < span.end_s + 1e-6]
        if not cand:
            cand = [e for e in self.entries if lo <= e[0] < hi] or self.entries
        ts = np.array([e[1] for e in cand])
        return [cand[int(np.argmin(np.abs(ts - t)))] for t in times]


def process_video(path: str | Path, segmenter: Segmenter, sampling: SamplingConfig = SamplingConfig(),
                  records: Sequence[Any] = (), info: VideoInfo | None = None,
                  progress: ProgressFn | None = None, telemetry: Any = None) -> PassResult:
    """Decode ``path`` once; return its clips (spans + protocol frames as JPEG) and detected transitions.

    ``telemetry`` (a :class:`~dvtr_bench.video.telemetry.Track`) goes to segmenters that declare
    ``uses_telemetry``."""
    t_start = time.perf_counter()
    info = info or probe(path)
    if getattr(segmenter, "uses_telemetry", False):
        if telemetry is None:
            from dvtr_bench.video.telemetry import find_sidecar, read_srt

            sidecar = find_sidecar(path)
            telemetry = read_srt(sidecar) if sidecar is not None else None
        planned = segmenter.start(info, records, telemetry=telemetry)
    else:
        planned = segmenter.start(info, records)
    if planned is not None:
        result = _planned_pass(path, info, planned, segmenter, sampling, progress)
    else:
        result = _detect_pass(path, info, segmenter, sampling, progress)
    result.timings["pass_s"] = time.perf_counter() - t_start
    return result


def _jpeg_of(frame: Any, sampling: SamplingConfig, scaler: Scaler, rotation: int = 0) -> bytes:
    """JPEG of a frame at the protocol size (scaled and converted to RGB in one swscale call), turned upright
    by its display rotation (degrees counter-clockwise, as players and ``ffmpeg`` show it)."""
    w, h = scaled_size(frame.width, frame.height, sampling.short_side)
    rgb = scaler.rgb(frame, w, h)
    if rotation:
        rgb = np.ascontiguousarray(np.rot90(rgb, rotation // 90))
    return encode_jpeg(rgb, sampling.jpeg_quality)


def _planned_pass(path: str | Path, info: VideoInfo, spans: list[Span], segmenter: Segmenter,
                  sampling: SamplingConfig, progress: ProgressFn | None) -> PassResult:
    n = sampling.num_frames
    targets: list[tuple[float, int, int]] = []
    for si, sp in enumerate(spans):
        for k, t in enumerate(v1.frame_times(sp.start_s, sp.end_s, n)):
            targets.append((float(t), si, k))
    targets.sort()
    chosen: dict[tuple[int, int], tuple[int, float, bytes]] = {}
    cache: dict[int, bytes] = {}
    ptr = 0
    prev = None
    last = None
    n_frames = 0
    frame_dur = 1.0 / info.fps if info.fps else 0.04
    next_report = 10.0

    scaler = Scaler()

    def take(df: Any, key: tuple[int, int]) -> None:
        if df.index not in cache:
            if len(cache) > 4:
                cache.pop(next(iter(cache)))
            cache[df.index] = _jpeg_of(df.frame, sampling, scaler, info.rotation)
        chosen[key] = (df.index, df.t, cache[df.index])

    for df in iter_frames(path):
        n_frames += 1
        if n_frames > 1:
            frame_dur = max(1e-6, df.t - last.t)
        while ptr < len(targets) and targets[ptr][0] <= df.t:
            t, si, k = targets[ptr]
            use = prev if prev is not None and (t - prev.t) <= (df.t - t) else df
            take(use, (si, k))
            ptr += 1
        prev = df
        last = df
        if progress is not None and df.t >= next_report:
            progress(Progress("footage", advance=10.0))
            next_report += 10.0
    end_s = last.t + frame_dur
    while ptr < len(targets):
        t, si, k = targets[ptr]
        if spans[si].start_s < end_s:
            take(last, (si, k))
        ptr += 1
    clips = []
    for si, sp in enumerate(spans):
        got = [chosen.get((si, k)) for k in range(n)]
        if any(g is None for g in got):
            continue   # the span starts after the last decodable frame (duration in the header was wrong)
        clips.append(SampledClip(span=sp, frames=[g[2] for g in got], frame_times_s=[round(g[1], 6) for g in got],
                                 frame_indices=[g[0] for g in got]))
    return PassResult(info=info, clips=clips, transitions=list(getattr(segmenter, "transitions", [])),
                      n_frames=n_frames, end_s=end_s)


def _detect_pass(path: str | Path, info: VideoInfo, segmenter: Segmenter, sampling: SamplingConfig,
                 progress: ProgressFn | None) -> PassResult:
    tiny_width = int(getattr(segmenter, "tiny_width", 96))
    buf = FrameBuffer(sampling.max_buffer_frames)
    clips: list[SampledClip] = []
    size: tuple[int, int] | None = None
    last = None
    n_frames = 0
    frame_dur = 1.0 / info.fps if info.fps else 0.04
    next_report = 10.0

    scaler, rgb_scaler, tiny_scaler = Scaler(), Scaler(), Scaler()

    def sample(spans: list[Span]) -> None:
        for sp in spans:
            times = v1.frame_times(sp.start_s, sp.end_s, sampling.num_frames)
            picked = buf.pick(sp, times)
            jpegs: dict[int, bytes] = {}
            for idx, _, kept in picked:
                if idx not in jpegs:
                    jpegs[idx] = _jpeg_of(kept, sampling, rgb_scaler, info.rotation)
            clips.append(SampledClip(span=sp, frames=[jpegs[p[0]] for p in picked],
                                     frame_times_s=[round(p[1], 6) for p in picked],
                                     frame_indices=[p[0] for p in picked]))

    for df in iter_frames_ahead(path):
        fr = df.frame
        if size is None or (fr.width, fr.height) != size[2:]:
            w, h = scaled_size(fr.width, fr.height, sampling.short_side)
            size = (w, h, fr.width, fr.height)
        if min(fr.width, fr.height) > sampling.short_side:
            # Downscale once; the small copy feeds both the detector and, if picked, the stored frame.
            kept = scaler(fr, size[0], size[1])
        else:
            # Small sources: keep the decoded frame and upscale only the frames that get picked.
            kept = fr if fr.format.name in ("yuv420p", "yuvj420p") else fr.reformat(format="yuv420p")
        if n_frames > 0:
            frame_dur = max(1e-6, df.t - last.t)
        n_frames += 1
        last = df
        buf.add(df.index, df.t, kept)
        closed = segmenter.push(df.index, df.t, tiny_yuv(kept, tiny_width, tiny_scaler))
        if closed:
            sample(closed)
        buf.drop_before(segmenter.keep_from())
        if progress is not None and df.t >= next_report:
            progress(Progress("footage", advance=10.0))
            next_report += 10.0
    end_s = last.t + frame_dur
    sample(segmenter.finish(n_frames, end_s))
    return PassResult(info=info, clips=clips, transitions=list(segmenter.transitions), n_frames=n_frames,
                      end_s=end_s)
