"""Trainer building blocks: schedule, optimiser groups, epoch plans, recipe options, frame loading, gathers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dvtr_bench.errors import ConfigError, InputError
from dvtr_bench.protocol import v1
from dvtr_bench.engine.data import Captions, ClipFrames, FrameSource, epoch_plan
from dvtr_bench.testing.learnable import learnable_dataset, learnable_rows
from dvtr_bench.engine.optim import build_optimizer, build_scheduler, warmup_cosine
from dvtr_bench.engine.trainer import TrainConfig


@pytest.fixture(scope="module")
def tiny_meanp():
    from dvtr_bench.models import create_method

    torch.manual_seed(0)
    return create_method("meanP", backbone="dvtr-tiny", pretrained=None)


@pytest.fixture(scope="module")
def small_ds():
    return learnable_dataset(n_train=6, n_val=3, n_test=3)


def test_warmup_cosine_shape():
    total, warm = 100, 0.1
    lrs = [warmup_cosine(s, total, warm) for s in range(total)]
    # linear warmup over the first 10 steps, peak 1.0 at the end of warmup
    assert lrs[0] == pytest.approx(0.1)
    assert lrs[9] == pytest.approx(1.0)
    assert all(b > a for a, b in zip(lrs[:9], lrs[1:10]))
    # then monotone cosine decay towards 0
    assert all(b <= a for a, b in zip(lrs[10:], lrs[11:]))
    assert lrs[10] == pytest.approx(1.0)
    assert lrs[55] == pytest.approx(0.5, abs=0.02)
    assert lrs[-1] < 0.01
    assert warmup_cosine(0, 10, 0.0) == 1.0


def test_scheduler_drives_both_learning_rates(tiny_meanp):
    opt = build_optimizer(tiny_meanp, lr=1e-3, backbone_lr=1e-6, weight_decay=0.2)
    names = {g["name"]: g for g in opt.param_groups}
    assert names["backbone"]["lr"] == 1e-6 and names["backbone"]["weight_decay"] == 0.2
    assert names["backbone/no_decay"]["weight_decay"] == 0.0
    # every trainable parameter is in exactly one group
    ids = [id(p) for g in opt.param_groups for p in g["params"]]
    assert len(ids) == len(set(ids)) == sum(1 for p in tiny_meanp.parameters() if p.requires_grad)
    sched = build_scheduler(opt, total_steps=10, warmup=0.2)
    seen = []
    for _ in range(10):
        seen.append((names["backbone"]["lr"], names["backbone/no_decay"]["lr"]))
        opt.step()
        sched.step()
    assert seen[0][0] == pytest.approx(0.5e-6)  # first warmup step: 1/2 of peak
    assert seen[1][0] == pytest.approx(1e-6)
    assert seen[-1][0] < 0.1e-6
    assert all(a == b for a, b in seen)


def test_train_config_reads_recipes():
    from dvtr_bench.models import load_recipe

    cfg = TrainConfig.from_dict(load_recipe("meanP")["train"])
    assert cfg.lr == 1e-4 and cfg.backbone_lr == pytest.approx(1e-7) and cfg.epochs == 5
    assert cfg.batch_size == 128 and cfg.betas == (0.9, 0.98) and cfg.grad_clip == 1.0
    cfg = TrainConfig.from_dict(load_recipe("xpool")["train"])
    assert cfg.backbone_lr == 1e-6 and cfg.betas == (0.9, 0.999)
    with pytest.raises(ConfigError):
        TrainConfig.from_dict({"epochs": 0})
    with pytest.raises(ConfigError):
        TrainConfig.from_dict({"schedule": "step"})
    with pytest.raises(ConfigError):
        TrainConfig.from_dict({"bogus": 1}, strict=True)


def test_epoch_plan_is_a_function_of_seed_and_epoch():
    rows = learnable_rows(10, "train", captions_per_clip=3)
    caps = Captions(texts=[t for r in rows for t in r["captions"]],
                    caption_to_clip=np.repeat(np.arange(10), 3), clip_ids=[r["clip_id"] for r in rows],
                    offsets=np.arange(0, 31, 3))
    a = epoch_plan(caps, seed=0, epoch=1, batch_size=4)
    assert a == epoch_plan(caps, seed=0, epoch=1, batch_size=4)
    assert a != epoch_plan(caps, seed=0, epoch=2, batch_size=4)
    assert a != epoch_plan(caps, seed=1, epoch=1, batch_size=4)
    assert len(a) == 2 and all(len(b) == 4 for b in a)  # drop_last: 10 clips -> 2 full batches
    full = epoch_plan(caps, seed=0, epoch=1, batch_size=10)[0]
    assert sorted(c for c, _ in full) == list(range(10))  # each clip once per epoch
    assert all(caps.caption_to_clip[k] == c for c, k in full)  # with one of its own captions
    draws = {k for e in range(20) for c, k in epoch_plan(caps, 0, e, 10)[0] if c == 0}
    assert draws == {0, 1, 2}  # over epochs every caption gets used


def test_captions_keep_uncaptioned_clips_and_reject_empty_captions(small_ds):
    caps = Captions.from_split(small_ds["test"], name="test")
    assert caps.n_clips == 3 and len(caps.texts) == 6 and caps.n_uncaptioned == 0
    assert caps.caption_to_clip.tolist() == [0, 0, 1, 1, 2, 2]
    assert caps.caption_ids()[1] == f"{caps.clip_ids[0]}#1"
    # A clip without captions stays, as a text->video distractor (the protocol's rule), with no caption.
    none = small_ds["test"].map(lambda r, i: {"captions": [] if i == 1 else r["captions"]}, with_indices=True)
    caps = Captions.from_split(none, name="test")
    assert caps.n_clips == 3 and caps.n_uncaptioned == 1
    assert caps.caption_to_clip.tolist() == [0, 0, 2, 2] and caps.offsets.tolist() == [0, 2, 2, 4]
    # An empty or blank caption is an annotation problem, reported with the clip and its position.
    for bad_text, what in (("", "is empty"), ("   ", "is only whitespace")):
        bad = small_ds["test"].map(lambda r, i, t=bad_text: {"captions": [r["captions"][0], t] if i == 2
                                                             else r["captions"]}, with_indices=True)
        with pytest.raises(InputError, match=f"caption 2 of 2 {what}: an annotation problem") as e:
            Captions.from_split(bad, name="test")
        assert e.value.record == caps.clip_ids[2] and e.value.file == "test"


def test_uncaptioned_clips_are_distractors_in_evaluation_and_never_trained_on(tiny_meanp, tmp_path, small_ds):
    from dvtr_bench.engine.evaluate import evaluate
    from dvtr_bench.engine.trainer import train

    def drop(split):
        return split.map(lambda r, i: {"captions": [] if i == 0 else r["captions"]}, with_indices=True)

    res = evaluate(tiny_meanp, drop(small_ds["test"]), device="cpu", batch_size=4)
    assert res.n_clips == 3 and res.n_captions == 4
    assert res.scores is not None and res.scores.shape == (4, 3)  # scored against every caption
    from dvtr_bench.protocol.metrics import evaluate as engine

    assert engine(res.scores, res.caption_to_clip).n_uncaptioned_clips == 1
    cfg = TrainConfig.from_dict({"epochs": 1, "batch_size": 8, "lr": 1e-3, "backbone_lr": 1e-3,
                                 "num_workers": 0, "eval_batch_size": 4})
    from dvtr_bench.models import create_method

    fresh = create_method("meanP", backbone="dvtr-tiny", pretrained=None)
    out = train(fresh, drop(small_ds["train"]), small_ds["validation"], tmp_path, config=cfg, seed=0)
    assert out.steps >= 1


def test_clip_frames_decode_preprocess_and_pad(tiny_meanp):
    from datasets import Dataset

    from dvtr_bench.dataset.schema import clip_features

    rows = learnable_rows(2, "test", size=64, n_frames=5) + learnable_rows(1, "test", size=64, n_frames=14, offset=2)
    split = Dataset.from_list(rows, features=clip_features())
    frames = ClipFrames(split, tiny_meanp.frame_spec, name="test")
    i, x, m = frames[0]
    S = tiny_meanp.frame_spec.image_size
    assert x.shape == (v1.NUM_FRAMES, 3, S, S) and x.dtype == torch.float32
    assert m.tolist() == [True] * 5 + [False] * 7
    assert torch.all(x[5:] == 0)
    # a clip with more than 12 stored frames is subsampled uniformly, keeping first and last
    _, x14, m14 = frames[2]
    assert bool(m14.all())
    raw = frames.decode(2)
    assert raw.shape[0] == v1.NUM_FRAMES
    # identical to the method's own FrameSpec on the decoded pixels
    assert torch.equal(x[:5], tiny_meanp.frame_spec(frames.decode(0)))


def test_cached_and_streamed_frames_are_identical(tiny_meanp, small_ds):
    split = small_ds["train"]
    order = [[3, 1], [0, 5, 2], [4]]
    outs = {}
    for mode in ("prepared", "raw", "stream"):
        src = FrameSource(split, tiny_meanp.frame_spec, num_workers=0, cache=mode, name="train")
        assert src.mode == mode
        outs[mode] = list(src.batches(order))
    workers = FrameSource(split, tiny_meanp.frame_spec, num_workers=2, cache="stream", name="train")
    outs["workers"] = list(workers.batches(order))
    for mode, got in outs.items():
        for (i0, f0, m0), (i1, f1, m1) in zip(outs["stream"], got):
            assert torch.equal(i0, i1) and torch.equal(f0, f1) and torch.equal(m0, m1), mode
    assert [b[0].tolist() for b in outs["workers"]] == order


def test_corrupt_frame_names_the_clip(tiny_meanp, small_ds):
    def corrupt(r, i):
        if i == 2:
            r["frames"] = [{"bytes": b"not a jpeg", "path": None}] * 3
        return r

    from datasets import Image, List

    raw = small_ds["test"].cast_column("frames", List(Image(decode=False)))
    bad = raw.map(corrupt, with_indices=True)
    frames = ClipFrames(bad, tiny_meanp.frame_spec, name="test")
    with pytest.raises(InputError) as e:
        frames[2]
    assert e.value.record == 2 and "decode" in str(e.value)


def test_single_process_gathers_are_identity():
    from dvtr_bench.engine import distributed as D

    x = torch.randn(3, 4, requires_grad=True)
    assert D.gather_with_grad(x) is x
    emb = {"a": x, "m": torch.ones(3, dtype=torch.bool)}
    assert D.gather_embedding(emb) is emb
    assert D.world() == (0, 1)
    assert D.resolve_device("cpu").type == "cpu"
    with pytest.raises(ConfigError):
        D.resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError):
            D.resolve_device("cuda:0")
    assert math.isfinite(D.all_reduce_mean(torch.tensor(2.0)).item())
