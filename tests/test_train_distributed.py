"""torchrun with 2 gloo processes on CPU trains and evaluates like 1 process (within float tolerance), for every
registered method: the dropout of X-Pool, MSAM and tightTransf and the X-Pool augmentation draw what one process
draws."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from dvtr_bench.protocol.record import read_record, validate_record
from dvtr_bench.protocol.scores import load_scores

from dvtr_bench.models import list_methods

pytestmark = pytest.mark.slow

METHODS = list_methods()
# 64 px frames (4 patches) keep six methods x two launches at a few seconds each; 224 px is the same code path.
# lr 1e-4: Adam turns float noise on a near-zero gradient into a step of up to lr, which a larger rate would make
# a visible difference between any two float orders of summation.
ARGS = dict(seeds=[0], device="cpu", backbone="dvtr-tiny", pretrained=None, epochs=2, batch_size=8, keep_last=True,
            config={"model": {"image_size": 64}},
            train_overrides={"lr": 1e-4, "backbone_lr": 1e-4, "warmup": 0.1, "num_workers": 0,
                             "eval_batch_size": 4})
# X-Pool's release augmentation (a random crop and flip per clip) on top: its draws must not depend on the rank.
AUGMENTED = {**ARGS, "train_overrides": {**ARGS["train_overrides"], "augment": "xpool"}}
RUNS = [(m, ARGS) for m in METHODS] + [("xpool", AUGMENTED)]

SCRIPT = textwrap.dedent("""
    import json, os, sys
    from dvtr_bench.testing.learnable import learnable_dataset
    from dvtr_bench.engine.run import run_baseline
    from dvtr_bench.engine import distributed as D
    from dvtr_bench.engine import trainer

    # The loss every rank computes at every step: the same global batch with the same draws gives the same loss.
    step_losses = []
    forward = trainer._Step.forward
    def logged(self, *args, **kwargs):
        out = forward(self, *args, **kwargs)
        step_losses[-1].append(float(out["loss"].detach()))
        return out
    trainer._Step.forward = logged

    records, first = [], []
    # one launch for every method: torchrun and torch's import are most of a tiny run's time
    for i, (method, args) in enumerate(json.loads(sys.argv[2])):
        losses = []
        step_losses.append([])
        record = run_baseline(method, learnable_dataset(16, 8, 8), os.path.join(sys.argv[1], str(i)),
                              progress=lambda ev: losses.append(ev.info["loss"])
                              if ev.task == "train" and ev.completed == 1 else None, **args)
        records.append(str(record))
        first.append(losses)
    rank, world = D.world()
    with open(os.path.join(sys.argv[1], f"rank{rank}.json"), "w") as f:
        json.dump({"rank": rank, "world": world, "records": records, "first_step_loss": first,
                   "step_losses": step_losses}, f)
    D.shutdown()
""")


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    """The record paths of every (method, arguments) of RUNS, trained by 2 gloo processes."""
    tmp = tmp_path_factory.mktemp("ddp")
    script = tmp / "ddp_run.py"
    script.write_text(SCRIPT)
    out2 = tmp / "two"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script),
         str(out2), json.dumps(RUNS)], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-4000:]
    ranks = [json.loads((out2 / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world"] for r in ranks] == [2, 2] and ranks[0]["records"] == ranks[1]["records"]
    return ranks[0]["records"], ranks[0]["first_step_loss"], [r["step_losses"] for r in ranks]


@pytest.mark.parametrize("i", range(len(RUNS)), ids=[m + ("-augmented" if a is AUGMENTED else "") for m, a in RUNS])
def test_two_gloo_processes_match_one_process(two_processes, tmp_path, i):
    from dvtr_bench.testing.learnable import learnable_dataset
    from dvtr_bench.engine.run import run_baseline

    method, args = RUNS[i]
    first: list[float] = []
    one = run_baseline(method, learnable_dataset(16, 8, 8), tmp_path / "one", **args,
                       progress=lambda ev: first.append(ev.info["loss"])
                       if ev.task == "train" and ev.completed == 1 else None)
    records, first_two, by_rank = two_processes
    # Every rank computes the loss of the same gathered batch with the same weights: with the same dropout masks
    # it is the same loss at every step (a rank drawing its own masks computes another loss, and DDP then
    # averages gradients of different losses).
    assert len(by_rank[0][i]) == len(by_rank[1][i]) == 8
    np.testing.assert_allclose(by_rank[1][i], by_rank[0][i], rtol=1e-6)
    # And one process computes it too: before any update the only difference left is float summation order, so
    # a crop drawn differently for the clips another process loads shows at once.
    print("first-step losses, 1 and 2 processes:", first, first_two[i])
    assert first[0] == pytest.approx(first_two[i][0], rel=1e-5)
    rec1, rec2 = read_record(one), read_record(records[i])
    assert validate_record(rec2) == []
    assert rec2["extra"]["world_size"] == 2 and rec1["extra"]["world_size"] == 1

    run1, run2 = one.parent, Path(records[i]).parent
    h1 = json.loads((run1 / "run.json").read_text())["seeds"][0]["history"]
    h2 = json.loads((run2 / "run.json").read_text())["seeds"][0]["history"]
    print("1 process:", [(h["loss"], h["val"]["rsum"]) for h in h1])
    print("2 processes:", [(h["loss"], h["val"]["rsum"]) for h in h2])
    # every caption every epoch: 16 clips x 2 captions / batch 8 = 4 steps per epoch
    assert [h["steps"] for h in h1] == [h["steps"] for h in h2] == [4, 8]
    # Same global batches, same gathered loss, same draws: the trajectories agree up to float reduction order.
    # The scores too (below); but a barely trained tiny model has near-tied scores (tightTransf's cross-encoder
    # starts almost constant) which that noise may swap: one swapped rank moves RSum by at most 12.5 on 8 clips.
    for a, b in zip(h1, h2):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-3)
        assert a["val"]["rsum"] == pytest.approx(b["val"]["rsum"], abs=12.5)
    assert [h["selected"] for h in h1] == [h["selected"] for h in h2]
    m1, m2 = rec1["runs"][0]["metrics"], rec2["runs"][0]["metrics"]
    assert m1["rsum"] == pytest.approx(m2["rsum"], abs=12.5)
    s1 = load_scores(run1 / "scores_seed0.npz").scores
    s2 = load_scores(run2 / "scores_seed0.npz").scores
    assert s1.shape == s2.shape == (16, 8)
    np.testing.assert_allclose(s1, s2, atol=2e-3)
    w1 = torch.load(run1 / "seed0" / "last.pt", weights_only=False)["model"]
    w2 = torch.load(run2 / "seed0" / "last.pt", weights_only=False)["model"]
    # Float noise on a near-zero gradient can move a weight by up to lr (1e-4) a step under Adam: 8 steps, 8e-4.
    worst = max((float((w1[k].float() - w2[k].float()).abs().max()), k) for k in w1 if w1[k].is_floating_point())
    assert worst[0] <= 1e-3, worst
