"""Execution options of a run (bf16 autocast, channels-last, torch.compile): off by default, each runs on CPU, each
changes how the model executes (not what it computes, beyond rounding), and each is recorded."""

from __future__ import annotations

import pytest
import torch

from dvtr_bench.engine.evaluate import encode_clips
from dvtr_bench.engine.execution import apply_model_options, run_precision
from dvtr_bench.engine.data import FrameSource
from dvtr_bench.engine.run import run_baseline
from dvtr_bench.engine.trainer import TrainConfig, seed_everything, train
from dvtr_bench.errors import ConfigError
from dvtr_bench.models import create_method
from dvtr_bench.protocol.record import read_record, validate_record

FAST = {"lr": 1e-3, "backbone_lr": 1e-3, "warmup": 0.1, "num_workers": 0, "eval_batch_size": 8}


def _method(name="meanP"):
    torch.manual_seed(0)
    return create_method(name, backbone="dvtr-tiny", pretrained=None, image_size=64).eval()


def _frames(n=3):
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, 12, 3, 64, 64, generator=g), torch.ones(n, 12, dtype=torch.bool)


def test_defaults_are_off_and_checked():
    cfg = TrainConfig()
    assert (cfg.bf16, cfg.channels_last, cfg.compile, cfg.gpu_decode, cfg.frame_transform) == \
        (False, False, False, False, "auto")
    assert run_precision(torch.device("cpu"), None, False) == "float32"
    assert run_precision(torch.device("cuda"), None, False) == "float16"
    assert run_precision(torch.device("cpu"), None, True) == "bfloat16"
    with pytest.raises(ConfigError, match="exclude each other"):
        TrainConfig.from_dict({"bf16": True, "amp": True})
    with pytest.raises(ConfigError, match="compile must be true or false"):
        TrainConfig.from_dict({"compile": "max-autotune"})
    with pytest.raises(ConfigError, match="frame_transform 'gpu' is not supported"):
        TrainConfig.from_dict({"frame_transform": "gpu"})


def test_bf16_autocast_runs_on_cpu(learnable_splits):
    m = _method()
    src = FrameSource(learnable_splits["test"], m.frame_spec, cache="stream", name="test")
    ref = encode_clips(m, src, range(4), torch.device("cpu"), 4)["video"]
    low = encode_clips(m, src, range(4), torch.device("cpu"), 4, autocast=torch.bfloat16)["video"]
    assert low.dtype == torch.float32 and not torch.equal(ref, low)  # bf16 matmuls ran
    assert torch.nn.functional.cosine_similarity(ref, low).min() > 0.99


def test_bf16_training_on_cpu(learnable_splits, tmp_path):
    seed_everything(0)
    m = _method("seqTransf")
    cfg = TrainConfig.from_dict({**FAST, "epochs": 1, "batch_size": 8, "bf16": True})
    res = train(m, learnable_splits["train"], learnable_splits["validation"], tmp_path, config=cfg, seed=0)
    assert res.extra["precision"] == "bfloat16"
    assert all(torch.isfinite(torch.tensor(h["loss"])) for h in res.history)


def test_channels_last_gives_the_same_embeddings():
    m = _method()
    frames, mask = _frames()
    with torch.no_grad():
        ref = m.encode_video(frames, mask)["video"]
        applied = apply_model_options(m, channels_last=True)
        conv = m.backbone.model.visual.conv1.weight
        assert applied["channels_last"] and conv.is_contiguous(memory_format=torch.channels_last)
        got = m.encode_video(frames, mask)["video"]
    assert torch.allclose(ref, got, atol=1e-5)


def test_compile_keeps_checkpoints_and_embeddings():
    m = _method()
    keys = list(m.state_dict())
    frames, mask = _frames(2)
    with torch.no_grad():
        ref = m.encode_video(frames, mask)["video"]
        apply_model_options(m, compile=True)
        got = m.encode_video(frames, mask)["video"]
    assert m.backbone.compiled and list(m.state_dict()) == keys
    assert torch.allclose(ref, got, atol=1e-4)


def test_options_are_recorded(learnable_splits, tmp_path):
    rec = read_record(run_baseline("meanP", learnable_splits, tmp_path, zero_shot=True, seeds=[0], device="cpu",
                                   backbone="dvtr-tiny", pretrained=None,
                                   train_overrides={**FAST, "bf16": True, "channels_last": True,
                                                    "frame_transform": "device", "feature_cache": "off"}))
    assert validate_record(rec) == []
    train_cfg = rec["config"]["train"]
    assert train_cfg["bf16"] and train_cfg["channels_last"] and not train_cfg["compile"]
    assert rec["extra"]["data_path"]["precision"] == "bfloat16"
    assert "FrameSpec on cpu" in rec["extra"]["data_path"]["test"]
