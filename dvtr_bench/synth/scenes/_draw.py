"""Drawing helpers shared by more than one scene family: ground textures, trees, roads and traffic,
parked objects, people.

Every helper draws from ``ctx.rng``; the order of its draws is part of the output, so a change
here changes every seed of every scene that calls it.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from dvtr_bench.synth import movers as mv
from dvtr_bench.synth.scenes.base import Ctx, Scene
from dvtr_bench.synth.world import COLOURS, Canvas, jitter_colour, place, signed_distance, value_noise


# Ground materials (RGB), before lighting.
GRASS = (88, 128, 62)
DRY_GRASS = (146, 146, 92)
SOIL = (122, 96, 72)
ASPHALT = (78, 78, 78)
CONCRETE = (168, 168, 162)
SAND = (222, 204, 162)
GRAVEL = (128, 122, 112)
WATER = {"blue": (38, 84, 126), "green": (46, 96, 84)}
# Real car fleets are mostly achromatic; bright colours are the minority that captions can single out.
CAR_COLOURS = ["white"] * 5 + ["black"] * 4 + ["grey"] * 4 + ["red"] * 2 + ["blue"] * 2 + ["yellow"]
PARKED_COLOURS = ["white"] * 6 + ["black"] * 5 + ["grey"] * 5 + ["red", "blue"]
TREE_GREENS = [(62, 104, 40), (78, 118, 48), (54, 92, 38), (90, 126, 56)]


def _weighted(rng: np.random.Generator, names: list[str]) -> str:
    return names[int(rng.integers(len(names)))]


def _base_ground(ctx: Ctx, base: tuple[int, int, int], amount: float = 0.12, cell_m: float = 12.0,
                 patch: tuple[int, int, int] | None = None) -> np.ndarray:
    """Fill the map with a textured ground and return the noise field for reuse."""
    cv = ctx.canvas
    h, w = cv.img.shape[:2]
    noise = value_noise(ctx.rng, h, w, cell_m * cv.ppm, octaves=4)
    tint = None
    if patch is not None:
        pn = value_noise(ctx.rng, h, w, cell_m * 4 * cv.ppm, octaves=2)
        m = np.clip((pn - 0.1) * 3.0, 0, 1)[..., None]
        tint = m * (np.asarray(patch, np.float32) - np.asarray(base, np.float32))[None, None]
    cv.fill(base, noise, amount, tint)
    return noise


def _grain(ctx: Ctx, amount: float = 6.0) -> None:
    """Fine sensor-scale grain baked into the map so flat areas are not perfectly flat."""
    cv = ctx.canvas
    h, w = cv.img.shape[:2]
    g = value_noise(ctx.rng, h, w, 2.5, octaves=1) * (amount * 0.6)
    cv.img[:] = np.clip(cv.img.astype(np.float32) + g[..., None], 0, 255).astype(np.uint8)


def _trees(ctx: Ctx, centres: np.ndarray, radii: np.ndarray, palette: list[tuple[int, int, int]],
           shade_dark: float = 0.55) -> None:
    """Round tree crowns with a cast shadow and a sunlit highlight, drawn in three passes."""
    cv, rng = ctx.canvas, ctx.rng
    if len(centres) == 0:
        return
    sun = ctx.light.sun
    img = cv.img
    shadow_layer = img.copy()
    for c, r in zip(centres, radii):
        cv.circle(c + sun * r * 1.6, r, (0, 0, 0), shadow_layer)
    # Shadows darken whatever is beneath instead of painting an opaque colour.
    m = shadow_layer.sum(-1) < img.sum(-1)
    img[m] = (img[m].astype(np.float32) * (1.0 - shade_dark)).astype(np.uint8)
    cols = [palette[int(i)] for i in rng.integers(len(palette), size=len(centres))]
    for c, r, col in zip(centres, radii, cols):
        col = jitter_colour(rng, col, 10)
        cv.circle(c, r, mv.shade(col, 0.82))
        cv.circle(c - sun * r * 0.35, r * 0.72, col)
        cv.circle(c - sun * r * 0.6, r * 0.35, mv.shade(col, 1.18))


def _scatter(rng: np.random.Generator, extent: tuple[float, float, float, float], spacing: float,
             keep: Callable[[np.ndarray], np.ndarray] | None = None, jitter: float = 0.45) -> np.ndarray:
    """Jittered-grid points over ``extent`` (metres), optionally filtered by ``keep(points) -> bool``."""
    x0, y0, x1, y1 = extent
    xs = np.arange(x0, x1 + spacing, spacing)
    ys = np.arange(y0, y1 + spacing, spacing)
    g = np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2)
    g = g + rng.uniform(-jitter, jitter, g.shape) * spacing
    if keep is not None and len(g):
        g = g[keep(g)]
    return g


def _perp(d: np.ndarray) -> np.ndarray:
    return np.array([-d[1], d[0]])


def _dist_to_line(p: np.ndarray, a: np.ndarray, d: np.ndarray) -> np.ndarray:
    d = d / np.linalg.norm(d)
    return (p[:, 0] - a[0]) * (-d[1]) + (p[:, 1] - a[1]) * d[0]


def _half_len(canvas: Canvas) -> float:
    """Half length of lines drawn through the take's centre: beyond the farthest map corner, so that
    line ends and wrapping traffic are never on screen."""
    x0, y0, x1, y1 = canvas.extent
    return float(max(np.hypot(x, y) for x in (x0, x1) for y in (y0, y1))) + 25.0


def _traffic(ctx: Ctx, scene: Scene, a: np.ndarray, d: np.ndarray, lane_offsets: list[float],
             lane_dirs: list[int], per_lane: list[int], speed_range: tuple[float, float],
             asphalt: tuple[int, int, int], trucks: bool = True) -> list[int]:
    """Cars along straight lanes; each lane has one speed so cars never overlap. Returns mover ids."""
    rng = ctx.rng
    L = _half_len(ctx.canvas)
    ids = []
    shadow = mv.shade(asphalt, 0.5)
    for off, sgn, k in zip(lane_offsets, lane_dirs, per_lane):
        if k <= 0:
            continue
        v = rng.uniform(*speed_range)
        # Even spacing with jitter; traffic is placed around the mid-take view so it is seen.
        gap = rng.uniform(18.0, 40.0)
        s0 = (np.arange(k) - (k - 1) / 2) * gap + rng.uniform(-gap * 0.3, gap * 0.3, k) + rng.uniform(-15, 15)
        for s_mid in s0:
            s = wrap(s_mid + sgn * v * ctx.t, -L, L)
            pos = (a + _perp(d) * off)[None] + (s[:, None] * d[None])
            head = np.full(ctx.n, np.arctan2(d[1] * sgn, d[0] * sgn))
            name = _weighted(rng, CAR_COLOURS)
            big = trucks and rng.random() < 0.12
            col = jitter_colour(rng, COLOURS[name], 8)
            parts = mv.truck_parts(col, shadow=shadow) if big else mv.car_parts(col, shadow=shadow)
            m = mv.Mover("truck" if big else "car", name, pos, head, parts, 5.0 if big else 2.5)
            scene.movers.append(m)
            ids.append(len(scene.movers) - 1)
    return ids


wrap = mv.wrap


def _road(ctx: Ctx, a: np.ndarray, d: np.ndarray, n_lanes: int, lane_w: float = 3.5,
          markings: bool = True, edge: tuple[int, int, int] = CONCRETE) -> tuple[float, np.ndarray]:
    """Paint a straight road through a along d. Returns its half width and the asphalt noise."""
    cv, rng = ctx.canvas, ctx.rng
    half = n_lanes * lane_w / 2.0
    dist = signed_distance(cv, a, d)
    side = np.abs(dist) <= half + 2.2
    asphalt = jitter_colour(rng, ASPHALT, 6)
    h, w = cv.img.shape[:2]
    noise = value_noise(rng, h, w, 3.0 * cv.ppm, octaves=3)
    cv.paint(side & (np.abs(dist) > half + 0.3), edge, noise, 0.06)
    cv.paint(np.abs(dist) <= half, asphalt, noise, 0.08)
    if markings:
        L = _half_len(cv)
        white = (222, 222, 216)
        dd = d / np.linalg.norm(d)
        nn = _perp(dd)
        for sgn in (-1, 1):
            cv.segment(a + nn * sgn * (half - 0.35) - dd * L, a + nn * sgn * (half - 0.35) + dd * L, 0.18, white)
        for k in range(1, n_lanes):
            off = -half + k * lane_w
            centre = k == n_lanes // 2
            dash, gapl = (3.0, 6.0) if not centre or n_lanes > 2 else (4.0, 4.0)
            s = -L
            while s < L:
                p = a + nn * off + dd * s
                cv.segment(p, p + dd * dash, 0.2 if not centre else 0.25, white)
                s += dash + gapl
    return half, np.asarray(asphalt)


def _paint_parts(cv: Canvas, parts: list[mv.Part], centre: np.ndarray, heading: float, sun: np.ndarray) -> None:
    """Paint a mover's polygons into the static map (parked cars, moored boats)."""
    for poly, colour, is_shadow in parts:
        pts = place(poly, centre + (sun if is_shadow else 0.0), heading)
        cv.poly(pts, colour)


def _local_to_world(a: np.ndarray, d: np.ndarray, along: np.ndarray, across: np.ndarray) -> np.ndarray:
    """Points given as (along d, across d) offsets from a, in world metres."""
    d = d / np.linalg.norm(d)
    return a[None] + along[:, None] * d[None] + across[:, None] * _perp(d)[None]


def _walkers(ctx: Ctx, a: np.ndarray, d: np.ndarray, box: tuple[float, float, float, float], n: int,
             speed: tuple[float, float], colours: list[str], size: float, shadow: tuple[int, int, int],
             scene: Scene, type_: str, palette: dict[str, tuple[int, int, int]] | None = None) -> list[int]:
    """People wandering inside a box given in (along, across) coordinates of the line a + s d."""
    rng = ctx.rng
    ang = float(np.arctan2(d[1], d[0]))
    ids = []
    for _ in range(n):
        start = np.array([rng.uniform(box[0], box[2]), rng.uniform(box[1], box[3])])
        pos, head = mv.wander(rng, ctx.n, ctx.fps, start, rng.uniform(*speed), turn=0.8, box=box)
        world = _local_to_world(a, d, pos[:, 0], pos[:, 1])
        name = colours[int(rng.integers(len(colours)))]
        rgb = (palette or COLOURS)[name]
        parts = mv.person_parts(jitter_colour(rng, rgb, 10), size, shadow)
        scene.movers.append(mv.Mover(type_, name, world, head + ang, parts, size))
        ids.append(len(scene.movers) - 1)
    return ids
