"""What a training run tells while it runs: a "resumed from epoch N" line, and a TensorBoard log of losses,
learning rates and validation metrics that TensorBoard itself reads back."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console

from dvtr_bench.cli import cli
from dvtr_bench.commands import _ui
from dvtr_bench.progress import Progress
from dvtr_bench.testing.runs import TINY_OVERLAY


class _Stop(Exception):
    pass


def _stop_after_first_epoch(ev: Progress) -> None:
    if ev.task == "epochs" and ev.completed == 1:
        raise _Stop  # as a kill would: last.pt of epoch 1 is on disk, epoch 2 never ran


def test_a_resumed_run_says_so_in_a_plain_line(tmp_path, monkeypatch):
    from dvtr_bench.engine.run import run_baseline
    from dvtr_bench.testing.learnable import write_learnable_dataset

    ds = write_learnable_dataset(tmp_path / "ds", n_train=16, n_val=8, n_test=8)
    cfg = tmp_path / "tiny.json"
    cfg.write_text(json.dumps(TINY_OVERLAY))
    with pytest.raises(_Stop):
        run_baseline("meanP", ds, tmp_path / "runs", seeds=[0], device="cpu", config=str(cfg),
                     progress=_stop_after_first_epoch)
    buf = io.StringIO()
    monkeypatch.setattr(_ui, "err_console", Console(file=buf, force_terminal=False, width=80))
    res = CliRunner().invoke(cli, ["run-baseline", "meanP", "--dataset", str(ds), "--config", str(cfg),
                                   "--seeds", "0", "--device", "cpu", "--out", str(tmp_path / "runs")])
    assert res.exit_code == 0, res.output + repr(res.exception)
    lines = buf.getvalue().splitlines()
    resumed = [ln for ln in lines if "resumed" in ln]
    assert len(resumed) == 1, lines
    assert resumed[0].startswith("seed 0: resumed from epoch 1 of 2 (") and "last.pt" in resumed[0]
    assert resumed[0].endswith("training on from epoch 2")
    # the line comes before the training of epoch 2, not after the run
    assert lines.index(resumed[0]) < next(i for i, ln in enumerate(lines) if ln.startswith("train:"))
    (run_dir,) = (tmp_path / "runs").glob("meanP-dvtr-tiny-*")
    run = json.loads((run_dir / "run.json").read_text())
    assert run["seeds"][0]["resumed_from_epoch"] == 1


def test_a_message_event_is_its_own_line_and_draws_no_bar(monkeypatch):
    buf = io.StringIO()
    monkeypatch.setattr(_ui, "err_console", Console(file=buf, force_terminal=False, width=80))
    with _ui.progress_bars(interval_s=0) as report:
        report(Progress("resume", message="seed 1: resumed from epoch 3 of 5 [x]"))
        report(Progress("train", completed=1, total=2))
    assert buf.getvalue().splitlines() == ["seed 1: resumed from epoch 3 of 5 [x]",
                                           "train: 1/2 (50%) elapsed 0:00:00 eta 0:00:00"]


def _scalars(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_tensorboard_log_holds_losses_learning_rates_and_validation(tmp_path):
    pytest.importorskip("tensorboard")
    from dvtr_bench.engine.run import run_baseline
    from dvtr_bench.testing.learnable import learnable_dataset

    rec = run_baseline("msam", learnable_dataset(16, 8, 8), tmp_path / "runs", seeds=[0], device="cpu",
                       config=TINY_OVERLAY)
    seed_dir = rec.parent / "seed0"
    history = json.loads((rec.parent / "run.json").read_text())["seeds"][0]["history"]
    sc = _scalars(seed_dir / "tensorboard")
    steps = history[-1]["steps"]
    # every optimiser step: the loss and each named term of MSAM's loss, and the two learning rates
    for tag in ("train/loss", "train/infonce", "train/kl", "train/diversity", "lr/backbone", "lr/new"):
        assert [s for s, _ in sc[tag]] == list(range(1, steps + 1)), tag
    # per epoch, at its last step: what history.jsonl holds
    ends = [h["steps"] for h in history]
    assert [s for s, _ in sc["val/rsum"]] == ends
    for h in history:
        at = dict(sc["val/rsum"])[h["steps"]]
        assert at == pytest.approx(h["val"]["rsum"], rel=1e-6)
        assert dict(sc["val/t2v_r1"])[h["steps"]] == pytest.approx(h["val"]["t2v_r1"], rel=1e-6)
        assert dict(sc["epoch/loss"])[h["steps"]] == pytest.approx(h["loss"], rel=1e-6)
        assert dict(sc["val/selected"])[h["steps"]] == float(h["selected"])
        # the rates after the epoch's last step, as the history records them (backbone groups first, then new)
        assert dict(sc["lr/backbone"])[h["steps"]] == pytest.approx(h["lr"][0], rel=1e-6)
        assert dict(sc["lr/new"])[h["steps"]] == pytest.approx(h["lr"][-1], rel=1e-6)


def test_tensorboard_off_writes_no_log(tmp_path):
    from dvtr_bench.engine.run import run_baseline
    from dvtr_bench.testing.learnable import learnable_dataset

    rec = run_baseline("meanP", learnable_dataset(16, 8, 8), tmp_path / "runs", seeds=[0], device="cpu",
                       config=TINY_OVERLAY, train_overrides={"tensorboard": False})
    assert not (rec.parent / "seed0" / "tensorboard").exists()
