"""The metrics engine against hand-computed examples and a deliberately naive reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dvtr_bench.protocol.metrics import METRIC_KEYS, V2T_CONVENTIONS, compute_metrics, evaluate


# ---------------------------------------------------------------------------------------------------------
# A naive reference: for every query, sort the whole gallery with pessimistic tie-breaking (at equal score
# the irrelevant items come first) and read the positions of the relevant items. Pure Python on purpose.
# Video->text: "rank_captions" ranks every caption; "rank_clips" ranks the captioned clips, each standing
# for its best caption in the column (one relevant item: the query clip itself).
# ---------------------------------------------------------------------------------------------------------
def naive_metrics(scores: np.ndarray, caption_to_clip: np.ndarray, v2t: str = "rank_clips") -> dict[str, float]:
    s = scores.tolist()
    c2c = [int(c) for c in caption_to_clip]
    n_cap, n_clips = len(s), len(s[0])

    def positions(values: list[float], relevant: set[int]) -> list[int]:
        ranked = sorted(range(len(values)), key=lambda i: (-values[i], i in relevant))
        return [p + 1 for p, i in enumerate(ranked) if i in relevant]

    t2v_ranks, t2v_ap = [], []
    for i in range(n_cap):
        (r,) = positions(s[i], {c2c[i]})
        t2v_ranks.append(r)
        t2v_ap.append(1.0 / r)
    v2t_ranks, v2t_ap = [], []
    for j in range(n_clips):
        own = {i for i in range(n_cap) if c2c[i] == j}
        if not own:
            continue
        pos = positions([s[i][j] for i in range(n_cap)], own)
        if v2t == "rank_captions":
            v2t_ranks.append(pos[0])
        else:
            groups = sorted(set(c2c))
            best = [max(s[i][j] for i in range(n_cap) if c2c[i] == g) for g in groups]
            (r,) = positions(best, {groups.index(j)})
            v2t_ranks.append(r)
        v2t_ap.append(sum((k + 1) / p for k, p in enumerate(pos)) / len(pos))

    out: dict[str, float] = {}
    for d, ranks, ap in (("t2v", t2v_ranks, t2v_ap), ("v2t", v2t_ranks, v2t_ap)):
        for k in (1, 5, 10):
            out[f"{d}_r{k}"] = 100.0 * sum(r <= k for r in ranks) / len(ranks)
        srt = sorted(ranks)
        m = len(srt)
        out[f"{d}_medr"] = srt[m // 2] if m % 2 else (srt[m // 2 - 1] + srt[m // 2]) / 2
        out[f"{d}_meanr"] = sum(ranks) / m
        out[f"{d}_map"] = 100.0 * sum(ap) / m
    out["rsum"] = sum(out[f"{d}_r{k}"] for d in ("t2v", "v2t") for k in (1, 5, 10))
    out["mr"] = out["rsum"] / 6
    return out


def assert_same(a: dict[str, float], b: dict[str, float]) -> None:
    assert set(a) == set(b) == set(METRIC_KEYS)
    for k in METRIC_KEYS:
        assert math.isclose(a[k], b[k], rel_tol=1e-12, abs_tol=1e-9), (k, a[k], b[k])


# ---------------------------------------------------------------------------------------------------------
# Hand-computed examples (the same ones are worked through in docs/protocol.md).
# ---------------------------------------------------------------------------------------------------------
# 4 captions x 3 clips; captions 0 and 2 belong to clip 0, caption 1 to clip 1, caption 3 to clip 2.
EX_SCORES = np.array([
    [0.9, 0.1, 0.5],
    [0.2, 0.8, 0.8],
    [0.7, 0.3, 0.1],
    [0.4, 0.4, 0.4],
], dtype=np.float32)
EX_C2C = np.array([0, 1, 0, 2])


def test_hand_example_ranks() -> None:
    r = evaluate(EX_SCORES, EX_C2C)
    assert r.v2t_convention == "rank_clips"
    # t2v: caption 1 ties with clip 2 -> rank 2; caption 3 ties with everything -> rank 3 (worst).
    assert r.t2v_ranks.tolist() == [1, 2, 1, 3]
    # v2t: clip 0 column [0.9, 0.2, 0.7, 0.4], own captions at positions 1, 2 -> rank 1, AP 1.
    # clip 1 column [0.1, 0.8, 0.3, 0.4] -> rank 1. clip 2 column [0.5, 0.8, 0.1, 0.4]: two other
    # captions score above 0.4 -> rank 3, AP 1/3.
    assert r.v2t_ranks.tolist() == [1, 1, 3]
    assert np.allclose(r.v2t_ap, [1.0, 1.0, 1 / 3])
    # Here both conventions agree: clip 2's two rival captions belong to two different clips.
    assert r.v2t_caption_ranks.tolist() == r.v2t_clip_ranks.tolist() == [1, 1, 3]


def test_hand_example_metrics() -> None:
    m = compute_metrics(EX_SCORES, EX_C2C)
    expected = {
        "t2v_r1": 50.0, "t2v_r5": 100.0, "t2v_r10": 100.0, "t2v_medr": 1.5, "t2v_meanr": 1.75,
        "t2v_map": 100 * (1 + 1 / 2 + 1 + 1 / 3) / 4,          # 70.8333...
        "v2t_r1": 200 / 3, "v2t_r5": 100.0, "v2t_r10": 100.0, "v2t_medr": 1.0, "v2t_meanr": 5 / 3,
        "v2t_map": 100 * (1 + 1 + 1 / 3) / 3,                  # 77.777...
        "rsum": 50 + 100 + 100 + 200 / 3 + 100 + 100,          # 516.666...
        "mr": (50 + 100 + 100 + 200 / 3 + 100 + 100) / 6,      # 86.111...
    }
    assert_same(m, expected)


def test_hand_example_ap_with_interleaved_negatives() -> None:
    # One clip query with 3 own captions (0, 2, 4) among 6: column = [0.9, 0.8, 0.7, 0.7, 0.5, 0.1].
    # Pessimistic order: c0 (own), c1, c3 (ties with c2; the other clip's caption first), c2 (own),
    # c4 (own), c5. Own positions 1, 4, 5 -> v2t rank 1, AP = (1/1 + 2/4 + 3/5) / 3 = 0.7.
    col = np.array([0.9, 0.8, 0.7, 0.7, 0.5, 0.1])
    scores = np.stack([col, -col], axis=1)           # clip 1 is a second clip owning captions 1, 3, 5
    c2c = np.array([0, 1, 0, 1, 0, 1])
    r = evaluate(scores, c2c)
    assert r.v2t_ranks[0] == 1
    assert r.v2t_ap[0] == pytest.approx(0.7)
    # Clip 1 column = -col: own captions 5 (-0.1), 3 (-0.7), 1 (-0.8); others -0.5 (c4), -0.7 (c2), -0.9.
    # Order: c5 (own, 1), c4 (2), c2 (tie, other first, 3), c3 (own, 4), c1 (own, 5), c0 -> AP (1 + 2/4 + 3/5)/3.
    assert r.v2t_ranks[1] == 1
    assert r.v2t_ap[1] == pytest.approx(0.7)
    assert_same(compute_metrics(scores, c2c), naive_metrics(scores, c2c))


# 5 captions x 3 clips (docs/protocol.md, "Worked example: the two video->text conventions"): a1, a2 belong
# to clip A, b1, b2 to clip B, c1 to clip C.
CONV_SCORES = np.array([
    [0.9, 0.2, 0.9],   # a1
    [0.6, 0.1, 0.8],   # a2
    [0.3, 0.7, 0.3],   # b1
    [0.2, 0.7, 0.2],   # b2
    [0.4, 0.5, 0.5],   # c1
])
CONV_C2C = np.array([0, 0, 1, 1, 2])


def test_hand_example_conventions() -> None:
    r = evaluate(CONV_SCORES, CONV_C2C)
    # t2v: a1 ties with C (pessimistic: 2), a2 is beaten by C (2), b1 and b2 win (1), c1 ties with B (2).
    assert r.t2v_ranks.tolist() == [2, 2, 1, 1, 2]
    # v2t, clip C's column (0.9, 0.8, 0.3, 0.2, 0.5): its caption c1 scores 0.5. Two captions of clip A
    # score above it, so c1 is third among captions; as clips, only A (best caption 0.9) beats C, whose
    # best caption is 0.5, while B's best caption here is 0.3: C is second among clips.
    assert r.v2t_caption_ranks.tolist() == [1, 1, 3]
    assert r.v2t_clip_ranks.tolist() == [1, 1, 2]
    # B's two captions tie at 0.7 at the top of its column: an own-caption tie costs nothing.
    assert np.allclose(r.v2t_ap, [1.0, 1.0, 1 / 3])
    clips = compute_metrics(CONV_SCORES, CONV_C2C, v2t="rank_clips")
    caps = compute_metrics(CONV_SCORES, CONV_C2C, v2t="rank_captions")
    common = {"t2v_r1": 40.0, "t2v_r5": 100.0, "t2v_r10": 100.0, "t2v_medr": 2.0, "t2v_meanr": 1.6,
              "t2v_map": 70.0, "v2t_r1": 200 / 3, "v2t_r5": 100.0, "v2t_r10": 100.0, "v2t_medr": 1.0,
              "v2t_map": 100 * (1 + 1 + 1 / 3) / 3, "rsum": 40 + 200 + 200 / 3 + 200,
              "mr": (40 + 200 + 200 / 3 + 200) / 6}
    assert_same(clips, {**common, "v2t_meanr": 4 / 3})
    assert_same(caps, {**common, "v2t_meanr": 5 / 3})


# ---------------------------------------------------------------------------------------------------------
# Ties and degenerate scorers.
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("v2t", V2T_CONVENTIONS)
@pytest.mark.parametrize("n_clips", [1, 2, 7, 30])
def test_constant_scorer_is_worst(n_clips: int, v2t: str) -> None:
    caps = 3
    c2c = np.repeat(np.arange(n_clips), caps)
    scores = np.zeros((c2c.size, n_clips), dtype=np.float32)
    m = compute_metrics(scores, c2c, v2t=v2t)
    assert m["t2v_medr"] == n_clips and m["t2v_meanr"] == n_clips
    if v2t == "rank_captions":
        # every other clip's captions come first, so the best own caption sits at n_cap - caps + 1
        assert m["v2t_meanr"] == c2c.size - caps + 1
    else:
        # every other clip comes first: the last of n_clips
        assert m["v2t_meanr"] == n_clips
    if n_clips == 1:
        assert m["t2v_r1"] == 100.0 and m["v2t_r1"] == 100.0
    else:
        assert m["t2v_r1"] == 0.0 and m["v2t_r1"] == 0.0
    if n_clips > 10:
        assert m["rsum"] == 0.0
    assert_same(m, naive_metrics(scores, c2c, v2t))


@pytest.mark.parametrize("v2t", V2T_CONVENTIONS)
def test_perfect_scorer(v2t: str) -> None:
    c2c = np.repeat(np.arange(20), 5)
    scores = (c2c[:, None] == np.arange(20)[None, :]).astype(np.float64)
    m = compute_metrics(scores, c2c, v2t=v2t)
    assert m["rsum"] == 600.0 and m["mr"] == 100.0
    assert m["t2v_map"] == 100.0 and m["v2t_map"] == 100.0
    assert m["t2v_medr"] == m["v2t_meanr"] == 1.0


@pytest.mark.parametrize("v2t", V2T_CONVENTIONS)
def test_v2t_own_ties_do_not_hurt(v2t: str) -> None:
    # Two own captions tied at the top of the column: the clip's rank is 1 and AP is 1.
    scores = np.array([[1.0, 0.0], [1.0, 0.0], [0.5, 0.9]])
    c2c = np.array([0, 0, 1])
    r = evaluate(scores, c2c, v2t=v2t)
    assert r.v2t_ranks[0] == 1 and r.v2t_ap[0] == 1.0


# ---------------------------------------------------------------------------------------------------------
# Brute-force comparisons.
# ---------------------------------------------------------------------------------------------------------
def _random_case(rng: np.random.Generator, n_clips: int, max_caps: int, kind: str,
                 allow_empty: bool = False) -> tuple[np.ndarray, np.ndarray]:
    lo = 0 if allow_empty else 1
    per_clip = rng.integers(lo, max_caps + 1, size=n_clips)
    if per_clip.sum() == 0:
        per_clip[0] = 1
    c2c = np.repeat(np.arange(n_clips), per_clip)
    rng.shuffle(c2c)
    shape = (c2c.size, n_clips)
    if kind == "float":
        scores = rng.standard_normal(shape)
    elif kind == "float32":
        scores = rng.standard_normal(shape).astype(np.float32)
    elif kind == "int":
        scores = rng.integers(-2, 3, size=shape)                 # many ties
    elif kind == "coarse":
        scores = np.round(rng.standard_normal(shape), 1).astype(np.float32)
    else:
        raise AssertionError(kind)
    return scores, c2c


@pytest.mark.parametrize("v2t", V2T_CONVENTIONS)
@pytest.mark.parametrize("kind", ["float", "float32", "int", "coarse"])
@pytest.mark.parametrize("seed", range(6))
def test_matches_naive(kind: str, seed: int, v2t: str) -> None:
    rng = np.random.default_rng(seed)
    scores, c2c = _random_case(rng, n_clips=int(rng.integers(1, 25)), max_caps=int(rng.integers(1, 6)),
                               kind=kind, allow_empty=seed % 2 == 1)
    assert_same(compute_metrics(scores, c2c, v2t=v2t), naive_metrics(scores, c2c, v2t))


def test_matches_naive_with_a_signal() -> None:
    # A scorer that is good but not perfect exercises small ranks, where R@1/R@5 move.
    rng = np.random.default_rng(7)
    n_clips = 40
    c2c = np.repeat(np.arange(n_clips), 4)
    scores = rng.standard_normal((c2c.size, n_clips)) * 0.7
    scores[np.arange(c2c.size), c2c] += 1.5
    for v2t in V2T_CONVENTIONS:
        m = compute_metrics(scores, c2c, v2t=v2t)
        assert 20 < m["t2v_r1"] < 100
        assert_same(m, naive_metrics(scores, c2c, v2t))


def test_chunk_sizes_agree() -> None:
    rng = np.random.default_rng(3)
    scores, c2c = _random_case(rng, n_clips=9, max_caps=4, kind="int")
    ref = evaluate(scores, c2c)
    for chunk in range(1, scores.shape[0] + 2):
        r = evaluate(scores, c2c, chunk_size=chunk)
        assert r.metrics == ref.metrics
        assert np.array_equal(r.t2v_ranks, ref.t2v_ranks)
        assert np.array_equal(r.v2t_clip_ranks, ref.v2t_clip_ranks)
        assert np.array_equal(r.v2t_caption_ranks, ref.v2t_caption_ranks)


def test_uncaptioned_clips_are_distractors_only() -> None:
    scores = np.array([[0.9, 0.1, 0.95], [0.2, 0.8, 0.1]])
    c2c = np.array([0, 1])                  # clip 2 has no caption
    r = evaluate(scores, c2c)
    assert r.n_uncaptioned_clips == 1
    assert r.v2t_clips.tolist() == [0, 1]
    assert r.t2v_ranks.tolist() == [2, 1]  # clip 2 still outranks clip 0 for caption 0
    # and it is no video->text candidate: no caption stands for it
    assert r.v2t_clip_ranks.tolist() == [1, 1]
    for v2t in V2T_CONVENTIONS:
        assert_same(evaluate(scores, c2c, v2t=v2t).metrics, naive_metrics(scores, c2c, v2t))


def test_skewed_caption_counts() -> None:
    # One clip with many captions, the others with one: the sparse levels path.
    rng = np.random.default_rng(11)
    c2c = np.concatenate([np.zeros(15, dtype=int), np.arange(1, 12)])
    scores = rng.integers(0, 4, size=(c2c.size, 12)).astype(np.float64)
    for chunk in (1, 4, 100):
        for v2t in V2T_CONVENTIONS:
            assert_same(compute_metrics(scores, c2c, chunk_size=chunk, v2t=v2t), naive_metrics(scores, c2c, v2t))


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_property_matches_naive(data: st.DataObject) -> None:
    n_clips = data.draw(st.integers(1, 8), label="n_clips")
    c2c = np.array(data.draw(st.lists(st.integers(0, n_clips - 1), min_size=1, max_size=14), label="c2c"))
    flat = data.draw(st.lists(st.integers(-3, 3), min_size=c2c.size * n_clips, max_size=c2c.size * n_clips))
    scores = np.array(flat, dtype=np.float64).reshape(c2c.size, n_clips) / 2
    chunk = data.draw(st.integers(1, c2c.size + 1), label="chunk")
    v2t = data.draw(st.sampled_from(V2T_CONVENTIONS), label="v2t")
    assert_same(compute_metrics(scores, c2c, chunk_size=chunk, v2t=v2t), naive_metrics(scores, c2c, v2t))


def test_float32_is_not_upcast_and_memmap_works(tmp_path) -> None:
    rng = np.random.default_rng(5)
    scores, c2c = _random_case(rng, n_clips=30, max_caps=3, kind="float32")
    path = tmp_path / "s.npy"
    np.save(path, scores)
    mm = np.load(path, mmap_mode="r")
    assert_same(compute_metrics(mm, c2c, chunk_size=7), naive_metrics(scores, c2c))


def test_uint_and_float16_inputs() -> None:
    rng = np.random.default_rng(2)
    scores, c2c = _random_case(rng, n_clips=10, max_caps=3, kind="int")
    assert_same(compute_metrics((scores + 2).astype(np.uint8), c2c), naive_metrics(scores, c2c))
    assert_same(compute_metrics(scores.astype(np.float16), c2c), naive_metrics(scores, c2c))


# ---------------------------------------------------------------------------------------------------------
# Bad input.
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_scores_name_the_position(bad: float) -> None:
    scores = np.zeros((6, 4), dtype=np.float32)
    scores[4, 2] = bad
    with pytest.raises(ValueError, match=r"scores\[4, 2\]"):
        compute_metrics(scores, np.array([0, 1, 2, 3, 0, 1]), chunk_size=2)


def test_bad_shapes_and_mapping() -> None:
    with pytest.raises(ValueError, match="2-D"):
        compute_metrics(np.zeros(3), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="shape"):
        compute_metrics(np.zeros((3, 2)), np.array([0, 1]))
    with pytest.raises(ValueError, match=r"caption_to_clip\[1\] = 5"):
        compute_metrics(np.zeros((3, 2)), np.array([0, 5, 1]))
    with pytest.raises(ValueError, match="outside"):
        compute_metrics(np.zeros((3, 2)), np.array([0, -1, 1]))
    with pytest.raises(ValueError, match="integers"):
        compute_metrics(np.zeros((3, 2)), np.array([0.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="real numbers"):
        compute_metrics(np.zeros((3, 2), dtype=complex), np.array([0, 1, 1]))
    with pytest.raises(ValueError, match="at least one"):
        compute_metrics(np.zeros((0, 2)), np.zeros(0, dtype=int))
    with pytest.raises(ValueError, match="chunk_size"):
        compute_metrics(np.zeros((3, 2)), np.array([0, 1, 1]), chunk_size=0)
    with pytest.raises(ValueError, match="rank_clips"):
        compute_metrics(np.zeros((3, 2)), np.array([0, 1, 1]), v2t="best")


def test_progress_is_reported() -> None:
    events = []
    compute_metrics(EX_SCORES, EX_C2C, chunk_size=3, progress=events.append)
    assert [e.completed for e in events] == [3, 4]
    assert events[-1].total == 4


def test_working_memory_is_bounded_by_the_chunk() -> None:
    # 4,000 x 1,000 float32 = 16 MB. With 50-row chunks the engine's own allocations must stay far below the
    # size of the matrix (no full copy, no upcast, no argsort of it).
    import tracemalloc

    rng = np.random.default_rng(0)
    c2c = np.repeat(np.arange(1000), 4)
    scores = rng.standard_normal((c2c.size, 1000), dtype=np.float32)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        compute_metrics(scores, c2c, chunk_size=50)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < scores.nbytes / 8, f"peak {peak / 2**20:.1f} MiB for a {scores.nbytes / 2**20:.1f} MiB matrix"


def test_one_caption_per_clip_needs_no_copy_of_the_chunk() -> None:
    # Each caption its own group (single captions among uncaptioned distractors, as in a large test gallery):
    # the per-group maximum is the chunk itself, so the engine allocates only its boolean comparisons.
    import tracemalloc

    rng = np.random.default_rng(1)
    n_clips = 2000
    # 500 captioned clips among 1,500 distractors, captions stored clip by clip (as Captions flattens them):
    # a chunk is then a slice of the matrix, not a copy
    c2c = np.sort(rng.permutation(n_clips)[:500])
    scores = rng.standard_normal((c2c.size, n_clips), dtype=np.float32)
    chunk = 250
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        compute_metrics(scores, c2c, chunk_size=chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    block = chunk * n_clips * scores.itemsize
    # what remains: one boolean chunk at a time and the captioned columns' scores (a quarter of the chunk)
    assert peak < 0.75 * block, f"peak {peak / 2**20:.2f} MiB, a float chunk is {block / 2**20:.2f} MiB"
    # and the numbers are those of the brute-force definitions, ties included
    small = np.round(rng.standard_normal((6, 9)), 1)
    own = np.array([4, 0, 8, 2, 6, 1])
    for ch in (1, 2, 6):
        for v2t in V2T_CONVENTIONS:
            assert_same(compute_metrics(small, own, chunk_size=ch, v2t=v2t), naive_metrics(small, own, v2t))
