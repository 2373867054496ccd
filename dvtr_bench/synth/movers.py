"""Moving objects (cars, boats, people, players, tractors, trains) and their vectorised per-frame drawing.

Each object is a set of convex polygons in its own frame (metres, length along +x) plus a pose per
frame. Per frame, the points of all objects are transformed at once with numpy and filled with
``cv2.fillConvexPoly`` (anti-aliased, sub-pixel), so moving objects glide smoothly between frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from dvtr_bench.synth.world import COLOURS, SHIFT, rect_pts

Part = tuple[np.ndarray, tuple[int, int, int], bool]   # local polygon, colour, is_shadow


@dataclass
class Mover:
    type: str                 # "car", "boat", "person", ...
    colour: str               # caption colour word
    pos: np.ndarray           # [n, 2] world metres
    heading: np.ndarray       # [n] radians (direction of +x of the local frame)
    parts: list[Part]
    radius: float             # metres, bounding circle (culling, visibility)
    group: str = ""           # caption group, e.g. "car" / "player_red"
    tags: dict = field(default_factory=dict)


def shade(rgb: tuple[int, int, int], f: float) -> tuple[int, int, int]:
    return tuple(int(min(255, max(0, c * f))) for c in rgb)


def chamfer_rect(length: float, width: float, c: float) -> np.ndarray:
    l2, w2 = length / 2, width / 2
    return np.array([[-l2 + c, -w2], [l2 - c, -w2], [l2, -w2 + c], [l2, w2 - c], [l2 - c, w2],
                     [-l2 + c, w2], [-l2, w2 - c], [-l2, -w2 + c]])


def disc(r: float, k: int = 10, cx: float = 0.0, cy: float = 0.0) -> np.ndarray:
    a = np.linspace(0, 2 * np.pi, k, endpoint=False)
    return np.stack([cx + r * np.cos(a), cy + r * np.sin(a)], -1)


def car_parts(colour: tuple[int, int, int], length: float = 4.5, width: float = 1.9,
              shadow: tuple[int, int, int] | None = (40, 40, 42)) -> list[Part]:
    glass = (28, 32, 40)
    parts: list[Part] = []
    if shadow is not None:
        parts.append((chamfer_rect(length, width, 0.35), shadow, True))
    parts += [
        (chamfer_rect(length, width, 0.35), colour, False),
        (rect_pts(0.55, width * 0.8) + [length * 0.17, 0], glass, False),     # windscreen
        (rect_pts(0.4, width * 0.78) + [-length * 0.3, 0], glass, False),     # rear window
        (rect_pts(length * 0.34, width * 0.72) + [-length * 0.05, 0], shade(colour, 1.12), False),  # roof
    ]
    return parts


def truck_parts(colour: tuple[int, int, int], length: float = 9.0, width: float = 2.5,
                shadow: tuple[int, int, int] | None = (40, 40, 42)) -> list[Part]:
    parts: list[Part] = []
    if shadow is not None:
        parts.append((rect_pts(length, width), shadow, True))
    parts += [(rect_pts(length * 0.72, width) + [-length * 0.14, 0], shade(colour, 0.9), False),
              (rect_pts(length * 0.24, width * 0.95) + [length * 0.37, 0], colour, False),
              (rect_pts(length * 0.06, width * 0.8) + [length * 0.45, 0], (30, 34, 40), False)]
    return parts


def boat_parts(colour: tuple[int, int, int], length: float, wake: tuple[int, int, int] | None,
               shadow: tuple[int, int, int] | None) -> list[Part]:
    w = length * 0.36
    hull = np.array([[length / 2, 0], [length * 0.22, -w / 2], [-length / 2, -w / 2 * 0.9],
                     [-length / 2, w / 2 * 0.9], [length * 0.22, w / 2]])
    parts: list[Part] = []
    if wake is not None:
        # Two thin foam lines spreading from the stern, and a short churned patch behind it.
        for sgn in (-1, 1):
            parts.append((np.array([[-length * 0.45, sgn * w * 0.35], [-length * 1.7, sgn * w * 1.1],
                                    [-length * 1.7, sgn * w * 1.1 - sgn * 0.3], [-length * 0.45, sgn * w * 0.12]]),
                          wake, False))
        parts.append((rect_pts(length * 0.9, w * 0.55) + [-length * 0.9, 0], wake, False))
    if shadow is not None:
        parts.append((hull, shadow, True))
    parts += [(hull, colour, False),
              (rect_pts(length * 0.3, w * 0.55) + [-length * 0.08, 0], (238, 238, 234), False),
              (rect_pts(length * 0.12, w * 0.45) + [length * 0.02, 0], (40, 50, 60), False)]
    return parts


def person_parts(colour: tuple[int, int, int], size: float = 0.75,
                 shadow: tuple[int, int, int] | None = None) -> list[Part]:
    parts: list[Part] = []
    if shadow is not None:
        parts.append((disc(size * 0.55, 8), shadow, True))
    parts += [(np.array([[-size * 0.3, -size * 0.55], [size * 0.3, -size * 0.55], [size * 0.3, size * 0.55],
                         [-size * 0.3, size * 0.55]]), colour, False),
              (disc(size * 0.24, 8), (60, 42, 30), False)]
    return parts


def tractor_parts(colour: tuple[int, int, int], shadow: tuple[int, int, int] | None) -> list[Part]:
    parts: list[Part] = []
    body = rect_pts(4.6, 2.3)
    if shadow is not None:
        parts.append((rect_pts(6.8, 2.9) + [-1.0, 0], shadow, True))
    tyre = (24, 24, 24)
    parts += [(rect_pts(2.3, 5.6) + [-3.6, 0], (120, 120, 118), False),          # implement (harrow)
              (rect_pts(1.8, 0.7) + [-1.2, -1.35], tyre, False), (rect_pts(1.8, 0.7) + [-1.2, 1.35], tyre, False),
              (rect_pts(1.1, 0.5) + [1.5, -1.2], tyre, False), (rect_pts(1.1, 0.5) + [1.5, 1.2], tyre, False),
              (body, colour, False),
              (rect_pts(1.6, 1.9) + [-0.7, 0], (210, 220, 225), False)]           # cab roof
    return parts


def train_car_parts(colour: tuple[int, int, int], length: float, loco: bool,
                    shadow: tuple[int, int, int] | None) -> list[Part]:
    width = 3.0
    parts: list[Part] = []
    if shadow is not None:
        parts.append((rect_pts(length, width), shadow, True))
    body = chamfer_rect(length, width, 0.9 if loco else 0.2)
    parts += [(body, colour, False),
              (rect_pts(length * 0.85, width * 0.35), shade(colour, 0.82), False)]
    if loco:
        parts.append((rect_pts(0.8, width * 0.8) + [length / 2 - 1.3, 0], (30, 34, 40), False))
    return parts


def colour_rgb(name: str) -> tuple[int, int, int]:
    return COLOURS[name]


class MoverRenderer:
    """Draws a fixed set of movers into frames; all geometry is transformed with one numpy op per frame."""

    def __init__(self, movers: list[Mover], sun: np.ndarray, gain: np.ndarray):
        self.movers = movers
        pts, obj, offs, spans, cols = [], [], [], [], []
        k = 0
        for i, m in enumerate(movers):
            for poly, colour, is_shadow in m.parts:
                poly = np.asarray(poly, np.float64)
                pts.append(poly)
                obj.append(np.full(len(poly), i))
                offs.append(np.repeat(np.asarray(sun, np.float64)[None] * (1.0 if is_shadow else 0.0), len(poly), 0))
                lit = np.clip(np.asarray(colour, np.float64) * (1.0 if is_shadow else gain), 0, 255)
                cols.append(tuple(int(c) for c in lit) + (255,))
                spans.append((k, k + len(poly), i))
                k += len(poly)
        self.n_obj = len(movers)
        # Static items (tracked for captions only) have no parts; keep the arrays valid but empty.
        self.local = np.concatenate(pts) if pts else np.zeros((0, 2))
        self.obj = np.concatenate(obj) if obj else np.zeros(0, np.int64)
        self.offset = np.concatenate(offs) if offs else np.zeros((0, 2))
        self.drawn = np.zeros(len(movers), bool)
        for _, _, o in spans:
            self.drawn[o] = True
        if movers:
            self.pos = np.stack([m.pos for m in movers], 1)          # [n, M, 2]
            self.heading = np.stack([m.heading for m in movers], 1)  # [n, M]
            self.radius = np.array([m.radius for m in movers])
        self.spans = spans
        self.colours = cols

    def draw(self, frame: np.ndarray, i: int, affine: np.ndarray) -> None:
        if not self.spans:
            return
        h, w = frame.shape[:2]
        pos = self.pos[i]
        ca, sa = np.cos(self.heading[i]), np.sin(self.heading[i])
        c, s = ca[self.obj], sa[self.obj]
        lx, ly = self.local[:, 0], self.local[:, 1]
        wx = pos[self.obj, 0] + c * lx - s * ly + self.offset[:, 0]
        wy = pos[self.obj, 1] + s * lx + c * ly + self.offset[:, 1]
        sx = affine[0, 0] * wx + affine[0, 1] * wy + affine[0, 2]
        sy = affine[1, 0] * wx + affine[1, 1] * wy + affine[1, 2]
        scale = np.hypot(affine[0, 0], affine[0, 1])
        cx = affine[0, 0] * pos[:, 0] + affine[0, 1] * pos[:, 1] + affine[0, 2]
        cy = affine[1, 0] * pos[:, 0] + affine[1, 1] * pos[:, 1] + affine[1, 2]
        r = self.radius * scale * 3.5 + 4  # wakes and shadows reach beyond the body
        on = (cx > -r) & (cx < w + r) & (cy > -r) & (cy < h + r)
        if not on.any():
            return
        pts = np.round(np.stack([sx, sy], -1) * (1 << SHIFT)).astype(np.int32)
        for (a, b, o), col in zip(self.spans, self.colours):
            if on[o]:
                cv2.fillConvexPoly(frame, pts[a:b], col, cv2.LINE_AA, SHIFT)

    def visible(self, affines: np.ndarray, width: int, height: int, frames: slice) -> np.ndarray:
        """[n_frames, M] bool: the object's centre is inside the image (with a small inset)."""
        if not self.n_obj:
            return np.zeros((len(range(*frames.indices(affines.shape[0]))), 0), bool)
        a = affines[frames]
        p = self.pos[frames]
        sx = a[:, 0, 0, None] * p[..., 0] + a[:, 0, 1, None] * p[..., 1] + a[:, 0, 2, None]
        sy = a[:, 1, 0, None] * p[..., 0] + a[:, 1, 1, None] * p[..., 1] + a[:, 1, 2, None]
        m = 0.03 * height
        return (sx > m) & (sx < width - m) & (sy > m) & (sy < height - m)


def along_line(start: np.ndarray, direction: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions [n, 2] and headings [n] of an object at arc length ``s`` on a straight line."""
    d = np.asarray(direction, np.float64)
    d = d / np.linalg.norm(d)
    pos = np.asarray(start, np.float64)[None] + s[:, None] * d[None]
    heading = np.full(len(s), np.arctan2(d[1], d[0]))
    return pos, heading


def wrap(s: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Arc lengths wrapped into [lo, hi): traffic leaves the map at one end and re-enters at the other."""
    return lo + np.mod(s - lo, hi - lo)


def wander(rng: np.random.Generator, n: int, fps: float, start: np.ndarray, speed: float,
           turn: float = 0.6, box: tuple[float, float, float, float] | None = None,
           speed_jitter: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """A smooth random walk (people, players): heading drifts, speed breathes, and it bounces off ``box``."""
    from dvtr_bench.synth.camera import smooth_noise

    h0 = rng.uniform(-np.pi, np.pi)
    heading = h0 + turn * np.cumsum(smooth_noise(rng, n, 0.5, fps)) / fps * 2.0
    v = speed * (1.0 + speed_jitter * smooth_noise(rng, n, 0.5, fps))
    v = np.clip(v, 0.0, None)
    step = np.stack([np.cos(heading), np.sin(heading)], -1) * (v / fps)[:, None]
    pos = np.asarray(start, np.float64)[None] + np.cumsum(step, 0)
    if box is not None:
        # Reflect into the box: a triangle wave keeps the walk continuous (no teleporting at the edges).
        x0, y0, x1, y1 = box
        for k, (lo, hi) in enumerate(((x0, x1), (y0, y1))):
            span = hi - lo
            u = np.mod(pos[:, k] - lo, 2 * span)
            flipped = u > span
            pos[:, k] = lo + np.where(flipped, 2 * span - u, u)
        vel = np.gradient(pos, axis=0)
        heading = np.arctan2(vel[:, 1], vel[:, 0] + 1e-12)
    return pos, heading
