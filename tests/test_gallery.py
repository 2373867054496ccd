"""`dvtr gallery`: per leaderboard group, each method's top clips for sampled and hard captions, read from the saved
score matrices; positions shown agree with protocol ranks; bad input exits 2."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from dvtr_bench.cli import cli
from dvtr_bench.leaderboard import collect
from dvtr_bench.leaderboard.gallery import _align, plan_gallery, render_gallery, t2v_top, v2t_top, v2t_top_clips
from dvtr_bench.protocol.metrics import evaluate
from dvtr_bench.protocol.scores import load_scores, save_scores


def invoke(*args):
    res = CliRunner().invoke(cli, [str(a) for a in args])
    res.text = " ".join(res.output.split())    # rich wraps long lines at the terminal width
    return res


def test_shown_positions_agree_with_protocol_ranks_even_with_ties():
    rng = np.random.default_rng(0)
    for _ in range(20):
        n_cap, n_clip = 15, 6
        c2c = np.concatenate([np.arange(n_clip), rng.integers(0, n_clip, n_cap - n_clip)])
        scores = rng.integers(0, 3, (n_cap, n_clip)).astype(np.float32)    # many ties on purpose
        res = evaluate(scores, c2c, v2t="rank_captions")
        for i in range(n_cap):
            order = t2v_top(scores[i], int(c2c[i]), top=n_clip)
            assert order.index(int(c2c[i])) + 1 == res.t2v_ranks[i]
        for j, rank in zip(res.v2t_clips, res.v2t_ranks):
            own = c2c == j
            order = v2t_top(scores[:, j], own, top=n_cap)
            assert next(p for p, k in enumerate(order) if own[k]) + 1 == rank
        # protocol 2: clips ranked by their best caption; the shown list is one best caption per clip
        res = evaluate(scores, c2c, v2t="rank_clips")
        for j, rank in zip(res.v2t_clips, res.v2t_ranks):
            order = v2t_top_clips(scores[:, j], c2c, int(j), top=n_clip)
            assert len({int(c2c[k]) for k in order}) == len(order)
            assert [int(c2c[k]) for k in order].index(int(j)) + 1 == rank


def test_rows_and_columns_are_aligned_by_ids(tmp_path):
    rng = np.random.default_rng(1)
    clips = ["a", "b", "c", "d"]
    c2c = np.array([0, 0, 1, 2, 3, 3])
    cap_ids = [f"{clips[c]}#{k}" for k, c in zip([0, 1, 0, 0, 0, 1], c2c)]
    s = rng.normal(size=(6, 4)).astype(np.float32)
    save_scores(tmp_path / "ref.npz", s, c2c, clips, caption_ids=cap_ids)
    rows, cols = np.array([5, 3, 0, 1, 4, 2]), np.array([2, 0, 3, 1])
    owners = np.array([int(np.flatnonzero(cols == c2c[r])[0]) for r in rows])
    save_scores(tmp_path / "perm.npz", s[rows][:, cols], owners, [clips[c] for c in cols],
                caption_ids=[cap_ids[r] for r in rows])
    np.testing.assert_array_equal(_align(load_scores(tmp_path / "ref.npz"), load_scores(tmp_path / "perm.npz")), s)
    save_scores(tmp_path / "other.npz", s, c2c, ["a", "b", "c", "z"], caption_ids=cap_ids)
    with pytest.raises(ValueError, match="other clips"):
        _align(load_scores(tmp_path / "ref.npz"), load_scores(tmp_path / "other.npz"))


def test_plan_samples_with_a_fixed_seed_and_adds_the_hardest(tiny_runs):
    ds, runs = tiny_runs
    (group,) = collect([runs["meanP"].parent]).groups
    plan = plan_gallery(group, n_captions=5, n_hard=3, n_clips=2, seed=3)
    again = plan_gallery(group, n_captions=5, n_hard=3, n_clips=2, seed=3)
    assert (plan.sampled, plan.hardest, plan.clips) == (again.sampled, again.hardest, again.clips)
    assert plan_gallery(group, n_captions=5, seed=4).sampled != plan.sampled
    assert len(plan.sampled) == 5 and len(plan.hardest) == 3 and not set(plan.sampled) & set(plan.hardest)
    assert [m.label for m in plan.methods] == [e.record["method"] for e in group.entries]
    mean_rank = np.mean([m.t2v_ranks for m in plan.methods], axis=0)
    rest = [i for i in range(len(mean_rank)) if i not in plan.sampled + plan.hardest]
    assert min(mean_rank[plan.hardest]) >= max(mean_rank[rest])
    # each record's own metrics, recomputed from its saved matrix
    for m in plan.methods:
        rec = json.loads((m.record_path).read_text())
        assert m.metrics["rsum"] == pytest.approx(rec["runs"][0]["metrics"]["rsum"])
    needed = plan.clips_needed()
    assert all(plan.clip_ids[int(plan.caption_to_clip[i])] in needed for i in plan.sampled + plan.hardest)
    with pytest.raises(ValueError, match="no frames"):
        render_gallery(plan, {}, 6)


def test_gallery_cli_writes_a_page_per_group(tiny_runs, tmp_path):
    ds, runs = tiny_runs
    out = tmp_path / "gal"
    res = invoke("gallery", runs["meanP"].parent, "--dataset", ds, "--out", out, "--captions", "4", "--hardest", "2",
                 "--clips", "2")
    assert res.exit_code == 0, res.output + repr(res.exception)
    (page,) = out.glob("*/gallery.html")
    html = page.read_text()
    assert html.count('class="item t2v"') == 6 and html.count('class="item v2t"') == 2
    assert html.count('class="badge hard"') == 2 and "<script" not in html
    # every method's row in every item, and each correct clip marked once per method row where it is in the top 5
    assert html.count('<td class="m">meanP</td>') == 8 and html.count('<td class="m">xpool</td>') == 8
    assert 'href="../../' in html and str(tmp_path) not in html.split("<table class=\"methods\">")[1][:2000]
    assert (out / "index.html").read_text().count("gallery.html") == 1
    assert "2 method(s)" in res.text and "gallery page(s)" in res.text


def test_gallery_refuses_a_dataset_the_records_were_not_evaluated_on(tiny_runs, tmp_path):
    from dvtr_bench.testing.learnable import write_learnable_dataset

    _, runs = tiny_runs
    other = write_learnable_dataset(tmp_path / "other", n_train=2, n_val=2, n_test=5, seed=9)
    res = invoke("gallery", runs["meanP"].parent, "--dataset", other, "--out", tmp_path / "gal")
    assert res.exit_code == 2 and "no group of records was evaluated on this dataset's test split" in res.text
    assert str(other) in res.text


def test_gallery_bad_input(tiny_runs, tmp_path):
    import datasets

    from dvtr_bench.dataset.hub import card_yaml, write_atomic

    ds, runs = tiny_runs
    noframes = tmp_path / "noframes"
    (noframes / "data").mkdir(parents=True)
    datasets.Dataset.from_dict({"clip_id": ["a"], "video_id": ["v"], "captions": [["x"]]}) \
        .to_parquet(str(noframes / "data" / "test-00000-of-00001.parquet"))
    write_atomic(noframes / "README.md", card_yaml(["test"], 1, "other", "no frames"))
    res = invoke("gallery", runs["meanP"], "--dataset", noframes, "--out", tmp_path / "g1")
    assert res.exit_code == 2 and "no stored frames" in res.text and str(noframes) in res.text
    (tmp_path / "empty").mkdir()
    res = invoke("gallery", tmp_path / "empty", "--dataset", ds, "--out", tmp_path / "g2")
    assert res.exit_code == 2 and "no usable result record" in res.text
    # a record whose score file is gone is named, the rest of the group is still shown
    broken = tmp_path / "results"
    shutil.copytree(runs["meanP"].parent, broken)
    (broken / runs["xpool"].name / "scores_seed0.npz").unlink()
    res = invoke("gallery", broken, "--dataset", ds, "--out", tmp_path / "g3")
    assert res.exit_code == 3 and "score file not found" in res.text
    assert len(list((tmp_path / "g3").glob("*/gallery.html"))) == 1
