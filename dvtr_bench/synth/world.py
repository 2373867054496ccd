"""Ground-map drawing in world units (metres): a canvas, value-noise textures and the named colour palette.

World coordinates are metres with x to the right and y downwards (the image convention), so that a map
pixel is simply ``(world - origin) * ppm``. Everything a take shows that does not move is painted once
into such a map; each video frame is then an affine warp of it.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# The only colour words captions use. Values are sRGB as a camera would record them in daylight;
# they were chosen to stay distinct after H.264 and a 224 px resize so that colour words are learnable.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (196, 38, 34),
    "blue": (38, 78, 186),
    "white": (236, 236, 232),
    "black": (32, 32, 36),
    "yellow": (238, 198, 36),
    "green": (46, 136, 58),
    "orange": (236, 116, 28),
    "grey": (128, 130, 134),
}

# Sub-pixel precision for OpenCV drawing: coordinates are passed multiplied by 2**SHIFT.
SHIFT = 4
_ONE = 1 << SHIFT


def value_noise(rng: np.random.Generator, h: int, w: int, cell_px: float, octaves: int = 3,
                persistence: float = 0.5) -> np.ndarray:
    """Smooth fractal noise of shape (h, w), float32, roughly zero-mean with unit-ish amplitude.

    Each octave upsamples a small Gaussian grid with bicubic interpolation, which costs one resize
    per octave instead of any per-pixel Python work.
    """
    out = np.zeros((h, w), np.float32)
    amp, total, cell = 1.0, 0.0, float(cell_px)
    for _ in range(octaves):
        gh = max(2, int(h / max(cell, 1.0)) + 2)
        gw = max(2, int(w / max(cell, 1.0)) + 2)
        grid = rng.standard_normal((gh, gw)).astype(np.float32)
        out += amp * cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
        total += amp
        amp *= persistence
        cell /= 2.0
        if cell < 1.5:
            break
    return out / total


def jitter_colour(rng: np.random.Generator, rgb: tuple[int, int, int], amount: float = 12.0) -> tuple[int, int, int]:
    """A colour close to ``rgb``: real objects of one named colour are never all the same shade."""
    c = np.clip(np.asarray(rgb, np.float32) + rng.normal(0.0, amount, 3), 0, 255)
    return tuple(int(v) for v in c)


def rot(theta: float | np.ndarray) -> np.ndarray:
    """2x2 rotation matrix (or a stack of them) for angle(s) in radians."""
    c, s = np.cos(theta), np.sin(theta)
    return np.array([[c, -s], [s, c]], np.float64) if np.ndim(theta) == 0 else np.stack(
        [np.stack([c, -s], -1), np.stack([s, c], -1)], -2)


def rect_pts(length: float, width: float) -> np.ndarray:
    """Corners of a rectangle centred at the origin, its length along +x."""
    l2, w2 = length / 2.0, width / 2.0
    return np.array([[-l2, -w2], [l2, -w2], [l2, w2], [-l2, w2]], np.float64)


def place(pts: np.ndarray, centre: tuple[float, float] | np.ndarray, angle: float) -> np.ndarray:
    """Rotate local points by ``angle`` and move them to ``centre`` (world metres)."""
    return np.asarray(pts, np.float64) @ rot(angle).T + np.asarray(centre, np.float64)


@dataclass
class Canvas:
    """An RGB ground map covering ``extent`` = (x0, y0, x1, y1) metres at ``ppm`` pixels per metre."""

    x0: float
    y0: float
    ppm: float
    img: np.ndarray

    @classmethod
    def create(cls, extent: tuple[float, float, float, float], ppm: float) -> "Canvas":
        x0, y0, x1, y1 = extent
        w = int(np.ceil((x1 - x0) * ppm))
        h = int(np.ceil((y1 - y0) * ppm))
        return cls(x0, y0, ppm, np.zeros((h, w, 3), np.uint8))

    @property
    def extent(self) -> tuple[float, float, float, float]:
        h, w = self.img.shape[:2]
        return (self.x0, self.y0, self.x0 + w / self.ppm, self.y0 + h / self.ppm)

    def grid(self, step_m: float) -> tuple[np.ndarray, np.ndarray]:
        """World coordinates of a coarse lattice over the map (for region masks computed analytically)."""
        h, w = self.img.shape[:2]
        return (self.x0 + (np.arange(w) + 0.5) / self.ppm, self.y0 + (np.arange(h) + 0.5) / self.ppm)

    def to_px(self, pts: np.ndarray) -> np.ndarray:
        # Pixel centres sit at integer coordinates for OpenCV, hence the half-pixel shift.
        p = ((np.asarray(pts, np.float64) - (self.x0, self.y0)) * self.ppm - 0.5) * _ONE
        return np.round(p).astype(np.int32)

    def poly(self, pts: np.ndarray, colour: tuple[int, int, int], img: np.ndarray | None = None) -> None:
        cv2.fillPoly(self.img if img is None else img, [self.to_px(pts)], colour, cv2.LINE_AA, SHIFT)

    def polys(self, many: list[np.ndarray], colour: tuple[int, int, int]) -> None:
        if many:
            cv2.fillPoly(self.img, [self.to_px(p) for p in many], colour, cv2.LINE_AA, SHIFT)

    def circle(self, centre: tuple[float, float] | np.ndarray, radius_m: float, colour: tuple[int, int, int],
               img: np.ndarray | None = None) -> None:
        c = self.to_px(np.asarray(centre)[None])[0]
        r = max(1, int(round(radius_m * self.ppm * _ONE)))
        cv2.circle(self.img if img is None else img, (int(c[0]), int(c[1])), r, colour, -1, cv2.LINE_AA, SHIFT)

    def segment(self, a: np.ndarray, b: np.ndarray, width_m: float, colour: tuple[int, int, int]) -> None:
        """A straight band of ``width_m`` metres from a to b (lane markings, rails, fences)."""
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        d = b - a
        n = np.linalg.norm(d)
        if n == 0:
            return
        nrm = np.array([-d[1], d[0]]) / n * (width_m / 2.0)
        self.poly(np.array([a + nrm, b + nrm, b - nrm, a - nrm]), colour)

    def rect(self, centre: tuple[float, float] | np.ndarray, length: float, width: float, angle: float,
             colour: tuple[int, int, int]) -> None:
        self.poly(place(rect_pts(length, width), centre, angle), colour)

    def paint(self, mask: np.ndarray, base: tuple[int, int, int], noise: np.ndarray, amount: float) -> None:
        """Fill ``mask`` with a textured material: ``base`` modulated by a shared noise field."""
        if not mask.any():
            return
        tex = np.asarray(base, np.float32)[None, :] * (1.0 + amount * noise[mask][:, None])
        self.img[mask] = np.clip(tex, 0, 255).astype(np.uint8)

    def fill(self, base: tuple[int, int, int], noise: np.ndarray, amount: float,
             tint: np.ndarray | None = None) -> None:
        """Fill the whole map with a textured material (``tint`` adds a per-pixel colour shift)."""
        tex = np.asarray(base, np.float32)[None, None, :] * (1.0 + amount * noise[..., None])
        if tint is not None:
            tex += tint
        self.img[:] = np.clip(tex, 0, 255).astype(np.uint8)


def line_mask(canvas: Canvas, a: np.ndarray, direction: np.ndarray, half_width: float) -> np.ndarray:
    """Boolean mask of the map pixels within ``half_width`` metres of the infinite line through a."""
    xs, ys = canvas.grid(1.0)
    d = np.asarray(direction, np.float64)
    d = d / np.linalg.norm(d)
    # Signed distance to the line, separable in x and y, so the mask costs two small outer sums.
    dist = (xs[None, :] - a[0]) * (-d[1]) + (ys[:, None] - a[1]) * d[0]
    return np.abs(dist) <= half_width


def signed_distance(canvas: Canvas, a: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """Signed distance (metres, float32) of every map pixel to the line through a along ``direction``."""
    xs, ys = canvas.grid(1.0)
    d = np.asarray(direction, np.float64)
    d = d / np.linalg.norm(d)
    return ((xs[None, :] - a[0]) * (-d[1]) + (ys[:, None] - a[1]) * d[0]).astype(np.float32)


def along_distance(canvas: Canvas, a: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """Distance (metres, float32) of every map pixel along ``direction`` from a."""
    xs, ys = canvas.grid(1.0)
    d = np.asarray(direction, np.float64)
    d = d / np.linalg.norm(d)
    return ((xs[None, :] - a[0]) * d[0] + (ys[:, None] - a[1]) * d[1]).astype(np.float32)
