"""DJI-style telemetry sidecars for synthetic flights: ``flight_000.SRT`` next to ``flight_000.mp4``.

The track follows the camera that drew each frame: the ground point under the image centre (metres, east = world
x, north = -world y) placed on a flight whose takes lie 300 m apart along an east-bound line from a drawn origin;
height above take-off from the ground height the image covers (a camera with a 50° vertical field of view, so
height = 1.072 x covered height); the gimbal heading from the camera's heading; exposure (EV) and colour
temperature from the take's exposure ramp. Written in the bracketed format of recent DJI firmware, one subtitle
per 0.1 s, so the whole telemetry path of a build (parse, clip summary, ``telemetry`` segmenter) is tested on
footage whose motion is known. The origin is drawn from its own generator: the video and captions do not change.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np

TAKE_SPACING_M = 300.0
HEIGHT_PER_VIEW = 1.0 / (2.0 * math.tan(math.radians(25.0)))
SUBTITLE_HZ = 10.0
METRES_PER_DEGREE = 111_320.0


def _ts(seconds: float) -> str:
    ms = int(round(seconds * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d},{ms:03d}"


def write_flight_srt(path: str | Path, seed: int, flight: int, takes: Sequence[Any], entry: dict[str, Any],
                     fps: float) -> Path:
    """Write the sidecar of one flight (``takes``: the rendered takes, ``entry``: its shots.json entry)."""
    rng = np.random.default_rng([seed, flight, 5])
    lat0, lon0 = float(rng.uniform(35.0, 55.0)), float(rng.uniform(-5.0, 20.0))
    ground = float(rng.uniform(0.0, 600.0))
    n = int(entry["n_frames"])
    spans = [(t["start_frame"], t["end_frame"]) for t in entry["takes"]]
    every = max(1, int(round(fps / SUBTITLE_HZ)))
    lines = []
    for k, g in enumerate(range(0, n, every)):
        # the take on screen: the one whose pure span holds the frame, else the nearest (transition frames)
        ti = min(range(len(spans)), key=lambda i: 0 if spans[i][0] <= g < spans[i][1]
                 else min(abs(g - spans[i][0]), abs(g - (spans[i][1] - 1))))
        take = takes[ti]
        cam = take.camera
        j = int(np.clip(g - (spans[ti][0] - take.plan.head), 0, cam.n - 1))
        east = float(cam.cx[j]) + ti * TAKE_SPACING_M
        north = -float(cam.cy[j])
        lat = lat0 + north / METRES_PER_DEGREE
        lon = lon0 + east / (METRES_PER_DEGREE * math.cos(math.radians(lat0)))
        rel = float(cam.view_h[j]) * HEIGHT_PER_VIEW
        yaw = (math.degrees(float(cam.theta[j])) + 180.0) % 360.0 - 180.0
        ev, ct = 0.0, 5500
        if take.exposure is not None:
            gain = take.exposure[j]
            ev = round(math.log2(max(1e-6, float(gain[1]))), 1)
            ct = int(round(5500 * float(gain[2]) / max(1e-6, float(gain[0]))))
        t0, t1 = g / fps, min(n, g + every) / fps
        lines += [str(k + 1), f"{_ts(t0)} --> {_ts(t1)}",
                  f'<font size="28">FrameCnt: {g + 1}, DiffTime: {int(round(1000 * every / fps))}ms',
                  f"[iso: 100] [shutter: 1/500.0] [fnum: 2.8] [ev: {ev}] [ct: {ct}] [color_md: default] "
                  f"[focal_len: 24.00] [latitude: {lat:.6f}] [longitude: {lon:.6f}] "
                  f"[rel_alt: {rel:.3f} abs_alt: {rel + ground:.3f}] "
                  f"[gimbal_yaw: {yaw:.1f} gimbal_pitch: -90.0 gimbal_roll: 0.0] </font>", ""]
    p = Path(path)
    p.write_text("\n".join(lines), encoding="utf-8", newline="\n")
    return p
