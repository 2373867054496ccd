"""The shot detector's rules on hand-made per-frame arrays: no video is decoded here."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import pytest

from dvtr_bench.video import shot_analysis as sa
from dvtr_bench.video.segmenters import ShotSegmenter, Transition

N = 250


@pytest.fixture
def p() -> sa.ShotParams:
    return ShotSegmenter().shot_params(25.0)


def textured(n: int = N) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Arrays of a calm textured take: low consecutive distance, g unknown, mid contrast and brightness."""
    s = np.full(n, 2.0)
    s[0] = 0.0
    return s, np.full(n, np.nan), np.full(n, 30.0), np.full(n, 110.0)


def test_settings_in_frames(p):
    assert (p.k, p.m, p.guard, p.min_gap, p.max_hold, p.max_gap) == (10, 75, 84, 12, 62, 62.5)
    slow = ShotSegmenter(gradual_k=0.1, min_shot=0.01).shot_params(10.0)
    assert (slow.k, slow.min_gap) == (2, 1)           # never fewer frames than the rules need


def test_runs():
    assert sa.runs(np.array([], bool)) == []
    assert sa.runs(np.array([1, 1, 0, 0, 1, 0, 1, 1, 1], bool)) == [(0, 1), (4, 4), (6, 8)]


def test_local_medians():
    x = np.array([1.0, 5.0, 2.0, 8.0, 3.0])
    assert sa.local_median(x, 1).tolist() == [1.0, 2.0, 5.0, 3.0, 3.0]       # ends repeat the end values
    y = np.array([np.nan, 4.0, np.nan, np.nan, np.nan, np.nan])
    med = sa.local_nanmedian(y, 1)
    assert med[:3].tolist() == [4.0, 4.0, 4.0] and np.isnan(med[3:]).all()     # all-NaN: NaN, no warning


def test_single_spike_is_one_cut(p):
    s, g, std, mean = textured()
    s[100] = 40.0
    assert np.flatnonzero(sa.hard_cut_mask(s, p.window, p.threshold, p.min_score)).tolist() == [100]
    assert sa.find_transitions(s, g, std, mean, 0, N - 1, p) == [Transition("cut", 100, 100, 40.0)]


def test_spike_under_min_score_is_no_cut(p):
    s, g, std, mean = textured()
    s[:] = 0.5
    s[100] = 5.5                      # ten times its neighbours, but under min_score (6)
    assert not sa.hard_cut_mask(s, p.window, p.threshold, p.min_score).any()
    assert sa.find_transitions(s, g, std, mean, 0, N - 1, p) == []
    s[100] = 6.5
    assert [t.start_frame for t in sa.find_transitions(s, g, std, mean, 0, N - 1, p)] == [100]


def test_spike_under_the_adaptive_threshold_is_no_cut(p):
    s, g, std, mean = textured()
    s[:] = 5.0                        # a take with a lot of motion: the bar rises with it
    s[100] = 14.0                     # over min_score, under 3 x 5 + 1
    assert sa.find_transitions(s, g, std, mean, 0, N - 1, p) == []
    s[100] = 16.0
    assert [t.kind for t in sa.find_transitions(s, g, std, mean, 0, N - 1, p)] == ["cut"]


def test_only_the_peak_of_a_double_spike_is_a_cut(p):
    s, g, std, mean = textured()
    s[100], s[101] = 30.0, 25.0
    assert np.flatnonzero(sa.hard_cut_mask(s, p.window, p.threshold, p.min_score)).tolist() == [100]


def _ramp(centre: int = 120, top: float = 30.0) -> np.ndarray:
    """g of a gradual change around ``centre``: it rises steadily from the take's level and falls back."""
    j = np.arange(N)
    g = 2.0 + np.maximum(0.0, (top - 2.0) - 2.0 * np.abs(j - centre))
    g[:10] = np.nan                   # g[j] needs frame j - k
    return g


def test_ramp_is_one_gradual_run(p):
    g = _ramp()
    # elevated where g >= 6 (both gradual_min and 2.5 x the baseline of 2, plus 1): 12 frames each side
    assert sa.gradual_runs(g, p) == [(108, 132)]
    s, _, std, mean = textured()
    # the run spans k frames of each shot around the mixed frames
    assert sa.find_transitions(s, g, std, mean, 0, N - 1, p) == [Transition("gradual", 118, 122, 30.0)]


def test_runs_of_implausible_length_are_no_gradual(p):
    g = np.full(N, 2.0)
    g[100:102] = 30.0                 # 2 frames: under max(2, k // 2)
    g[150:240] = 30.0                 # 90 frames: longer than any gradual transition (guard)
    assert sa.gradual_runs(g, p) == []


def test_elevated_g_around_a_cut_is_the_cut(p):
    """g[j] compares j - k with j + k, so it is high for k frames each side of a cut: that is the cut."""
    s, _, std, mean = textured()
    s[120] = 40.0
    g = np.full(N, 2.0)
    g[110:130] = 35.0
    assert sa.find_transitions(s, g, std, mean, 0, N - 1, p) == [Transition("cut", 120, 120, 40.0)]
    # ... and so is one decided earlier (passed as prior)
    s[120] = 2.0
    prior = [Transition("cut", 120, 120, 40.0)]
    assert sa.find_transitions(s, g, std, mean, 0, N - 1, p, prior) == []


def _fade(std: np.ndarray, mean: np.ndarray, start: int, ramp: int = 8, hold: int = 5) -> tuple[int, int]:
    """Write a fade to black and back from ``start``: contrast falls over ``ramp`` frames to ``hold`` black
    frames and rises again. Returns the last full-contrast frame before it and the first after it."""
    down = np.linspace(std[start - 1], 1.0, ramp + 2)[1:-1]
    std[start:start + ramp] = down
    std[start + ramp:start + ramp + hold] = 1.0
    mean[start + ramp:start + ramp + hold] = 10.0
    std[start + ramp + hold:start + 2 * ramp + hold] = down[::-1]
    return start - 1, start + 2 * ramp + hold


def test_uniform_frames():
    std = np.array([1.0, 1.0, 1.0, 5.0, 1.0])
    mean = np.array([10.0, 230.0, 120.0, 10.0, 40.0])
    assert sa.uniform_frames(std, mean, 3.0).tolist() == [True, True, False, False, False]
    assert bool(sa.uniform_frames(1.0, 10.0, 3.0)) and not bool(sa.uniform_frames(1.0, 120.0, 3.0))


def test_fade_through_black(p):
    s, g, std, mean = textured()
    first, last = _fade(std, mean, 100)
    assert sa.fade_spans(std, mean, p.flat_std, p.max_hold, p.guard) == [(first, last, 60.0)]
    # the cut into the black frames is part of the fade, not a transition of its own
    s[108] = 25.0
    assert sa.find_transitions(s, g, std, mean, 0, N - 1, p) == [Transition("gradual", first, last, 60.0)]


def test_uniform_scenery_and_edge_fades_are_no_fade(p):
    _, _, std, mean = textured()
    _fade(std, mean, 100, hold=p.max_hold + 1)               # black for longer than a fade holds
    assert sa.fade_spans(std, mean, p.flat_std, p.max_hold, p.guard) == []
    _, _, std, mean = textured()
    std[:5], mean[:5] = 1.0, 10.0                             # the video starts in black
    std[5:13] = np.linspace(1.0, 30.0, 9)[1:]
    assert sa.fade_spans(std, mean, p.flat_std, p.max_hold, p.guard) == []


def test_edge_fades_trim_the_opening_fade_in_and_the_closing_fade_out(p):
    _, _, std, mean = textured()
    std[:5], mean[:5] = 1.0, 10.0                             # the video starts in black ...
    std[5:13] = np.linspace(1.0, 30.0, 9)[1:]                 # ... and fades in over frames 5..12
    std[-4:], mean[-4:] = 1.0, 10.0                           # it ends in black ...
    std[-10:-4] = np.linspace(30.0, 1.0, 8)[1:-1]             # ... after fading out from frame N - 10
    assert sa.edge_fades(std, mean, p.flat_std, p.guard) == (12, N - 10)
    _, _, std, mean = textured()
    assert sa.edge_fades(std, mean, p.flat_std, p.guard) == (0, N)
    std[:3], mean[:3] = 1.0, 10.0                             # black frames, then a cut into the picture
    assert sa.edge_fades(std, mean, p.flat_std, p.guard) == (3, N)


def _frame(rng: np.random.Generator, h: int = 54, w: int = 96, base: float = 110.0) -> np.ndarray:
    import cv2

    y = cv2.resize(rng.random((h // 6, w // 6)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    img = np.empty((h, w, 3), np.float32)
    img[..., 0] = np.clip(base + (y - 0.5) * 120, 0, 255).round()
    img[..., 1], img[..., 2] = 120.0, 135.0
    return img


def _window(img: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.createHanningWindow((img.shape[1], img.shape[0]), cv2.CV_32F)


def test_exposure_and_white_balance_changes_are_no_distance():
    rng = np.random.default_rng(0)
    a = _frame(rng)
    # brighter by half a stop with the highlights clipping (a gamma-encoded camera), warmer white balance
    b = a.copy()
    b[..., 0] = np.clip(np.round(255.0 * (a[..., 0] / 255.0) ** 0.75), 0, 255)
    b[..., 1] -= 2.0
    b[..., 2] += 2.0
    plain = float(np.abs(a - b).mean())
    assert plain > 5.0
    assert sa.tiny_distance(a, b, _window(a)) < 1.0
    other = _frame(rng)                                       # a different picture stays different
    assert sa.tiny_distance(a, other, _window(a)) > 6.0


def test_an_object_crossing_part_of_the_frame_is_no_distance():
    rng = np.random.default_rng(1)
    a = _frame(rng)
    b = a.copy()
    b[15:35, 32:56, 0] = 20.0                                 # a dark car covers a tenth of the picture
    plain = float(np.abs(a - b).mean())                       # the plain mean sees it
    assert sa.robust_mean(np.abs(a - b)) < 0.5                # the blocks it covers are left out
    assert sa.tiny_distance(a, b, _window(a)) < 0.75 * plain  # (its shift of the histogram costs a little)
    assert sa.robust_mean(np.abs(a - _frame(rng))) > 6.0     # a different picture is a change


def test_a_contrast_dip_around_a_hard_cut_is_the_cut(p):
    """A cut to a darker shot whose exposure then climbs back looks like a dissolve's dip in contrast (the
    real bikes footage, frame 76): the cut must win, and the new shot's first frames stay in its clip."""
    s, g, std, mean = textured()
    std[:120] = 54.0
    std[120:130] = np.linspace(24.0, 31.0, 10)                # the camera re-exposing for the new shot
    std[130:] = 31.0
    s[120] = 18.0
    g[:] = 3.0
    g[110:131] = 17.0
    assert [(t.kind, t.start_frame, t.end_frame) for t in sa.find_transitions(s, g, std, mean, 0, N - 1, p)] \
        == [("cut", 120, 120)]


def test_dissolve_is_a_dip_in_contrast_with_different_sides(p):
    s, g, std, mean = textured()
    d = np.abs(np.arange(N) - 120)
    std[:] = np.where(d < 9, 30.0 - 12.0 * (1 - d / 9), 30.0)   # mixing two images lowers the contrast
    g[:] = 2.0
    g[105:136] = 20.0
    # the dip in contrast is frames 112..128, 110..130 once smoothed, trimmed by one frame each side
    assert sa.dissolve_spans(std, g, p) == [(111, 129, 20.0)]
    assert [t.kind for t in sa.find_transitions(s, g, std, mean, 0, N - 1, p)] == ["gradual"]
    g[:] = 2.0                        # same dip, same image on both sides: a cloud's shadow, not a dissolve
    assert sa.dissolve_spans(std, g, p) == []


def test_find_transitions_reports_only_its_window(p):
    s, g, std, mean = textured()
    s[60], s[180] = 40.0, 40.0
    assert [t.start_frame for t in sa.find_transitions(s, g, std, mean, 0, N - 1, p)] == [60, 180]
    assert [t.start_frame for t in sa.find_transitions(s, g, std, mean, 100, N - 1, p)] == [180]
    assert [t.start_frame for t in sa.find_transitions(s, g, std, mean, 0, 100, p)] == [60]
    # lists work as well as arrays for the contrast series (the segmenter keeps them as lists)
    assert sa.find_transitions(s, g, list(std), list(mean), 0, N - 1, p) == \
        sa.find_transitions(s, g, std, mean, 0, N - 1, p)


def test_uniform_plateau_between_two_transitions_merges_them(p):
    out_, in_ = Transition("gradual", 90, 100, 20.0), Transition("gradual", 130, 140, 25.0)
    uniform = [False] * N
    assert sa.merge_transitions([out_, in_], uniform, p.min_gap, p.max_gap) == [out_, in_]
    uniform[101:130] = [True] * 29    # black between a fade out and a fade in: one transition
    assert sa.merge_transitions([in_, out_], uniform, p.min_gap, p.max_gap) == [
        Transition("gradual", 90, 140, 25.0)]
    cuts = [Transition("cut", 100, 100, 20.0), Transition("cut", 130, 130, 30.0)]
    assert sa.merge_transitions(cuts, uniform, p.min_gap, p.max_gap) == [Transition("gradual", 100, 130, 30.0)]
    longer = dataclasses.replace(p, max_gap=20.0)                 # more black than a transition holds: two
    assert len(sa.merge_transitions(cuts, uniform, longer.min_gap, longer.max_gap)) == 2


def test_transitions_too_close_merge(p):
    uniform = [False] * N
    a, b = Transition("cut", 100, 100, 20.0), Transition("cut", 101, 101, 30.0)
    assert sa.merge_transitions([a, b], uniform, p.min_gap, p.max_gap) == [Transition("cut", 100, 101, 30.0)]
    c = Transition("cut", 105, 105, 10.0)
    assert sa.merge_transitions([a, c], uniform, p.min_gap, p.max_gap) == [Transition("gradual", 100, 105, 20.0)]
    # one too close to the boundary decided before is dropped
    assert sa.merge_transitions([c], uniform, p.min_gap, p.max_gap, last_end=100) == []
    assert sa.merge_transitions([c], uniform, p.min_gap, p.max_gap, last_end=90) == [c]


def test_shot_analysis_imports_first():
    """shot_analysis and the segmenters package import each other: either may be imported first."""
    code = "import dvtr_bench.video.shot_analysis as sa, dvtr_bench.video.segmenters as s; print(sa.ShotParams)"
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
