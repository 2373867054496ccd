"""Flights: plan takes and transitions, render each take, join them, encode, and write the ground truth.

Randomness is drawn from numpy Generators seeded by (seed, flight) for the flight plan and by
(seed, flight, take, purpose) for each take's scene, camera and captions, so a take does not change
when another one does and the whole output is a pure function of the seed and the options.
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import cv2
import numpy as np

from dvtr_bench.annotations.record import CaptionRecord, write_jsonl
from dvtr_bench.errors import ConfigError
from dvtr_bench.progress import Progress, ProgressFn, no_progress
from dvtr_bench.synth import captions as cap
from dvtr_bench.synth.camera import CAMERA_MOTIONS, Camera, make_camera
from dvtr_bench.synth.encode import CRF, PRESET, H264Writer, fps_fraction
from dvtr_bench.synth.movers import MoverRenderer
from dvtr_bench.synth.scenes import SCENES, Ctx, Light, Scene
from dvtr_bench.synth.world import Canvas, value_noise

SCENE_KINDS: tuple[str, ...] = tuple(SCENES)
SHOTS_VERSION = 1

MOTION_WEIGHTS = {"forward": 0.24, "pan_left": 0.1, "pan_right": 0.1, "rotate": 0.14, "ascend": 0.1,
                  "descend": 0.1, "hover": 0.22}
TRANSITION_WEIGHTS = {"cut": 0.7, "dissolve": 0.18, "fade": 0.12}


@dataclass
class TakePlan:
    flight: int
    index: int
    kind: str
    motion: str
    n_pure: int            # frames that belong to this take only
    head: int = 0          # blended frames before the pure span (dissolve in / fade in)
    tail: int = 0          # blended frames after it (dissolve out / fade out)
    view_h: float = 60.0
    exposure_p: float = 0.0   # chance of an auto-exposure ramp inside the take (drawn from its own generator)

    @property
    def n_render(self) -> int:
        return self.head + self.n_pure + self.tail


@dataclass
class FlightPlan:
    index: int
    video_id: str
    takes: list[TakePlan]
    transitions: list[dict[str, Any]] = field(default_factory=list)   # between take k and k+1
    gaps: list[int] = field(default_factory=list)                     # black frames inside a fade

    @property
    def n_frames(self) -> int:
        n = sum(t.n_render for t in self.takes) + sum(self.gaps)
        # Dissolves overlap the outgoing tail with the incoming head.
        return n - sum(tr["length"] for tr in self.transitions if tr["kind"] == "dissolve")


def _choice(rng: np.random.Generator, weights: dict[str, float]) -> str:
    keys = list(weights)
    p = np.asarray([weights[k] for k in keys], np.float64)
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]


def plan_flight(seed: int, flight: int, n_takes: int, fps: float, min_take: float, max_take: float,
                kinds: tuple[str, ...] = SCENE_KINDS) -> FlightPlan:
    """Takes (kind, camera motion, duration) and the transitions between them for one flight."""
    rng = np.random.default_rng([seed, flight, 0])
    takes: list[TakePlan] = []
    prev = None
    for k in range(n_takes):
        # Consecutive takes never share a kind, so that every cut is a visible change of scene.
        options = [x for x in kinds if x != prev]
        kind = options[int(rng.integers(len(options)))]
        prev = kind
        motion = _choice(rng, MOTION_WEIGHTS)
        dur = float(np.exp(rng.uniform(np.log(min_take), np.log(max_take))))
        lo, hi = SCENES[kind].view_height
        takes.append(TakePlan(flight, k, kind, motion, max(1, int(round(dur * fps))), view_h=float(rng.uniform(lo, hi))))
    transitions, gaps = [], []
    for k in range(n_takes - 1):
        kind = _choice(rng, TRANSITION_WEIGHTS)
        if kind == "cut":
            transitions.append({"kind": "cut", "length": 0})
            gaps.append(0)
        elif kind == "dissolve":
            length = max(3, int(round(rng.uniform(0.4, 1.2) * fps)))
            takes[k].tail = length
            takes[k + 1].head = length
            transitions.append({"kind": "dissolve", "length": length})
            gaps.append(0)
        else:
            out_n = max(2, int(round(rng.uniform(0.3, 0.8) * fps)))
            in_n = max(2, int(round(rng.uniform(0.3, 0.8) * fps)))
            takes[k].tail = out_n
            takes[k + 1].head = in_n
            gap = int(round(rng.uniform(0.0, 0.3) * fps))
            transitions.append({"kind": "fade", "length": out_n + gap + in_n, "out": out_n, "in": in_n})
            gaps.append(gap)
    return FlightPlan(flight, f"flight_{flight:03d}", takes, transitions, gaps)


def _light(rng: np.random.Generator) -> Light:
    tod = str(rng.choice(["midday", "morning", "evening", "overcast"], p=[0.45, 0.2, 0.2, 0.15]))
    a = rng.uniform(-np.pi, np.pi)
    direction = np.array([np.cos(a), np.sin(a)])
    if tod == "midday":
        gain, length = np.array([1.0, 1.0, 0.98]) * rng.uniform(0.98, 1.1), rng.uniform(0.25, 0.5)
    elif tod == "morning":
        gain, length = np.array([1.0, 0.98, 0.92]) * rng.uniform(0.92, 1.02), rng.uniform(0.6, 1.0)
    elif tod == "evening":
        gain, length = np.array([1.06, 0.92, 0.76]) * rng.uniform(0.88, 0.98), rng.uniform(0.8, 1.3)
    else:
        gain, length = np.array([0.9, 0.92, 0.95]) * rng.uniform(0.9, 1.0), rng.uniform(0.1, 0.2)
    contrast = {"midday": 1.0, "morning": 1.0, "evening": 1.06, "overcast": 0.82}[tod] * rng.uniform(0.95, 1.05)
    return Light(gain, direction * length, tod, float(contrast))


@dataclass
class Take:
    """A take ready to render: its map, camera, movers and the facts captions are made of."""

    plan: TakePlan
    scene: Scene
    camera: Camera
    light: Light
    affines: np.ndarray      # [n, 2, 3] world -> screen
    renderer: MoverRenderer
    scene_graph: dict[str, Any]
    captions: list[str]
    exposure: np.ndarray | None = None   # [n, 4] per-frame channel gains (RGB + unused alpha), or None


# An exposure ramp changes brightness by this many stops (either way) and each of red and blue by up to this
# share (white balance), over this many seconds: what a drone camera does when the sun comes out or it turns
# toward the light. Within a take, so a shot detector must find no transition there.
EXPOSURE_STOPS = (0.35, 0.6)
WHITE_BALANCE = 0.06
EXPOSURE_SECONDS = (0.6, 2.5)


def exposure_ramp(rng: np.random.Generator, plan: TakePlan, fps: float) -> tuple[np.ndarray, dict[str, Any]]:
    """Per-frame RGB gains of one smooth exposure and white-balance ramp inside the take's pure span."""
    n = plan.n_render
    length = max(2, min(plan.n_pure - 1, int(round(rng.uniform(*EXPOSURE_SECONDS) * fps))))
    start = plan.head + int(rng.integers(0, max(1, plan.n_pure - length)))
    stops = float(rng.uniform(*EXPOSURE_STOPS)) * (1.0 if rng.random() < 0.5 else -1.0)
    warm = float(rng.uniform(-WHITE_BALANCE, WHITE_BALANCE))
    final = np.array([2.0 ** stops * (1.0 + warm), 2.0 ** stops, 2.0 ** stops * (1.0 - warm), 1.0])
    x = np.clip((np.arange(n) - start) / length, 0.0, 1.0)
    w = x * x * (3.0 - 2.0 * x)   # smoothstep: no jump at either end
    gains = (1.0 + w[:, None] * (final[None, :] - 1.0)).astype(np.float32)
    meta = {"start_frame": start - plan.head, "end_frame": start + length - plan.head, "stops": round(stops, 3),
            "white_balance": round(warm, 4)}
    return gains, meta


def build_take(seed: int, plan: TakePlan, width: int, height: int, fps: float, attempt: int = 0) -> Take:
    """Lay out one take: camera first, then the scene around the camera's path, then the captions.

    ``attempt`` > 0 draws a different layout of the same plan (used when a cut would be too subtle).
    """
    extra = [attempt] if attempt else []
    rng_cam = np.random.default_rng([seed, plan.flight, plan.index + 1, 1, *extra])
    rng_scene = np.random.default_rng([seed, plan.flight, plan.index + 1, 2, *extra])
    rng_cap = np.random.default_rng([seed, plan.flight, plan.index + 1, 3, *extra])
    aspect = width / height
    n = plan.n_render
    spec = SCENES[plan.kind]
    cap_disp = 0.45 * plan.view_h * aspect if spec.landmark else None
    cam = make_camera(rng_cam, plan.motion, n, fps, aspect, plan.view_h, max_displacement=cap_disp)
    light = _light(rng_cam)
    corners = cam.view_corners().reshape(-1, 2)
    margin = 8.0
    extent = (float(corners[:, 0].min() - margin), float(corners[:, 1].min() - margin),
              float(corners[:, 0].max() + margin), float(corners[:, 1].max() + margin))
    ppm = height / float(np.median(cam.view_h))
    canvas = Canvas.create(extent, ppm)
    ctx = Ctx(rng_scene, cam, canvas, fps, light)
    scene = spec.build(ctx)
    # Bake the light into the map once (contrast about the map's mean, then the colour gain); movers get
    # the same gain when drawn.
    lit = canvas.img.astype(np.float32)
    clouds = light.time_of_day in ("midday", "morning") and rng_cam.random() < 0.3
    if clouds:
        # Soft shadows of scattered clouds, drifting too slowly to move within a take.
        h, w = lit.shape[:2]
        cover = value_noise(rng_cam, h, w, 70.0 * canvas.ppm, octaves=2)
        lit *= (1.0 - 0.35 * np.clip((cover - 0.35) * 2.5, 0.0, 1.0))[..., None]
    if light.contrast != 1.0:
        mean = lit.reshape(-1, 3).mean(0)
        lit = mean + (lit - mean) * light.contrast
    canvas.img[:] = np.clip(lit * light.gain[None, None].astype(np.float32), 0, 255).astype(np.uint8)
    affines = cam.world_to_screen(width, height)
    renderer = MoverRenderer(scene.movers, light.sun * 1.2, light.gain)
    pure = slice(plan.head, plan.head + plan.n_pure)
    vis = renderer.visible(affines, width, height, pure)
    groups = []
    for g in scene.groups:
        colours = [scene.movers[i].colour for i in g.members]
        gvis = vis[:, g.members]
        if g.as_one:  # e.g. a train: seen when any of its wagons is
            gvis, colours = gvis.any(1, keepdims=True), colours[:1]
        stats = cap.group_stats(gvis, colours)
        entry = {"type": g.type, "plural": g.plural, "moving": g.moving, "count": len(g.members),
                 "colours": _counter(colours), "verb": g.verb, "verb_one": g.verb_one,
                 "colour_salient": g.colour_salient, "colour_in": g.colour_in, "stats": stats}
        entry["noun_phrase"] = cap.noun_phrase(entry, stats)
        groups.append(entry)
    kind_nps = scene.attributes.pop("_kind_nps", [spec.noun])
    captions = cap.make_captions(rng_cap, plan.kind, kind_nps, groups, plan.motion, scene.phrases)
    graph = {
        "kind": plan.kind, "kind_phrases": kind_nps, "attributes": _jsonable(scene.attributes),
        "groups": [{k: v for k, v in g.items() if k not in ("verb", "verb_one", "plural", "colour_salient",
                                                             "colour_in")}
                   for g in groups],
        "phrases": list(scene.phrases),
        "lighting": {"time_of_day": light.time_of_day, "gain": [round(float(x), 4) for x in light.gain],
                     "contrast": round(light.contrast, 4), "cloud_shadows": bool(clouds)},
        "camera": {"motion": plan.motion, **cam.params},
        "frames": {"rendered": n, "pure": plan.n_pure},
        "layout_attempt": attempt,
    }
    exposure = None
    if plan.exposure_p > 0:
        # Its own generator, drawn only when asked for: footage without ramps stays byte-identical.
        rng_exp = np.random.default_rng([seed, plan.flight, plan.index + 1, 4])
        if rng_exp.random() < plan.exposure_p:
            exposure, graph["exposure_ramp"] = exposure_ramp(rng_exp, plan, fps)
    return Take(plan, scene, cam, light, affines, renderer, graph, captions, exposure)


def _counter(items: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for x in items:
        if x:
            out[x] = out.get(x, 0) + 1
    return dict(sorted(out.items()))


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        return round(float(obj), 4)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def _vignette(width: int, height: int) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    r = np.hypot((xx - width / 2) / (width / 2), (yy - height / 2) / (height / 2)) / np.sqrt(2)
    v = 1.0 - 0.16 * r ** 2.2
    return np.repeat((v * 255).astype(np.uint8)[..., None], 4, 2)


def render_take(take: Take, width: int, height: int) -> Iterator[np.ndarray]:
    """Every frame of a take (RGBA uint8, alpha unused): a warp of the ground map plus the movers.

    Four channels because OpenCV's warp is about twice as fast on them as on three.
    """
    cv = take.scene.canvas
    img = cv2.cvtColor(cv.img, cv2.COLOR_RGB2RGBA)
    vig = _vignette(width, height)
    inv = 1.0 / cv.ppm
    for i in range(take.camera.n):
        a = take.affines[i]
        lin = a[:, :2]
        # Map pixel u has world coordinate x0 + (u + 0.5) / ppm: fold that into the warp matrix.
        m = np.empty((2, 3))
        m[:, :2] = lin * inv
        m[:, 2] = lin @ np.array([cv.x0 + 0.5 * inv, cv.y0 + 0.5 * inv]) + a[:, 2]
        # The map covers every frame's footprint plus a margin, so the border value is never seen.
        frame = cv2.warpAffine(img, m, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        take.renderer.draw(frame, i, a)
        cv2.multiply(frame, vig, dst=frame, scale=1.0 / 255.0)
        if take.exposure is not None:
            cv2.multiply(frame, tuple(float(v) for v in take.exposure[i]), dst=frame)
        yield frame


def cut_strength(a: np.ndarray, b: np.ndarray) -> float:
    """How different two frames look: mean absolute HSV difference on small copies (0-255 scale).

    This is the quantity content-based shot detectors threshold (PySceneDetect's default is 27).
    """
    def hsv(x: np.ndarray) -> np.ndarray:
        small = cv2.resize(x[..., :3], (160, max(2, int(160 * x.shape[0] / x.shape[1]))), interpolation=cv2.INTER_AREA)
        return cv2.cvtColor(small, cv2.COLOR_RGB2HSV).astype(np.float32)

    return float(np.abs(hsv(a) - hsv(b)).mean())


# A hard cut or a dissolve must change the picture at least this much (see cut_strength); otherwise the
# incoming take is laid out again (other colours, light, layout), up to CUT_ATTEMPTS times.
MIN_CUT_STRENGTH = 36.0
CUT_ATTEMPTS = 6


def _take_after_cut(seed: int, tp: TakePlan, width: int, height: int, fps: float,
                    last: np.ndarray) -> tuple[Take, Iterator[np.ndarray], np.ndarray]:
    best = None
    for attempt in range(CUT_ATTEMPTS):
        take = build_take(seed, tp, width, height, fps, attempt)
        frames = render_take(take, width, height)
        first = next(frames)
        score = cut_strength(last, first)
        if best is None or score > best[0]:
            best = (score, take, frames, first)
        if score >= MIN_CUT_STRENGTH:
            break
    _, take, frames, first = best
    take.scene_graph["cut_strength"] = round(best[0], 2)
    return take, frames, first


def flight_frames(seed: int, plan: FlightPlan, width: int, height: int, fps: float,
                  takes_out: list[Take] | None = None) -> Iterator[np.ndarray]:
    """All frames of a flight (RGBA uint8) with its transitions applied, in order."""
    pending: list[np.ndarray] = []
    black = np.zeros((height, width, 4), np.uint8)
    last: np.ndarray | None = None
    for k, tp in enumerate(plan.takes):
        before = plan.transitions[k - 1] if k > 0 else None
        after = plan.transitions[k] if k < len(plan.takes) - 1 else None
        # Cuts and dissolves must be visible changes: compare with the outgoing take's last pure frame
        # (for a dissolve its blended tail is not yielded yet, so ``last`` is that frame). Fades dip to black.
        if before is not None and before["kind"] in ("cut", "dissolve") and last is not None:
            take, rest, first = _take_after_cut(seed, tp, width, height, fps, last)
            frames: Iterator[np.ndarray] = itertools.chain([first], rest)
        else:
            take = build_take(seed, tp, width, height, fps)
            frames = render_take(take, width, height)
        if takes_out is not None:
            takes_out.append(take)
        n = tp.n_render
        for j, frame in enumerate(frames):
            if j < tp.head and before is not None:
                if before["kind"] == "dissolve":
                    alpha = (j + 1) / (before["length"] + 1)
                    frame = cv2.addWeighted(pending[j], 1.0 - alpha, frame, alpha, 0.0)
                else:
                    frame = cv2.addWeighted(frame, (j + 1) / (tp.head + 1), black, 0.0, 0.0)
            elif j >= n - tp.tail and after is not None:
                jj = j - (n - tp.tail)
                if after["kind"] == "dissolve":
                    pending.append(frame.copy())
                    continue
                frame = cv2.addWeighted(frame, 1.0 - (jj + 1) / (tp.tail + 1), black, 0.0, 0.0)
            last = frame
            yield frame
        if after is not None and after["kind"] == "fade":
            for _ in range(plan.gaps[k]):
                yield black
        if after is None or after["kind"] != "dissolve":
            pending = []
        else:
            pending = pending[-after["length"]:]
        del take


def shots_entry(plan: FlightPlan, width: int, height: int, fps: float) -> dict[str, Any]:
    """The ground truth of a flight in the documented shots.json form."""
    transitions, takes = [], []
    f = 0
    for k, tp in enumerate(plan.takes):
        start = f + tp.head
        end = start + tp.n_pure
        takes.append({"clip_id": f"{plan.video_id}_take_{k:02d}", "start_frame": start, "end_frame": end,
                      "camera_motion": tp.motion, "label": tp.kind})
        if k == len(plan.takes) - 1:
            break
        tr = plan.transitions[k]
        if tr["kind"] == "cut":
            f = end
            transitions.append({"kind": "cut", "frame": f})
        elif tr["kind"] == "dissolve":
            a = end
            b = end + tr["length"] - 1
            transitions.append({"kind": "dissolve", "start_frame": a, "end_frame": b})
            f = end  # the next take's head overlaps this take's tail
        else:
            a = end
            b = end + tr["length"] - 1
            transitions.append({"kind": "fade", "start_frame": a, "end_frame": b})
            f = end + tp.tail + plan.gaps[k]
    return {"fps": float(fps), "n_frames": plan.n_frames, "width": width, "height": height,
            "transitions": transitions, "takes": takes}


def _validate(flights: int, resolution: tuple[int, int], fps: float, min_take: float, max_take: float,
              takes_per_flight: int) -> None:
    w, h = resolution
    if flights < 1:
        raise ConfigError("flights must be at least 1")
    if takes_per_flight < 1:
        raise ConfigError("takes per flight must be at least 1")
    if w < 64 or h < 36 or w % 2 or h % 2:
        raise ConfigError(f"resolution {w}x{h}: width and height must be even and at least 64x36")
    if w > 7680 or h > 4320:
        raise ConfigError(f"resolution {w}x{h} is larger than 8K")
    if not (1.0 <= fps <= 120.0):
        raise ConfigError(f"fps {fps} must be between 1 and 120")
    if not (0 < min_take <= max_take):
        raise ConfigError(f"take lengths must satisfy 0 < min-take ({min_take}) <= max-take ({max_take})")
    if min_take * fps < 3:
        raise ConfigError(f"min-take {min_take}s is shorter than 3 frames at {fps} fps")


def _make_flight(seed: int, plan: FlightPlan, width: int, height: int, fps: float, videos: Path,
                 on_frames: Callable[[int], None] | None = None,
                 telemetry: bool = True) -> tuple[list[CaptionRecord], dict[str, Any]]:
    """Render and encode one flight (and its telemetry sidecar); return its caption records and shots.json
    entry."""
    takes: list[Take] = []
    path = videos / f"{plan.video_id}.mp4"
    with H264Writer(path, width, height, fps) as writer:
        for frame in flight_frames(seed, plan, width, height, fps, takes):
            writer.write(frame)
            if on_frames is not None and writer.n % 25 == 0:
                on_frames(25)
        if writer.n != plan.n_frames:
            raise RuntimeError(f"{plan.video_id}: wrote {writer.n} frames, planned {plan.n_frames}")
    if on_frames is not None:
        on_frames(writer.n % 25)
    entry = shots_entry(plan, width, height, fps)
    if telemetry:
        from dvtr_bench.synth.telemetry import write_flight_srt

        write_flight_srt(videos / f"{plan.video_id}.SRT", seed, plan.index, takes, entry, fps)
    records = []
    for take, row in zip(takes, entry["takes"]):
        records.append(CaptionRecord(
            video_id=plan.video_id, clip_id=row["clip_id"], start_s=round(row["start_frame"] / fps, 6),
            end_s=round(row["end_frame"] / fps, 6), captions=take.captions, label=take.plan.kind,
            meta={"scene_graph": take.scene_graph, "camera_motion": take.plan.motion,
                  "start_frame": row["start_frame"], "end_frame": row["end_frame"]}))
    return records, entry


def _flight_job(args: tuple[int, FlightPlan, int, int, float, str, bool]) -> tuple[list[CaptionRecord], dict[str, Any]]:
    seed, plan, width, height, fps, videos, telemetry = args
    cv2.setNumThreads(1)  # one flight per process: no oversubscription
    return _make_flight(seed, plan, width, height, fps, Path(videos), telemetry=telemetry)


def generate(out_dir: str | Path, flights: int, seed: int, resolution: tuple[int, int] = (640, 360),
             fps: float = 25.0, min_take: float = 3.0, max_take: float = 30.0,
             progress: ProgressFn | None = None, *, takes_per_flight: int = 8, workers: int = 1,
             exposure_ramps: float = 0.0, telemetry: bool = True) -> dict[str, Any]:
    """Synthesise ``flights`` drone flights into ``out_dir`` (videos/, annotations.jsonl, shots.json, synth.json).

    ``workers`` > 1 renders that many flights at once in separate processes; the output is identical
    to a single-process run. ``exposure_ramps`` is the chance that a take holds a smooth auto-exposure and
    white-balance ramp (recorded in its scene graph as ``exposure_ramp``); 0 gives the footage of earlier
    versions, byte for byte. ``telemetry`` writes a DJI-style ``.SRT`` sidecar next to each video
    (:mod:`dvtr_bench.synth.telemetry`). Returns a summary: counts, seconds of video, wall time and the realtime
    factor.
    """
    from dvtr_bench.provenance import git_commit, package_versions

    _validate(flights, resolution, fps, min_take, max_take, takes_per_flight)
    if workers < 1:
        raise ConfigError("workers must be at least 1")
    if not 0.0 <= exposure_ramps <= 1.0:
        raise ConfigError(f"exposure ramps {exposure_ramps} must be a chance between 0 and 1")
    progress = progress or no_progress
    width, height = resolution
    fps = float(fps_fraction(fps))
    out = Path(out_dir)
    videos = out / "videos"
    videos.mkdir(parents=True, exist_ok=True)
    plans = [plan_flight(seed, f, takes_per_flight, fps, min_take, max_take) for f in range(flights)]
    for plan in plans:
        for tp in plan.takes:
            tp.exposure_p = exposure_ramps
    # Flights of an earlier, larger run in the same folder would contradict the new annotations.
    wanted = {f"{p.video_id}.mp4" for p in plans}
    for stale in [*videos.glob("flight_*.mp4"), *videos.glob("flight_*.SRT")]:
        if stale.with_suffix(".mp4").name not in wanted or (stale.suffix == ".SRT" and not telemetry):
            stale.unlink()
    total = sum(p.n_frames for p in plans)
    progress(Progress("frames", completed=0, total=total))
    progress(Progress("flights", completed=0, total=flights))
    results: dict[int, tuple[list[CaptionRecord], dict[str, Any]]] = {}
    done = 0
    t0 = time.perf_counter()

    def on_frames(k: int) -> None:
        nonlocal done
        done += k
        el = time.perf_counter() - t0
        progress(Progress("frames", completed=done, total=total, info={"x realtime": done / fps / max(el, 1e-9)}))

    if workers == 1 or flights == 1:
        for fi, plan in enumerate(plans):
            results[fi] = _make_flight(seed, plan, width, height, fps, videos, on_frames, telemetry=telemetry)
            progress(Progress("flights", completed=fi + 1, total=flights))
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed

        # spawn: a forked copy of a parent that has started threads (torch, Ray) can deadlock.
        with ProcessPoolExecutor(max_workers=min(workers, flights), mp_context=mp.get_context("spawn")) as pool:
            futs = {pool.submit(_flight_job, (seed, plan, width, height, fps, str(videos), telemetry)): fi
                    for fi, plan in enumerate(plans)}
            for fut in as_completed(futs):
                fi = futs[fut]
                results[fi] = fut.result()
                on_frames(plans[fi].n_frames)
                progress(Progress("flights", completed=len(results), total=flights))
    wall = time.perf_counter() - t0
    records: list[CaptionRecord] = []
    shots: dict[str, Any] = {}
    kinds: dict[str, int] = {}
    for fi, plan in enumerate(plans):
        recs, entry = results[fi]
        records.extend(recs)
        shots[plan.video_id] = entry
        for r in recs:
            kinds[str(r.label)] = kinds.get(str(r.label), 0) + 1
    write_jsonl(records, out / "annotations.jsonl")
    with open(out / "shots.json", "w", encoding="utf-8", newline="\n") as f:
        json.dump({"version": SHOTS_VERSION, "videos": shots}, f, indent=1, sort_keys=True)
        f.write("\n")
    options = {"flights": flights, "seed": seed, "resolution": [width, height], "fps": fps,
               "min_take": min_take, "max_take": max_take, "takes_per_flight": takes_per_flight,
               "exposure_ramps": exposure_ramps, "telemetry": telemetry}
    n_trans = {"cut": 0, "dissolve": 0, "fade": 0}
    for p in plans:
        for tr in p.transitions:
            n_trans[tr["kind"]] += 1
    summary = {"videos": flights, "takes": len(records), "frames": total, "seconds": round(total / fps, 3),
               "wall_s": round(wall, 3), "realtime_factor": round(total / fps / max(wall, 1e-9), 3),
               "workers": workers, "kinds": dict(sorted(kinds.items())), "transitions": n_trans,
               "out_dir": str(out)}
    # synth.json is the only file with wall-clock figures; annotations and shots stay byte-stable.
    with open(out / "synth.json", "w", encoding="utf-8", newline="\n") as f:
        json.dump({"generator": "dvtr synth", "options": options, "scene_kinds": list(SCENE_KINDS),
                   "camera_motions": list(CAMERA_MOTIONS), "encoder": {"codec": "libx264", "crf": CRF,
                   "preset": PRESET, "gop_frames": int(round(fps)), "threads": 1},
                   "summary": summary, "versions": package_versions(), "git_commit": git_commit()},
                  f, indent=1, sort_keys=True)
        f.write("\n")
    return summary
