"""Drone camera trajectories: forward flight, lateral pans, yaw rotation, ascent/descent and hover.

A trajectory gives, for every frame, the ground point under the image centre (metres), the heading
(radians; 0 means image-up is world -y) and the ground height covered by the image (metres; the
altitude proxy). Every trajectory is smooth: speeds change slowly and the wobble added to all of them
is a low-frequency signal of a few centimetres, so consecutive frames never jump. A cut detector must
see no cut inside a take.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

CAMERA_MOTIONS = ("forward", "pan_left", "pan_right", "rotate", "ascend", "descend", "hover")


@dataclass
class Camera:
    motion: str
    cx: np.ndarray        # [n] metres
    cy: np.ndarray        # [n] metres
    theta: np.ndarray     # [n] radians
    view_h: np.ndarray    # [n] metres of ground covered by the image height
    aspect: float         # width / height of the image
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return int(self.cx.shape[0])

    def up(self, i: int) -> np.ndarray:
        """World direction of image-up at frame i."""
        return np.array([np.sin(self.theta[i]), -np.cos(self.theta[i])])

    def right(self, i: int) -> np.ndarray:
        return np.array([np.cos(self.theta[i]), np.sin(self.theta[i])])

    def world_to_screen(self, width: int, height: int) -> np.ndarray:
        """[n, 2, 3] affine maps from world metres to screen pixels (pixel centres at integers)."""
        s = height / self.view_h
        c, si = np.cos(self.theta), np.sin(self.theta)
        # Screen axes are the camera's right and down vectors; R(-theta) expresses world offsets in them.
        a = np.empty((self.n, 2, 3), np.float64)
        a[:, 0, 0], a[:, 0, 1] = s * c, s * si
        a[:, 1, 0], a[:, 1, 1] = -s * si, s * c
        a[:, 0, 2] = width / 2.0 - 0.5 - (a[:, 0, 0] * self.cx + a[:, 0, 1] * self.cy)
        a[:, 1, 2] = height / 2.0 - 0.5 - (a[:, 1, 0] * self.cx + a[:, 1, 1] * self.cy)
        return a

    def view_corners(self) -> np.ndarray:
        """[n, 4, 2] world corners of the ground footprint of every frame."""
        hw = self.view_h * self.aspect / 2.0
        hh = self.view_h / 2.0
        c, s = np.cos(self.theta), np.sin(self.theta)
        right = np.stack([c, s], -1)
        up = np.stack([s, -c], -1)
        centre = np.stack([self.cx, self.cy], -1)
        corners = []
        for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
            corners.append(centre + sx * hw[:, None] * right + sy * hh[:, None] * up)
        return np.stack(corners, 1)


def smooth_noise(rng: np.random.Generator, n: int, knots_per_s: float, fps: float) -> np.ndarray:
    """A smooth zero-mean signal of n samples with about ``knots_per_s`` random knots per second."""
    k = max(4, int(np.ceil(n / fps * knots_per_s)) + 3)
    knots = rng.standard_normal(k).astype(np.float32)
    return cv2.resize(knots[None, :], (n, 1), interpolation=cv2.INTER_CUBIC)[0].astype(np.float64)


def make_camera(rng: np.random.Generator, motion: str, n: int, fps: float, aspect: float,
                view_h: float, max_displacement: float | None = None,
                heading: float | None = None) -> Camera:
    """Trajectory of ``n`` frames for ``motion``, centred so that the mid-take ground point is (0, 0).

    ``max_displacement`` caps how far (metres) the image centre travels during the take: scenes built
    around one landmark (a bridge, a pitch) use it so that the landmark stays in view most of the take.
    """
    if motion not in CAMERA_MOTIONS:
        raise ValueError(f"unknown camera motion {motion!r}")
    t = np.arange(n, dtype=np.float64) / fps
    dur = max(n / fps, 1e-6)
    if heading is not None:
        theta0 = heading
    elif motion in ("forward", "pan_left", "pan_right"):
        # Travelling along a world axis keeps the ground map's bounding box tight (and its memory small);
        # scenes orient themselves to the flight line, so nothing on screen depends on this choice.
        theta0 = float(rng.integers(4)) * np.pi / 2
    else:
        theta0 = rng.uniform(-np.pi, np.pi)
    # Wobble present in every motion: centimetres at well under 1 Hz (a stabilised gimbal).
    wob = float(rng.uniform(0.04, 0.12)) * view_h / 60.0
    jx = wob * smooth_noise(rng, n, 0.6, fps)
    jy = wob * smooth_noise(rng, n, 0.6, fps)
    jt = np.deg2rad(0.15) * smooth_noise(rng, n, 0.4, fps)
    theta = np.full(n, theta0) + jt
    vh = np.full(n, float(view_h))
    dx = np.zeros(n)
    dy = np.zeros(n)
    params: dict[str, Any] = {"heading_deg": round(float(np.rad2deg(theta0)), 2), "view_height_m": round(view_h, 2)}
    if motion in ("forward", "pan_left", "pan_right"):
        speed = float(rng.uniform(3.0, 9.0) if motion == "forward" else rng.uniform(2.0, 6.0))
        if max_displacement is not None:
            speed = min(speed, max_displacement / dur)
        # Speed breathes slowly by up to 10%; integrate it so the position stays smooth.
        v = speed * (1.0 + 0.1 * np.sin(2 * np.pi * t / rng.uniform(6, 14) + rng.uniform(0, 2 * np.pi)))
        dist = np.cumsum(v) / fps
        dist -= dist[n // 2]
        if motion == "forward":
            drift = np.deg2rad(rng.uniform(-1.5, 1.5)) * (t - t[n // 2])  # gentle curve of the flight line
            theta = theta + drift
            ux, uy = np.sin(theta), -np.cos(theta)
            dx, dy = np.cumsum(ux * v) / fps, np.cumsum(uy * v) / fps
            dx -= dx[n // 2]
            dy -= dy[n // 2]
        else:
            sign = 1.0 if motion == "pan_right" else -1.0
            dx, dy = sign * dist * np.cos(theta0), sign * dist * np.sin(theta0)
        params["speed_mps"] = round(speed, 2)
    elif motion == "rotate":
        rate = float(rng.uniform(3.0, 8.0)) * (1 if rng.random() < 0.5 else -1)
        theta = theta + np.deg2rad(rate) * (t - t[n // 2])
        params["yaw_rate_dps"] = round(rate, 2)
    elif motion in ("ascend", "descend"):
        # Exponential height change reads as a constant zoom rate, as when a drone climbs steadily.
        ratio = float(rng.uniform(1.35, 1.9))
        rate = np.log(ratio) / dur
        rate = min(rate, np.log(1.06))  # at most 6% per second: no sudden zooms
        sign = 1.0 if motion == "ascend" else -1.0
        vh = view_h * np.exp(sign * rate * (t - t[n // 2]))
        params["height_ratio"] = round(float(vh[-1] / vh[0]), 3)
    else:  # hover: only the wobble, a little stronger
        jx *= 2.0
        jy *= 2.0
    return Camera(motion, dx + jx, dy + jy, theta, vh, aspect, params)
