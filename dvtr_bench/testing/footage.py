"""Shared footage for the build tests (video, segmenters, build, dataset): generated once per test session.

A helper module, not a test module: the build test modules import :func:`synth_footage` so that the few seconds of
`dvtr synth` rendering are paid once, whatever subset of the build tests runs.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

import numpy as np


@functools.lru_cache(maxsize=None)
def synth_footage(flights: int = 3, seed: int = 7, width: int = 192, height: int = 108, fps: float = 25.0,
                  min_take: float = 2.0, max_take: float = 5.0, takes: int = 5, exposure_ramps: float = 0.0) -> Path:
    """A `dvtr synth` output folder (videos/, annotations.jsonl, shots.json), removed at interpreter exit."""
    from dvtr_bench.synth import generate

    root = Path(tempfile.mkdtemp(prefix="dvtr-build-footage-"))
    atexit.register(shutil.rmtree, root, True)
    generate(root, flights=flights, seed=seed, resolution=(width, height), fps=fps, min_take=min_take,
             max_take=max_take, takes_per_flight=takes, exposure_ramps=exposure_ramps)
    return root


def write_video(path: Path, frames: list[np.ndarray], fps: int = 25, pts: list[int] | None = None,
                time_base: tuple[int, int] | None = None, gop: int = 25, codec: str = "libx264",
                rotation: int = 0) -> Path:
    """Encode RGB frames as H.264 with PyAV; ``pts`` (in ``time_base`` units) makes a variable-rate file;
    ``rotation`` (degrees counter-clockwise) goes into the display matrix, as a phone or gimbal filming upright
    writes it."""
    from fractions import Fraction

    import av

    out = av.open(str(path), "w")
    st = out.add_stream(codec, rate=fps)
    st.height, st.width = frames[0].shape[:2]
    st.pix_fmt = "yuv420p"
    if rotation:
        st.set_display_rotation(rotation)
    st.options = {"g": str(gop), "preset": "ultrafast"} if codec in ("libx264", "libx265") else {"g": str(gop)}
    if codec == "libx265":
        st.options["x265-params"] = "log-level=error"
    if time_base is not None:
        # the encoder rewrites pts in its own time base: set it on the codec context too
        st.time_base = Fraction(*time_base)
        st.codec_context.time_base = Fraction(*time_base)
    for i, img in enumerate(frames):
        f = av.VideoFrame.from_ndarray(img, format="rgb24")
        if pts is not None:
            f.pts = pts[i]
            f.time_base = Fraction(*time_base)
        for p in st.encode(f):
            out.mux(p)
    for p in st.encode():
        out.mux(p)
    out.close()
    return path


def textured(rng: np.random.Generator, h: int, w: int, base: tuple[int, int, int]) -> np.ndarray:
    """A smooth random texture around a base colour (ground seen from above, roughly)."""
    import cv2

    noise = rng.random((h // 8 + 2, w // 8 + 2, 3)).astype(np.float32)
    noise = cv2.resize(noise, (w + 64, h + 64), interpolation=cv2.INTER_CUBIC)
    img = np.clip(np.asarray(base, np.float32) + (noise - 0.5) * 120, 0, 255)
    return img.astype(np.uint8)
