"""Residential streets and construction sites: buildings and the vehicles around them."""

from __future__ import annotations

import numpy as np

from dvtr_bench.synth import movers as mv
from dvtr_bench.synth.scenes._draw import (ASPHALT, CAR_COLOURS, DRY_GRASS, GRASS, TREE_GREENS, _base_ground,
                                           _grain, _half_len, _paint_parts, _perp, _road, _traffic, _trees,
                                           _weighted)
from dvtr_bench.synth.scenes.base import Ctx, Group, Scene, register_scene
from dvtr_bench.synth.world import COLOURS, jitter_colour, place, rect_pts, signed_distance


ROOF = {"red": (172, 58, 44), "grey": (112, 114, 120), "orange": (200, 106, 52), "black": (48, 48, 54),
        "white": (214, 212, 206)}


@register_scene("residential", order=6, noun="a residential area", view_height=(55.0, 85.0))
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


@register_scene("construction_site", order=8, noun="a construction site", view_height=(60.0, 85.0), landmark=True)
def build_construction_site(ctx: Ctx) -> Scene:
    rng, cv = ctx.rng, ctx.canvas
    scene = Scene("construction_site", cv)
    ang = float(rng.uniform(-np.pi, np.pi))
    d = np.array([np.cos(ang), np.sin(ang)])
    soil = jitter_colour(rng, (146, 118, 86), 8)
    _base_ground(ctx, soil, 0.16, 5.0, patch=(120, 96, 72))
    h, w = cv.img.shape[:2]
    # Tyre tracks: long faint stripes in the dirt.
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
