"""Overhead scene builders: one function per scene kind paints the ground map and creates the movers.

A builder receives the take's camera trajectory, so it can lay its main feature (road, river, railway)
along the flight line and put landmarks where the camera looks for most of the take. It returns a
:class:`Scene`: the map, the movers, caption groups and attributes; the scene graph in the annotations
is derived from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import cv2
import numpy as np

from dvtr_bench.synth import movers as mv
from dvtr_bench.synth.camera import Camera
from dvtr_bench.synth.world import (COLOURS, Canvas, along_distance, jitter_colour, place, rect_pts,
                                    signed_distance, value_noise)


@dataclass
class Group:
    """A set of similar objects captions can talk about ("three white boats move along the river")."""

    type: str                      # singular noun: "car", "boat", "person"
    plural: str                    # "cars", "boats", "people"
    members: list[int]             # indices into Scene.movers (static items have movers without parts)
    moving: bool
    verb: str = ""                 # third-person plural phrase: "drive along the road"
    verb_one: str = ""             # singular: "drives along the road"
    colour_salient: bool = True    # colour words are visually reliable for this group


@dataclass
class Light:
    gain: np.ndarray               # per-channel multiplier (lighting colour and strength)
    sun: np.ndarray                # world shadow offset per metre of object height
    time_of_day: str


@dataclass
class Scene:
    kind: str
    canvas: Canvas
    movers: list[mv.Mover] = field(default_factory=list)
    groups: list[Group] = field(default_factory=list)
    attributes: dict[str, Any] = field(default_factory=dict)
    phrases: list[str] = field(default_factory=list)   # extra true statements ("a river runs through the forest")


@dataclass
class Ctx:
    rng: np.random.Generator
    cam: Camera
    canvas: Canvas
    fps: float
    light: Light

    @property
    def n(self) -> int:
        return self.cam.n

    @property
    def t(self) -> np.ndarray:
        return (np.arange(self.n) - self.n // 2) / self.fps

    def main_direction(self) -> np.ndarray:
        """Direction of travel of the camera (or a random one when it does not travel)."""
        m = self.cam.motion
        mid = self.n // 2
        if m == "forward":
            return self.cam.up(mid)
        if m in ("pan_left", "pan_right"):
            return self.cam.right(mid)
        a = self.rng.uniform(-np.pi, np.pi)
        return np.array([np.cos(a), np.sin(a)])

    def shadow(self, height: float) -> np.ndarray:
        return self.light.sun * height

    def static(self, type_: str, colour: str, centre: np.ndarray, radius: float) -> mv.Mover:
        """A static item tracked for captions only (it is painted into the map, not drawn per frame)."""
        pos = np.repeat(np.asarray(centre, np.float64)[None], self.n, 0)
        return mv.Mover(type_, colour, pos, np.zeros(self.n), [], radius)


# Ground materials (RGB), before lighting.
GRASS = (88, 128, 62)
DRY_GRASS = (146, 146, 92)
SOIL = (122, 96, 72)
ASPHALT = (74, 76, 80)
CONCRETE = (168, 168, 162)
SAND = (222, 204, 162)
GRAVEL = (128, 122, 112)
WATER = {"blue": (38, 84, 126), "green": (46, 96, 84), "brown": (112, 98, 70)}
CAR_COLOURS = ["white", "black", "grey", "red", "blue", "white", "black", "grey", "yellow"]


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
    g = value_noise(ctx.rng, h, w, 1.6, octaves=1) * amount
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
    x0, y0, x1, y1 = canvas.extent
    return float(np.hypot(x1 - x0, y1 - y0)) / 2.0 + 10.0


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
            m = mv.Mover("truck" if big else "car", name, pos, head, _shadowed(parts, ctx), 5.0 if big else 2.5)
            scene.movers.append(m)
            ids.append(len(scene.movers) - 1)
    return ids


def wrap(s: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return mv.wrap(s, lo, hi)


def _shadowed(parts: list[mv.Part], ctx: Ctx) -> list[mv.Part]:
    # Shadow polygons are offset in the renderer by the sun vector; nothing else to adjust here.
    return parts


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
        along = _perp(_perp(d))
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
                cv.segment(p, p + dd * dash, 0.2 if not centre else 0.25,
                           (236, 196, 60) if (centre and n_lanes == 2 and rng.random() < 0.0) else white)
                s += dash + gapl
        del along
    return half, np.asarray(asphalt)


# ----------------------------------------------------------------------------------------------------
# Scene kinds
# ----------------------------------------------------------------------------------------------------

def build_road(ctx: Ctx) -> Scene:
    rng, cv = ctx.rng, ctx.canvas
    scene = Scene("road", cv)
    d = ctx.main_direction()
    d = d @ np.array([[np.cos(e), -np.sin(e)], [np.sin(e), np.cos(e)]]).T if (e := rng.uniform(-0.08, 0.08)) else d
    view_w = float(np.median(ctx.cam.view_h)) * ctx.cam.aspect
    a = _perp(d) * rng.uniform(-0.12, 0.12) * ctx.cam.view_h.min()
    urban = rng.random() < 0.5
    _base_ground(ctx, CONCRETE if urban else GRASS, 0.10 if urban else 0.16, 10.0,
                 patch=(150, 150, 146) if urban else DRY_GRASS)
    n_lanes = int(rng.choice([2, 4]))
    travel = np.hypot(ctx.cam.cx[-1] - ctx.cam.cx[0], ctx.cam.cy[-1] - ctx.cam.cy[0])
    intersection = travel < 0.6 * view_w and rng.random() < 0.75
    half, asphalt = _road(ctx, a, d, n_lanes)
    if intersection:
        d2 = _perp(d)
        half2, _ = _road(ctx, a, d2, int(rng.choice([2, 4])))
        # Clear the first road's markings inside the junction box and paint zebra crossings.
        box = place(rect_pts(2 * half2 + 0.2, 2 * half + 0.2), a, np.arctan2(d[1], d[0]))
        cv.poly(box, tuple(int(c) for c in asphalt))
        dd, nn = d / np.linalg.norm(d), _perp(d / np.linalg.norm(d))
        for sgn in (-1, 1):
            for k in np.arange(-half + 0.6, half - 0.3, 1.0):
                c = a + dd * sgn * (half2 + 2.5) + nn * k
                cv.rect(c, 3.0, 0.5, np.arctan2(dd[1], dd[0]), (226, 226, 220))
            for k in np.arange(-half2 + 0.6, half2 - 0.3, 1.0):
                c = a + nn * sgn * (half + 2.5) + dd * k
                cv.rect(c, 3.0, 0.5, np.arctan2(nn[1], nn[0]), (226, 226, 220))
        scene.movers.append(ctx.static("intersection", "", a, 6.0))
        scene.groups.append(Group("intersection", "intersections", [len(scene.movers) - 1], False))
        scene.attributes["intersection"] = True
    # Roadside: trees on grass, or building blocks in town.
    def off_road(p: np.ndarray) -> np.ndarray:
        ok = np.abs(_dist_to_line(p, a, d)) > half + 5
        if intersection:
            ok &= np.abs(_dist_to_line(p, a, _perp(d))) > half + 5
        return ok
    if urban:
        pts = _scatter(rng, cv.extent, 22.0, off_road, 0.2)
        ang = np.arctan2(d[1], d[0])
        for p in pts:
            ln, wd = rng.uniform(10, 18), rng.uniform(8, 14)
            if np.abs(_dist_to_line(p[None], a, d))[0] < half + 3 + wd / 2 + 2:
                continue
            if intersection and np.abs(_dist_to_line(p[None], a, _perp(d)))[0] < half + 3 + ln / 2 + 2:
                continue
            roof = jitter_colour(rng, [(150, 150, 150), (170, 90, 70), (96, 98, 104), (190, 186, 176)][int(rng.integers(4))], 8)
            cv.poly(place(rect_pts(ln, wd), p + ctx.shadow(4.0), ang), (60, 62, 64))
            cv.poly(place(rect_pts(ln, wd), p, ang), roof)
            cv.poly(place(rect_pts(ln * 0.25, wd * 0.3), p + [1.0, 0.5], ang), mv.shade(roof, 0.85))
    else:
        pts = _scatter(rng, cv.extent, rng.uniform(7, 12), off_road)
        keep = rng.random(len(pts)) < rng.uniform(0.25, 0.6)
        pts = pts[keep]
        _trees(ctx, pts, rng.uniform(2.0, 3.8, len(pts)), [(54, 104, 46), (66, 118, 52), (44, 88, 44)])
    _grain(ctx)
    # Traffic.
    lane_w = 3.5
    offs = [(-n_lanes / 2 + 0.5 + k) * lane_w for k in range(n_lanes)]
    dirs = [1 if o > 0 else -1 for o in offs]
    per_lane = [int(rng.integers(0, 4)) for _ in offs]
    if sum(per_lane) == 0:
        per_lane[0] = 2
    ids = _traffic(ctx, scene, a, d, offs, dirs, per_lane, (7.0, 14.0), tuple(int(c) for c in asphalt))
    scene.groups.insert(0, Group("car", "cars", ids, True, "drive along the road", "drives along the road"))
    scene.attributes.update({"lanes": n_lanes, "setting": "town" if urban else "countryside"})
    return scene


def build_parking_lot(ctx: Ctx) -> Scene:
    rng, cv = ctx.rng, ctx.canvas
    scene = Scene("parking_lot", cv)
    asphalt = jitter_colour(rng, (86, 88, 92), 6)
    _base_ground(ctx, asphalt, 0.07, 6.0, patch=(96, 98, 100))
    ang = float(np.arctan2(*ctx.main_direction()[::-1])) + (np.pi / 2 if rng.random() < 0.5 else 0.0)
    d = np.array([np.cos(ang), np.sin(ang)])
    nrm = _perp(d)
    occupancy = float(rng.choice([0.2, 0.55, 0.9]) + rng.uniform(-0.08, 0.08))
    stall_w, stall_l, aisle = 2.6, 5.0, 7.0
    pitch = 2 * stall_l + aisle
    L = _half_len(cv)
    white = (220, 220, 214)
    row0 = rng.uniform(0, pitch)
    ids = []
    count = 0
    grass_strip = rng.random() < 0.5
    for r in np.arange(-L - row0, L, pitch):
        # A double row of stalls centred at distance r across; aisles between double rows.
        centre_line = nrm * r
        if grass_strip:
            cv.poly(place(rect_pts(2 * L, 1.2), centre_line, ang), (84, 120, 60))
        for side in (-1, 1):
            row_c = centre_line + nrm * side * (stall_l / 2 + (0.6 if grass_strip else 0.0))
            for s in np.arange(-L, L, stall_w):
                p = row_c + d * s
                cv.segment(p - nrm * stall_l / 2, p + nrm * stall_l / 2, 0.14, white)
                if rng.random() < occupancy:
                    name = _weighted(rng, CAR_COLOURS)
                    col = jitter_colour(rng, COLOURS[name], 8)
                    c = p + d * stall_w / 2 + nrm * side * rng.uniform(-0.25, 0.25)
                    head = ang + np.pi / 2 * (1 if side > 0 else -1) + rng.uniform(-0.04, 0.04)
                    if rng.random() < 0.5:
                        head += np.pi
                    _paint_parts(cv, mv.car_parts(col, shadow=mv.shade(asphalt, 0.5)), c, head, ctx.shadow(1.2))
                    scene.movers.append(ctx.static("car", name, c, 2.3))
                    ids.append(len(scene.movers) - 1)
                    count += 1
    _grain(ctx, 4.0)
    scene.groups.append(Group("car", "cars", ids, False, "are parked in rows", "is parked"))
    # One or two cars cruise an aisle looking for a space.
    movers = []
    for _ in range(int(rng.integers(0, 3))):
        k = int(rng.integers(-1, 2))
        base = nrm * (k * pitch - row0 + pitch / 2 + (pitch - aisle) / 2 - pitch / 2 + aisle / 2 + stall_l)
        base = nrm * (np.round(0.0) + k * pitch - row0 + stall_l + aisle / 2 + (0.6 if grass_strip else 0.0))
        sgn = 1 if rng.random() < 0.5 else -1
        v = rng.uniform(2.5, 4.5)
        s = wrap(rng.uniform(-20, 20) + sgn * v * ctx.t, -L, L)
        pos = base[None] + s[:, None] * d[None] + nrm[None] * sgn * 1.6
        name = _weighted(rng, CAR_COLOURS)
        col = jitter_colour(rng, COLOURS[name], 8)
        head = np.full(ctx.n, ang if sgn > 0 else ang + np.pi)
        scene.movers.append(mv.Mover("car", name, pos, head, mv.car_parts(col, shadow=mv.shade(asphalt, 0.5)), 2.5))
        movers.append(len(scene.movers) - 1)
    if movers:
        scene.groups.append(Group("car", "cars", movers, True, "drive slowly between the rows",
                                  "drives slowly between the rows"))
    occ = "nearly empty" if occupancy < 0.35 else ("half full" if occupancy < 0.75 else "full")
    scene.attributes.update({"occupancy": occ, "parked_cars": count})
    return scene


def _paint_parts(cv: Canvas, parts: list[mv.Part], centre: np.ndarray, heading: float, sun: np.ndarray) -> None:
    """Paint a mover's polygons into the static map (parked cars, moored boats)."""
    for poly, colour, is_shadow in parts:
        pts = place(poly, centre + (sun if is_shadow else 0.0), heading)
        cv.poly(pts, colour)


def build_river(ctx: Ctx) -> Scene:
    rng, cv = ctx.rng, ctx.canvas
    scene = Scene("river", cv)
    d = ctx.main_direction()
    d = d / np.linalg.norm(d)
    view_h = float(np.median(ctx.cam.view_h))
    width = rng.uniform(0.3, 0.6) * view_h
    a = _perp(d) * rng.uniform(-0.12, 0.12) * view_h
    water_name = str(rng.choice(["blue", "green", "brown"], p=[0.5, 0.3, 0.2]))
    water = jitter_colour(rng, WATER[water_name], 5)
    _base_ground(ctx, GRASS, 0.16, 10.0, patch=DRY_GRASS)
    h, w = cv.img.shape[:2]
    dist = signed_distance(cv, a, d)
    along = along_distance(cv, a, d)
    amp, lam, ph = rng.uniform(0, 0.15) * width, rng.uniform(150, 300), rng.uniform(0, 2 * np.pi)
    dist = dist - amp * np.sin(2 * np.pi * along / lam + ph)
    half = width / 2
    bank = np.abs(dist) <= half + rng.uniform(2.0, 5.0)
    noise = value_noise(rng, h, w, 4.0 * cv.ppm, octaves=3)
    cv.paint(bank, jitter_colour(rng, (150, 132, 100), 8), noise, 0.1)
    wet = np.abs(dist) <= half
    # Water is darker in the deep middle; a faint current texture is stretched along the flow.
    depth = np.clip(1.0 - np.abs(dist) / half, 0, 1)
    ripple = value_noise(rng, h, w, 2.0 * cv.ppm, octaves=2)
    base = np.asarray(water, np.float32)
    tex = base[None] * (1.04 - 0.16 * depth[wet][:, None] + 0.05 * ripple[wet][:, None])
    cv.img[wet] = np.clip(tex, 0, 255).astype(np.uint8)
    # Riverside trees.
    pts = _scatter(rng, cv.extent, rng.uniform(7, 11),
                   lambda p: np.abs(_dist_to_line(p, a, d) - 0) > half + 8)
    keep = rng.random(len(pts)) < rng.uniform(0.2, 0.6)
    _trees(ctx, pts[keep], rng.uniform(2.0, 4.0, keep.sum()), [(50, 100, 44), (66, 116, 50)])
    _grain(ctx, 4.0)
    nb = int(rng.integers(1, 5))
    ids = []
    for k in range(nb):
        sgn = 1 if rng.random() < 0.5 else -1
        off = (sgn * rng.uniform(0.1, 0.3)) * width
        v = rng.uniform(1.5, 4.5)
        s_mid = rng.uniform(-0.35, 0.35) * view_h * ctx.cam.aspect
        s = s_mid + sgn * v * ctx.t
        centre = a[None] + _perp(d)[None] * off + s[:, None] * d[None]
        # Follow the meander so boats stay in the water.
        along_s = s
        centre = centre + _perp(d)[None] * (amp * np.sin(2 * np.pi * along_s / lam + ph))[:, None]
        head = np.arctan2(np.gradient(centre[:, 1]), np.gradient(centre[:, 0]) + 1e-12) if ctx.n > 1 else np.zeros(1)
        name = str(rng.choice(["white", "red", "blue", "yellow", "white"]))
        ln = rng.uniform(6.0, 11.0)
        wake = mv.shade(water, 1.35)
        parts = mv.boat_parts(jitter_colour(rng, COLOURS[name], 6), ln, wake, mv.shade(water, 0.6))
        scene.movers.append(mv.Mover("boat", name, centre, head, parts, ln / 2))
        ids.append(len(scene.movers) - 1)
    scene.groups.append(Group("boat", "boats", ids, True, "move along the river", "moves along the river"))
    scene.attributes.update({"water_colour": water_name})
    return scene


def build_forest(ctx: Ctx) -> Scene:
    rng, cv = ctx.rng, ctx.canvas
    scene = Scene("forest", cv)
    season = str(rng.choice(["summer", "autumn", "conifer"], p=[0.5, 0.3, 0.2]))
    ground = (58, 74, 40) if season != "autumn" else (92, 78, 48)
    _base_ground(ctx, ground, 0.2, 6.0)
    d = ctx.main_direction()
    track = rng.random() < 0.5
    a = _perp(d) * rng.uniform(-0.2, 0.2) * float(np.median(ctx.cam.view_h))
    if track:
        dist = signed_distance(cv, a, d)
        h, w = cv.img.shape[:2]
        cv.paint(np.abs(dist) <= 2.2, (150, 128, 96), value_noise(rng, h, w, 2 * cv.ppm, 2), 0.12)
    keep = (lambda p: np.abs(_dist_to_line(p, a, d)) > 4.5) if track else None
    spacing = rng.uniform(4.2, 6.0)
    pts = _scatter(rng, cv.extent, spacing, keep, 0.5)
    if season == "summer":
        pal = [(48, 98, 40), (62, 114, 46), (40, 84, 36), (76, 124, 52)]
    elif season == "autumn":
        pal = [(206, 110, 34), (190, 60, 30), (214, 170, 48), (92, 120, 48), (170, 80, 36)]
    else:
        pal = [(30, 66, 40), (38, 78, 46), (26, 58, 36)]
    _trees(ctx, pts, rng.uniform(0.55, 0.75, len(pts)) * spacing, pal, 0.5)
    _grain(ctx, 5.0)
    colour = {"summer": "green", "autumn": "orange", "conifer": "green"}[season]
    scene.attributes.update({"season": season, "canopy_colour": colour, "track": bool(track)})
    if track:
        scene.phrases.append("a dirt track runs through the trees")
    return scene


def build_farmland(ctx: Ctx) -> Scene:
    rng, cv = ctx.rng, ctx.canvas
    scene = Scene("farmland", cv)
    h, w = cv.img.shape[:2]
    d = ctx.main_direction()
    ang = float(np.arctan2(d[1], d[0])) + rng.uniform(-0.3, 0.3)
    dd = np.array([np.cos(ang), np.sin(ang)])
    u = along_distance(cv, np.zeros(2), dd)
    v = signed_distance(cv, np.zeros(2), dd)
    pu, pv = rng.uniform(60, 140), rng.uniform(40, 90)
    iu = np.floor((u + rng.uniform(0, pu)) / pu).astype(np.int32)
    iv = np.floor((v + rng.uniform(0, pv)) / pv).astype(np.int32)
    crops = {"green": (92, 142, 56), "yellow": (206, 180, 92), "brown": (132, 100, 70), "light green": (142, 170, 84)}
    names = list(crops)
    lut_n = 64
    choice = rng.integers(len(names), size=(lut_n, lut_n))
    ci = choice[np.mod(iu, lut_n), np.mod(iv, lut_n)]
    noise = value_noise(rng, h, w, 8 * cv.ppm, 3)
    rows = 0.5 + 0.5 * np.sin(2 * np.pi * v / rng.uniform(1.6, 2.6))
    img = np.zeros((h, w, 3), np.float32)
    for k, nm in enumerate(names):
        m = ci == k
        base = np.asarray(jitter_colour(rng, crops[nm], 6), np.float32)
        img[m] = base[None] * (1.0 + 0.1 * noise[m][:, None] - 0.12 * rows[m][:, None])
    cv.img[:] = np.clip(img, 0, 255).astype(np.uint8)
    _grain(ctx, 4.0)
    # The tractor works the field under the camera, along the crop rows.
    colour = str(rng.choice(["green", "red", "blue", "yellow"]))
    sgn = 1 if rng.random() < 0.5 else -1
    speed = rng.uniform(2.0, 3.5)
    lateral = rng.uniform(-0.2, 0.2) * float(np.median(ctx.cam.view_h))
    s = rng.uniform(-10, 10) + sgn * speed * ctx.t
    pos = (_perp(dd) * lateral)[None] + s[:, None] * dd[None]
    head = np.full(ctx.n, ang if sgn > 0 else ang + np.pi)
    crop_here = names[int(ci[min(h - 1, max(0, int((0 - cv.y0) * cv.ppm))), min(w - 1, max(0, int((0 - cv.x0) * cv.ppm)))])]
    parts = mv.tractor_parts(jitter_colour(rng, COLOURS[colour], 6), (50, 46, 38))
    scene.movers.append(mv.Mover("tractor", colour, pos, head, parts, 3.5))
    scene.groups.append(Group("tractor", "tractors", [len(scene.movers) - 1], True, "work the field",
                              "works the field"))
    present = sorted({names[int(k)] for k in np.unique(ci)})
    scene.attributes.update({"field_colours": present, "crop_under_tractor": crop_here})
    return scene


BUILDERS: dict[str, Callable[[Ctx], Scene]] = {
    "road": build_road,
    "parking_lot": build_parking_lot,
    "river": build_river,
    "forest": build_forest,
    "farmland": build_farmland,
}

# Kinds whose main subject is one place: the camera must not travel far from it.
LANDMARK_KINDS = {"sports_field", "bridge", "construction_site"}
# Typical ground height of the image (metres) per kind: beaches and pitches are flown lower.
VIEW_HEIGHT = {"beach": (34.0, 48.0), "sports_field": (70.0, 100.0), "forest": (55.0, 90.0),
               "farmland": (60.0, 100.0)}
