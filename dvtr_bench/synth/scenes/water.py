"""Rivers, bridges, harbours and beaches: scenes built around water, sharing the river band and boats."""

from __future__ import annotations

from typing import Callable

import numpy as np

from dvtr_bench.synth import movers as mv
from dvtr_bench.synth.scenes._draw import (DRY_GRASS, GRASS, SAND, TREE_GREENS, WATER, _base_ground,
                                           _dist_to_line, _grain, _half_len, _local_to_world, _paint_parts,
                                           _perp, _road, _scatter, _traffic, _trees, _walkers, _weighted)
from dvtr_bench.synth.scenes.base import Ctx, Group, Scene, register_scene
from dvtr_bench.synth.world import (COLOURS, Canvas, along_distance, jitter_colour, place, rect_pts,
                                    signed_distance, value_noise)


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


@register_scene("river", order=2, noun="a river")
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


@register_scene("bridge", order=10, noun="a bridge", view_height=(60.0, 90.0), landmark=True)
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


@register_scene("harbour", order=11, noun="a harbour", view_height=(50.0, 75.0))
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


def _umbrella(cv: Canvas, c: np.ndarray, r: float, colour: tuple[int, int, int], sun: np.ndarray) -> None:
    cv.circle(c + sun * 2.2, r, (120, 108, 84))
    k = 8
    for i in range(k):
        a0, a1 = 2 * np.pi * i / k, 2 * np.pi * (i + 1) / k
        tri = np.array([c, c + r * np.array([np.cos(a0), np.sin(a0)]), c + r * np.array([np.cos(a1), np.sin(a1)])])
        cv.poly(tri, colour if i % 2 == 0 else mv.shade(colour, 1.12))


@register_scene("beach", order=5, noun="a beach", view_height=(34.0, 48.0))
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
