"""Every registered segmenter honours the interface: a new segmenter module is covered here without a new test."""

from __future__ import annotations

import json

import pytest

from dvtr_bench.errors import ConfigError
from dvtr_bench.video.probe import probe
from dvtr_bench.video.process import process_video
from dvtr_bench.video.segmenters import SEGMENTERS, Segmenter, make_segmenter, segmenter_names, segmenter_params
from dvtr_bench.testing.footage import synth_footage

NAMES = segmenter_names()
VIDEO = "flight_001"


@pytest.fixture(scope="module")
def video():
    from dvtr_bench.annotations import read_annotations

    footage = synth_footage()
    path = footage / "videos" / f"{VIDEO}.mp4"
    records = [r for r in read_annotations(footage / "annotations.jsonl") if r.video_id == VIDEO]
    return path, probe(path), records


def test_builtin_segmenters_are_registered():
    assert {"shots", "windows", "annotations"} <= set(NAMES)
    assert list(SEGMENTERS) == list(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_identity_and_description(name):
    seg = make_segmenter(name)
    assert isinstance(seg, Segmenter) and type(seg) is SEGMENTERS[name]
    assert seg.name == name
    desc = type(seg).description
    assert isinstance(desc, str) and desc.strip() and "\n" not in desc


@pytest.mark.parametrize("name", NAMES)
def test_params_are_json_and_round_trip(name):
    params = make_segmenter(name).params()
    assert json.loads(json.dumps(params)) == params
    assert make_segmenter(name, **params).params() == params
    # what params() records is what the constructor accepts, so a clip row's parameters rebuild its segmenter
    assert set(params) <= set(segmenter_params(name))


@pytest.mark.parametrize("name", NAMES)
def test_every_parameter_has_a_default(name):
    assert not [p.name for p in segmenter_params(name).values() if p.required]


@pytest.mark.parametrize("name", NAMES)
def test_rejects_an_unknown_parameter(name):
    with pytest.raises(ConfigError, match="no_such_parameter"):
        make_segmenter(name, no_such_parameter=1)


@pytest.mark.parametrize("name", NAMES)
def test_spans_on_shared_video(name, video):
    path, info, records = video
    seg = make_segmenter(name)
    params = seg.params()
    result = process_video(path, seg, records=records, info=info)
    spans = [c.span for c in result.clips]
    assert spans, f"{name} cut no clip out of a {info.duration_s:.1f} s video"
    duration = max(info.duration_s, result.end_s)
    starts = [sp.start_s for sp in spans]
    assert starts == sorted(starts)
    for sp in spans:
        assert 0 <= sp.start_s < sp.end_s <= duration + 1e-6
        if params.get("min_len"):
            assert sp.duration_s >= params["min_len"] - 1e-6
        if params.get("max_len"):
            assert sp.duration_s <= params["max_len"] + 1e-6
    if not params.get("overlap"):
        for a, b in zip(spans, spans[1:]):
            assert a.end_s <= b.start_s + 1e-6, (a, b)
    assert all(len(c.frames) == 12 for c in result.clips)


# ------------------------------------------------------------------------------------------------ registry

@pytest.fixture
def scratch_registry():
    """Registrations made by a test are undone after it."""
    from dvtr_bench.video.segmenters import base

    saved = dict(base._REGISTRY)
    yield
    base._REGISTRY.clear()
    base._REGISTRY.update(saved)


def test_a_registered_segmenter_is_usable_by_name(scratch_registry, video):
    from dvtr_bench.video.segmenters import Span, register_segmenter

    @register_segmenter
    class Halves(Segmenter):
        name = "test-halves"
        description = "the first and the second half of the video"

        def __init__(self, min_len: float | None = None, pieces: int = 2):
            self.min_len, self.pieces = min_len, pieces

        def params(self):
            return {"min_len": self.min_len, "pieces": self.pieces}

        def start(self, info, records=()):
            super().start(info, records)
            step = info.duration_s / self.pieces
            return [Span(i * step, (i + 1) * step) for i in range(self.pieces)]

    assert "test-halves" in segmenter_names()
    assert [p.to_dict() for p in segmenter_params("test-halves").values()] == [
        {"name": "min_len", "type": "float or None", "default": None},
        {"name": "pieces", "type": "int", "default": 2}]
    path, info, _ = video
    result = process_video(path, make_segmenter("test-halves", pieces=3), info=info)
    assert len(result.clips) == 3
    with pytest.raises(ConfigError, match="did you mean 'pieces'"):
        make_segmenter("test-halves", peices=3)


def test_a_segmenter_without_parameters_registers(scratch_registry):
    from dvtr_bench.video.segmenters import register_segmenter

    @register_segmenter
    class Whole(Segmenter):
        name = "test-whole"
        description = "the whole video"

        def params(self):
            return {}

    assert segmenter_params("test-whole") == {} and make_segmenter("test-whole").params() == {}
    with pytest.raises(ConfigError, match="has no parameter 'min_len'; its parameters are none"):
        make_segmenter("test-whole", min_len=1.0)


def test_registration_needs_name_description_and_named_parameters(scratch_registry):
    from dvtr_bench.video.segmenters import ShotSegmenter, register_segmenter

    class NoName(Segmenter):
        description = "x"

        def params(self):
            return {}

    class NoDescription(Segmenter):
        name = "test-nodesc"

        def params(self):
            return {}

    class Starred(Segmenter):
        name = "test-starred"
        description = "x"

        def __init__(self, **kwargs):
            pass

        def params(self):
            return {}

    class Taken(ShotSegmenter):
        description = "another shots"

    for cls in (NoName, NoDescription, Starred, int):
        with pytest.raises(TypeError):
            register_segmenter(cls)
    with pytest.raises(ValueError, match="already registered"):
        register_segmenter(type("Taken", (Taken,), {"name": "shots"}))
    assert register_segmenter(SEGMENTERS["shots"]) is SEGMENTERS["shots"]     # registering again is harmless
    with pytest.raises(TypeError):
        SEGMENTERS["x"] = Taken        # the registry view is read-only


def test_make_segmenter_checks_names_and_types():
    with pytest.raises(ConfigError, match="did you mean 'windows'"):
        make_segmenter("window")
    with pytest.raises(ConfigError, match="'threshold' must be float"):
        make_segmenter("shots", threshold="3")
    with pytest.raises(ConfigError, match="'length' must be float"):
        make_segmenter("windows", length=True)
    with pytest.raises(ConfigError, match="'window' must be int"):
        make_segmenter("shots", window=8.5)
    with pytest.raises(ConfigError, match="window length must be > 0"):
        make_segmenter("windows", length=0)                   # the segmenter's own checks become ConfigError too
    assert make_segmenter("shots", window=8.0, threshold=4).params()["window"] == 8
    # None means "the default", except where None is a value of its own (no minimum length)
    params = make_segmenter("shots", threshold=None, min_len=None).params()
    assert params["threshold"] == 3.0 and params["min_len"] is None


# ---------------------------------------------------------------------------------------------------- docs

def _documented_segmenters() -> list[str]:
    """Names in the first column of the table under "## Segmenters" in docs/build-dataset.md."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "build-dataset.md").read_text()
    section = text.split("## Segmenters", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[1].strip() for line in section.splitlines() if line.startswith("| `")]
    return [row.split("`")[1] for row in rows]


def test_docs_list_exactly_the_registered_segmenters():
    assert sorted(_documented_segmenters()) == sorted(NAMES)
