"""build-dataset end to end: Hub layout, offline loading, corrupt inputs, resume after SIGKILL, Ray, push, CLI."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from dvtr_bench.dataset.pipeline import build
from dvtr_bench.dataset.config import BuildConfig
from dvtr_bench.protocol import v1
from dvtr_bench.testing.footage import synth_footage


@pytest.fixture(scope="module")
def footage():
    return synth_footage()


@pytest.fixture(scope="module")
def built(footage, tmp_path_factory):
    out = tmp_path_factory.mktemp("ds")
    res = build([footage / "videos"], footage / "annotations.jsonl", out, BuildConfig(), workers=1)
    return out, res


def _content(out: Path) -> list[dict]:
    """Every row of every shard, in file order (what a user gets), frames as bytes."""
    rows = []
    for f in sorted((out / "data").glob("*.parquet")):
        rows += [{"file": f.name, **r} for r in pq.read_table(f).to_pylist()]
    return rows


def test_layout_and_offline_load(built):
    import datasets
    from PIL import Image

    out, res = built
    assert not res.partial and res.n_clips > 0
    names = sorted(p.name for p in (out / "data").iterdir())
    assert names == sorted(f"{s}-00000-of-00001.parquet" for s in ("train", "validation", "test"))
    card = (out / "README.md").read_text()
    assert card.startswith("---\nlicense: other\n") and "configs:" in card and "path: data/test-*.parquet" in card
    assert "size_categories" in card and "task_categories" in card and "Near-duplicate" in card
    assert (out / "build" / "manifest.parquet").is_file()
    bj = json.loads((out / "build" / "build.json").read_text())
    assert bj["config"]["segmenter"] == "shots" and bj["versions"]["datasets"]
    # frames are embedded as bytes, not paths
    table = pq.read_table(out / "data" / "test-00000-of-00001.parquet")
    assert all(f["bytes"] and f["path"] is None for row in table.column("frames").to_pylist() for f in row)
    ds = datasets.load_dataset(str(out))
    assert set(ds) == {"train", "validation", "test"}
    row = ds["test"][0]
    assert len(row["frames"]) == v1.NUM_FRAMES and isinstance(row["frames"][0], Image.Image)
    assert min(row["frames"][0].size) == v1.FRAME_SHORT_SIDE
    assert row["captions"] and row["segmenter"] == "shots" and json.loads(row["segmenter_params"])["threshold"]
    import dvtr_bench

    one = dvtr_bench.load_dataset(str(out), split="validation")
    assert len(one) == res.per_split["validation"]["clips"]


def test_frames_are_at_protocol_times(built):
    out, _ = built
    for r in _content(out):
        want = v1.frame_times(r["start_s"], r["end_s"])
        assert max(abs(a - b) for a, b in zip(r["frame_times_s"], want)) <= 0.5 / r["fps"] + 1e-6


def test_splits_are_per_video(built):
    out, res = built
    seen: dict[str, set] = {}
    for r in _content(out):
        seen.setdefault(r["video_id"], set()).add(r["split"])
    assert all(len(s) == 1 for s in seen.values())
    assert res.audit.videos_in_several_splits == {}


def _faststart_copy(src: Path, dst: Path) -> Path:
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w", options={"movflags": "faststart"}) as out:
        ost = out.add_stream_from_template(inp.streams.video[0])
        for pkt in inp.demux(inp.streams.video[0]):
            if pkt.dts is None:
                continue
            pkt.stream = ost
            out.mux(pkt)
    return dst


def test_corrupt_inputs_are_recorded_and_exit_3(footage, tmp_path):
    from dvtr_bench.cli import cli

    vids = tmp_path / "in"
    vids.mkdir()
    shutil.copy(footage / "videos" / "flight_001.mp4", vids)
    (vids / "zero.mp4").write_bytes(b"")
    (vids / "notes.mp4").write_text("this is not a video\n")
    (vids / "cut.mp4").write_bytes((footage / "videos" / "flight_000.mp4").read_bytes()[:20000])
    # index at the front (faststart), data cut in half: opens and decodes, then stops early
    fs = _faststart_copy(footage / "videos" / "flight_002.mp4", tmp_path / "fs.mp4")
    (vids / "half.mp4").write_bytes(fs.read_bytes()[:fs.stat().st_size // 2])
    out = tmp_path / "ds"
    r = CliRunner().invoke(cli, ["build-dataset", str(vids), "--annotations", str(footage / "annotations.jsonl"),
                                 "--out", str(out), "-j", "1", "--splits", "train=1"])
    assert r.exit_code == 3, r.output
    man = {m["video_id"]: m for m in pq.read_table(out / "build" / "manifest.parquet").to_pylist()}
    assert man["flight_001"]["status"] == "ok" and man["flight_001"]["n_clips"] > 0
    assert man["zero"]["status"] == "failed" and "empty" in man["zero"]["reason"]
    assert man["notes"]["status"] == "failed" and "not a readable video" in man["notes"]["reason"]
    assert man["cut"]["status"] == "failed" and "truncated" in man["cut"]["reason"]
    assert man["half"]["status"] == "failed" and "truncated: decoded" in man["half"]["reason"]
    assert "failed" in r.output and "flight_001" not in [line.split()[1] for line in r.output.splitlines()
                                                          if line.strip().startswith("failed")]
    assert [p.name for p in (out / "data").iterdir()] == ["train-00000-of-00001.parquet"]


@pytest.mark.slow
def test_resume_after_sigkill_gives_same_dataset(footage, tmp_path, built):
    ref_out, _ = built
    out = tmp_path / "ds"
    cmd = [sys.executable, "-m", "dvtr_bench", "build-dataset", str(footage / "videos"), "--annotations",
           str(footage / "annotations.jsonl"), "--out", str(out), "-j", "1"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    jobs = out / "build" / "jobs"
    while proc.poll() is None and not (jobs.is_dir() and any(jobs.glob("*.parquet"))):
        time.sleep(0.02)
    killed = proc.poll() is None
    if killed:
        proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert killed, "the build finished before the first video was staged; the test could not interrupt it"
    assert not (out / "data").exists() or not any((out / "data").glob("*.parquet"))
    staged = {p.name for p in jobs.glob("*.parquet")}
    assert 1 <= len(staged) < 3
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    man = pq.read_table(out / "build" / "manifest.parquet").to_pylist()
    assert sum(m["resumed"] for m in man) == len(staged)
    assert _content(out) == _content(ref_out)


@pytest.mark.slow
def test_ray_executor_local_cluster(footage, tmp_path, built):
    pytest.importorskip("ray")
    ref_out, _ = built
    res = build([footage / "videos"], footage / "annotations.jsonl", tmp_path / "ds", BuildConfig(),
                executor="ray", workers=2)
    assert res.n_ok == 3 and not res.partial
    assert _content(tmp_path / "ds") == _content(ref_out)


def test_push_to_hub_with_fake_api(built):
    from dvtr_bench.dataset.hub import push_to_hub

    out, _ = built

    class FakeApi:
        def __init__(self):
            self.calls = []

        def create_repo(self, **kw):
            self.calls.append(("create_repo", kw))

        def upload_folder(self, **kw):
            self.calls.append(("upload_folder", kw))
            return type("Commit", (), {"commit_url": "https://hub.example/commit/1"})()

    api = FakeApi()
    url = push_to_hub(out, "me/drone-set", private=True, api=api)
    assert url == "https://hub.example/commit/1"
    assert api.calls[0] == ("create_repo", {"repo_id": "me/drone-set", "repo_type": "dataset", "private": True,
                                            "exist_ok": True})
    up = api.calls[1][1]
    assert up["folder_path"] == str(out) and up["repo_type"] == "dataset" and "data/*.parquet" in up["allow_patterns"]


def test_load_dataset_from_repo_id_uses_snapshot(built, monkeypatch):
    import huggingface_hub

    import dvtr_bench
    from dvtr_bench.errors import InputError

    out, res = built
    seen = {}

    def fake_snapshot(repo_id, repo_type, revision, allow_patterns):
        seen.update(repo_id=repo_id, repo_type=repo_type, revision=revision)
        return str(out)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot)
    ds = dvtr_bench.load_dataset("me/drone-set", split="test", revision="abc")
    assert len(ds) == res.per_split["test"]["clips"] and seen == {"repo_id": "me/drone-set", "repo_type": "dataset",
                                                                   "revision": "abc"}

    def offline(**kw):
        raise OSError("offline")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(InputError, match="cannot fetch"):
        dvtr_bench.load_dataset("me/missing")


def test_windows_and_annotation_segmenters_cli(footage, tmp_path):
    from dvtr_bench.cli import cli

    out = tmp_path / "win"
    r = CliRunner().invoke(cli, ["build-dataset", str(footage / "videos"), "-a", str(footage / "annotations.jsonl"),
                                 "--out", str(out), "--segmenter", "windows", "--window-length", "4",
                                 "--keep-uncaptioned", "-j", "1", "--min-overlap", "0.3"])
    assert r.exit_code == 0, r.output
    rows = _content(out)
    assert rows and all(r["segmenter"] == "windows" and r["end_s"] - r["start_s"] <= 4 + 1e-9 for r in rows)
    out = tmp_path / "ann"
    r = CliRunner().invoke(cli, ["build-dataset", str(footage / "videos"), "-a", str(footage / "annotations.jsonl"),
                                 "--out", str(out), "--segmenter", "annotations", "-j", "1", "--export-clips",
                                 "--clip-size", "64"])
    assert r.exit_code == 0, r.output
    rows = _content(out)
    recs = [json.loads(x) for x in (footage / "annotations.jsonl").read_text().splitlines()]
    assert sorted(r["clip_id"] for r in rows) == sorted(x["clip_id"] for x in recs)
    assert all(r["label"] and json.loads(r["meta"])["camera_motion"] for r in rows)
    clip = out / rows[0]["clip_path"]
    assert clip.is_file() and clip.stat().st_size > 0
    from dvtr_bench.video.probe import probe

    info = probe(clip)
    assert min(info.width, info.height) == 64 and info.codec == "h264"


def test_split_from_annotations_and_bad_input(footage, tmp_path):
    from dvtr_bench.annotations import read_annotations, write_jsonl
    from dvtr_bench.errors import InputError

    recs = read_annotations(footage / "annotations.jsonl")
    for r in recs:
        r.split = {"flight_000": "test", "flight_001": "train", "flight_002": "validation"}[r.video_id]
    ann = tmp_path / "ann.jsonl"
    write_jsonl(recs, ann)
    res = build([footage / "videos"], ann, tmp_path / "ds", BuildConfig(segmenter="annotations",
                                                                          split_from_annotations=True), workers=1)
    split_of = {r["video_id"]: r["split"] for r in _content(tmp_path / "ds")}
    assert split_of == {"flight_000": "test", "flight_001": "train", "flight_002": "validation"}
    assert res.per_split["test"]["videos"] == 1
    recs[0].split = "train"
    write_jsonl(recs, ann)
    with pytest.raises(InputError, match="several splits"):
        build([footage / "videos"], ann, tmp_path / "ds2", BuildConfig(split_from_annotations=True), workers=1)


def test_progress_events_and_no_annotations(footage, tmp_path):
    from dvtr_bench.progress import Progress

    events: list[Progress] = []
    res = build([footage / "videos" / "flight_000.mp4"], None, tmp_path / "ds", BuildConfig(), events.append,
                workers=1)
    assert res.n_clips > 0 and all(not r["captions"] for r in _content(tmp_path / "ds"))   # kept, uncaptioned
    tasks = {e.task for e in events}
    assert {"videos", "clips", "footage"} <= tasks
    footage_s = sum(e.advance or 0 for e in events if e.task == "footage")
    import pyarrow.parquet as pq

    man = pq.read_table(tmp_path / "ds" / "build" / "manifest.parquet").to_pylist()[0]
    assert footage_s == pytest.approx(man["duration_s"])
    assert any(e.info.get("footage s/s") for e in events if e.task == "footage")


def test_annotation_problems_use_probed_durations(footage, tmp_path):
    from dvtr_bench.annotations import read_annotations, write_jsonl

    recs = [r for r in read_annotations(footage / "annotations.jsonl") if r.video_id == "flight_001"]
    recs[-1].end_s = recs[-1].end_s + 100.0          # beyond the end of the video
    ann = tmp_path / "ann.jsonl"
    write_jsonl(recs, ann)
    events = []
    res = build([footage / "videos" / "flight_001.mp4"], ann, tmp_path / "ds", BuildConfig(segmenter="windows",
                segmenter_params={"length": 3.0}), events.append, workers=1)
    assert [p.code for p in res.annotation_problems] == ["beyond_video"]
    total = [e.total for e in events if e.task == "footage" and e.total is not None]
    assert total and total[0] > 5
    assert "Annotation problems reported by validation: 1" in (tmp_path / "ds" / "README.md").read_text()


def test_misspelled_segmenter_parameter_stops_the_build_before_any_job(footage, tmp_path, monkeypatch):
    from dvtr_bench.dataset import pipeline
    from dvtr_bench.errors import ConfigError

    with pytest.raises(ConfigError, match=r"no parameter 'treshold' \(did you mean 'threshold'\?\)"):
        BuildConfig(segmenter_params={"treshold": 3})
    jobs = []
    monkeypatch.setattr(pipeline, "run_job", lambda spec, *a: jobs.append(spec))
    config = BuildConfig()
    config.segmenter_params["treshold"] = 3          # a config changed after it was made: build checks it again
    out = tmp_path / "ds"
    with pytest.raises(ConfigError, match=r"'treshold' \(did you mean 'threshold'\?\)"):
        build([footage / "videos"], footage / "annotations.jsonl", out, config, workers=1)
    # no job ran, so no video was recorded as failed: nothing was written at all
    assert jobs == [] and not out.exists()


def test_cli_rejects_bad_segmenter_options_before_any_job(footage, tmp_path):
    from dvtr_bench.cli import cli

    out = tmp_path / "ds"
    for args in (["--window-length", "0"], ["--window-length", "10", "--max-len", "3"]):
        r = CliRunner().invoke(cli, ["build-dataset", str(footage / "videos"), "--out", str(out),
                                     "--segmenter", "windows", *args])
        assert r.exit_code == 2, r.output
        assert len(r.stderr.splitlines()) == 1 and r.stderr.startswith("error: "), r.stderr
        assert not out.exists()


def test_segmenter_choices_and_help_come_from_the_registry():
    from dvtr_bench.cli import cli
    from dvtr_bench.commands.build_dataset import SHORTHANDS, build_dataset
    from dvtr_bench.video.segmenters import SEGMENTERS, segmenter_names, segmenter_params

    option = next(p for p in build_dataset.params if p.name == "segmenter")
    assert tuple(option.type.choices) == segmenter_names()
    r = CliRunner().invoke(cli, ["build-dataset", "--help"])
    text = " ".join(r.output.split())
    for name, cls in SEGMENTERS.items():
        assert f"{name}: {cls.description}" in text
        assert all(f"{p}=" in text for p in segmenter_params(name))
    # the shorthand options name real segmenters and parameters
    assert all(param in segmenter_params(name) for name, param in SHORTHANDS.values())


def test_cli_segmenter_params(footage, tmp_path):
    from dvtr_bench.cli import cli

    out = tmp_path / "ds"
    args = ["build-dataset", str(footage / "videos" / "flight_001.mp4"), "--out", str(out), "-j", "1"]
    r = CliRunner().invoke(cli, [*args, "--segmenter-param", "treshold=3"])
    assert r.exit_code == 2 and len(r.stderr.splitlines()) == 1, r.output
    assert "'treshold'" in r.stderr and "did you mean 'threshold'" in r.stderr and not out.exists()
    r = CliRunner().invoke(cli, [*args, "--segmenter-param", "threshold"])
    assert r.exit_code == 2 and "NAME=VALUE" in r.output
    r = CliRunner().invoke(cli, [*args, "--segmenter", "windows", "--window-length", "4", "--segmenter-param",
                                 "length=3", "--segmenter-param", "overlap=1"])
    assert r.exit_code == 0, r.output
    rows = _content(out)
    assert rows and {r["segmenter_params"] for r in rows} == {
        '{"length": 3.0, "max_len": null, "min_len": 1.5, "overlap": 1.0}'}


def test_record_segmenter_needs_annotations(footage, tmp_path):
    from dvtr_bench.errors import InputError

    with pytest.raises(InputError, match="needs --annotations"):
        build([footage / "videos"], None, tmp_path / "ds", BuildConfig(segmenter="annotations"), workers=1)
