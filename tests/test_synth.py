"""dvtr synth: determinism, ground truth that matches the pixels, captions that match the scene graph."""

from __future__ import annotations

import json
import re
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from dvtr_bench.annotations.record import iter_jsonl
from dvtr_bench.errors import ConfigError
from dvtr_bench.synth import SCENE_KINDS, generate
from dvtr_bench.synth import captions as cap
from dvtr_bench.synth.camera import CAMERA_MOTIONS, make_camera
from dvtr_bench.synth.generate import TakePlan, build_take, plan_flight, render_take
from dvtr_bench.synth.scenes import SCENES, SceneSpec, register_scene
from dvtr_bench.synth.world import COLOURS

RES = (192, 108)
FPS = 25.0
OPTS = dict(resolution=RES, fps=FPS, min_take=1.0, max_take=2.2, takes_per_flight=5)


def _seed_with_all_transitions(flights: int) -> int:
    """The smallest seed whose plan has a cut, a dissolve and a fade (planning is cheap, no rendering)."""
    for seed in range(500):
        kinds = {tr["kind"] for f in range(flights)
                 for tr in plan_flight(seed, f, OPTS["takes_per_flight"], FPS, OPTS["min_take"],
                                       OPTS["max_take"]).transitions}
        if kinds == {"cut", "dissolve", "fade"}:
            return seed
    raise AssertionError("no seed with every transition kind")


@pytest.fixture(scope="module")
def footage(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    seed = _seed_with_all_transitions(2)
    out = tmp_path_factory.mktemp("synth") / "a"
    generate(out, flights=2, seed=seed, **OPTS)
    return out, seed


def _decode(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def test_layout_and_records(footage: tuple[Path, int]) -> None:
    out, _ = footage
    shots = json.loads((out / "shots.json").read_text())
    assert shots["version"] == 1 and sorted(shots["videos"]) == ["flight_000", "flight_001"]
    records = list(iter_jsonl(out / "annotations.jsonl"))
    assert len(records) == 10
    meta = json.loads((out / "synth.json").read_text())
    assert meta["options"]["seed"] == footage[1]
    for r in records:
        entry = shots["videos"][r.video_id]
        take = next(t for t in entry["takes"] if t["clip_id"] == r.clip_id)
        assert r.clip_id.startswith(f"{r.video_id}_take_")
        assert r.label == take["label"] in SCENE_KINDS
        assert r.meta["camera_motion"] == take["camera_motion"] in CAMERA_MOTIONS
        assert r.start_s == pytest.approx(take["start_frame"] / FPS)
        assert r.end_s == pytest.approx(take["end_frame"] / FPS)
        # Pure take spans respect the requested take lengths.
        assert OPTS["min_take"] - 1 / FPS <= r.end_s - r.start_s <= OPTS["max_take"] + 1 / FPS
        assert r.meta["scene_graph"]["kind"] == r.label
    for entry in shots["videos"].values():
        labels = [t["label"] for t in entry["takes"]]
        assert all(a != b for a, b in zip(labels, labels[1:]))  # every cut changes the scene kind


def test_determinism(footage: tuple[Path, int], tmp_path: Path) -> None:
    out, seed = footage
    again = tmp_path / "b"
    # Two worker processes must give exactly what one process gave.
    generate(again, flights=2, seed=seed, workers=2, **OPTS)
    for name in ("annotations.jsonl", "shots.json"):
        assert (out / name).read_bytes() == (again / name).read_bytes(), name
    for vid in ("flight_000", "flight_001"):
        a, b = _decode(out / "videos" / f"{vid}.mp4"), _decode(again / "videos" / f"{vid}.mp4")
        assert len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))
        assert (out / "videos" / f"{vid}.mp4").read_bytes() == (again / "videos" / f"{vid}.mp4").read_bytes()
    other = tmp_path / "c"
    generate(other, flights=1, seed=seed + 1, **{**OPTS, "takes_per_flight": 2})
    assert (other / "annotations.jsonl").read_bytes() != (out / "annotations.jsonl").read_bytes()


def _diffs(frames: list[np.ndarray]) -> np.ndarray:
    g = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY).astype(np.float32) for f in frames]
    return np.array([0.0] + [float(np.abs(g[i] - g[i - 1]).mean()) for i in range(1, len(g))])


def test_shots_match_frames(footage: tuple[Path, int]) -> None:
    out, _ = footage
    shots = json.loads((out / "shots.json").read_text())
    seen = set()
    for vid, entry in shots["videos"].items():
        frames = _decode(out / "videos" / f"{vid}.mp4")
        assert len(frames) == entry["n_frames"]
        d = _diffs(frames)
        takes = entry["takes"]
        # Inside a pure take the picture changes smoothly: no frame-to-frame jump anywhere.
        inside = np.concatenate([d[t["start_frame"] + 1:t["end_frame"]] for t in takes])
        smooth_max = float(inside.max())
        assert smooth_max < 8.0, smooth_max
        for k, tr in enumerate(entry["transitions"]):
            seen.add(tr["kind"])
            before, after = takes[k], takes[k + 1]
            if tr["kind"] == "cut":
                f = tr["frame"]
                assert before["end_frame"] == f == after["start_frame"]
                # The cut is the one big jump around it, and it is exactly at f.
                near = np.concatenate([d[max(1, f - 6):f], d[f + 1:f + 7]])
                assert d[f] > 10.0 and d[f] > 2.5 * near.max(), (vid, f, d[f], near.max())
            else:
                a, b = tr["start_frame"], tr["end_frame"]
                assert before["end_frame"] == a and after["start_frame"] == b + 1
                # A gradual transition: the scene changes between a-1 and b+1, but no single step jumps.
                total = float(np.abs(frames[b + 1].astype(np.float32) - frames[a - 1].astype(np.float32)).mean())
                assert total > 10.0
                assert d[a:b + 2].max() < 0.6 * total
                if tr["kind"] == "fade":
                    darkest = min(float(frames[i].mean()) for i in range(a, b + 1))
                    assert darkest < 0.5 * min(frames[a - 1].mean(), frames[b + 1].mean())
    assert seen == {"cut", "dissolve", "fade"}


def test_videos_decode_with_opencv_and_pyav(footage: tuple[Path, int]) -> None:
    out, _ = footage
    shots = json.loads((out / "shots.json").read_text())
    for vid, entry in shots["videos"].items():
        path = out / "videos" / f"{vid}.mp4"
        with av.open(str(path)) as c:
            s = c.streams.video[0]
            assert s.codec_context.name == "h264"
            assert (s.codec_context.width, s.codec_context.height) == RES
            assert float(s.average_rate) == pytest.approx(FPS)
            n_av = sum(1 for _ in c.decode(video=0))
        cap_ = cv2.VideoCapture(str(path))
        assert cap_.isOpened()
        n_cv = 0
        first = None
        while True:
            ok, frame = cap_.read()
            if not ok:
                break
            if first is None:
                first = frame
            n_cv += 1
        cap_.release()
        assert n_av == n_cv == entry["n_frames"]
        assert first is not None and first.shape == (RES[1], RES[0], 3)


COUNT_RE = re.compile(r"\b(one|two|three|four|five|several|many)\b")
CAMERA_WORDS = {"forward": "flies forward", "pan_left": "pans left", "pan_right": "pans right",
                "rotate": "rotates", "ascend": "climbs", "descend": "descends", "hover": "hovers"}


def _check_captions(captions: list[str], graph: dict, motion: str) -> None:
    kind = graph["kind"]
    assert len(captions) == 5 and len(set(captions)) == 5
    nps = " ".join(g.get("noun_phrase") or "" for g in graph["groups"])
    allowed_colours = set(nps.split()) | set(" ".join(graph["kind_phrases"] + graph["phrases"]).split())
    for c in captions:
        low = re.sub(r"\w+-\w+", "", c.lower())  # "two-lane" is a road type, not a count
        assert cap.KIND_WORD[kind] in low, (kind, c)
        for word in COLOURS:
            if re.search(rf"\b{word}\b", low):
                assert word in allowed_colours, (word, c, nps)
        for m in COUNT_RE.findall(low):
            assert re.search(rf"\b{m}\b", nps + " " + " ".join(graph["phrases"])), (m, c, nps)
        for mo, words in CAMERA_WORDS.items():
            if words in low:
                assert mo == motion, (c, motion)


def test_captions_agree_with_scene_graph(footage: tuple[Path, int]) -> None:
    out, _ = footage
    for r in iter_jsonl(out / "annotations.jsonl"):
        _check_captions(r.captions, r.meta["scene_graph"], r.meta["camera_motion"])
        for g in r.meta["scene_graph"]["groups"]:
            st = g["stats"]
            if g["noun_phrase"] is not None:
                assert st["presence"] >= cap.TRUE_FOR


def test_noun_phrases_follow_visibility() -> None:
    group = {"type": "boat", "plural": "boats"}
    both = np.ones((100, 2), bool)
    both[:20, 1] = False
    st = cap.group_stats(both, ["white", "white"])
    assert cap.noun_phrase(group, st) == "two white boats"
    mixed = cap.group_stats(np.ones((100, 2), bool), ["white", "red"])
    assert cap.noun_phrase(group, mixed) == "two boats"
    rarely = np.zeros((100, 1), bool)
    rarely[:30] = True
    assert cap.noun_phrase(group, cap.group_stats(rarely, ["red"])) is None
    crowd = np.random.default_rng(0).random((100, 12)) < 0.7
    assert cap.noun_phrase({"type": "person", "plural": "people", "colour_salient": False},
                           cap.group_stats(crowd, ["red"] * 12)) == "many people"
    player = {"type": "player", "plural": "players", "colour_in": True}
    assert cap.noun_phrase(player, cap.group_stats(np.ones((10, 1), bool), ["red"])) == "a player in red"


@pytest.mark.parametrize("spec", list(SCENES.values()), ids=list(SCENES))
def test_every_registered_scene_renders_with_true_captions(spec: SceneSpec) -> None:
    """Whatever is in the registry, including a newly added scene, is built, rendered and captioned."""
    k = list(SCENES).index(spec.kind)
    motion = CAMERA_MOTIONS[k % len(CAMERA_MOTIONS)]
    plan = TakePlan(0, 3, spec.kind, motion, 40, head=2, tail=2, view_h=60.0)
    take = build_take(11, plan, 128, 72, FPS)
    scene = take.scene
    assert scene.kind == spec.kind
    assert scene.canvas.img.dtype == np.uint8 and scene.canvas.img.ndim == 3 and scene.canvas.img.shape[2] == 3
    for m in scene.movers:
        assert m.pos.shape == (44, 2)
    for g in scene.groups:
        assert all(0 <= i < len(scene.movers) for i in g.members), g.type
    assert take.scene_graph["kind_phrases"] and all(spec.word in p for p in take.scene_graph["kind_phrases"])
    frames = list(render_take(take, 128, 72))
    assert len(frames) == 44 and all(f.shape == (72, 128, 4) and f.dtype == np.uint8 for f in frames)
    assert float(np.std(frames[20][..., :3])) > 5.0  # not a flat image
    assert all(c.strip() for c in take.captions)
    _check_captions(take.captions, take.scene_graph, motion)


# The kinds docs/synth.md describes, in registry order: flight plans pick a kind by its index in
# SCENE_KINDS, so a reordering would silently change every seed's footage.
DOCUMENTED_KINDS = ("road", "parking_lot", "river", "forest", "farmland", "beach", "residential", "sports_field",
                    "construction_site", "railway", "bridge", "harbour")


def test_registry_holds_the_documented_kinds() -> None:
    assert tuple(SCENES) == SCENE_KINDS == DOCUMENTED_KINDS
    assert [s.order for s in SCENES.values()] == sorted(s.order for s in SCENES.values())
    doc = (Path(__file__).resolve().parents[1] / "docs" / "synth.md").read_text(encoding="utf-8")
    described = doc.split("## What it generates", 1)[1].split("\n## ", 1)[0]
    for kind in SCENES:
        assert f"`{kind}`" in described, kind


def test_register_scene_rejects_a_taken_kind_or_order() -> None:
    before = dict(SCENES)
    with pytest.raises(ValueError, match="registered twice"):
        register_scene("road", order=99, noun="a road")(SCENES["road"].build)
    with pytest.raises(ValueError, match="already used by 'road'"):
        register_scene("new_kind", order=SCENES["road"].order, noun="a new kind")(SCENES["road"].build)
    assert SCENES == before


@pytest.mark.parametrize("motion", CAMERA_MOTIONS)
def test_camera_motion_is_smooth(motion: str) -> None:
    """No jumps: at 640x360 the ground under the image moves at most a few pixels per frame."""
    cam = make_camera(np.random.default_rng(3), motion, 30 * 25, FPS, 16 / 9, 60.0)
    ppx = 360 / cam.view_h
    step = np.hypot(np.diff(cam.cx), np.diff(cam.cy)) * ppx[1:]
    assert step.max() < 4.0
    # Second differences (jerk of the picture) stay tiny: speeds change slowly.
    accel = np.hypot(np.diff(cam.cx, 2), np.diff(cam.cy, 2)) * ppx[2:]
    assert accel.max() < 0.2
    turn = np.abs(np.diff(cam.theta)) * 367  # pixels at the image corner
    assert turn.max() < 3.0
    zoom = np.abs(np.diff(np.log(cam.view_h)))
    assert zoom.max() < 0.003
    if motion == "hover":
        assert step.max() < 0.5


def test_bad_options_raise_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        generate(tmp_path, flights=0, seed=0)
    with pytest.raises(ConfigError):
        generate(tmp_path, flights=1, seed=0, resolution=(101, 60))
    with pytest.raises(ConfigError):
        generate(tmp_path, flights=1, seed=0, min_take=5, max_take=4)


def test_contact_sheet(tmp_path: Path) -> None:
    from PIL import Image

    from dvtr_bench.synth.contact import contact_sheet

    path = contact_sheet(tmp_path / "sheet.png", seed=0, resolution=(128, 72), take_s=0.4, frames_per_kind=2,
                         thumb_width=96)
    img = Image.open(path)
    rows = int(np.ceil(len(SCENE_KINDS) / 2))
    assert img.width == 2 * (2 * 98 + 8) and img.height > rows * 54
    assert path.stat().st_size < 1_000_000


def test_frame_rates_are_exact_fractions() -> None:
    from fractions import Fraction

    from dvtr_bench.synth.encode import fps_fraction

    assert fps_fraction(25) == 25 and fps_fraction(12.5) == Fraction(25, 2)
    assert fps_fraction(29.97) == Fraction(30000, 1001) and fps_fraction(23.976) == Fraction(24000, 1001)


def test_exposure_ramps_change_only_the_light_of_their_takes(footage: tuple[Path, int], tmp_path: Path) -> None:
    out, seed = footage
    ramps = tmp_path / "ramps"
    generate(ramps, flights=2, seed=seed, exposure_ramps=1.0, **OPTS)
    assert (ramps / "shots.json").read_bytes() == (out / "shots.json").read_bytes()
    plain = [json.loads(line) for line in (out / "annotations.jsonl").read_text().splitlines()]
    lit = [json.loads(line) for line in (ramps / "annotations.jsonl").read_text().splitlines()]
    first_ramp = lit[0]["meta"]["scene_graph"]["exposure_ramp"]
    for a, b in zip(plain, lit):
        ramp = b["meta"]["scene_graph"].pop("exposure_ramp")
        # the same takes, captions and scene graphs; only how strongly a cut changes the picture depends on light
        a["meta"]["scene_graph"].pop("cut_strength", None)
        b["meta"]["scene_graph"].pop("cut_strength", None)
        assert a == b
        assert 0 <= ramp["start_frame"] < ramp["end_frame"] <= a["meta"]["end_frame"] - a["meta"]["start_frame"]
        assert 0.35 <= abs(ramp["stops"]) <= 0.6
    before = _decode(out / "videos" / "flight_000.mp4")
    after = _decode(ramps / "videos" / "flight_000.mp4")
    take = plain[0]["meta"]
    ramp = first_ramp
    # before the ramp the frames are the same pictures; after it, brighter or darker
    i0 = take["start_frame"] + max(0, ramp["start_frame"] - 1)
    i1 = take["start_frame"] + ramp["end_frame"]
    assert np.abs(before[i0].astype(int) - after[i0].astype(int)).mean() < 2.0
    ratio = after[i1].astype(float).mean() / before[i1].astype(float).mean()
    assert abs(np.log2(ratio)) > 0.2
    with pytest.raises(ConfigError):
        generate(tmp_path / "bad", flights=1, seed=0, exposure_ramps=1.5)
