"""`dvtr run-baseline` from the command line: a dataset folder in, a valid result record out; bad input exits 2."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from dvtr_bench.cli import cli
from dvtr_bench.protocol.record import read_record, validate_record
from dvtr_bench.testing.learnable import write_learnable_dataset

TINY = ["--backbone", "dvtr-tiny", "--pretrained", "none", "--device", "cpu"]


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    return write_learnable_dataset(tmp_path_factory.mktemp("ds") / "learnable", n_train=8, n_val=4, n_test=4)


@pytest.mark.slow
def test_cli_trains_evaluates_and_writes_a_record(dataset_dir, tmp_path):
    out = tmp_path / "results"
    res = CliRunner().invoke(cli, ["run-baseline", "meanP", "--dataset", str(dataset_dir), "--out", str(out),
                                   *TINY, "--epochs", "1", "--batch-size", "4", "--seeds", "0,1",
                                   "--workers", "1"])
    assert res.exit_code == 0, res.output + repr(res.exception)
    [run] = out.glob("meanP-dvtr-tiny-*")
    rec = read_record(run / "record.json")
    assert validate_record(rec) == []
    assert rec["seeds"] == [0, 1] and rec["summary"]["n_seeds"] == 2 and rec["summary"]["std"] is not None
    assert rec["dataset"]["n_clips"] == 4 and rec["dataset"]["n_captions"] == 8
    assert rec["dataset"]["name"] == "learnable"   # the folder's name: no build/build.json to name it
    assert (run / "scores_seed0.npz").exists() and (run / "scores_seed1.npz").exists()
    assert rec["config"]["train"]["epochs"] == 1 and rec["backbone"]["name"] == "dvtr-tiny"
    assert "RSum" in res.output and "mean" in res.output and "std" in res.output and "record.json" in res.output
    info = json.loads((run / "run.json").read_text())
    assert [s["seed"] for s in info["seeds"]] == [0, 1]

    # the same command again resumes from the finished checkpoints and reproduces the record's metrics
    res2 = CliRunner().invoke(cli, ["run-baseline", "meanP", "--dataset", str(dataset_dir), "--out", str(out),
                                    *TINY, "--epochs", "1", "--batch-size", "4", "--seeds", "0,1",
                                    "--workers", "0"])
    assert res2.exit_code == 0, res2.output
    rec2 = read_record(run / "record.json")
    assert [r["metrics"] for r in rec2["runs"]] == [r["metrics"] for r in rec["runs"]]


@pytest.mark.parametrize("args, message", [
    (["meanP", "--dataset", "{missing}"], "no such folder"),
    (["meanP", "--dataset", "{empty}"], "not a dvtr dataset folder"),
    (["no-such-method", "--dataset", "{ds}"], "unknown method"),
    (["meanP", "--dataset", "{ds}", "--seeds", "a,b"], "comma-separated"),
    (["meanP", "--dataset", "{ds}", "--config", "{missing}.json"], "config file not found"),
    (["meanP", "--dataset", "{ds}", "--device", "tpu"], "--device tpu"),
])
def test_bad_input_exits_2(dataset_dir, tmp_path, args, message):
    (tmp_path / "empty").mkdir()
    args = [a.format(ds=dataset_dir, missing=tmp_path / "nope", empty=tmp_path / "empty") for a in args]
    res = CliRunner().invoke(cli, ["run-baseline", *args, "--out", str(tmp_path / "o"), *TINY[:4]])
    assert res.exit_code == 2, res.output
    assert message in " ".join(res.output.split())


def test_help_lists_the_options():
    res = CliRunner().invoke(cli, ["run-baseline", "--help"])
    assert res.exit_code == 0
    for opt in ("--zero-shot", "--seeds", "--device", "--backbone", "--pretrained", "--epochs", "--batch-size",
                "--workers", "--config", "--out"):
        assert opt in res.output


def test_record_names_the_dataset_by_its_build_name(tmp_path):
    from dvtr_bench.engine.run import _dataset_name

    d = tmp_path / "some" / "dataset"
    (d / "build").mkdir(parents=True)
    assert _dataset_name(d) == "dataset"
    (d / "build" / "build.json").write_text(json.dumps({"config": {"pretty_name": "Drone flights v2"}}))
    assert _dataset_name(str(d)) == "Drone flights v2"
    assert _dataset_name("owner/repo") == "owner/repo"   # a Hub repo id is its own name


def test_a_checkpoint_of_other_shapes_is_exit_2_with_one_line(dataset_dir, tmp_path):
    import open_clip
    import torch

    from dvtr_bench.models.backbone import register_configs

    register_configs()
    torch.manual_seed(0)
    sd = open_clip.create_model("dvtr-tiny", force_context_length=32).state_dict()
    sd["text_projection"] = torch.zeros(128, 64)
    torch.save(sd, tmp_path / "bad.pt")
    res = CliRunner().invoke(cli, ["run-baseline", "meanP", "--dataset", str(dataset_dir), "--out",
                                   str(tmp_path / "r"), "--zero-shot", "--backbone", "dvtr-tiny", "--pretrained",
                                   str(tmp_path / "bad.pt"), "--device", "cpu"])
    assert res.exit_code == 2, res.output
    assert "does not fit the model" in res.output and "Traceback" not in res.output
