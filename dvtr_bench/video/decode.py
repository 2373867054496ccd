"""Sequential decoding with PyAV and the cheap conversions a build needs.

Frames are timed by their presentation timestamps (pts x time base, relative to the stream start), never by
``index / fps``: drone and phone footage is often recorded at a variable frame rate, and index-based times drift.
Frame threading (``thread_type="AUTO"``) lets FFmpeg decode several frames in parallel, which is what keeps a
build close to the speed of ``ffmpeg -f null``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from dvtr_bench.errors import InputError

# swscale's area filter: proper averaging when shrinking 1080p/4K to 224 px (bilinear would alias on texture).
RESIZE_INTERPOLATION = "AREA"


@dataclass
class DecodedFrame:
    index: int          # 0-based presentation order
    t: float            # seconds since the first frame's timestamp
    frame: Any          # av.VideoFrame (source resolution)


def scaled_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """(width, height) with the short side equal to ``short_side`` and the aspect kept; both even (yuv420p)."""
    if width <= 0 or height <= 0:
        raise ValueError(f"bad frame size {width}x{height}")
    if width >= height:
        h = short_side
        w = int(round(width * short_side / height / 2.0)) * 2
    else:
        w = short_side
        h = int(round(height * short_side / width / 2.0)) * 2
    return max(w, 2), max(h, 2)


def iter_frames(path: str | Path, threads: bool = True) -> Iterator[DecodedFrame]:
    """Yield every frame of the first video stream in presentation order with its pts-based time.

    Decoding errors become :class:`InputError` naming the file and the last good time, so a truncated or
    damaged file is reported rather than silently shortened.
    """
    import av

    try:
        container = av.open(str(path))
    except av.FFmpegError as exc:
        raise InputError(f"cannot open video: {exc}", path) from None
    try:
        stream = container.streams.video[0]
        if threads:
            stream.thread_type = "AUTO"
        tb = float(stream.time_base) if stream.time_base is not None else None
        t0: float | None = None
        last_t = -1.0
        index = 0
        try:
            for frame in container.decode(stream):
                if frame.pts is not None and tb is not None:
                    t = frame.pts * tb
                elif frame.time is not None:
                    t = float(frame.time)
                else:
                    # No timestamps at all (raw streams): fall back to the nominal rate.
                    rate = float(stream.average_rate or stream.guessed_rate or 25)
                    t = index / rate
                if t0 is None:
                    t0 = t
                t -= t0
                if t <= last_t:
                    # Duplicate or out-of-order pts (broken muxers): keep time strictly increasing.
                    t = last_t + 1e-6
                last_t = t
                yield DecodedFrame(index=index, t=t, frame=frame)
                index += 1
        except av.FFmpegError as exc:
            raise InputError(f"decoding failed after {index} frames (t={max(last_t, 0):.2f}s): {exc}",
                             path) from None
        if index == 0:
            raise InputError("no decodable video frames", path)
    finally:
        container.close()


class Scaler:
    """Resize/convert frames through one cached swscale context.

    ``VideoFrame.reformat`` builds a new swscale context on every call, which for 1080p input costs several times
    the scaling itself; a long-lived reformatter reuses the context while the sizes and formats stay the same.
    """

    def __init__(self) -> None:
        from av.video.reformatter import VideoReformatter

        self._r = VideoReformatter()

    def __call__(self, frame: Any, width: int, height: int, format: str = "yuv420p") -> Any:
        return self._r.reformat(frame, width=width, height=height, format=format,
                                interpolation=RESIZE_INTERPOLATION)

    def rgb(self, frame: Any, width: int | None = None, height: int | None = None) -> np.ndarray:
        """RGB uint8 array (colour matrix and range taken from the frame's own metadata)."""
        w = width or frame.width
        h = height or frame.height
        return self(frame, w, h, "rgb24").to_ndarray()


def to_small(frame: Any, width: int, height: int) -> Any:
    """Downscale a decoded frame to yuv420p with area averaging (one-off; use :class:`Scaler` in loops)."""
    return frame.reformat(width=width, height=height, format="yuv420p", interpolation=RESIZE_INTERPOLATION)


def to_rgb(frame: Any) -> np.ndarray:
    """RGB uint8 array of a (small) frame; colour matrix and range come from the frame's own metadata."""
    return frame.to_ndarray(format="rgb24")


def yuv_planes(frame: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Zero-copy views of the Y, U, V planes of a planar 4:2:0 frame (line padding removed)."""
    planes = []
    for plane in frame.planes[:3]:
        w = plane.width
        h = plane.height
        arr = np.frombuffer(plane, np.uint8).reshape(h, plane.line_size)[:, :w]
        planes.append(arr)
    return planes[0], planes[1], planes[2]


def iter_frames_ahead(path: str | Path, depth: int = 8) -> Iterator[DecodedFrame]:
    """:func:`iter_frames` with decoding in a background thread, ``depth`` frames ahead of the consumer.

    While the consumer scales and analyses a frame (GIL released in swscale and numpy), the decoder thread keeps
    feeding packets to FFmpeg's frame threads, so decoding does not stall behind the analysis. Errors raised by the
    decoder are re-raised in the consumer.
    """
    import queue
    import threading

    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def produce() -> None:
        try:
            for df in iter_frames(path):
                while not stop.is_set():
                    try:
                        q.put(df, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(done)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            q.put(exc)

    t = threading.Thread(target=produce, name="dvtr-decode", daemon=True)
    t.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while t.is_alive():
            try:
                q.get_nowait()
            except queue.Empty:
                t.join(0.05)
