"""The training loop end to end on CPU with the tiny backbone: learning, resume, validation-only selection."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from datasets import DatasetDict

from dvtr_bench.protocol.record import read_record, validate_record
from dvtr_bench.protocol.scores import load_scores
from dvtr_bench.engine.run import run_baseline
from dvtr_bench.engine.trainer import TrainConfig, seed_everything, train

pytestmark = pytest.mark.slow

FAST = {"lr": 1e-3, "backbone_lr": 1e-3, "warmup": 0.1, "num_workers": 0, "eval_batch_size": 8}


@pytest.fixture
def ds(learnable_splits):
    return learnable_splits


class SplitLog(DatasetDict):
    """A DatasetDict that logs every split it hands out, to check when the test split is first touched."""

    log: list[str]

    def __getitem__(self, key):  # type: ignore[override]
        self.log.append(str(key))
        return super().__getitem__(key)


def test_loss_falls(ds, tmp_path):
    from dvtr_bench.models import create_method

    seed_everything(0)
    method = create_method("meanP", backbone="dvtr-tiny", pretrained=None)
    cfg = TrainConfig.from_dict({**FAST, "epochs": 4, "batch_size": 8})
    res = train(method, ds["train"], ds["validation"], tmp_path / "run", config=cfg, seed=0)
    losses = [h["loss"] for h in res.history]
    # every caption every epoch: 16 clips x 2 captions = 32 pairs = 4 batches of 8 per epoch
    assert len(losses) == 4 and res.steps == 16 and res.steps_per_epoch == [4, 4, 4, 4]
    assert [h["steps_in_epoch"] for h in res.history] == [4, 4, 4, 4]
    assert all(h["pairs"] == 32 and h["pairs_sitting_out"] == 0 for h in res.history)
    assert losses[-1] < losses[0] - 0.3, losses
    # selection is the best validation epoch, and best.pt holds those weights
    rsums = [h["val"]["rsum"] for h in res.history]
    assert res.best_epoch == int(np.argmax(rsums))
    assert [h["selected"] for h in res.history].count(True) >= 1
    best = torch.load(res.best_path, weights_only=False)
    assert best["epoch"] == res.best_epoch
    for k, v in method.state_dict().items():
        assert torch.equal(v.cpu(), best["model"][k].cpu()), k
    # the learning rate followed warmup then cosine decay down to ~0 at the last step
    lr_new = [h["lr"][-1] for h in res.history]
    assert lr_new[-1] < lr_new[0]


def _run(ds, out, progress=None, **kw):
    return run_baseline("xpool", ds, out, seeds=[0], device="cpu", backbone="dvtr-tiny", pretrained=None,
                        epochs=2, batch_size=8, train_overrides=FAST, progress=progress, **kw)


class Stop(Exception):
    pass


def test_resume_after_interruption_matches_uninterrupted_run(ds, tmp_path):
    # xpool has dropout, so this also checks that dropout draws depend on (seed, epoch) only.
    logged = SplitLog(dict(ds))
    logged.log = []
    events: list[tuple[str, float | None]] = []
    a = _run(logged, tmp_path / "a", progress=lambda ev: events.append((ev.task, ev.completed)), keep_last=True)

    # the test split was handed out only after the last epoch had been validated
    first_test = logged.log.index("test")
    assert "train" in logged.log[:first_test] and "validation" in logged.log[:first_test]
    epoch_events = [i for i, (t, c) in enumerate(events) if t == "epochs" and c == 2]
    test_events = [i for i, (t, _) in enumerate(events) if t.startswith("test")]
    assert epoch_events and test_events and min(test_events) > max(epoch_events)

    def stop_after_first_epoch(ev):
        if ev.task == "epochs" and ev.completed == 1:
            raise Stop()

    with pytest.raises(Stop):
        _run(ds, tmp_path / "b", progress=stop_after_first_epoch)
    [run_b] = (tmp_path / "b").glob("xpool-dvtr-tiny-*")
    assert (run_b / "seed0" / "last.pt").exists() and not (run_b / "record.json").exists()
    assert json.loads((run_b / "run.json").read_text())["status"] == "failed"
    b = _run(ds, tmp_path / "b", keep_last=True)

    rec_a, rec_b = read_record(a), read_record(b)
    assert validate_record(rec_a) == [] and validate_record(rec_b) == []
    assert rec_a["runs"][0]["metrics"] == rec_b["runs"][0]["metrics"]
    assert rec_a["runs"][0]["scores"]["sha256"] == rec_b["runs"][0]["scores"]["sha256"]
    run_a = a.parent
    wa = torch.load(run_a / "seed0" / "last.pt", weights_only=False)
    wb = torch.load(run_b / "seed0" / "last.pt", weights_only=False)
    for k in wa["model"]:
        assert torch.equal(wa["model"][k], wb["model"][k]), k
    assert [h["val"] for h in wa["history"]] == [h["val"] for h in wb["history"]]
    info_b = json.loads((run_b / "run.json").read_text())
    assert info_b["seeds"][0]["resumed_from_epoch"] == 1

    # the record: metrics from the engine on the saved scores, validation selection, cost filled in
    sf = load_scores(run_a / "scores_seed0.npz")
    assert sf.scores.shape == (16, 8)
    assert rec_a["checkpoint_selection"] == "validation" and not rec_a["zero_shot"]
    assert rec_a["runs"][0]["best_epoch"] == wa["best_epoch"]
    assert rec_a["transductive"] is False
    # every caption every epoch: 16 clips x 2 captions in batches of 8 = 4 steps per epoch, in the record
    assert rec_a["training"] == {"regime": "uniform", "steps_per_epoch": 4, "total_steps": 8, "batch_size": 8}
    assert rec_a["protocol_version"] == "2" and rec_a["v2t_convention"] == "rank_clips"
    assert info_b["seeds"][0]["steps_per_epoch"] == [4, 4]
    cost = rec_a["cost"]
    assert cost["parameters"] > 0 and cost["eval_clips_per_s"] > 0 and cost["train_time_s"] > 0
    assert cost["peak_memory_mb"] > 0 and cost["gflops_per_clip"] > 0


@pytest.mark.parametrize("method", ["meanP", "xpool"])
def test_release_regime_resumes_bit_for_bit(ds, tmp_path, method):
    # meanP: fp16 BertAdam moments come back from the checkpoint as float32 and must be cast back exactly;
    # xpool: HF AdamW and the crop/flip augmentation draws must replay after an interruption.
    def run(out, progress=None):
        return run_baseline(method, ds, out, seeds=[0], device="cpu", backbone="dvtr-tiny", pretrained=None,
                            epochs=2, batch_size=8, regime="release", progress=progress, keep_last=True,
                            train_overrides={"lr": 1e-3, "backbone_lr": 1e-5, "num_workers": 0,
                                             "eval_batch_size": 8})

    a = run(tmp_path / "a")

    def stop(ev):
        if ev.task == "epochs" and ev.completed == 1:
            raise Stop()

    with pytest.raises(Stop):
        run(tmp_path / "b", progress=stop)
    b = run(tmp_path / "b")
    assert a.parent.name.startswith(f"{method}-dvtr-tiny-release-") and b.parent.name == a.parent.name
    rec_a, rec_b = read_record(a), read_record(b)
    assert rec_a["training"] == {"regime": "release", "steps_per_epoch": 4, "total_steps": 8, "batch_size": 8}
    assert rec_a["runs"][0]["scores"]["sha256"] == rec_b["runs"][0]["scores"]["sha256"]
    wa = torch.load(a.parent / "seed0" / "last.pt", weights_only=False)
    wb = torch.load(b.parent / "seed0" / "last.pt", weights_only=False)
    for k in wa["model"]:
        assert torch.equal(wa["model"][k], wb["model"][k]), k
    assert json.loads((b.parent / "run.json").read_text())["seeds"][0]["resumed_from_epoch"] == 1
    assert rec_a["config"]["train"]["regime"] == "release"


def test_changed_configuration_is_another_run_and_a_foreign_checkpoint_refuses_to_resume(ds, tmp_path):
    from dvtr_bench.errors import ConfigError

    def stop(ev):
        if ev.task == "epochs" and ev.completed == 1:
            raise Stop()

    for lr in (1e-3, 5e-4):
        with pytest.raises(Stop):
            run_baseline("meanP", ds, tmp_path, seeds=[0], device="cpu", backbone="dvtr-tiny", pretrained=None,
                         epochs=2, batch_size=8, train_overrides={**FAST, "lr": lr}, progress=stop)
    first, second = sorted(tmp_path.glob("meanP-dvtr-tiny-*"), key=lambda p: p.stat().st_mtime)
    assert first != second   # the other learning rate did not resume (or overwrite) the first run
    # A last.pt that is not this run's (copied in by hand) is still refused, not silently resumed.
    (second / "seed0" / "last.pt").write_bytes((first / "seed0" / "last.pt").read_bytes())
    with pytest.raises(ConfigError, match="different configuration"):
        run_baseline("meanP", ds, tmp_path, seeds=[0], device="cpu", backbone="dvtr-tiny", pretrained=None,
                     epochs=2, batch_size=8, train_overrides={**FAST, "lr": 5e-4})


def test_zero_shot_needs_only_the_test_split(ds, tmp_path):
    only_test = DatasetDict({"test": ds["test"]})
    path = run_baseline("meanP", only_test, tmp_path, zero_shot=True, device="cpu", backbone="dvtr-tiny",
                        pretrained=None, train_overrides={"num_workers": 0})
    rec = read_record(path)
    assert validate_record(rec) == []
    assert rec["zero_shot"] is True and rec["checkpoint_selection"] == "none" and rec["seeds"] == [0]
    assert rec["cost"]["train_time_s"] == 0
    assert path.parent.name.startswith("meanP-dvtr-tiny-zeroshot-")
    assert not (path.parent / "seed0" / "last.pt").exists()
    # The score file is bound to the test split: its fingerprint is recomputed from the file alone, and it
    # scores exactly the split's clips and captions.
    from dvtr_bench.protocol.binding import TestSplit, check_against_split
    from dvtr_bench.protocol.fingerprint import dataset_fingerprint

    sf = load_scores(path.parent / "scores_seed0.npz")
    assert sf.bound and sf.fingerprint == rec["dataset"]["fingerprint"] == dataset_fingerprint(ds["test"])
    assert check_against_split(sf, TestSplit.from_dataset(ds["test"])) == []


def test_missing_split_is_bad_input(ds, tmp_path):
    from dvtr_bench.errors import InputError

    with pytest.raises(InputError, match="validation"):
        run_baseline("meanP", DatasetDict({"train": ds["train"], "test": ds["test"]}), tmp_path, seeds=[0],
                     device="cpu", backbone="dvtr-tiny", pretrained=None)
