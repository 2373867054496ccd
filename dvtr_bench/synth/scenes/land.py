"""Forest, farmland and sports fields: open ground covered by one texture, with a few movers."""

from __future__ import annotations

import numpy as np

from dvtr_bench.synth import movers as mv
from dvtr_bench.synth.scenes._draw import (CONCRETE, DRY_GRASS, GRASS, TREE_GREENS, _base_ground,
                                           _dist_to_line, _grain, _perp, _scatter, _trees, _walkers)
from dvtr_bench.synth.scenes.base import Ctx, Group, Scene, register_scene
from dvtr_bench.synth.world import (COLOURS, along_distance, jitter_colour, place, rect_pts, signed_distance,
                                    value_noise)


@register_scene("forest", order=3, noun="a forest", view_height=(55.0, 85.0))
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


@register_scene("farmland", order=4, noun="farmland", view_height=(45.0, 70.0))
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


@register_scene("sports_field", order=7, noun="a sports field", view_height=(72.0, 88.0), landmark=True)
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
