"""Overhead scene builders: one function per scene kind paints the ground map and creates the movers.

A builder receives the take's camera trajectory, so it can lay its main feature (road, river, railway)
along the flight line and put landmarks where the camera looks for most of the take. It returns a
:class:`Scene`: the map, the movers, caption groups and attributes; the scene graph in the annotations
is derived from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

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
    as_one: bool = False           # the members form one object (a train's wagons)
    colour_in: bool = False        # say "players in red" rather than "red players"


@dataclass
class Light:
    gain: np.ndarray               # per-channel multiplier (lighting colour and strength)
    sun: np.ndarray                # world shadow offset per metre of object height
    time_of_day: str
    contrast: float = 1.0          # < 1: flat overcast light, > 1: hard low sun


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
        _trees(ctx, pts, rng.uniform(2.0, 3.8, len(pts)), TREE_GREENS)
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
    lanes_word = "four-lane" if n_lanes == 4 else "two-lane"
    scene.attributes["_kind_nps"] = ["a road", f"a {lanes_word} road"]
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
                    name = _weighted(rng, PARKED_COLOURS)
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
    scene.attributes["_kind_nps"] = ["a parking lot", f"a {occ} parking lot"]
    return scene


def _paint_parts(cv: Canvas, parts: list[mv.Part], centre: np.ndarray, heading: float, sun: np.ndarray) -> None:
    """Paint a mover's polygons into the static map (parked cars, moored boats)."""
    for poly, colour, is_shadow in parts:
        pts = place(poly, centre + (sun if is_shadow else 0.0), heading)
        cv.poly(pts, colour)


def _water_band(ctx: Ctx, a: np.ndarray, d: np.ndarray, width: float, water: tuple[int, int, int],
                meander: float, bank_colour: tuple[int, int, int] = (150, 132, 100)) -> Callable[[np.ndarray], np.ndarray]:
    """Paint a river band through a along d; returns the centreline's lateral offset as a function of s."""
    rng, cv = ctx.rng, ctx.canvas
    h, w = cv.img.shape[:2]
    dist = signed_distance(cv, a, d)
    along = along_distance(cv, a, d)
    amp, lam, ph = meander * width, rng.uniform(150, 300), rng.uniform(0, 2 * np.pi)

    def offset(s: np.ndarray) -> np.ndarray:
        return amp * np.sin(2 * np.pi * s / lam + ph)

    dist = dist - offset(along)
    half = width / 2
    bank = np.abs(dist) <= half + rng.uniform(2.0, 5.0)
    noise = value_noise(rng, h, w, 4.0 * cv.ppm, octaves=3)
    cv.paint(bank, jitter_colour(rng, bank_colour, 8), noise, 0.1)
    wet = np.abs(dist) <= half
    # Water is darker in the deep middle; a faint ripple texture breaks up the flat colour.
    depth = np.clip(1.0 - np.abs(dist) / half, 0, 1)
    ripple = value_noise(rng, h, w, 2.0 * cv.ppm, octaves=2)
    # Glints: small bright flecks where the fine ripple noise peaks, denser in the open middle.
    fine = value_noise(rng, h, w, 0.9 * cv.ppm, octaves=1)
    glint = np.clip((fine[wet] - 1.25) * 1.2, 0, 0.5) * (0.4 + 0.6 * depth[wet])
    base = np.asarray(water, np.float32)
    tex = base[None] * (1.04 - 0.16 * depth[wet][:, None] + 0.05 * ripple[wet][:, None]) + 70.0 * glint[:, None]
    cv.img[wet] = np.clip(tex, 0, 255).astype(np.uint8)
    return offset


def _boats(ctx: Ctx, scene: Scene, a: np.ndarray, d: np.ndarray, width: float, water: tuple[int, int, int],
           offset: Callable[[np.ndarray], np.ndarray], n: int, speed: tuple[float, float] = (1.5, 4.5)) -> list[int]:
    """Boats on their own lanes across the river, placed so the camera sees them mid-take."""
    rng = ctx.rng
    view_w = float(np.median(ctx.cam.view_h)) * ctx.cam.aspect
    lanes = np.linspace(-0.3, 0.3, max(n, 2))[:n] if n > 1 else np.array([rng.uniform(-0.15, 0.15)])
    rng.shuffle(lanes)
    ids = []
    for k in range(n):
        off = lanes[k] * width
        sgn = 1 if off > 0 else -1
        v = rng.uniform(*speed)
        s = rng.uniform(-0.3, 0.3) * view_w + sgn * v * ctx.t
        centre = a[None] + _perp(d)[None] * (off + offset(s))[:, None] + s[:, None] * d[None]
        head = np.arctan2(np.gradient(centre[:, 1]), np.gradient(centre[:, 0]) + 1e-12) if ctx.n > 1 else \
            np.full(ctx.n, np.arctan2(d[1] * sgn, d[0] * sgn))
        name = str(rng.choice(["white", "red", "blue", "yellow", "white"]))
        ln = rng.uniform(6.0, 11.0)
        parts = mv.boat_parts(jitter_colour(rng, COLOURS[name], 6), ln, mv.shade(water, 1.35), mv.shade(water, 0.6))
        scene.movers.append(mv.Mover("boat", name, centre, head, parts, ln / 2))
        ids.append(len(scene.movers) - 1)
    return ids


def build_river(ctx: Ctx) -> Scene:
    rng, cv = ctx.rng, ctx.canvas
    scene = Scene("river", cv)
    d = ctx.main_direction()
    d = d / np.linalg.norm(d)
    view_h = float(np.median(ctx.cam.view_h))
    width = rng.uniform(0.3, 0.6) * view_h
    a = _perp(d) * rng.uniform(-0.12, 0.12) * view_h
    water_name = str(rng.choice(["blue", "green"], p=[0.6, 0.4]))
    water = jitter_colour(rng, WATER[water_name], 5)
    _base_ground(ctx, GRASS, 0.16, 10.0, patch=DRY_GRASS)
    offset = _water_band(ctx, a, d, width, water, rng.uniform(0, 0.15))
    pts = _scatter(rng, cv.extent, rng.uniform(7, 11), lambda p: np.abs(_dist_to_line(p, a, d)) > width / 2 + 8)
    keep = rng.random(len(pts)) < rng.uniform(0.2, 0.6)
    _trees(ctx, pts[keep], rng.uniform(2.0, 4.0, keep.sum()), TREE_GREENS)
    _grain(ctx, 4.0)
    nb = int(rng.integers(0, 5))
    ids = _boats(ctx, scene, a, d, width, water, offset, nb)
    if ids:
        scene.groups.append(Group("boat", "boats", ids, True, "move along the river", "moves along the river"))
    scene.attributes.update({"water_colour": water_name, "boats": nb})
    scene.attributes["_kind_nps"] = ["a river", f"a {water_name} river"]
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
        pal = [(58, 100, 36), (74, 116, 44), (50, 88, 34), (88, 128, 52)]
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
    scene.attributes["_kind_nps"] = ["a forest", {"summer": "a green forest", "autumn": "an autumn forest",
                                                  "conifer": "a dark conifer forest"}[season]]
    if season == "autumn":
        scene.phrases.append("the trees are orange and red")
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
    # Which field colour fills most of the picture: sample the footprint of every 5th frame.
    cam = ctx.cam
    gu, gv = np.meshgrid(np.linspace(-0.45, 0.45, 9), np.linspace(-0.45, 0.45, 5))
    area: dict[str, int] = {}
    for i in range(0, ctx.n, 5):
        vw, vh = cam.view_h[i] * cam.aspect, cam.view_h[i]
        p = (np.array([cam.cx[i], cam.cy[i]])[None] + (gu.ravel() * vw)[:, None] * cam.right(i)[None]
             - (gv.ravel() * vh)[:, None] * cam.up(i)[None])
        px = np.clip(((p - (cv.x0, cv.y0)) * cv.ppm).astype(int), 0, [w - 1, h - 1])
        for k in ci[px[:, 1], px[:, 0]]:
            area[names[int(k)]] = area.get(names[int(k)], 0) + 1
    tot = max(1, sum(area.values()))
    dominant = max(area, key=lambda k: area[k]) if area else None
    share = area.get(dominant, 0) / tot if dominant else 0.0
    scene.attributes.update({"field_colours": present, "crop_under_tractor": crop_here,
                             "dominant_field_colour": dominant if share >= 0.5 else None,
                             "dominant_share": round(share, 3)})
    nps = ["farmland", "farmland with crop fields"]
    if share >= 0.5 and dominant is not None:
        nps.append(f"farmland with {dominant} fields")
        scene.phrases.append(f"most of the fields are {dominant}")
    scene.attributes["_kind_nps"] = nps
    return scene


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


def _umbrella(cv: Canvas, c: np.ndarray, r: float, colour: tuple[int, int, int], sun: np.ndarray) -> None:
    cv.circle(c + sun * 2.2, r, (120, 108, 84))
    k = 8
    for i in range(k):
        a0, a1 = 2 * np.pi * i / k, 2 * np.pi * (i + 1) / k
        tri = np.array([c, c + r * np.array([np.cos(a0), np.sin(a0)]), c + r * np.array([np.cos(a1), np.sin(a1)])])
        cv.poly(tri, colour if i % 2 == 0 else mv.shade(colour, 1.12))


def build_beach(ctx: Ctx) -> Scene:
    rng, cv = ctx.rng, ctx.canvas
    scene = Scene("beach", cv)
    d = ctx.main_direction()
    d = d / np.linalg.norm(d)
    view_h = float(np.median(ctx.cam.view_h))
    side = 1.0 if rng.random() < 0.5 else -1.0
    a = _perp(d) * rng.uniform(-0.15, 0.15) * view_h
    h, w = cv.img.shape[:2]
    sand = jitter_colour(rng, SAND, 8)
    _base_ground(ctx, sand, 0.06, 5.0)
    along = along_distance(cv, a, d)
    # Distance into the sea (positive) from a gently wavy shoreline.
    dist = side * signed_distance(cv, a, d) + 2.5 * np.sin(2 * np.pi * along / rng.uniform(40, 80) + rng.uniform(0, 6))
    noise = value_noise(rng, h, w, 3.0 * cv.ppm, octaves=3)
    wet = (dist > -7) & (dist <= 0)
    cv.paint(wet, mv.shade(sand, 0.8), noise, 0.05)
    sea = dist > 0
    deep = np.asarray(jitter_colour(rng, (28, 92, 138), 6), np.float32)
    shallow = np.asarray(jitter_colour(rng, (76, 176, 186), 6), np.float32)
    f = np.clip(dist[sea] / rng.uniform(18, 35), 0, 1)[:, None]
    col = shallow[None] * (1 - f) + deep[None] * f
    col *= 1.0 + 0.05 * noise[sea][:, None]
    img = cv.img
    img[sea] = np.clip(col, 0, 255).astype(np.uint8)
    # Foam: thin bright bands parallel to the shore in the surf zone.
    spacing = rng.uniform(6, 10)
    phase = np.mod(dist / spacing + 0.15 * noise, 1.0)
    foam = sea & (dist < 3.2 * spacing) & (phase < 0.12)
    foam |= (dist > 0) & (dist < 0.8)
    img[foam] = np.clip(img[foam].astype(np.float32) * 0.35 + 240 * 0.65, 0, 255).astype(np.uint8)
    # Umbrellas in rows on the dry sand, mostly in one rental colour.
    umb_name = str(rng.choice(["red", "blue", "yellow", "orange", "white", "green"]))
    n_rows = int(rng.integers(1, 4))
    spacing_u = rng.uniform(5.0, 8.0)
    L = _half_len(cv)
    ids = []
    r = rng.uniform(1.1, 1.4)
    for row in range(n_rows):
        across = -side * (10 + row * spacing_u)
        offset0 = rng.uniform(0, spacing_u)
        for s_ in np.arange(-L + offset0, L, spacing_u):
            if rng.random() < 0.25:
                continue
            c = _local_to_world(a, d, np.array([s_ + rng.uniform(-0.4, 0.4)]), np.array([across]))[0]
            towel = _local_to_world(a, d, np.array([s_ + 1.6]), np.array([across - side * 1.0]))[0]
            tname = _weighted(rng, list(COLOURS))
            cv.rect(towel, 1.8, 0.9, float(np.arctan2(d[1], d[0])) + np.pi / 2, jitter_colour(rng, COLOURS[tname], 10))
            name = umb_name if rng.random() < 0.85 else str(rng.choice(["red", "blue", "yellow", "white"]))
            _umbrella(cv, c, r, jitter_colour(rng, COLOURS[name], 6), ctx.shadow(1.0))
            scene.movers.append(ctx.static("umbrella", name, c, r))
            ids.append(len(scene.movers) - 1)
    _grain(ctx, 4.0)
    scene.groups.append(Group("umbrella", "umbrellas", ids, False, "stand on the sand", "stands on the sand"))
    n_people = int(rng.integers(4, 22))
    clothes = ["red", "blue", "white", "yellow", "orange", "black", "green"]
    view_w = view_h * ctx.cam.aspect
    box = (-0.6 * view_w, -side * 8.0, 0.6 * view_w, side * 4.0)
    box = (box[0], min(box[1], box[3]), box[2], max(box[1], box[3]))
    people = _walkers(ctx, a, d, box, n_people, (0.6, 1.4), clothes, 0.85, mv.shade(sand, 0.6), scene, "person")
    scene.groups.insert(0, Group("person", "people", people, True, "walk along the shore", "walks along the shore",
                                 colour_salient=False))
    scene.attributes.update({"umbrella_colour": umb_name, "people": n_people})
    scene.attributes["_kind_nps"] = ["a beach", "a sandy beach", "a beach by the sea"]
    return scene


ROOF = {"red": (172, 58, 44), "grey": (112, 114, 120), "orange": (200, 106, 52), "black": (48, 48, 54),
        "white": (214, 212, 206)}


def build_residential(ctx: Ctx) -> Scene:
    rng, cv = ctx.rng, ctx.canvas
    scene = Scene("residential", cv)
    d = ctx.main_direction()
    d = d / np.linalg.norm(d)
    nn = _perp(d)
    ang = float(np.arctan2(d[1], d[0]))
    _base_ground(ctx, jitter_colour(rng, GRASS, 6), 0.14, 8.0, patch=DRY_GRASS)
    view_h = float(np.median(ctx.cam.view_h))
    depth = rng.uniform(22, 30)
    street_w = rng.uniform(6.0, 8.0)
    block = 2 * depth + street_w
    off0 = rng.uniform(-0.2, 0.2) * view_h
    L = _half_len(cv)
    streets = np.arange(off0 - 6 * block, off0 + 6 * block, block)
    streets = streets[np.abs(streets) < L]
    cross_gap = rng.uniform(90, 150)
    cross0 = rng.uniform(-cross_gap / 2, cross_gap / 2)
    crosses = np.arange(cross0 - 8 * cross_gap, cross0 + 8 * cross_gap, cross_gap)
    crosses = crosses[np.abs(crosses) < L]
    for off in streets:
        _road(ctx, nn * off, d, 2, street_w / 2, markings=False, edge=(186, 184, 178))
    for s_ in crosses:
        _road(ctx, d * s_, nn, 2, street_w / 2, markings=False, edge=(186, 184, 178))
    roof_name = str(rng.choice(list(ROOF)))
    houses = []
    lot_w = rng.uniform(15, 21)
    tree_pts = []
    for off in streets:
        for sgn in (-1, 1):
            for s_ in np.arange(-L, L, lot_w):
                if np.min(np.abs(crosses - s_)) < street_w / 2 + lot_w / 2 + 2 if len(crosses) else False:
                    continue
                hl, hw = rng.uniform(9, 13), rng.uniform(8, 11)
                setback = street_w / 2 + 2.5 + rng.uniform(4, 7)
                c = d * (s_ + lot_w / 2) + nn * (off + sgn * (setback + hw / 2))
                name = roof_name if rng.random() < 0.85 else str(rng.choice(list(ROOF)))
                roof = jitter_colour(rng, ROOF[name], 7)
                # Driveway to the street, maybe with a car on it.
                # Driveway from the house to the street.
                cv.rect(c + d * (hl / 2 + 2.0) - nn * sgn * (setback - street_w / 2) / 2 * 0.9, 3.0,
                        setback - street_w / 2 + hw / 2 - 1, ang, (176, 174, 168))
                if rng.random() < 0.35:
                    cname = _weighted(rng, CAR_COLOURS)
                    _paint_parts(cv, mv.car_parts(jitter_colour(rng, COLOURS[cname], 8), shadow=(70, 72, 70)),
                                 c + d * (hl / 2 + 2.0) - nn * sgn * (hw / 2 + 1.0), ang + np.pi / 2, ctx.shadow(1.2))
                # Gable roof: two halves either side of the ridge, the sunlit one brighter.
                cv.poly(place(rect_pts(hl, hw), c + ctx.shadow(5.0), ang), (52, 64, 40))
                ridge_lit = float(np.dot(ctx.light.sun, nn)) < 0
                cv.poly(place(np.array([[-hl / 2, -hw / 2], [hl / 2, -hw / 2], [hl / 2, 0], [-hl / 2, 0]]), c, ang),
                        mv.shade(roof, 1.1 if ridge_lit else 0.84))
                cv.poly(place(np.array([[-hl / 2, 0], [hl / 2, 0], [hl / 2, hw / 2], [-hl / 2, hw / 2]]), c, ang),
                        mv.shade(roof, 0.84 if ridge_lit else 1.1))
                cv.segment(place(np.array([[-hl / 2, 0]]), c, ang)[0], place(np.array([[hl / 2, 0]]), c, ang)[0],
                           0.25, mv.shade(roof, 0.7))
                scene.movers.append(ctx.static("house", name, c, max(hl, hw) / 2))
                houses.append(len(scene.movers) - 1)
                back = c + nn * sgn * (hw / 2 + rng.uniform(4, depth - hw - 2))
                if rng.random() < 0.2:
                    pc = back + d * rng.uniform(-3, 3)
                    cv.rect(pc, 7.5, 4.2, ang, (226, 226, 220))
                    cv.rect(pc, 6.6, 3.4, ang, (64, 170, 200))
                if rng.random() < 0.7:
                    tree_pts.append(back + d * rng.uniform(-lot_w / 2, lot_w / 2))
    if tree_pts:
        pts = np.array(tree_pts)
        _trees(ctx, pts, rng.uniform(2.2, 3.6, len(pts)), TREE_GREENS)
    _grain(ctx, 4.0)
    scene.groups.append(Group("house", "houses", houses, False, "line the streets", "stands by the street",
                              colour_salient=False))
    # A car or two on the street nearest the camera.
    near = streets[np.argmin(np.abs(streets))] if len(streets) else 0.0
    ids = _traffic(ctx, scene, nn * near, d, [-street_w / 4, street_w / 4], [-1, 1],
                   [int(rng.integers(0, 2)), int(rng.integers(0, 3))], (4.0, 8.0), ASPHALT, trucks=False)
    if ids:
        scene.groups.append(Group("car", "cars", ids, True, "drive down the street", "drives down the street"))
    scene.attributes.update({"roof_colour": roof_name})
    scene.phrases.append(f"most houses have {roof_name} roofs")
    scene.attributes["_kind_nps"] = ["a residential area", "a residential street",
                                     f"a residential area with {roof_name} roofs"]
    return scene


def build_sports_field(ctx: Ctx) -> Scene:
    rng, cv = ctx.rng, ctx.canvas
    scene = Scene("sports_field", cv)
    ang = float(rng.uniform(-np.pi, np.pi))
    d = np.array([np.cos(ang), np.sin(ang)])
    c0 = np.zeros(2)
    surround = str(rng.choice(["grass", "concrete"]))
    _base_ground(ctx, GRASS if surround == "grass" else CONCRETE, 0.12 if surround == "grass" else 0.05, 8.0,
                 patch=DRY_GRASS if surround == "grass" else None)
    length, width = rng.uniform(96, 106), rng.uniform(60, 68)
    track = rng.random() < 0.45
    if track:
        # A running track around the pitch: a stadium shape of semicircles and straights.
        h, w = cv.img.shape[:2]
        u = along_distance(cv, c0, d)
        v = signed_distance(cv, c0, d)
        r_out, r_in = width / 2 + 12, width / 2 + 3
        du = np.clip(np.abs(u) - length / 2 + 4, 0, None)
        rr = np.hypot(du, v)
        ring = (rr <= r_out) & (rr >= r_in)
        cv.paint(ring, jitter_colour(rng, (176, 78, 58), 6), value_noise(rng, h, w, 2 * cv.ppm, 2), 0.05)
        inner = rr < r_in
        cv.paint(inner, (84, 130, 60), value_noise(rng, h, w, 6 * cv.ppm, 2), 0.08)
        for k in range(1, 6):
            rk = r_in + k * (r_out - r_in) / 6
            lane = np.abs(rr - rk) < 0.06 + 0.5 / cv.ppm
            cv.img[lane & ring] = (222, 216, 206)
    # Pitch with mowing stripes.
    h, w = cv.img.shape[:2]
    u = along_distance(cv, c0, d)
    v = signed_distance(cv, c0, d)
    pitch = (np.abs(u) <= length / 2 + 3) & (np.abs(v) <= width / 2 + 3)
    green = np.asarray(jitter_colour(rng, (72, 142, 62), 5), np.float32)
    stripe = (np.floor(u[pitch] / rng.uniform(5, 8)).astype(np.int32) % 2)[:, None]
    cv.img[pitch] = np.clip(green[None] * (1.0 + 0.09 * stripe), 0, 255).astype(np.uint8)
    white = (236, 236, 230)
    lw = 0.14

    def box(hl: float, hw: float, centre_u: float) -> None:
        pts = place(rect_pts(hl, hw), c0 + d * centre_u, ang)
        for i in range(4):
            cv.segment(pts[i], pts[(i + 1) % 4], lw, white)

    box(length, width, 0.0)
    cv.segment(c0 + _perp(d) * width / 2, c0 - _perp(d) * width / 2, lw, white)
    ring = np.array([[9.15 * np.cos(t), 9.15 * np.sin(t)] for t in np.linspace(0, 2 * np.pi, 48)])
    for i in range(48):
        cv.segment(ring[i], ring[(i + 1) % 48], lw, white)
    for sgn in (-1, 1):
        box(16.5, 40.3, sgn * (length / 2 - 8.25))
        box(5.5, 18.3, sgn * (length / 2 - 2.75))
        box(1.5, 7.3, sgn * (length / 2 + 0.75))
    cv.circle(c0, 0.3, white)
    if not track:
        pts = _scatter(rng, cv.extent, 9.0, lambda p: (np.abs(_dist_to_line(p, c0, _perp(d))) > length / 2 + 10)
                       | (np.abs(_dist_to_line(p, c0, d)) > width / 2 + 10))
        keep = rng.random(len(pts)) < 0.3
        _trees(ctx, pts[keep], rng.uniform(2.0, 3.5, keep.sum()), TREE_GREENS)
    _grain(ctx, 4.0)
    team_colours = ["red", "blue", "white", "yellow", "orange", "black"]
    ta = str(rng.choice(team_colours))
    tb = str(rng.choice([c for c in team_colours if c != ta]))
    shadow = mv.shade(tuple(int(x) for x in green), 0.55)
    groups = []
    for name, sgn in ((ta, -1), (tb, 1)):
        n = int(rng.integers(4, 12))
        bx = (-length / 2 + 3, -width / 2 + 3, length / 2 - 3, width / 2 - 3)
        bx = (bx[0], bx[1], 0.0 + 15, bx[3]) if sgn < 0 else (-15.0, bx[1], bx[2], bx[3])
        ids = _walkers(ctx, c0, d, bx, n, (1.2, 3.5), [name], 1.5, shadow, scene, "player")
        groups.append(Group("player", "players", ids, True, "run on the pitch", "runs on the pitch", colour_in=True))
    scene.groups.extend(groups)
    scene.attributes.update({"teams": [ta, tb], "running_track": bool(track), "surround": surround})
    scene.attributes["_kind_nps"] = ["a sports field", "a sports field for football"] + (
        ["a sports field with a running track"] if track else [])
    if track:
        scene.phrases.append("a red running track surrounds the pitch")
    return scene


def build_construction_site(ctx: Ctx) -> Scene:
    rng, cv = ctx.rng, ctx.canvas
    scene = Scene("construction_site", cv)
    ang = float(rng.uniform(-np.pi, np.pi))
    d = np.array([np.cos(ang), np.sin(ang)])
    soil = jitter_colour(rng, (146, 118, 86), 8)
    _base_ground(ctx, soil, 0.16, 5.0, patch=(120, 96, 72))
    h, w = cv.img.shape[:2]
    # Tyre tracks: long faint stripes in the dirt.
    u = along_distance(cv, np.zeros(2), d)
    v = signed_distance(cv, np.zeros(2), d)
    ruts = (np.abs(np.sin(v * 1.9)) > 0.93) & (np.abs(v) < 30)
    cv.img[ruts] = (cv.img[ruts].astype(np.float32) * 0.85).astype(np.uint8)
    # Foundation slab with rebar grid and partly built walls.
    sl, sw = rng.uniform(30, 48), rng.uniform(20, 30)
    sc = d * rng.uniform(-8, 8) + _perp(d) * rng.uniform(-6, 6)
    cv.poly(place(rect_pts(sl, sw), sc + ctx.shadow(1.0), ang), mv.shade(soil, 0.6))
    cv.poly(place(rect_pts(sl, sw), sc, ang), jitter_colour(rng, (176, 176, 170), 4))
    for x in np.arange(-sl / 2 + 1, sl / 2, 1.2):
        cv.segment(place(np.array([[x, -sw / 2 + 0.5]]), sc, ang)[0], place(np.array([[x, sw / 2 - 0.5]]), sc, ang)[0],
                   0.08, (96, 84, 74))
    for y in np.arange(-sw / 2 + 1, sw / 2, 1.2):
        cv.segment(place(np.array([[-sl / 2 + 0.5, y]]), sc, ang)[0], place(np.array([[sl / 2 - 0.5, y]]), sc, ang)[0],
                   0.08, (96, 84, 74))
    wall = (150, 150, 146)
    corners = place(rect_pts(sl, sw), sc, ang)
    for i in range(int(rng.integers(1, 4))):
        cv.segment(corners[i] + ctx.shadow(3.0), corners[(i + 1) % 4] + ctx.shadow(3.0), 0.4, mv.shade(soil, 0.6))
        cv.segment(corners[i], corners[(i + 1) % 4], 0.4, wall)
    # Material piles, site containers and pipe stacks around the slab.
    for _ in range(int(rng.integers(3, 7))):
        p = sc + place(np.array([[rng.uniform(-1, 1) * (sl / 2 + 14), rng.uniform(-1, 1) * (sw / 2 + 14)]]),
                       np.zeros(2), ang)[0]
        if abs(float(np.dot(p - sc, d))) < sl / 2 + 3 and abs(float(np.dot(p - sc, _perp(d)))) < sw / 2 + 3:
            continue
        kind = rng.integers(3)
        if kind == 0:
            r = rng.uniform(2.5, 5.0)
            col = jitter_colour(rng, [(196, 170, 120), (140, 136, 128)][int(rng.integers(2))], 6)
            cv.circle(p + ctx.shadow(1.5), r, mv.shade(soil, 0.6))
            cv.circle(p, r, mv.shade(col, 0.9))
            cv.circle(p - ctx.shadow(1.0), r * 0.55, mv.shade(col, 1.08))
        elif kind == 1:
            col = jitter_colour(rng, [COLOURS["white"], COLOURS["blue"], (60, 110, 70)][int(rng.integers(3))], 6)
            cv.poly(place(rect_pts(6.0, 2.4), p + ctx.shadow(2.6), ang), mv.shade(soil, 0.6))
            cv.poly(place(rect_pts(6.0, 2.4), p, ang), col)
        else:
            for j in range(5):
                cv.rect(p + _perp(d) * j * 0.6, 6.0, 0.5, ang, (120, 124, 128))
    _grain(ctx, 5.0)
    # Tower crane: a slowly slewing jib with its shadow.
    crane_c = sc + d * (sl / 2 + 6) * (1 if rng.random() < 0.5 else -1)
    crane_col = str(rng.choice(["yellow", "yellow", "red", "white"]))
    slew = np.deg2rad(rng.uniform(2.0, 5.0)) * (1 if rng.random() < 0.5 else -1)
    head = rng.uniform(-np.pi, np.pi) + slew * ctx.t
    jib = rng.uniform(35, 50)
    rgb = COLOURS[crane_col]
    crane_parts: list[mv.Part] = [
        (np.array([[-12, -0.9], [jib, -0.9], [jib, 0.9], [-12, 0.9]]), mv.shade(soil, 0.55), True),
        (np.array([[-12, -0.9], [jib, -0.9], [jib, 0.9], [-12, 0.9]]), rgb, False),
        (rect_pts(4.5, 3.0) + [-10, 0], (150, 150, 150), False),
        (rect_pts(2.2, 2.2), mv.shade(rgb, 0.8), False),
    ]
    for x in np.arange(-10, jib, 2.0):
        crane_parts.append((rect_pts(0.25, 1.6) + [x, 0], mv.shade(rgb, 0.7), False))
    crane = mv.Mover("crane", crane_col, np.repeat(crane_c[None], ctx.n, 0), head, crane_parts, 4.0)
    scene.movers.append(crane)
    scene.groups.append(Group("crane", "cranes", [len(scene.movers) - 1], True, "turn slowly", "turns slowly"))
    # Excavator digging beside the slab: the body swings back and forth.
    ex_name = str(rng.choice(["yellow", "orange"]))
    ex_c = sc - _perp(d) * (sw / 2 + rng.uniform(8, 14)) + d * rng.uniform(-sl / 3, sl / 3)
    swing = rng.uniform(-np.pi, np.pi) + 0.6 * np.sin(2 * np.pi * ctx.t / rng.uniform(5, 9))
    ex_rgb = COLOURS[ex_name]
    ex_parts: list[mv.Part] = [
        (rect_pts(4.2, 3.2), mv.shade(soil, 0.55), True),
        (rect_pts(4.6, 0.9) + [0, -1.5], (40, 40, 40), False), (rect_pts(4.6, 0.9) + [0, 1.5], (40, 40, 40), False),
        (rect_pts(3.6, 2.8) + [-0.4, 0], ex_rgb, False),
        (rect_pts(1.2, 1.1) + [0.6, -0.7], (40, 46, 54), False),
        (np.array([[1.0, -0.3], [6.2, -0.25], [6.2, 0.25], [1.0, 0.3]]), mv.shade(ex_rgb, 0.9), False),
        (rect_pts(1.0, 1.3) + [6.6, 0], (70, 70, 70), False),
    ]
    scene.movers.append(mv.Mover("excavator", ex_name, np.repeat(ex_c[None], ctx.n, 0), swing, ex_parts, 4.0))
    scene.groups.append(Group("excavator", "excavators", [len(scene.movers) - 1], True, "dig", "digs beside the foundation"))
    # Dump trucks on a loop road around the slab.
    ids = []
    n_trucks = int(rng.integers(0, 3))
    rx, ry = sl / 2 + rng.uniform(16, 24), sw / 2 + rng.uniform(14, 20)
    for k in range(n_trucks):
        speed = rng.uniform(3.0, 5.5)
        perim = np.pi * (rx + ry)
        phi = 2 * np.pi * k / max(n_trucks, 1) + rng.uniform(0, 1) + speed / perim * 2 * np.pi * ctx.t
        local = np.stack([rx * np.cos(phi), ry * np.sin(phi)], -1)
        pos = sc[None] + local @ np.array([[np.cos(ang), np.sin(ang)], [-np.sin(ang), np.cos(ang)]])
        vel = np.gradient(pos, axis=0) if ctx.n > 1 else np.array([[1.0, 0.0]])
        hd = np.arctan2(vel[:, 1], vel[:, 0])
        name = str(rng.choice(["yellow", "orange", "white", "red"]))
        parts = mv.truck_parts(jitter_colour(rng, COLOURS[name], 6), 8.0, 2.6, mv.shade(soil, 0.55))
        scene.movers.append(mv.Mover("truck", name, pos, hd, parts, 4.5))
        ids.append(len(scene.movers) - 1)
    if ids:
        scene.groups.append(Group("truck", "trucks", ids, True, "drive around the site", "drives around the site"))
    scene.attributes.update({"crane_colour": crane_col, "excavator_colour": ex_name, "trucks": n_trucks})
    scene.phrases.append("a concrete foundation is being built")
    return scene


def build_railway(ctx: Ctx) -> Scene:
    rng, cv = ctx.rng, ctx.canvas
    scene = Scene("railway", cv)
    d = ctx.main_direction()
    d = d / np.linalg.norm(d)
    nn = _perp(d)
    ang = float(np.arctan2(d[1], d[0]))
    view_h = float(np.median(ctx.cam.view_h))
    view_w = view_h * ctx.cam.aspect
    a = nn * rng.uniform(-0.12, 0.12) * view_h
    _base_ground(ctx, jitter_colour(rng, GRASS, 8), 0.16, 10.0, patch=DRY_GRASS)
    n_tracks = int(rng.choice([1, 2]))
    gauge_sep = 4.5
    offs = [0.0] if n_tracks == 1 else [-gauge_sep / 2, gauge_sep / 2]
    h, w = cv.img.shape[:2]
    dist = signed_distance(cv, a, d)
    half = (n_tracks - 1) * gauge_sep / 2 + 2.6
    noise = value_noise(rng, h, w, 1.2 * cv.ppm, octaves=2)
    cv.paint(np.abs(dist) <= half + 1.2, mv.shade(GRAVEL, 0.85), noise, 0.1)
    cv.paint(np.abs(dist) <= half, jitter_colour(rng, GRAVEL, 6), noise, 0.14)
    L = _half_len(cv)
    sleepers_col = (92, 78, 66)
    rail = (176, 176, 180)
    for off in offs:
        c = a + nn * off
        polys = [place(rect_pts(0.26, 2.6), c + d * s_, ang) for s_ in np.arange(-L, L, 0.65)]
        cv.polys(polys, sleepers_col)
        for r_ in (-0.72, 0.72):
            cv.segment(c + nn * r_ - d * L, c + nn * r_ + d * L, 0.13, rail)
    # Fields or trees either side, and a service track.
    pts = _scatter(rng, cv.extent, rng.uniform(8, 12), lambda p: np.abs(_dist_to_line(p, a, d)) > half + 7)
    keep = rng.random(len(pts)) < rng.uniform(0.15, 0.5)
    _trees(ctx, pts[keep], rng.uniform(2.0, 3.8, keep.sum()), TREE_GREENS)
    _grain(ctx, 4.0)
    has_train = rng.random() < 0.8
    if has_train:
        name = str(rng.choice(["red", "blue", "yellow", "white", "orange"]))
        n_wag = int(rng.integers(3, 9))
        wl = rng.uniform(15, 20)
        length = n_wag * (wl + 1.0)
        sgn = 1 if rng.random() < 0.5 else -1
        off = offs[int(rng.integers(len(offs)))]
        # Camera speed along the track, so the train is placed to be seen for most of the take.
        cam_s = ctx.cam.cx * d[0] + ctx.cam.cy * d[1]
        v_cam = (cam_s[-1] - cam_s[0]) / max(ctx.n / ctx.fps, 1e-6)
        dur = ctx.n / ctx.fps
        v_rel_max = (length + view_w) / max(0.9 * dur, 1e-6)
        v = float(np.clip(rng.uniform(5, 16) * sgn, v_cam - v_rel_max, v_cam + v_rel_max))
        head_s = cam_s[ctx.n // 2] + length / 2 * np.sign(v if v != 0 else 1) + v * ctx.t
        rgb = jitter_colour(rng, COLOURS[name], 6)
        ids = []
        hd = np.full(ctx.n, ang if v >= 0 else ang + np.pi)
        for k in range(n_wag):
            s_k = head_s - np.sign(v if v != 0 else 1) * (k * (wl + 1.0) + wl / 2)
            pos = (a + nn * off)[None] + s_k[:, None] * d[None]
            parts = mv.train_car_parts(rgb if k == 0 or rng.random() < 0.9 else mv.shade(rgb, 0.85), wl, k == 0,
                                       mv.shade(GRAVEL, 0.5))
            scene.movers.append(mv.Mover("train", name, pos, hd, parts, wl / 2))
            ids.append(len(scene.movers) - 1)
        scene.groups.append(Group("train", "trains", ids, True, "run along the railway", "runs along the railway",
                                  as_one=True))
        scene.attributes.update({"train_colour": name, "wagons": n_wag, "train_speed_mps": round(abs(v), 2)})
    scene.attributes.update({"tracks": n_tracks, "train": has_train})
    scene.attributes["_kind_nps"] = ["a railway", "a railway line"] + (
        ["a double-track railway"] if n_tracks == 2 else ["a single-track railway"])
    return scene


def build_bridge(ctx: Ctx) -> Scene:
    rng, cv = ctx.rng, ctx.canvas
    scene = Scene("bridge", cv)
    ang = float(rng.uniform(-np.pi, np.pi))
    b = np.array([np.cos(ang), np.sin(ang)])        # along the bridge
    r = _perp(b)                                     # along the river
    view_h = float(np.median(ctx.cam.view_h))
    _base_ground(ctx, jitter_colour(rng, GRASS, 8), 0.16, 10.0, patch=DRY_GRASS)
    width = rng.uniform(0.35, 0.6) * view_h * ctx.cam.aspect
    water_name = str(rng.choice(["blue", "green"], p=[0.6, 0.4]))
    water = jitter_colour(rng, WATER[water_name], 5)
    offset = _water_band(ctx, np.zeros(2), r, width, water, 0.0)
    n_lanes = int(rng.choice([2, 4]))
    half, asphalt = _road(ctx, np.zeros(2), b, n_lanes, markings=True)
    # The deck over the water: shadow on the water, concrete edges with railings.
    deck_len = width + 14
    cv.poly(place(rect_pts(deck_len - 6, 2 * half + 3), ctx.shadow(8.0), ang), mv.shade(water, 0.55))
    edge = jitter_colour(rng, (180, 178, 172), 4)
    cv.poly(place(rect_pts(deck_len, 2 * half + 3), np.zeros(2), ang), edge)
    cv.poly(place(rect_pts(deck_len, 2 * half), np.zeros(2), ang), tuple(int(c) for c in asphalt))
    for sgn in (-1, 1):
        cv.segment(b * -deck_len / 2 + r * sgn * (half + 1.3), b * deck_len / 2 + r * sgn * (half + 1.3), 0.3,
                   (226, 226, 222))
        cv.segment(b * -deck_len / 2 + r * sgn * (half - 0.35), b * deck_len / 2 + r * sgn * (half - 0.35), 0.18,
                   (222, 222, 216))
    nn = _perp(b)
    for k in range(1, n_lanes):
        off = -half + k * 3.5
        s_ = -deck_len / 2
        while s_ < deck_len / 2 - 3:
            p = nn * off + b * s_
            cv.segment(p, p + b * 3.0, 0.2, (222, 222, 216))
            s_ += 9.0
    pts = _scatter(rng, cv.extent, rng.uniform(8, 12),
                   lambda p: (np.abs(_dist_to_line(p, np.zeros(2), r)) > width / 2 + 8)
                   & (np.abs(_dist_to_line(p, np.zeros(2), b)) > half + 6))
    keep = rng.random(len(pts)) < rng.uniform(0.2, 0.5)
    _trees(ctx, pts[keep], rng.uniform(2.0, 3.8, keep.sum()), TREE_GREENS)
    _grain(ctx, 4.0)
    offs = [(-n_lanes / 2 + 0.5 + k) * 3.5 for k in range(n_lanes)]
    dirs = [1 if o > 0 else -1 for o in offs]
    ids = _traffic(ctx, scene, np.zeros(2), b, offs, dirs, [int(rng.integers(0, 3)) for _ in offs], (6.0, 12.0),
                   tuple(int(c) for c in asphalt))
    if ids:
        scene.groups.append(Group("car", "cars", ids, True, "cross the bridge", "crosses the bridge"))
    nb = int(rng.integers(0, 3))
    boats = _boats(ctx, scene, np.zeros(2), r, width, water, offset, nb, (1.5, 3.5))
    if boats:
        scene.groups.append(Group("boat", "boats", boats, True, "pass under the bridge", "passes under the bridge"))
    scene.attributes.update({"water_colour": water_name, "lanes": n_lanes})
    scene.attributes["_kind_nps"] = ["a bridge", "a bridge over a river", f"a bridge over a {water_name} river"]
    return scene


def build_harbour(ctx: Ctx) -> Scene:
    rng, cv = ctx.rng, ctx.canvas
    scene = Scene("harbour", cv)
    d = ctx.main_direction()
    d = d / np.linalg.norm(d)
    nn = _perp(d)
    ang = float(np.arctan2(d[1], d[0]))
    view_h = float(np.median(ctx.cam.view_h))
    side = 1.0 if rng.random() < 0.5 else -1.0
    # The quay edge runs along the flight line; water on one side of it, land on the other.
    quay = nn * (-side) * rng.uniform(0.2, 0.35) * view_h
    water_name = str(rng.choice(["blue", "green"], p=[0.6, 0.4]))
    water = np.asarray(jitter_colour(rng, WATER[water_name], 5), np.float32)
    h, w = cv.img.shape[:2]
    noise = value_noise(rng, h, w, 6.0 * cv.ppm, octaves=3)
    dist = side * signed_distance(cv, quay, d)           # > 0: water
    fine = value_noise(rng, h, w, 0.9 * cv.ppm, octaves=1)
    tex = water[None, None] * (1.0 + 0.04 * noise[..., None]) + 60.0 * np.clip((fine - 1.3), 0, 0.5)[..., None]
    img = np.clip(tex, 0, 255).astype(np.uint8)
    land = dist <= 0
    concrete = np.asarray(jitter_colour(rng, (158, 156, 150), 6), np.float32)
    img[land] = np.clip(concrete[None] * (1.0 + 0.08 * noise[land][:, None]), 0, 255).astype(np.uint8)
    cv.img[:] = img
    L = _half_len(cv)
    cv.segment(quay - d * L, quay + d * L, 0.8, (196, 194, 186))              # quay edge
    # Warehouses and stacked containers on the land side.
    for s_ in np.arange(-L, L, rng.uniform(28, 40)):
        c = quay - nn * side * rng.uniform(22, 34) + d * s_
        if rng.random() < 0.5:
            ln, wd = rng.uniform(18, 26), rng.uniform(12, 16)
            roof = jitter_colour(rng, [(120, 124, 130), (150, 70, 60), (96, 120, 140)][int(rng.integers(3))], 6)
            cv.poly(place(rect_pts(ln, wd), c + ctx.shadow(6.0), ang), mv.shade(tuple(int(x) for x in concrete), 0.55))
            cv.poly(place(rect_pts(ln, wd), c, ang), roof)
        else:
            for row in range(int(rng.integers(2, 5))):
                for col in range(int(rng.integers(2, 4))):
                    cc = c + d * (col * 6.4) - nn * side * row * 2.7
                    name = str(rng.choice(["red", "blue", "orange", "white", "green", "grey"]))
                    cv.poly(place(rect_pts(6.0, 2.4), cc, ang), jitter_colour(rng, COLOURS[name], 10))
    # Pontoons perpendicular to the quay with boats moored on both sides.
    moored = []
    pitch = rng.uniform(24, 34)
    pl = rng.uniform(0.25, 0.4) * view_h
    for s_ in np.arange(-L + rng.uniform(0, pitch), L, pitch):
        root = quay + d * s_
        tip = root + nn * side * pl
        cv.segment(root + ctx.shadow(0.6), tip + ctx.shadow(0.6), 2.2, tuple(int(c * 0.6) for c in water))
        cv.segment(root, tip, 2.2, (172, 150, 118))
        for k in np.arange(4.0, pl - 2, rng.uniform(3.6, 4.6)):
            for sg in (-1, 1):
                if rng.random() < 0.3:
                    continue
                ln = rng.uniform(7, 11)
                c = root + nn * side * k + d * sg * (1.1 + ln / 2 * 0.0 + 2.0)
                name = "white" if rng.random() < 0.75 else str(rng.choice(["blue", "red", "yellow"]))
                parts = mv.boat_parts(jitter_colour(rng, COLOURS[name], 6), ln, None,
                                      tuple(int(x * 0.6) for x in water))
                # Moored boats lie across the pontoon's direction, bow to the pontoon.
                _paint_parts(cv, parts, c + d * sg * (ln / 2 - 2.0), ang + (0.0 if sg > 0 else np.pi) + np.pi,
                             ctx.shadow(0.8))
                scene.movers.append(ctx.static("boat", name, c, ln / 2))
                moored.append(len(scene.movers) - 1)
    _grain(ctx, 3.0)
    scene.groups.append(Group("boat", "boats", moored, False, "are moored at the piers", "is moored at a pier"))
    # Boats under way in the channel beyond the pontoon tips.
    chan = quay + nn * side * (pl + rng.uniform(10, 20))
    ids = _boats(ctx, scene, chan, d, 24.0, tuple(int(x) for x in water), lambda s_: np.zeros_like(s_),
                 int(rng.integers(0, 3)), (1.5, 4.0))
    if ids:
        scene.groups.append(Group("boat", "boats", ids, True, "sail through the harbour", "sails through the harbour"))
    scene.attributes.update({"water_colour": water_name, "moored_boats": len(moored), "boats_under_way": len(ids)})
    scene.attributes["_kind_nps"] = ["a harbour", "a harbour with piers", "a marina harbour"]
    return scene


BUILDERS: dict[str, Callable[[Ctx], Scene]] = {
    "road": build_road,
    "parking_lot": build_parking_lot,
    "river": build_river,
    "forest": build_forest,
    "farmland": build_farmland,
    "beach": build_beach,
    "residential": build_residential,
    "sports_field": build_sports_field,
    "construction_site": build_construction_site,
    "railway": build_railway,
    "bridge": build_bridge,
    "harbour": build_harbour,
}

# Kinds whose main subject is one place: the camera must not travel far from it.
LANDMARK_KINDS = {"sports_field", "bridge", "construction_site"}
# Typical ground height of the image (metres) per kind: beaches are flown lower, pitches higher.
VIEW_HEIGHT = {"beach": (34.0, 48.0), "parking_lot": (38.0, 55.0), "sports_field": (72.0, 88.0), "forest": (55.0, 85.0),
               "farmland": (45.0, 70.0), "construction_site": (60.0, 85.0), "bridge": (60.0, 90.0),
               "residential": (55.0, 85.0), "railway": (50.0, 80.0), "harbour": (50.0, 75.0)}
