"""Probing, pts-based decoding (variable frame rate), the single decode pass and protocol frame placement."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from dvtr_bench.errors import InputError
from dvtr_bench.protocol import v1
from dvtr_bench.video import decode as decode_mod
from dvtr_bench.video import process as process_mod
from dvtr_bench.video.decode import iter_frames, scaled_size
from dvtr_bench.video.probe import list_videos, probe
from dvtr_bench.video.process import FrameBuffer, process_video
from dvtr_bench.video.segmenters import ShotSegmenter, Span, WindowSegmenter
from dvtr_bench.testing.footage import synth_footage, textured, write_video


@pytest.fixture(scope="module")
def footage():
    return synth_footage()


def test_probe_synth(footage):
    info = probe(footage / "videos" / "flight_000.mp4")
    assert (info.width, info.height, info.codec, info.vfr) == (192, 108, "h264", False)
    assert info.fps == pytest.approx(25.0) and info.duration_s > 5 and info.n_frames > 100


def test_probe_rejects_non_videos(tmp_path):
    (tmp_path / "a.mp4").write_bytes(b"")
    (tmp_path / "b.mp4").write_text("not a video")
    with pytest.raises(InputError, match="empty"):
        probe(tmp_path / "a.mp4")
    with pytest.raises(InputError, match="not a readable video"):
        probe(tmp_path / "b.mp4")
    with pytest.raises(InputError):
        list_videos([tmp_path / "missing"])
    assert [p.name for p in list_videos([tmp_path])] == ["a.mp4", "b.mp4"]


def _vfr_video(path):
    rng = np.random.default_rng(0)
    frames, pts, t = [], [], 0
    # 1/1000 s time base; frame durations alternate 20, 40 and 60 ms: average ~25 fps, far from constant.
    for i in range(90):
        frames.append(np.ascontiguousarray(textured(rng, 96, 128, (80 + i, 100, 90))[:96, :128]))
        pts.append(t)
        t += (20, 40, 60)[i % 3]
    return write_video(path, frames, pts=pts, time_base=(1, 1000)), pts


def test_vfr_frames_are_timed_by_pts(tmp_path):
    path, pts = _vfr_video(tmp_path / "vfr.mp4")
    info = probe(path)
    assert info.vfr
    times = [df.t for df in iter_frames(path)]
    assert np.allclose(times, np.array(pts) / 1000.0, atol=1e-6)
    # windows on VFR input: every stored frame is the one nearest its protocol time
    r = process_video(path, WindowSegmenter(length=1.0, min_len=0.5))
    for c in r.clips:
        for t_stored, t_want in zip(c.frame_times_s, v1.frame_times(c.span.start_s, c.span.end_s)):
            nearest = min(times, key=lambda x: abs(x - t_want))
            assert t_stored == pytest.approx(nearest, abs=1e-6)


@pytest.mark.parametrize("segmenter", [ShotSegmenter, lambda: WindowSegmenter(2.0)])
def test_single_decode_pass(footage, monkeypatch, segmenter):
    calls = []
    real = process_mod.iter_frames

    def counting(path, *a, **kw):
        calls.append(path)
        yield from real(path, *a, **kw)

    monkeypatch.setattr(process_mod, "iter_frames", counting)
    monkeypatch.setattr(decode_mod, "iter_frames", counting)     # what the read-ahead thread calls
    r = process_video(footage / "videos" / "flight_002.mp4", segmenter())
    assert len(calls) == 1 and r.clips


def test_stored_frames_match_protocol_times_and_size(footage):
    r = process_video(footage / "videos" / "flight_001.mp4", ShotSegmenter())
    fps = r.info.fps
    for c in r.clips:
        want = v1.frame_times(c.span.start_s, c.span.end_s)
        assert np.max(np.abs(np.array(c.frame_times_s) - want)) <= 0.5 / fps + 1e-6
        img = Image.open(io.BytesIO(c.frames[0]))
        assert img.format == "JPEG" and img.size == scaled_size(192, 108, v1.FRAME_SHORT_SIDE)
        assert all(c.span.start_frame <= i < c.span.end_frame for i in c.frame_indices)


def test_frame_buffer_bounded_and_nearest():
    buf = FrameBuffer(cap=30)
    for i in range(1000):
        buf.add(i, i / 25.0, i)
    assert len(buf.entries) <= 30 and buf.stride > 1
    span = Span(0.0, 40.0, 0, 1000)
    picked = buf.pick(span, v1.frame_times(0.0, 40.0))
    for (_, t, _), want in zip(picked, v1.frame_times(0.0, 40.0)):
        assert abs(t - want) <= buf.stride / 25.0
    buf.drop_before(900)
    assert all(e[0] >= 900 for e in buf.entries) and buf.stride == 1


def test_scaled_size():
    assert scaled_size(1920, 1080, 224) == (398, 224)
    assert scaled_size(1080, 1920, 224) == (224, 398)
    assert scaled_size(192, 108, 224) == (398, 224)


@pytest.mark.parametrize("name,codec,want", [("a.mkv", "libx265", "hevc"), ("b.mov", "libx264", "h264"),
                                             ("c.avi", "mpeg4", "mpeg4")])
def test_containers_and_codecs(tmp_path, name, codec, want):
    rng = np.random.default_rng(1)
    frames = [np.ascontiguousarray(textured(rng, 72, 128, (60 + 2 * i, 90, 120))[:72, :128]) for i in range(50)]
    path = write_video(tmp_path / name, frames, codec=codec)
    info = probe(path)
    assert info.codec == want and (info.width, info.height) == (128, 72)
    assert info.duration_s == pytest.approx(2.0, abs=0.1)
    r = process_video(path, WindowSegmenter(length=1.0))
    assert len(r.clips) == 2 and all(len(c.frames) == 12 for c in r.clips)


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_display_rotation_is_honoured(tmp_path, rotation):
    """A file filmed upright and stored sideways (display matrix): protocol frames are stored upright, and the
    clip's width and height are the displayed ones."""
    import io

    from PIL import Image

    from dvtr_bench.video.process import process_video
    from dvtr_bench.video.segmenters import make_segmenter

    frames = []
    for _ in range(50):
        img = np.full((108, 192, 3), 60, np.uint8)
        img[:36, :48] = (250, 250, 250)                       # a bright block in the stored top-left corner
        frames.append(img)
    path = write_video(tmp_path / "rot.mp4", frames, rotation=rotation)
    info = probe(path)
    assert info.rotation == rotation
    assert (info.display_width, info.display_height) == ((108, 192) if rotation in (90, 270) else (192, 108))
    for seg in (make_segmenter("windows", length=1.0), make_segmenter("shots")):   # both decode passes
        r = process_video(path, seg, info=info)
        stored = np.asarray(Image.open(io.BytesIO(r.clips[0].frames[0])).convert("L"), np.float32)
        _assert_upright(stored, frames[0], rotation)


def _assert_upright(stored, source, rotation):
    want = np.rot90(np.asarray(Image.fromarray(source).convert("L"), np.float32), rotation // 90)
    assert stored.shape[0] / stored.shape[1] == pytest.approx(want.shape[0] / want.shape[1], rel=0.05)
    import cv2

    want = cv2.resize(want, (stored.shape[1], stored.shape[0]), interpolation=cv2.INTER_AREA)
    assert np.abs(stored - want).mean() < 8.0                 # the picture as players show it
