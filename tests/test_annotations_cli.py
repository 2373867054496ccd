"""`dvtr annotations validate|stats|convert` through click's test runner."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
from click.testing import CliRunner

from dvtr_bench.annotations import read_annotations
from dvtr_bench.cli import cli

EXAMPLES = Path(__file__).resolve().parents[1] / "annotations"


def _run(*args: str) -> "CliRunner.invoke":
    return CliRunner().invoke(cli, ["annotations", *args], catch_exceptions=False,
                              env={"COLUMNS": "200"})


@pytest.mark.parametrize("name", ["example.jsonl", "example.csv", "example.parquet", "example_msrvtt.json",
                                  "clip4clip"])
def test_validate_examples_ok(name: str) -> None:
    res = _run("validate", str(EXAMPLES / name))
    assert res.exit_code == 0, res.output
    assert "OK" in res.output and "0 error(s)" in res.output


def test_validate_prints_every_problem_and_exits_2(tmp_path: Path) -> None:
    p = tmp_path / "bad.csv"
    p.write_text("video_id,clip_id,start_s,end_s,caption\n"
                 "v1,c1,5,2,backwards\n"
                 "v1,c2,0,1,\n"
                 "v2,c2,x,1,not a number\n"
                 "v1,c1,5,2,backwards again\n")
    res = _run("validate", str(p))
    assert res.exit_code == 2
    lines = [ln for ln in res.output.splitlines() if str(p) in ln and "FAILED" not in ln]
    assert len(lines) == 3, res.output
    assert f"{p}: lines 2, 5 [video_id=v1, clip_id=c1]: start_s = 5 is not before end_s = 2" in res.output
    # one row with an empty caption cell is a record without captions (how a caption-less record is written)
    assert f"{p}: line 3 [video_id=v1, clip_id=c2]: record has no captions" in res.output
    assert f"{p}: line 4: start_s is not a number of seconds or a [H:]MM:SS[.fff] timestamp: 'x'" in res.output
    assert "3 error(s)" in res.output


def test_validate_json_output_and_strict(tmp_path: Path) -> None:
    p = tmp_path / "w.jsonl"
    p.write_text('{"video_id": "v", "captions": ["Same.", "same"]}\n')
    res = _run("validate", str(p))
    assert res.exit_code == 0 and "warning" in res.output
    assert _run("validate", "--strict", str(p)).exit_code == 2
    res = _run("validate", "--json", str(p))
    (obj,) = [json.loads(line) for line in res.output.splitlines()]
    assert obj["code"] == "repeated_caption" and obj["file"] == str(p) and obj["record"] == "line 1"


def test_validate_against_a_video_folder(tmp_path: Path) -> None:
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "flight_000.mp4").write_bytes(b"")          # unreadable: a warning, its times are not checked
    (videos / "notes.txt").write_text("not footage")      # not a video extension: ignored
    p = tmp_path / "a.jsonl"
    p.write_text('{"video_id": "flight_000.MP4", "captions": ["x"], "start_s": 0, "end_s": 999}\n'
                 '{"video_id": "flight_001", "captions": ["y"]}\n')
    res = _run("validate", "--videos", str(videos), str(p))
    assert res.exit_code == 2
    assert "unknown video 'flight_001'" in res.output and "line 2" in res.output
    assert "cannot read the video" in res.output and "beyond" not in res.output


def test_validate_refuses_hostile_pickle(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self):
            return (exec, (f"open({str(tmp_path / 'PWNED')!r}, 'w')",))

    (tmp_path / "raw-captions.pkl").write_bytes(pickle.dumps({"v": [Evil()]}))
    res = _run("validate", str(tmp_path))
    assert res.exit_code == 2 and "refused" in res.output and "raw-captions.pkl" in res.output
    assert not (tmp_path / "PWNED").exists()


def test_stats(tmp_path: Path) -> None:
    res = _run("stats", str(EXAMPLES / "example.jsonl"))
    assert res.exit_code == 0
    for needle in ("records", "captions", "11", "caption length (words): min 7", "validation", "duplicate clip ids"):
        assert needle in res.output
    p = tmp_path / "d.csv"
    p.write_text("video_id,clip_id,split,caption\nv1,a,train,A river.\nv1,b,test,a river\nv2,a,train,x\n"
                 "v2,c,train,y\n")
    res = _run("stats", "--json", str(p))
    data = json.loads(res.output)
    assert data["summary"]["duplicate clip ids"] == 1 and data["summary"]["ambiguous captions"] == 1
    assert data["audit"]["videos_in_several_splits"] == {"v1": ["train", "test"]}
    res = _run("stats", str(p))
    assert "video v1 is in several splits: train, test" in res.output


@pytest.mark.parametrize("out,fmt", [("o.jsonl", "jsonl"), ("o.csv", "csv"), ("o.parquet", "parquet"),
                                     ("o.json", "msrvtt")])
def test_convert(tmp_path: Path, out: str, fmt: str) -> None:
    res = _run("convert", str(EXAMPLES / "example.csv"), str(tmp_path / out))
    assert res.exit_code == 0, res.output
    assert f"({fmt})" in res.output and "4 records (11 captions)" in res.output
    assert read_annotations(tmp_path / out) == read_annotations(EXAMPLES / "example.jsonl")


def test_convert_to_clip4clip_and_back(tmp_path: Path) -> None:
    res = _run("convert", "--to", "clip4clip", str(EXAMPLES / "example.jsonl"), str(tmp_path / "c4c"))
    assert res.exit_code == 0 and "were dropped" in res.output
    assert read_annotations(tmp_path / "c4c") == read_annotations(EXAMPLES / "clip4clip")
    res = _run("convert", "--from", "clip4clip", str(tmp_path / "c4c" / "raw-captions.pkl"), str(tmp_path / "x.csv"))
    assert res.exit_code == 0


def test_convert_bad_input_exits_2(tmp_path: Path) -> None:
    p = tmp_path / "bad.jsonl"
    p.write_text('{"video_id": "v", "captions": ["a"]}\n{"captions": ["b"]}\n')
    res = _run("convert", str(p), str(tmp_path / "out.csv"))
    assert res.exit_code == 2 and "line 2" in res.output and "missing video_id" in res.output
    assert not (tmp_path / "out.csv").exists()
    res = _run("convert", str(EXAMPLES / "example.jsonl"), str(tmp_path / "out.xml"))
    assert res.exit_code == 2 and "extension" in res.output
