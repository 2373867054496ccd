"""Roads, parking lots and railways: lines laid along the flight line, with traffic on them."""

from __future__ import annotations

import numpy as np

from dvtr_bench.synth import movers as mv
from dvtr_bench.synth.scenes._draw import (CAR_COLOURS, CONCRETE, DRY_GRASS, GRASS, GRAVEL, PARKED_COLOURS,
                                           TREE_GREENS, _base_ground, _dist_to_line, _grain, _half_len,
                                           _paint_parts, _perp, _road, _scatter, _traffic, _trees, _weighted, wrap)
from dvtr_bench.synth.scenes.base import Ctx, Group, Scene, register_scene
from dvtr_bench.synth.world import COLOURS, jitter_colour, place, rect_pts, signed_distance, value_noise


@register_scene("road", order=0, noun="a road")
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


@register_scene("parking_lot", order=1, noun="a parking lot", view_height=(38.0, 55.0))
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


@register_scene("railway", order=9, noun="a railway", view_height=(50.0, 80.0))
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
