"""build-dataset on the inputs real users bring: caption ids that match nothing, empty captions, SD cards with the
same file names, the public caption sets' split lists, a second build into the same folder, a killed build's debris.
"""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from dvtr_bench.cli import cli


def _build(*args: str) -> object:
    return CliRunner().invoke(cli, ["build-dataset", *args, "-j", "1"])


def _records(footage: Path) -> list[dict]:
    return [json.loads(line) for line in (footage / "annotations.jsonl").read_text().splitlines()]


def _write(records: list[dict], path: Path) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def test_caption_ids_that_match_no_video_are_exit_1_with_the_cause_in_one_line(footage, tmp_path):
    recs = _records(footage)
    for r in recs:
        r["video_id"] = r["video_id"].replace("flight_", "FLIGHT-")          # the likely first mistake
    ann = _write(recs, tmp_path / "ann.jsonl")
    out = tmp_path / "ds"
    res = _build(str(footage / "videos"), "-a", str(ann), "--out", str(out))
    assert res.exit_code == 1, res.output
    line = next(ln for ln in res.output.splitlines() if ln.startswith("error:"))
    assert "no clip was made" in line and f"none of the {len(recs)} caption records" in line
    assert "'FLIGHT-000'" in line and "'flight_000'" in line
    assert "caption ids:" in res.output
    # no dataset that loaders would crash on
    assert not (out / "README.md").exists() and not (out / "data").exists()


def test_every_shot_under_min_len_is_exit_1_with_the_cause(footage, tmp_path):
    res = _build(str(footage / "videos" / "flight_000.mp4"), "-a", str(footage / "annotations.jsonl"),
                 "--out", str(tmp_path / "ds"), "--min-len", "100")
    assert res.exit_code == 1, res.output
    assert "shorter than the minimum clip length (100 s; the longest is" in res.output


def test_an_empty_caption_stops_the_build_before_any_video_is_decoded(footage, tmp_path):
    recs = _records(footage)
    recs[3]["captions"][1] = ""
    ann = _write(recs, tmp_path / "ann.jsonl")
    out = tmp_path / "ds"
    res = _build(str(footage / "videos"), "-a", str(ann), "--out", str(out))
    assert res.exit_code == 2, res.output
    assert f"{ann}: line 4" in res.output and "caption 2: empty caption" in res.output
    assert "Traceback" not in res.output
    assert not (out / "build" / "manifest.parquet").exists()


def test_caption_ids_that_match_no_video_are_summarised_not_buried(footage, tmp_path):
    recs = _records(footage)
    recs += [{"video_id": f"DJI_{i:04d}", "captions": ["a field"]} for i in range(40)]
    ann = _write(recs, tmp_path / "ann.jsonl")
    res = _build(str(footage / "videos"), "-a", str(ann), "--out", str(tmp_path / "ds"))
    assert res.exit_code == 0, res.output
    assert f"caption ids: 40 of {len(recs)} caption records name no video (e.g. 'DJI_0000', 'DJI_0001'" in res.output
    # one line for them, not forty
    assert sum("DJI_00" in ln for ln in res.output.splitlines()) == 1


def test_a_second_build_into_the_same_folder_is_refused(footage, tmp_path):
    from dvtr_bench.dataset.outdir import BuildLock

    out = tmp_path / "ds"
    with BuildLock(out):
        res = _build(str(footage / "videos" / "flight_000.mp4"), "--out", str(out))
    assert res.exit_code == 2, res.output
    assert "another build is writing this dataset folder (pid" in res.output
    assert not (out / "data").exists()


def test_a_killed_builds_temp_folders_are_removed(footage, tmp_path):
    out = tmp_path / "ds"
    (out / ".data.tmp-deadbeef").mkdir(parents=True)
    (out / ".data.tmp-deadbeef" / "train-00000-of-00001.parquet").write_bytes(b"half a shard")
    (out / "build" / "jobs").mkdir(parents=True)
    (out / "build" / "jobs" / ".flight_000.parquet.tmp-1234abcd").write_bytes(b"half a job")
    res = _build(str(footage / "videos" / "flight_000.mp4"), "--out", str(out))
    assert res.exit_code == 0, res.output
    assert not list(out.glob(".data.*")) and not list((out / "build" / "jobs").glob(".*"))


def test_sd_cards_with_the_same_file_names_build(footage, tmp_path):
    import pyarrow.parquet as pq

    cards = tmp_path / "cards"
    for card, flight in (("A", "flight_000"), ("B", "flight_001")):
        (cards / card).mkdir(parents=True)
        shutil.copy(footage / "videos" / f"{flight}.mp4", cards / card / "DJI_0001.MP4")
    res = _build(str(cards), "--out", str(tmp_path / "ds"), "--splits", "train=1")
    assert res.exit_code == 0, res.output
    man = pq.read_table(tmp_path / "ds" / "build" / "manifest.parquet").to_pylist()
    assert sorted(m["video_id"] for m in man) == ["A/DJI_0001", "B/DJI_0001"]
    # two folders given: each id starts with its folder's name
    res = _build(str(cards / "A"), str(cards / "B"), "--out", str(tmp_path / "ds2"), "--splits", "train=1")
    assert res.exit_code == 0, res.output
    man = pq.read_table(tmp_path / "ds2" / "build" / "manifest.parquet").to_pylist()
    assert sorted(m["video_id"] for m in man) == ["A/DJI_0001", "B/DJI_0001"]
    res = _build(str(cards), "--out", str(tmp_path / "ds3"), "--video-id", "name")
    assert res.exit_code == 2 and "two videos get the id 'DJI_0001'" in res.output


def test_clip4clip_folder_split_lists_are_used_said_and_hashed(footage, tmp_path):
    c4c = tmp_path / "c4c"
    c4c.mkdir()
    caps = {}
    for r in _records(footage):
        caps.setdefault(r["video_id"], []).extend(c.split() for c in r["captions"][:2])
    with open(c4c / "raw-captions.pkl", "wb") as f:
        pickle.dump(caps, f, protocol=4)
    (c4c / "train_list.txt").write_text("flight_000\nflight_001\n")
    (c4c / "test_list.txt").write_text("flight_002\n")
    out = tmp_path / "ds"
    # the folder itself, as docs/annotations.md says; whole-video records, as in USRD (one file per clip)
    res = _build(str(footage / "videos"), "-a", str(c4c), "--out", str(out), "--segmenter", "annotations")
    assert res.exit_code == 0, res.output
    assert "splits: taken from the annotations (train_list.txt, test_list.txt)" in res.output
    import pyarrow.parquet as pq

    split_of = {r["video_id"]: r["split"] for f in (out / "data").glob("*.parquet") for r in pq.read_table(f).to_pylist()}
    assert split_of == {"flight_000": "train", "flight_001": "train", "flight_002": "test"}
    files = json.loads((out / "build" / "build.json").read_text())["annotations"]["files"]
    assert [Path(f["path"]).name for f in files] == ["raw-captions.pkl", "train_list.txt", "test_list.txt"]
    assert all(len(f["sha256"]) == 64 for f in files)
    # --redraw-splits draws new ones, and says the given ones were not used
    res = _build(str(footage / "videos"), "-a", str(c4c), "--out", str(tmp_path / "ds2"), "--segmenter",
                 "annotations", "--redraw-splits")
    assert res.exit_code == 0 and "were not used: --redraw-splits" in res.output


@pytest.mark.parametrize("ext", [".SRT", ".srt"])
def test_a_telemetry_sidecar_given_as_input_is_not_a_video(footage, tmp_path, ext):
    vids = tmp_path / "in"
    vids.mkdir()
    shutil.copy(footage / "videos" / "flight_000.mp4", vids / "DJI_0007.MP4")
    (vids / f"DJI_0007{ext}").write_text("1\n00:00:00,000 --> 00:00:00,033\nGPS(8.5,47.4,20)\n")
    (tmp_path / f"lonely{ext}").write_text("1\n")
    res = _build(str(vids / "DJI_0007.MP4"), str(vids / f"DJI_0007{ext}"), "--out", str(tmp_path / "ds"))
    assert res.exit_code == 0, res.output              # the sidecar is read with its video, not as a video
    res = _build(str(tmp_path / f"lonely{ext}"), "--out", str(tmp_path / "ds2"))
    assert res.exit_code == 2 and "telemetry sidecar" in res.output


def test_rotated_footage_builds_upright_with_displayed_size(tmp_path):
    import numpy as np
    import pyarrow.parquet as pq

    from dvtr_bench.testing.footage import textured, write_video

    rng = np.random.default_rng(4)
    ground = textured(rng, 108, 300, (90, 120, 70))
    frames = [np.ascontiguousarray(ground[:108, i:i + 192]) for i in range(60)]
    (tmp_path / "in").mkdir()
    write_video(tmp_path / "in" / "phone.mp4", frames, rotation=90)
    res = _build(str(tmp_path / "in"), "--out", str(tmp_path / "ds"), "--splits", "train=1")
    assert res.exit_code == 0, res.output
    row = pq.read_table(next((tmp_path / "ds" / "data").glob("*.parquet"))).to_pylist()[0]
    assert (row["width"], row["height"]) == (108, 192)
    import io

    from PIL import Image

    assert Image.open(io.BytesIO(row["frames"][0]["bytes"])).size == (224, 398)
    man = pq.read_table(tmp_path / "ds" / "build" / "manifest.parquet").to_pylist()[0]
    assert man["rotation"] == 90 and (man["width"], man["height"]) == (108, 192)


def test_the_data_folder_is_swapped_in_whole(tmp_path):
    from dvtr_bench.dataset.outdir import swap_in

    final, new = tmp_path / "data", tmp_path / ".data.tmp-1"
    final.mkdir()
    (final / "train-00000-of-00001.parquet").write_text("old")
    new.mkdir()
    (new / "train-00000-of-00002.parquet").write_text("new")
    swap_in(new, final)
    assert [p.name for p in final.iterdir()] == ["train-00000-of-00002.parquet"]
    assert not new.exists() and not list(tmp_path.glob(".data*"))
