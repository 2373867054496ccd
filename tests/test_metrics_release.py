"""Video->text as the field ranks it: the engine against literal re-implementations of the releases' evaluation.

CLIP4Clip (ArrowLuo/CLIP4Clip@508ffa3, ``main_task_retrieval.eval_epoch`` multi-sentence branch and
``metrics.py``) and X-Pool (layer6ai-labs/xpool@bc88718, ``modules/metrics.py``) stack the captions of each
video (padded with -inf) into ``[n_videos, max_captions, n_videos]``, rank videos for every caption with a
double argsort (text->video), and for video->text take each video's best caption per column and rank the
videos. The functions below follow those steps one by one, written for these tests.

Ties: the releases break them by argsort order (X-Pool, CLIP4Clip text->video) or report every tied position
as a separate entry (CLIP4Clip ``compute_metrics``); the protocol ranks pessimistically. On matrices without
ties all agree exactly; on tie-heavy ones the protocol equals the releases' code on the same matrix with every
own score nudged below its ties, and equals the worst of the positions CLIP4Clip reports for a tied query.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dvtr_bench.protocol.metrics import compute_metrics, evaluate


# ---------------------------------------------------------------------------------------------------------
# CLIP4Clip, step by step.
# ---------------------------------------------------------------------------------------------------------
def c4c_stack(sim: np.ndarray, counts: list[int]) -> np.ndarray:
    """eval_epoch: rows cut at the cumulative caption counts, each video's block padded with -inf rows."""
    cut = np.cumsum(counts).tolist()
    max_length = max(e - s for s, e in zip([0] + cut[:-1], cut))
    blocks = []
    for s, e in zip([0] + cut[:-1], cut):
        pad = np.full((max_length - e + s, sim.shape[1]), -np.inf)
        blocks.append(np.concatenate((sim[s:e], pad), axis=0))
    return np.stack(blocks, axis=0)


def c4c_text_to_video(sim_tensor: np.ndarray) -> dict[str, float]:
    """metrics.tensor_text_to_video_metrics."""
    t = torch.tensor(sim_tensor)
    stacked = t.permute(1, 0, 2)
    first = torch.argsort(stacked, dim=-1, descending=True)
    second = torch.argsort(first, dim=-1, descending=False)
    ranks = torch.flatten(torch.diagonal(second, dim1=1, dim2=2))
    diag = torch.flatten(torch.diagonal(t, dim1=0, dim2=2))
    valid = ranks[~torch.logical_or(torch.isinf(diag), torch.isnan(diag))]
    out = {f"R{k}": float(torch.sum(valid < k) * 100 / len(valid)) for k in (1, 5, 10)}
    out["MedianR"] = float(torch.median(valid + 1))
    out["MeanR"] = float(np.mean(valid.numpy() + 1))
    out["ranks"] = valid.numpy() + 1  # type: ignore[assignment]
    return out


def c4c_video_to_text_sim(sim_tensor: np.ndarray) -> np.ndarray:
    """metrics.tensor_video_to_text_sim: NaN -> -inf, best caption per (video group, column), transposed."""
    t = torch.tensor(sim_tensor).clone()
    t[t != t] = float("-inf")
    values, _ = torch.max(t, dim=1, keepdim=True)
    return torch.squeeze(values).T.numpy()


def c4c_compute_metrics(x: np.ndarray) -> dict[str, float]:
    """metrics.compute_metrics: position(s) of the diagonal value in each sorted row (one entry per tie)."""
    sx = np.sort(-x, axis=1)
    d = np.diag(-x)[:, np.newaxis]
    rows, ind = np.where(sx - d == 0)
    out = {"R1": float(np.sum(ind == 0)) * 100 / len(ind), "R5": float(np.sum(ind < 5)) * 100 / len(ind),
           "R10": float(np.sum(ind < 10)) * 100 / len(ind), "MR": np.median(ind) + 1, "MeanR": np.mean(ind) + 1}
    out["rows"], out["ind"] = rows, ind  # type: ignore[assignment]
    return out


# ---------------------------------------------------------------------------------------------------------
# X-Pool's video->text (modules/metrics.v2t_metrics + compute_metrics).
# ---------------------------------------------------------------------------------------------------------
def xpool_video_to_text(sim_tensor: np.ndarray) -> dict[str, float]:
    t = torch.tensor(sim_tensor).clone()
    t[t != t] = float("-inf")
    t, _ = torch.max(t, dim=1)
    t = t.t()
    first = torch.argsort(t, dim=-1, descending=True)
    second = torch.argsort(first, dim=-1, descending=False)
    lst = torch.diag(second).numpy()
    return {"R1": 100 * float(np.sum(lst == 0)) / len(lst), "R5": 100 * float(np.sum(lst < 5)) / len(lst),
            "R10": 100 * float(np.sum(lst < 10)) / len(lst), "MedR": np.median(lst) + 1,
            "MeanR": np.mean(lst) + 1}


def _case(rng: np.random.Generator, n_clips: int, ties: bool) -> tuple[np.ndarray, np.ndarray, list[int]]:
    counts = rng.integers(1, 6, size=n_clips).tolist()          # 1-5 captions per clip, stored clip by clip
    c2c = np.repeat(np.arange(n_clips), counts)
    if ties:
        scores = rng.integers(0, 4, size=(c2c.size, n_clips)).astype(np.float64)
    else:
        scores = rng.standard_normal((c2c.size, n_clips))
        scores[np.arange(c2c.size), c2c] += 1.0                   # a scorer with some signal
    return scores, c2c, counts


def _assert_release_equal(ours: dict[str, float], scores: np.ndarray, counts: list[int]) -> None:
    stacked = c4c_stack(scores, counts)
    t2v = c4c_text_to_video(stacked)
    v2t = c4c_compute_metrics(c4c_video_to_text_sim(stacked))
    xp = xpool_video_to_text(stacked)
    assert len(v2t["ind"]) == len(counts)  # type: ignore[arg-type]  # one entry per video: no ties here
    for k in (1, 5, 10):
        # CLIP4Clip divides a torch integer count, so its text->video recalls are float32 values
        assert math.isclose(ours[f"t2v_r{k}"], t2v[f"R{k}"], rel_tol=1e-6)
        assert math.isclose(ours[f"v2t_r{k}"], v2t[f"R{k}"], abs_tol=1e-9)
        assert math.isclose(ours[f"v2t_r{k}"], xp[f"R{k}"], abs_tol=1e-9)
    assert math.isclose(ours["t2v_meanr"], t2v["MeanR"], rel_tol=1e-12)
    # CLIP4Clip's text->video median is torch.median: the lower middle rank for an even number of captions.
    # The protocol (like numpy and X-Pool) takes the mean of the two middle ranks.
    ranks = t2v["ranks"]
    assert math.isclose(ours["t2v_medr"], float(np.median(ranks)))  # type: ignore[arg-type]
    if len(ranks) % 2 == 1:  # type: ignore[arg-type]
        assert ours["t2v_medr"] == t2v["MedianR"]
    for key_ours, key_c4c, key_xp in (("v2t_medr", "MR", "MedR"), ("v2t_meanr", "MeanR", "MeanR")):
        assert math.isclose(ours[key_ours], v2t[key_c4c], rel_tol=1e-12)
        assert math.isclose(ours[key_ours], xp[key_xp], rel_tol=1e-12)


@pytest.mark.parametrize("seed", range(8))
def test_random_matrices_agree_with_clip4clip_and_xpool(seed: int) -> None:
    rng = np.random.default_rng(seed)
    scores, c2c, counts = _case(rng, n_clips=int(rng.integers(2, 40)), ties=False)
    _assert_release_equal(compute_metrics(scores, c2c), scores, counts)


@pytest.mark.parametrize("seed", range(8))
def test_tie_heavy_matrices_agree_once_ties_are_broken_pessimistically(seed: int) -> None:
    # Scores in {0, 1, 2, 3}: most rows and columns hold ties. Lowering every own score by 0.5 puts it below
    # the scores it ties with and above every lower one: the releases' code on that matrix sees no tie at a
    # correct item and must give exactly the protocol's pessimistic figures on the original one.
    rng = np.random.default_rng(100 + seed)
    scores, c2c, counts = _case(rng, n_clips=int(rng.integers(2, 30)), ties=True)
    nudged = scores.copy()
    nudged[np.arange(c2c.size), c2c] -= 0.5
    _assert_release_equal(compute_metrics(scores, c2c), nudged, counts)


@pytest.mark.parametrize("seed", range(8))
def test_tie_heavy_video_to_text_is_the_worst_position_clip4clip_reports(seed: int) -> None:
    # On the tied matrix itself CLIP4Clip's compute_metrics reports one entry per position of a tie, from
    # optimistic to pessimistic; the protocol's clip rank is the last of them, and a query without a tie
    # has exactly one entry.
    rng = np.random.default_rng(200 + seed)
    scores, c2c, counts = _case(rng, n_clips=int(rng.integers(2, 30)), ties=True)
    res = c4c_compute_metrics(c4c_video_to_text_sim(c4c_stack(scores, counts)))
    ours = evaluate(scores, c2c).v2t_clip_ranks
    rows, ind = res["rows"], res["ind"]
    for j in range(len(counts)):
        positions = ind[rows == j]  # type: ignore[index]
        assert ours[j] == positions.max() + 1
        assert positions.tolist() == list(range(positions.min(), positions.max() + 1))
    assert len(ind) == len(counts) + int(sum(ours - 1 - np.array([ind[rows == j].min() for j in  # type: ignore[index]
                                                                    range(len(counts))])))


def test_captions_stored_out_of_order_give_the_same_figures() -> None:
    # The releases need each video's captions in consecutive rows; the protocol takes any caption order.
    rng = np.random.default_rng(9)
    scores, c2c, counts = _case(rng, n_clips=25, ties=False)
    perm = rng.permutation(c2c.size)
    assert compute_metrics(scores[perm], c2c[perm]) == compute_metrics(scores, c2c)
    _assert_release_equal(compute_metrics(scores[perm], c2c[perm], chunk_size=3), scores, counts)


def test_rank_captions_is_the_image_text_convention() -> None:
    # The caption-ranking convention (protocol 1) counts every other caption above the clip's best one, so
    # its ranks are never better than the clip ranks and R@1 is the same.
    rng = np.random.default_rng(4)
    scores, c2c, _ = _case(rng, n_clips=40, ties=False)
    r = evaluate(scores, c2c)
    assert np.all(r.v2t_caption_ranks >= r.v2t_clip_ranks)
    assert np.array_equal(r.v2t_caption_ranks == 1, r.v2t_clip_ranks == 1)
    m_clips = compute_metrics(scores, c2c, v2t="rank_clips")
    m_caps = compute_metrics(scores, c2c, v2t="rank_captions")
    assert m_clips["v2t_r1"] == m_caps["v2t_r1"] and m_clips["v2t_map"] == m_caps["v2t_map"]
    assert m_caps["v2t_meanr"] > m_clips["v2t_meanr"]
    for key in ("t2v_r1", "t2v_r5", "t2v_r10", "t2v_medr", "t2v_meanr", "t2v_map"):
        assert m_clips[key] == m_caps[key]
