"""`dvtr evaluate`: a saved model is evaluated whole and its record says what was evaluated; bad checkpoints are
one clear error line and exit 2."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from dvtr_bench.cli import cli
from dvtr_bench.protocol.record import read_record, validate_record
from dvtr_bench.provenance import file_sha256


def invoke(*args: object):
    res = CliRunner().invoke(cli, [str(a) for a in args])
    res.text = " ".join(res.output.split())    # rich wraps long lines at the terminal width
    return res


@pytest.fixture(scope="module")
def runs():
    from dvtr_bench.testing.runs import tiny_runs

    # seqTransf: a method with weights of its own (the temporal transformer), which a backbone-only load drops.
    return tiny_runs(("seqTransf", "xpool"))


def _fresh_run(runs, tmp_path: Path, method: str = "seqTransf") -> Path:
    """A copy of a finished run that a test may damage."""
    dst = tmp_path / runs[1][method].name
    shutil.copytree(runs[1][method], dst)
    return dst


def test_evaluate_a_run_loads_every_weight_and_labels_the_record(runs, tmp_path):
    ds, by_method = runs
    run = by_method["seqTransf"]
    out = tmp_path / "eval"
    res = invoke("evaluate", run, "--dataset", ds, "--out", out, "--device", "cpu")
    assert res.exit_code == 0, res.output + repr(res.exception)
    rec = read_record(out / "record.json")
    assert validate_record(rec) == []
    trained = read_record(run / "record.json")
    # Same test split, same selected weights: the very scores the training run wrote. A load of the backbone only
    # (the old `--zero-shot --pretrained best.pt` workaround) leaves the temporal transformer random.
    assert rec["runs"][0]["scores"]["sha256"] == trained["runs"][0]["scores"]["sha256"]
    assert rec["runs"][0]["metrics"] == trained["runs"][0]["metrics"]
    assert rec["zero_shot"] is False and rec["checkpoint_selection"] == "validation"
    ckpt = run / "seed0" / "best.pt"
    ev = rec["evaluated"]
    assert ev["run_name"] == run.name and (out / ev["run"]).resolve() == run.resolve()
    assert ev["run_config_hash"] == trained["config_hash"]
    assert ev["trained_on"] == {"name": trained["dataset"]["name"], "fingerprint": trained["dataset"]["fingerprint"]}
    assert ev["checkpoints"] == [{"seed": 0, "path": "seed0/best.pt", "sha256": file_sha256(ckpt),
                                  "epoch": trained["runs"][0]["best_epoch"]}]
    assert rec["runs"][0]["checkpoint"] == "seed0/best.pt"
    assert f"evaluated: run {run.name}, seed0/best.pt" in res.text


def test_evaluate_a_checkpoint_file_by_default_next_to_the_run(runs, tmp_path):
    ds, _ = runs
    run = _fresh_run(runs, tmp_path, "xpool")
    res = invoke("evaluate", run / "seed0" / "last.pt", "--dataset", ds, "--device", "cpu")
    assert res.exit_code == 0, res.output + repr(res.exception)
    records = list(run.glob("eval-*/record.json"))
    assert len(records) == 1
    rec = read_record(records[0])
    # last.pt holds the last epoch's weights, not the validation choice: the record says so.
    assert rec["checkpoint_selection"] == "last_epoch"
    assert rec["evaluated"]["checkpoints"][0]["path"] == "seed0/last.pt"
    assert rec["evaluated"]["checkpoints"][0]["epoch"] == torch.load(run / "seed0" / "last.pt",
                                                                    weights_only=False)["epoch"]


def _no_traceback(res) -> None:
    assert "Traceback" not in res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)


def test_missing_checkpoint_exits_2(runs, tmp_path):
    ds, _ = runs
    run = _fresh_run(runs, tmp_path)
    (run / "seed0" / "best.pt").unlink()
    res = invoke("evaluate", run, "--dataset", ds, "--device", "cpu")
    assert res.exit_code == 2 and "checkpoint not found" in res.text and "best.pt" in res.text, res.output
    _no_traceback(res)
    res = invoke("evaluate", run / "seed0" / "nothing.pt", "--dataset", ds, "--device", "cpu")
    assert res.exit_code == 2 and "checkpoint not found" in res.text, res.output


@pytest.mark.parametrize("content", ["garbage", "no_model"])
def test_a_file_that_is_no_dvtr_checkpoint_exits_2(runs, tmp_path, content):
    ds, _ = runs
    run = _fresh_run(runs, tmp_path)
    ckpt = run / "seed0" / "best.pt"
    if content == "garbage":
        ckpt.write_bytes(b"not a checkpoint at all\n" * 10)
    else:
        torch.save({"state_dict": {"w": torch.zeros(2)}}, ckpt)
    res = invoke("evaluate", ckpt, "--dataset", ds, "--device", "cpu")
    assert res.exit_code == 2, res.output
    assert str(ckpt) in res.text and ("cannot read the checkpoint" in res.text or "not a dvtr checkpoint" in res.text)
    _no_traceback(res)


def test_a_checkpoint_of_another_method_exits_2(runs, tmp_path):
    ds, by_method = runs
    run = _fresh_run(runs, tmp_path, "seqTransf")
    shutil.copy(by_method["xpool"] / "seed0" / "best.pt", run / "seed0" / "best.pt")
    res = invoke("evaluate", run, "--dataset", ds, "--device", "cpu")
    assert res.exit_code == 2, res.output
    assert "written by method xpool" in res.text and "seqTransf" in res.text
    _no_traceback(res)


def test_a_checkpoint_with_wrong_shapes_exits_2(runs, tmp_path):
    ds, _ = runs
    run = _fresh_run(runs, tmp_path)
    ckpt = run / "seed0" / "best.pt"
    state = torch.load(ckpt, weights_only=True)
    key = next(k for k in state["model"] if k.startswith("header.") and state["model"][k].ndim == 2)
    state["model"][key] = torch.zeros(state["model"][key].shape[0] + 1, state["model"][key].shape[1])
    torch.save(state, ckpt)
    res = invoke("evaluate", run, "--dataset", ds, "--device", "cpu")
    assert res.exit_code == 2, res.output
    assert "does not fit" in res.text and "another shape" in res.text and key in res.text
    _no_traceback(res)


def test_a_zero_shot_run_and_the_old_workaround_point_to_evaluate(runs, tmp_path):
    from dvtr_bench.engine.run import run_baseline
    from dvtr_bench.testing.runs import TINY_OVERLAY

    ds, by_method = runs
    zs = run_baseline("meanP", ds, tmp_path / "zs", zero_shot=True, device="cpu", config=TINY_OVERLAY).parent
    res = invoke("evaluate", zs, "--dataset", ds, "--device", "cpu")
    assert res.exit_code == 2 and "zero-shot run has no trained checkpoint" in res.text, res.output
    # A run's checkpoint given as zero-shot backbone weights would load only the backbone and be labelled zero-shot.
    best = by_method["seqTransf"] / "seed0" / "best.pt"
    (tmp_path / "tiny.json").write_text(json.dumps(TINY_OVERLAY))
    res = invoke("run-baseline", "seqTransf", "--dataset", ds, "--zero-shot", "--config", tmp_path / "tiny.json",
                 "--pretrained", best, "--out", tmp_path / "wk", "--device", "cpu")
    assert res.exit_code == 2 and "dvtr evaluate" in res.text, res.output
    assert not list((tmp_path / "wk").rglob("record.json"))


def test_the_run_folder_itself_is_no_output_folder(runs, tmp_path):
    ds, _ = runs
    run = _fresh_run(runs, tmp_path)
    before = (run / "record.json").read_bytes()
    res = invoke("evaluate", run, "--dataset", ds, "--out", run, "--device", "cpu")
    assert res.exit_code == 2 and "is the run folder itself" in res.text, res.output
    assert (run / "record.json").read_bytes() == before


def test_evaluate_help_lists_the_command():
    res = invoke("--help")
    assert "evaluate" in res.text
    res = invoke("evaluate", "--help")
    assert res.exit_code == 0 and "RUN_DIR|CHECKPOINT" in res.text
