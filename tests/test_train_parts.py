"""Trainer building blocks: schedule, optimiser groups, epoch plans, recipe options, frame loading, gathers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dvtr_bench.errors import ConfigError, InputError
from dvtr_bench.protocol import v1
from dvtr_bench.engine.data import Captions, ClipFrames, FrameSource, caption_key, epoch_plan
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
    # linear warmup from 0 over the first 10 steps (transformers' schedule, X-Pool's and the uniform regime's)
    assert lrs[0] == 0.0 and lrs[5] == pytest.approx(0.5)
    assert all(b > a for a, b in zip(lrs[:10], lrs[1:11]))
    # peak 1.0 at the end of warmup, then monotone cosine decay towards 0
    assert lrs[10] == pytest.approx(1.0)
    assert all(b <= a for a, b in zip(lrs[10:], lrs[11:]))
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
    assert seen[0][0] == 0.0                    # warmup starts from 0, as transformers' schedule does
    assert seen[1][0] == pytest.approx(0.5e-6)
    assert seen[2][0] == pytest.approx(1e-6)
    assert seen[-1][0] < 0.1e-6
    assert all(a == b for a, b in seen)


def test_train_config_reads_recipes_under_both_regimes():
    from dvtr_bench.engine.regimes import UNIFORM
    from dvtr_bench.engine.run import resolve_recipe
    from dvtr_bench.models import load_recipe

    # A recipe's train section is its method's release regime.
    cfg = TrainConfig.from_dict(load_recipe("meanP")["train"])
    assert cfg.lr == 1e-4 and cfg.backbone_lr == pytest.approx(1e-7) and cfg.epochs == 5
    assert cfg.batch_size == 128 and cfg.betas == (0.9, 0.98) and cfg.grad_clip == 1.0
    assert (cfg.optimizer, cfg.fp16_backbone, cfg.schedule, cfg.decay) == (
        "bertadam", True, "bert_warmup_cosine", "no_decay_bias")
    assert (cfg.select_metric, cfg.select_ties, cfg.param_clip) == ("t2v_r1", "later", 1.0)
    cfg = TrainConfig.from_dict(load_recipe("xpool")["train"])
    assert cfg.backbone_lr == 1e-6 and cfg.betas == (0.9, 0.999)
    assert (cfg.optimizer, cfg.decay, cfg.augment, cfg.schedule) == ("hf_adamw", "all", "xpool", "warmup_cosine")
    assert TrainConfig.from_dict(load_recipe("tightTransf")["train"]).loss_group == 32
    assert TrainConfig.from_dict(load_recipe("msam")["train"]).batch_size == 64
    # AMFMN's torch Adam without weight decay, one rate for everything, no clipping (RSITMD_AMFMN.yaml, train.py)
    cfg = TrainConfig.from_dict(load_recipe("amfmn")["train"])
    assert (cfg.optimizer, cfg.weight_decay, cfg.lr, cfg.backbone_lr, cfg.grad_clip, cfg.betas, cfg.eps) == (
        "adamw", 0.0, 2e-4, 2e-4, 0.0, (0.9, 0.999), 1e-8)
    assert (cfg.batch_size, cfg.epochs, cfg.select_metric, cfg.select_ties) == (100, 70, "rsum", "earlier")
    # dmae's release regime is TS2-Net's (the paper's code base): CLIP4Clip's BertAdam at batch 128, CLIP at 1e-7
    cfg = TrainConfig.from_dict(load_recipe("dmae")["train"])
    assert (cfg.optimizer, cfg.batch_size, cfg.select_metric) == ("bertadam", 128, "t2v_r1")
    assert cfg.backbone_lr == pytest.approx(1e-7)
    # The uniform regime is the same for every method; the default of run-baseline.
    uniform = TrainConfig.from_dict(resolve_recipe("meanP")["train"]).to_dict()
    for name in ("meanP", "seqLSTM", "seqTransf", "tightTransf", "xpool", "msam", "amfmn", "dmae", "mcsan"):
        u = TrainConfig.from_dict(resolve_recipe(name)["train"])
        # only runtime settings (msam's and amfmn's evaluation batch) may differ between methods
        assert {k: v for k, v in u.to_dict().items() if k != "eval_batch_size"} == \
            {k: v for k, v in uniform.items() if k != "eval_batch_size"}
        assert (u.regime, u.optimizer, u.lr, u.backbone_lr, u.batch_size, u.epochs) == (
            "uniform", "adamw", 1e-4, 1e-6, 128, 5)
        r = TrainConfig.from_dict(resolve_recipe(name, regime="release")["train"])
        assert r.regime == "release"
    assert TrainConfig.from_dict(UNIFORM) == TrainConfig()
    # The demo overlay sets the budget and the learning rates only: each regime keeps its own optimiser.
    demo = TrainConfig.from_dict(resolve_recipe("xpool", "demo", regime="release")["train"])
    assert (demo.optimizer, demo.augment, demo.betas, demo.epochs, demo.backbone_lr) == (
        "hf_adamw", "xpool", (0.9, 0.999), 4, 1e-3)
    with pytest.raises(ConfigError):
        TrainConfig.from_dict({"epochs": 0})
    with pytest.raises(ConfigError):
        TrainConfig.from_dict({"schedule": "step"})
    with pytest.raises(ConfigError):
        TrainConfig.from_dict({"bogus": 1}, strict=True)
    with pytest.raises(ConfigError, match="bertadam"):
        TrainConfig.from_dict({"fp16_backbone": True})
    with pytest.raises(ConfigError, match="regime"):
        resolve_recipe("meanP", regime="paper")


def test_loss_group_averages_the_losses_of_consecutive_groups():
    from dvtr_bench.engine.trainer import _Step
    from dvtr_bench.models import create_method

    torch.manual_seed(0)
    m = create_method("tightTransf", backbone="dvtr-tiny", pretrained=None, image_size=64).eval()
    tokens = m.tokenize([f"caption {i}" for i in range(6)])
    frames = torch.randn(6, 3, 3, 64, 64)
    mask = torch.ones(6, 3, dtype=torch.bool)
    whole = _Step(m, 1)(tokens, frames, mask)["loss"]
    grouped = _Step(m, 1, loss_group=2)(tokens, frames, mask)["loss"]
    t, v = m.encode_text(tokens), m.encode_video(frames, mask)
    parts = [m.loss({k: x[s:s + 2] for k, x in t.items()}, {k: x[s:s + 2] for k, x in v.items()})["loss"]
             for s in (0, 2, 4)]
    assert torch.allclose(grouped, torch.stack(parts).mean())
    assert not torch.allclose(grouped, whole)    # 1 negative per query instead of 5


def test_xpool_augmentation_is_one_crop_and_flip_per_clip_and_replayable(tiny_meanp, small_ds):
    from dvtr_bench.engine.augment import XPoolTrainAugment

    spec = tiny_meanp.frame_spec
    aug = XPoolTrainAugment(spec)
    raw = torch.from_numpy(np.stack([np.full((60, 90, 3), 10 * t, dtype=np.uint8) for t in range(5)]))
    raw[:, :, :45] = 200                            # left half bright: a flip is visible
    a = aug(raw, torch.Generator().manual_seed(1))
    b = aug(raw, torch.Generator().manual_seed(1))
    assert a.shape == (5, 3, spec.image_size, spec.image_size) and torch.equal(a, b)
    outs = [aug(raw, torch.Generator().manual_seed(s)) for s in range(20)]
    assert len({tuple(o[0, 0, 0, :4].tolist()) for o in outs}) > 1     # draws differ
    # one crop and one flip for the whole clip: every frame is flipped, or none is
    flips = [{bool(o[t, 0, :, 0].mean() < o[t, 0, :, -1].mean()) for t in range(5)} for o in outs]
    assert all(len(f) == 1 for f in flips)
    assert 0 < sum(f == {True} for f in flips) < 20                      # flipped about half the time
    # the trainer's source keeps raw frames for it and yields model-ready batches
    src = FrameSource(small_ds["train"], spec, num_workers=0, cache="auto", name="train", raw_only=True)
    assert src.mode == "raw"
    (idx, x, m), = list(src.batches([[0, 2]], transform=aug, generator=torch.Generator().manual_seed(0)))
    assert x.shape == (2, v1.NUM_FRAMES, 3, spec.image_size, spec.image_size) and bool(m.all())
    streamed = FrameSource(small_ds["train"], spec, num_workers=0, cache="stream", name="train")
    (_, y, _), = list(streamed.batches([[0, 2]], transform=aug, generator=torch.Generator().manual_seed(0)))
    assert torch.equal(x, y)


def _captions(texts_per_clip: list[list[str]]) -> Captions:
    counts = [len(t) for t in texts_per_clip]
    return Captions(texts=[t for ts in texts_per_clip for t in ts],
                    caption_to_clip=np.repeat(np.arange(len(counts)), counts),
                    clip_ids=[f"clip{i}" for i in range(len(counts))],
                    offsets=np.concatenate(([0], np.cumsum(counts))).astype(np.int64))


def _check_batches(caps: Captions, plan: list, batch_size: int) -> None:
    seen = [k for b in plan for _, k in b]
    assert len(seen) == len(set(seen))                            # a pair at most once per epoch
    for b in plan:
        assert len(b) == batch_size
        assert all(caps.caption_to_clip[k] == c for c, k in b)   # each caption with its own clip
        assert len({c for c, _ in b}) == batch_size              # no two captions of one clip
        keys = [caption_key(caps.texts[k]) for _, k in b]
        assert len(set(keys)) == batch_size                      # no two identical caption texts


def test_epoch_plan_visits_every_caption_and_is_a_function_of_seed_and_epoch():
    rows = learnable_rows(10, "train", captions_per_clip=3)
    caps = _captions([r["captions"] for r in rows])
    a = epoch_plan(caps, seed=0, epoch=1, batch_size=4)
    assert a == epoch_plan(caps, seed=0, epoch=1, batch_size=4)
    assert a != epoch_plan(caps, seed=0, epoch=2, batch_size=4)
    assert a != epoch_plan(caps, seed=1, epoch=1, batch_size=4)
    # 30 (caption, clip) pairs: 7 full batches of 4, the last 2 pairs sit this epoch out (drop_last)
    assert len(a) == 7
    _check_batches(caps, a, 4)
    full = epoch_plan(caps, seed=0, epoch=1, batch_size=10)
    assert len(full) == 3 and sorted(k for b in full for _, k in b) == list(range(30))  # every caption
    (only,) = epoch_plan(_captions([["x"], [], ["y"]]), 0, 0, 2)
    assert sorted(only) == [(0, 0), (2, 1)]                      # clip 1 has no caption: never drawn


@pytest.mark.parametrize("seed", range(5))
def test_epoch_plan_never_batches_a_positive_as_a_negative(seed):
    # Many clips sharing caption texts (templated captions, as synthetic and crowd-sourced sets have), 1-6
    # captions per clip, some captions repeated inside a clip, texts differing only in case and spacing.
    rng = np.random.default_rng(seed)
    pool = [f"a {c} car on a {r} road" for c in ("red", "blue", "white") for r in ("wet", "dry", "dusty")]
    texts = []
    for _ in range(60):
        t = [str(rng.choice(pool)) for _ in range(int(rng.integers(1, 7)))]
        if rng.random() < 0.3:
            t.append("  " + t[0].upper() + " ")
        texts.append(t)
    caps = _captions(texts)
    assert len(set(caps.text_ids.tolist())) == len(pool)
    for epoch in range(3):
        plan = epoch_plan(caps, seed, epoch, batch_size=6)
        _check_batches(caps, plan, 6)
        # with only 9 distinct texts, a batch of 6 is still easy to fill: few pairs sit out
        assert len(plan) >= len(caps.texts) // 6 - 10


def test_random_batches_would_hold_false_negatives():
    # What the releases' plain shuffle meets on the same data (why the rule above matters): count pairs of
    # one batch that share a clip or a caption text.
    rows = learnable_rows(40, "train", captions_per_clip=5)
    caps = _captions([r["captions"] for r in rows])
    rng = np.random.default_rng(0)
    perm = rng.permutation(len(caps.texts))
    clashes = 0
    for b in range(len(perm) // 16):
        ks = perm[b * 16:(b + 1) * 16]
        owners, keys = caps.caption_to_clip[ks], caps.text_ids[ks]
        clashes += sum(1 for i in range(16) for j in range(i) if owners[i] == owners[j] or keys[i] == keys[j])
    assert clashes > 0
    _check_batches(caps, epoch_plan(caps, 0, 0, 16), 16)


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


def _same_captions(a: Captions, b: Captions) -> None:
    assert a.texts == b.texts and a.clip_ids == b.clip_ids
    assert a.caption_to_clip.dtype == b.caption_to_clip.dtype == np.int64
    assert a.offsets.dtype == b.offsets.dtype == np.int64
    assert np.array_equal(a.caption_to_clip, b.caption_to_clip) and np.array_equal(a.offsets, b.offsets)


def test_captions_read_from_arrow_equal_the_row_by_row_reading(small_ds):
    import datasets

    def rows(split):  # the row path, as from_split read every split before
        ids, texts, owner, offsets = Captions._from_rows(split, "test")
        return Captions(texts, np.asarray(owner, dtype=np.int64), ids, np.asarray(offsets, dtype=np.int64))

    test = small_ds["test"]
    holes = datasets.Dataset.from_dict({"clip_id": [f"c{i}" for i in range(7)],
                                        "captions": [["a", "b"], [], None, ["c"], [], ["d", "e", "f"], None]})
    cases = [test, holes, holes.select([5, 0, 3, 2]), holes.shuffle(seed=0), holes.filter(lambda r: r["captions"]),
             holes.select([1, 2, 4]), test.select([2, 0])]
    for split in cases:
        _same_captions(Captions.from_split(split, name="test"), rows(split))
    caps = Captions.from_split(holes.select([5, 0, 3, 2]))
    assert caps.clip_ids == ["c5", "c0", "c3", "c2"] and caps.texts == ["d", "e", "f", "a", "b", "c"]
    assert caps.offsets.tolist() == [0, 3, 5, 6, 6] and caps.caption_ids()[3] == "c0#0"
    # the problems the row path reported, with the same clip and position
    for captions, what, clip in (([["a"], ["b", None]], "caption 2 of 2 is not a string", "c1"),
                                 ([["a", ""], [" "]], "caption 2 of 2 is empty", "c0"),
                                 ([[], ["ok", "x", " \t"]], "caption 3 of 3 is only whitespace", "c1")):
        bad = datasets.Dataset.from_dict({"clip_id": ["c0", "c1"], "captions": captions})
        with pytest.raises(InputError, match=what) as e:
            Captions.from_split(bad, name="test")
        assert e.value.record == clip
    dup = datasets.Dataset.from_dict({"clip_id": ["c0", "c1", "c0"], "captions": [["a"], ["b"], ["c"]]})
    with pytest.raises(InputError, match="not unique"):
        Captions.from_split(dup)
    with pytest.raises(InputError, match="not unique"):
        Captions.from_split(dup.select([0, 2]))
    Captions.from_split(dup.select([0, 1]))  # unique once selected
    from dvtr_bench.engine.data import _has_duplicates

    assert _has_duplicates(["b", "a", "b"]) and not _has_duplicates(["b", "a", "c"]) and not _has_duplicates([])
    assert _has_duplicates([None, "a", None]) and not _has_duplicates([None, "a"])  # a missing id, as before


def test_captions_build_no_python_object_per_uncaptioned_clip():
    # A large test gallery is mostly distractor clips without captions: reading the split must not build a
    # list (or a row) per clip. What stays is the clip ids; the transient is a few bytes per clip (the row by row
    # reading and its set of the ids took about 200).
    import datasets
    import tracemalloc

    n = 20000
    split = datasets.Dataset.from_dict({"clip_id": [f"c{i:06d}" for i in range(n)],
                                        "captions": [[f"caption {i}"] if i < 200 else [] for i in range(n)]})
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        caps = Captions.from_split(split)
        kept, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert caps.n_clips == n and len(caps.texts) == 200 and caps.n_uncaptioned == n - 200
    assert peak - kept < 40 * n, f"{(peak - kept) / n:.0f} transient bytes per clip"


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


@pytest.mark.parametrize("ties, best", [("later", 1), ("earlier", 0)])
def test_selection_ties_follow_the_release(tmp_path, small_ds, ties, best):
    # meanP has no new module; with the backbone frozen (rate 0) every epoch validates identically, so only the
    # tie rule decides: CLIP4Clip and MSAM keep the later epoch (best_score <= R1), X-Pool the earlier one.
    from dvtr_bench.engine.trainer import train
    from dvtr_bench.models import create_method

    m = create_method("meanP", backbone="dvtr-tiny", pretrained=None, image_size=64)
    cfg = TrainConfig.from_dict({"epochs": 2, "batch_size": 4, "lr": 1e-3, "backbone_lr": 0.0, "num_workers": 0,
                                 "eval_batch_size": 4, "select_metric": "t2v_r1", "select_ties": ties})
    res = train(m, small_ds["train"], small_ds["validation"], tmp_path, config=cfg, seed=0)
    assert res.history[0]["val"] == res.history[1]["val"]
    assert res.best_epoch == best
