"""The frame data path: libjpeg-turbo decoding through torchvision equals PIL's pixels, and every placement of the
FrameSpec (loader workers, or the device after uint8 frames got there; decoding in workers or on the device) gives
the same tensors, padded slots included. On CPU the device paths run with device "cpu": the same code as on CUDA
except the copy and the decoder behind torchvision's call."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from datasets import Dataset
from PIL import Image

from dvtr_bench.dataset.schema import clip_features
from dvtr_bench.engine import data as D
from dvtr_bench.engine.data import ClipFrames, FrameSource, choose_frame_path, decode_frames, decode_jpeg
from dvtr_bench.errors import ConfigError
from dvtr_bench.models.base import FrameSpec
from dvtr_bench.progress import Progress
from dvtr_bench.testing.learnable import learnable_rows

SPEC = FrameSpec(48, (0.48, 0.46, 0.41), (0.27, 0.26, 0.28))


def _jpeg(arr: np.ndarray, fmt: str = "JPEG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt, quality=90)
    return buf.getvalue()


@pytest.fixture(scope="module")
def mixed_split():
    # clips of 5, 12 and 14 stored frames, and one clip stored at another size (it is resized by the FrameSpec)
    rows = (learnable_rows(2, "test", size=64, n_frames=5) + learnable_rows(2, "test", size=64, offset=2)
            + learnable_rows(1, "test", size=64, n_frames=14, offset=4))
    g = np.random.default_rng(0)
    wide = [_jpeg(g.integers(0, 255, (56, 80, 3), dtype=np.uint8)) for _ in range(7)]
    rows[3] = {**rows[3], "frames": [{"bytes": b, "path": None} for b in wide]}
    return Dataset.from_list(rows, features=clip_features())


def test_torchvision_decoding_equals_pil():
    g = np.random.default_rng(1)
    blobs = [_jpeg(g.integers(0, 255, (40, 60, 3), dtype=np.uint8)) for _ in range(4)]
    got = decode_frames(blobs)
    assert got.dtype == torch.uint8 and got.shape == (4, 40, 60, 3)
    assert np.array_equal(got.numpy(), np.stack([decode_jpeg(b) for b in blobs]))
    # a frame libjpeg cannot read (PNG) sends the clip through PIL, same pixels
    png = [_jpeg(g.integers(0, 255, (8, 8, 3), dtype=np.uint8), "PNG")] * 2
    assert np.array_equal(decode_frames(png).numpy(), np.stack([decode_jpeg(b) for b in png]))


def _all(src: FrameSource, order):
    return [(i.clone(), f.clone(), m.clone()) for i, f, m in src.batches(order)]


@pytest.mark.parametrize("cache", ["raw", "stream"])
@pytest.mark.parametrize("workers", [0, 2])
def test_device_paths_equal_the_worker_path(mixed_split, cache, workers):
    order = [[3, 1], [0, 4, 2]]
    ref = _all(FrameSource(mixed_split, SPEC, cache="stream", name="t"), order)
    assert torch.all(ref[1][1][0, 5:] == 0)  # clip 0: 5 real frames, zero padding
    paths = {"device": dict(frame_device="cpu"), "device decode": dict(decode_device="cpu")}
    for what, kw in paths.items():
        src = FrameSource(mixed_split, SPEC, num_workers=workers, cache=cache, name="t", **kw)
        assert src.mode == cache and src.frame_device == torch.device("cpu")
        got = _all(src, order)
        assert len(got) == len(ref)
        for (i0, f0, m0), (i1, f1, m1) in zip(ref, got):
            assert torch.equal(i0, i1) and torch.equal(m0, m1), what
            assert torch.equal(f0, f1), what


def test_a_frame_device_keeps_uint8_in_the_cache(mixed_split):
    src = FrameSource(mixed_split, SPEC, cache="auto", name="t", frame_device="cpu")
    assert src.mode == "raw" and src._raw[0].dtype == torch.uint8
    assert FrameSource(mixed_split, SPEC, cache="auto", name="t").mode == "prepared"


def test_the_path_is_chosen_automatically_and_said_once(mixed_split, monkeypatch):
    assert choose_frame_path("cpu") == (None, None)
    assert choose_frame_path("cpu", "device") == (torch.device("cpu"), None)
    assert choose_frame_path("cuda:0") == (torch.device("cuda:0"), None)
    assert choose_frame_path("cuda:0", gpu_decode=True) == (torch.device("cuda:0"), torch.device("cuda:0"))
    with pytest.raises(ConfigError, match="gpu_decode needs a CUDA device"):
        choose_frame_path("cpu", gpu_decode=True)
    with pytest.raises(ConfigError, match="cannot run in the loader workers"):
        choose_frame_path("cuda", "workers", gpu_decode=True)
    with pytest.raises(ConfigError, match="frame_transform 'gpu'"):
        choose_frame_path("cpu", "gpu")
    monkeypatch.setattr(D, "_REPORTED_PATHS", set())
    seen: list[Progress] = []
    for _ in range(3):
        FrameSource(mixed_split, SPEC, num_workers=2, cache="stream", name="t", progress=seen.append)
    said = [p for p in seen if p.task == "data path"]
    assert len(said) == 1
    assert said[0].info["frames"] == "libjpeg-turbo in 2 workers; FrameSpec in 2 workers; streamed"
    src = FrameSource(mixed_split, SPEC, cache="stream", name="t", frame_device="cpu")
    assert "FrameSpec on cpu (uint8 until there)" in src.path


def test_clip_frames_outputs(mixed_split):
    frames = ClipFrames(mixed_split, SPEC, name="t")
    i, u, m = frames.view("uint8")[0]
    assert u.dtype == torch.uint8 and u.shape == (12, 64, 64, 3) and m.tolist() == [True] * 5 + [False] * 7
    assert torch.all(u[5:] == 0)
    _, blobs, m = frames.view("bytes")[4]
    assert len(blobs) == 12 and isinstance(blobs[0], bytes) and bool(m.all())
    with pytest.raises(ValueError, match="output must be one of"):
        ClipFrames(mixed_split, SPEC, output="floats")
