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
    assert said[0].info["frames"] == "libjpeg-turbo in 2 threads; FrameSpec in 2 threads; streamed"
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


@pytest.fixture(scope="module")
def crop_split():
    # frames whose short side is already the FrameSpec's (landscape and portrait: the uint8 centre crop applies),
    # a 5-frame clip, and a clip stored at another size (resized: in a uint8 batch it stays a clip of its own)
    g = np.random.default_rng(3)

    def row(i: int, h: int, w: int, t: int = 12) -> dict:
        base = learnable_rows(1, "test", size=48, offset=i)[0]
        frames = [{"bytes": _jpeg(g.integers(0, 255, (h, w, 3), dtype=np.uint8)), "path": None} for _ in range(t)]
        return {**base, "clip_id": f"c{i}", "frames": frames, "frame_times_s": [k / t for k in range(t)]}

    rows = [row(0, 48, 80), row(1, 80, 48), row(2, 48, 80, t=5), row(3, 64, 64), row(4, 48, 80)]
    return Dataset.from_list(rows, features=clip_features())


def test_frame_spec_into_equals_the_frame_spec():
    g = np.random.default_rng(0)
    for h, w in ((48, 80), (80, 48), (48, 48), (64, 64), (40, 90)):
        frame = g.integers(0, 256, (h, w, 3), dtype=np.uint8)
        if min(h, w) == 48:  # the crop case: every uint8 value of every channel goes through the arithmetic
            top, left = SPEC.crop_offsets(h, w)
            crop = frame[top:top + 48, left:left + 48]
            crop[:6] = (np.arange(6 * 48) % 256).reshape(6, 48, 1)
            assert all(np.unique(crop[..., c]).size == 256 for c in range(3))
        out = np.full((3, 48, 48), np.nan, dtype=np.float32)
        SPEC.into(frame, out)
        assert torch.equal(torch.from_numpy(out), SPEC(torch.from_numpy(frame))), (h, w)


def _reference(split, order):
    """Each clip decoded on its own and put through the FrameSpec: the definition every batch must equal."""
    cf = ClipFrames(split, SPEC, name="t")
    out = []
    for b in order:
        prepared = [D.prepare(cf.decode(i), SPEC) for i in b]
        out.append((torch.tensor(b), torch.stack([p[0] for p in prepared]), torch.stack([p[1] for p in prepared])))
    return out


@pytest.mark.parametrize("loader,workers", [("threads", 0), ("threads", 2), ("processes", 0), ("processes", 2)])
@pytest.mark.parametrize("split_name", ["mixed_split", "crop_split"])
def test_every_loader_gives_each_clip_its_own_frame_spec(request, split_name, loader, workers):
    split = request.getfixturevalue(split_name)
    order = [[3, 1, 4], [0, 2]]
    ref = _reference(split, order)
    float_src = FrameSource(split, SPEC, num_workers=workers, cache="stream", name="t", loader=loader)
    for _ in range(2):  # the second pass reuses the first pass's batch buffers
        for (i0, f0, m0), (i1, f1, m1) in zip(ref, float_src.batches(order)):
            assert torch.equal(i0, i1) and torch.equal(m0, m1) and torch.equal(f0, f1)
    # uint8 batches: the stored frames, centre-cropped while uint8 where the short side is already S
    u8 = FrameSource(split, SPEC, num_workers=workers, cache="stream", name="t", loader=loader)
    cf = ClipFrames(split, SPEC, name="t")
    for (i0, f0, m0), (idx, clips, mask) in zip(ref, u8.stream(u8.frames.view("uint8"), order)):
        assert torch.equal(i0, idx) and torch.equal(m0, mask)
        for k, i in enumerate(idx.tolist()):
            clip = clips[k]
            raw = cf.decode(i)
            t, h, w = raw.shape[:3]
            if min(h, w) == SPEC.image_size:
                top, left = SPEC.crop_offsets(h, w)
                raw = raw[:, top:top + SPEC.image_size, left:left + SPEC.image_size]
            assert clip.dtype == torch.uint8 and tuple(clip.shape) == (12, *raw.shape[1:])
            assert torch.equal(clip[:t], raw) and not clip[t:].any()
            assert torch.equal(D.prepare_on(clip[None], mask[k][None], SPEC)[0], f0[k])
        if split_name == "crop_split" and 3 not in idx.tolist():
            assert isinstance(clips, torch.Tensor) and clips.shape[2:] == (48, 48, 3)  # one buffer for the batch


def test_buffer_pool_reuses_a_buffer_only_once_nothing_holds_it():
    pool = D.BufferPool()
    a = pool((2, 3), torch.float32)
    b = pool((2, 3), torch.float32)
    assert a.data_ptr() != b.data_ptr()        # a is held by this test
    view = a[0]
    pa = a.data_ptr()
    del a
    c = pool((2, 3), torch.float32)
    assert c.data_ptr() not in (pa, b.data_ptr())  # a view of the first buffer is still held, b is held
    del view
    assert pool((2, 3), torch.float32).data_ptr() == pa  # now nothing holds the first one: reused
    arr = pool((4,), torch.uint8).numpy()      # a NumPy view holds a buffer too
    assert pool((4,), torch.uint8).numpy().__array_interface__["data"][0] != arr.__array_interface__["data"][0]
    pb = b.data_ptr()
    held = [b]                                 # held through another Python reference only
    del b
    assert pool((2, 3), torch.float32).data_ptr() != pb
    del held


def test_a_held_batch_is_never_overwritten(crop_split):
    # a consumer that keeps batches (the uint8 path keeps one batch ahead) must see each batch as it was made
    order = [[0], [1], [2], [4], [0], [1]]
    ref = [f.clone() for _, f, _ in FrameSource(crop_split, SPEC, cache="stream", name="t").batches(order)]
    for workers in (0, 2):
        src = FrameSource(crop_split, SPEC, num_workers=workers, cache="stream", name="t")
        kept = list(src.batches(order))
        assert all(torch.equal(f, r) for (_, f, _), r in zip(kept, ref)), workers


@pytest.mark.parametrize("workers", [0, 2])
def test_a_corrupt_clip_is_named_by_every_loader(crop_split, workers):
    rows = crop_split.to_list()
    rows[2]["frames"][1] = {"bytes": b"\xff\xd8 not a jpeg", "path": None}
    bad = Dataset.from_list(rows, features=clip_features())
    from dvtr_bench.errors import InputError

    for loader in ("threads", "processes"):
        src = FrameSource(bad, SPEC, num_workers=workers, cache="stream", name="test", loader=loader)
        with pytest.raises(InputError) as err:
            list(src.batches([[0, 1], [2, 3]]))
        assert err.value.record == 2 and "cannot decode" in str(err.value), loader
