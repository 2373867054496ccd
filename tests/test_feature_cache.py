"""The frozen-backbone mode: backbone left out of the optimiser, frame features encoded once and reused only under
the exact key (dataset, backbone, weights, frame spec, frame slots, precision), identical training either way."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from dvtr_bench.engine.data import FrameSource
from dvtr_bench.engine.features import feature_key, frame_features_for, key_digest
from dvtr_bench.engine.run import run_baseline
from dvtr_bench.engine.trainer import TrainConfig, seed_everything, train
from dvtr_bench.errors import ConfigError
from dvtr_bench.models import create_method
from dvtr_bench.protocol.fingerprint import dataset_fingerprint
from dvtr_bench.protocol.record import read_record, validate_record

FAST = {"lr": 1e-3, "backbone_lr": 1e-3, "warmup": 0.1, "num_workers": 0, "eval_batch_size": 8}


def _method(name: str = "seqTransf", seed: int = 0):
    torch.manual_seed(seed)
    return create_method(name, backbone="dvtr-tiny", pretrained=None, image_size=64)


def test_config_checks():
    with pytest.raises(ConfigError, match="feature_cache 'on' needs freeze_backbone"):
        TrainConfig.from_dict({"feature_cache": "on"})
    with pytest.raises(ConfigError, match="feature_cache 'sometimes' is not supported"):
        TrainConfig.from_dict({"feature_cache": "sometimes"})
    with pytest.raises(ConfigError, match="cannot be combined with augment"):
        TrainConfig.from_dict({"feature_cache": "on", "freeze_backbone": True, "augment": "xpool"})
    with pytest.raises(ConfigError, match="freeze_backbone must be true or false"):
        TrainConfig.from_dict({"freeze_backbone": "yes"})


def test_every_key_change_re_encodes_and_nothing_else_does(learnable_splits, tmp_path):
    split = learnable_splits["validation"]
    m = _method("meanP")
    src = FrameSource(split, m.frame_spec, cache="stream", name="validation")
    fp = dataset_fingerprint(split)

    def get(method=m, fingerprint=fp, source=src, precision="float32"):
        return frame_features_for(method, source, fingerprint, device="cpu", batch_size=4, cache_dir=tmp_path,
                                  precision=precision)

    first = get()
    assert first.origin == "encoded" and first.feats.shape[:2] == (len(split), 12)
    again = get()
    assert again.origin == "loaded" and torch.equal(again.feats, first.feats)
    # the logit scale is a temperature: training it must not invalidate the features
    with torch.no_grad():
        m.backbone.model.logit_scale.add_(0.5)
    assert get().origin == "loaded"
    # a different method on the same backbone reuses them
    other = _method("xpool")
    other.backbone.load_state_dict(m.backbone.state_dict())
    assert get(method=other).origin == "loaded"

    changed = []
    assert get(fingerprint="0" * 64).origin == "encoded"
    changed.append("dataset")
    w = _method("meanP")
    w.backbone.load_state_dict(m.backbone.state_dict())
    with torch.no_grad():
        w.backbone.model.visual.proj.add_(1e-3)
    enc = get(method=w)
    assert enc.origin == "encoded" and not torch.equal(enc.feats, first.feats)
    changed.append("weights")
    n = _method("meanP")
    n.backbone.load_state_dict(m.backbone.state_dict())
    n.backbone.pretrained = "/some/other/checkpoint.pt"
    assert get(method=n).origin == "encoded"
    changed.append("pretrained")
    n.backbone.pretrained = m.backbone.pretrained
    n.backbone.model_name = "another-architecture"
    assert get(method=n).origin == "encoded"
    changed.append("backbone")
    s = _method("meanP")
    s.backbone.load_state_dict(m.backbone.state_dict())
    s.backbone.frame_spec = dataclasses.replace(m.frame_spec, mean=(0.5, 0.5, 0.5))
    src_s = FrameSource(split, s.frame_spec, cache="stream", name="validation")
    enc = get(method=s, source=src_s)
    assert enc.origin == "encoded" and not torch.equal(enc.feats, first.feats)
    changed.append("frame_spec")
    assert get(precision="bfloat16").origin == "encoded"
    changed.append("precision")
    src_8 = FrameSource(split, m.frame_spec, cache="stream", name="validation", num_frames=8)
    assert get(source=src_8).origin == "encoded"
    changed.append("num_frames")
    key = feature_key(m, fp, 12)
    assert {"dataset_fingerprint", "weights_sha256", "pretrained", "backbone", "frame_spec", "precision",
            "num_frames"} <= set(key)
    assert len(changed) == 7
    # a file under the right name whose stored key differs is re-encoded, never used
    path = tmp_path / f"{key_digest(key)}.pt"
    state = torch.load(path, weights_only=True)
    state["key"] = {**state["key"], "weights_sha256": "f" * 64}
    state["feats"] = torch.zeros_like(state["feats"])
    torch.save(state, path)
    redo = get()
    assert redo.origin == "encoded" and torch.equal(redo.feats, first.feats)


def _train(ds, tmp, name, **kw):
    seed_everything(0)
    m = _method(name)
    cfg = TrainConfig.from_dict({**FAST, "epochs": 2, "batch_size": 8, "freeze_backbone": True, **kw})
    res = train(m, ds["train"], ds["validation"], tmp, config=cfg, seed=0)
    return m, res


@pytest.mark.parametrize("name", ["meanP", "seqTransf", "xpool"])
def test_cached_features_train_exactly_like_encoding_every_step(learnable_splits, tmp_path, name):
    before = _method(name).backbone.state_dict()
    cached, res_c = _train(learnable_splits, tmp_path / "c", name, feature_cache="on")
    plain, res_p = _train(learnable_splits, tmp_path / "p", name, feature_cache="off")
    assert res_c.extra["frame_features"] == {"train": "encoded", "validation": "encoded"}
    assert res_p.extra["frame_features"] is None and res_c.extra["backbone_frozen"]
    # these methods' text embedding is the frozen backbone's sentence embedding: computed once as well
    assert res_c.extra["text_embeddings_cached"] and not res_p.extra["text_embeddings_cached"]
    # the backbone's encoders did not move; the logit scale (and the head) did
    for k, v in cached.backbone.state_dict().items():
        if k.endswith("logit_scale"):
            assert not torch.equal(v, before[k])
        else:
            assert torch.equal(v, before[k]), k
    for a, b in zip(res_c.history, res_p.history):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5, abs=1e-6)
        assert a["val"] == pytest.approx(b["val"], rel=1e-6)
    sc, sp = cached.state_dict(), plain.state_dict()
    for k in sc:
        assert torch.allclose(sc[k], sp[k], atol=1e-5), k


def test_frozen_backbone_is_not_in_the_optimiser(learnable_splits, tmp_path):
    from dvtr_bench.engine.optim import build_optimizer

    m, _ = _train(learnable_splits, tmp_path, "seqTransf", epochs=1, feature_cache="on")
    names = [n for g in m.param_groups() for n in g["names"]]
    assert names and all(not n.startswith("backbone.") or n.endswith("logit_scale") for n in names)
    opt = build_optimizer(m, 1e-3, 1e-3, 0.0)
    in_opt = {id(p) for g in opt.param_groups for p in g["params"]}
    frozen = [p for n, p in m.backbone.named_parameters() if not n.endswith("logit_scale")]
    assert frozen and not any(id(p) in in_opt for p in frozen)


def test_records_say_frozen_and_methods_share_the_cache(learnable_splits, tmp_path):
    kw = dict(seeds=[0], device="cpu", backbone="dvtr-tiny", pretrained=None, train_overrides=FAST, zero_shot=True)
    r1 = read_record(run_baseline("meanP", learnable_splits, tmp_path, **kw))
    r2 = read_record(run_baseline("seqTransf", learnable_splits, tmp_path, **kw))
    assert validate_record(r1) == [] and validate_record(r2) == []
    assert r1["backbone"]["frozen"] is True and r2["backbone"]["frozen"] is True
    assert r1["extra"]["frame_features"] == [{"test": "encoded"}]
    # the same random-init weights (seed 0) -> the second method reads the first one's test features
    assert r2["extra"]["frame_features"] == [{"test": "loaded"}]
    assert len(list((tmp_path / "feature-cache").glob("*.pt"))) == 1
    # zero-shot meanP through the cache scores exactly as encoding the frames does
    off = read_record(run_baseline("meanP", learnable_splits, tmp_path / "off",
                                   **{**kw, "train_overrides": {**FAST, "feature_cache": "off"}}))
    assert off["extra"]["frame_features"] == [None]
    # a throughput of the head alone is no evaluation throughput: not recorded
    assert r1["cost"]["eval_clips_per_s"] is None and off["cost"]["eval_clips_per_s"] > 0
    assert off["runs"][0]["metrics"] == pytest.approx(r1["runs"][0]["metrics"], rel=1e-6)


def test_trained_records_say_the_backbone_was_not_frozen(learnable_splits, tmp_path):
    rec = read_record(run_baseline("meanP", learnable_splits, tmp_path, seeds=[0], device="cpu", backbone="dvtr-tiny",
                                   pretrained=None, epochs=1, batch_size=8, train_overrides=FAST))
    assert rec["backbone"]["frozen"] is False and rec["extra"]["frame_features"] == [None]
