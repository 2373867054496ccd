"""The protocol metrics engine: exact retrieval metrics from a (captions x clips) score matrix.

Definitions (docs/protocol.md has them as formulas, with worked examples):

* text->video: caption ``i`` has exactly one correct clip ``c(i)``. Its rank is pessimistic:
  ``rank_i = 1 + #{j != c(i) : S[i, j] >= S[i, c(i)]}`` -- every clip that ties with the correct one is
  ranked above it, so a constant scorer gets the worst possible rank, never the best.
* video->text: clip ``j`` is relevant to its own captions ``P_j``; ``s_1 = max_{i in P_j} S[i, j]`` is its
  best own score. Two conventions give the clip's rank (the ``v2t`` argument):

  - ``"rank_clips"`` (protocol 2; the multi-sentence evaluation of CLIP4Clip and X-Pool): every captioned
    clip ``g`` stands in the ranking by its best caption, ``M[g, j] = max_{i in P_g} S[i, j]``, and clips are
    ranked: ``rank_j = 1 + #{g != j captioned : M[g, j] >= s_1}``;
  - ``"rank_captions"`` (protocol 1; the image-text evaluation of AMFMN and VSE++): captions are ranked and
    the clip's rank is that of its best own caption, ``1 + #{i not in P_j : S[i, j] >= s_1}``.

  Both are pessimistic at a tie with another clip's caption, and a tie among a clip's own captions changes
  neither (only their maximum enters).
* video->text AP, in both conventions, ranks the captions by ``S[:, j]`` with every own caption relevant;
  within a tie other clips' captions come first, own captions keep any order (it does not change a number).
  With own scores sorted descending ``s_1 >= ... >= s_m`` and ``N_k = #{i not in P_j : S[i, j] >= s_k}``,
  the k-th own caption sits at position ``k + N_k`` and ``AP = (1/m) sum_k k / (k + N_k)``.
* text->video AP has one relevant item, so it is ``1 / rank_i`` (mAP = mean reciprocal rank).
* R@K = 100 * fraction of queries with rank <= K; MdR / MnR = median / mean rank; mAP = 100 * mean AP;
  RSum = the sum of the six recalls; mR = RSum / 6.
* A clip that has no caption cannot be a video->text query (nothing is relevant to it), nor a video->text
  candidate under ``rank_clips`` (no caption stands for it). It stays in the gallery as a text->video
  distractor, is left out of every video->text figure, and is counted in
  :attr:`RetrievalResult.n_uncaptioned_clips`.

How it is computed: one pass over chunks of whole caption groups (all captions of a clip fall in one chunk;
with captions stored clip by clip a chunk is a contiguous block of rows), never a sort of the matrix. Per
chunk the engine counts, per caption, the clips scoring at least the correct one (text->video); per clip
and per own-caption threshold ``s_k``, the chunk's captions scoring at least ``s_k`` (video->text AP and
caption ranks, the transposed problem accumulated column-wise); and per clip, the chunk's caption groups
whose best caption reaches ``s_1`` (clip ranks: one ``maximum.reduceat`` over the chunk's groups).
Comparisons are exact in the input dtype (float32 stays float32; only the chunk in hand is ever copied), so
the working memory is ``O(chunk_size * n_clips)`` on top of the input, which may be a read-only memory map
(see :func:`dvtr_bench.protocol.scores.load_scores`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from dvtr_bench.progress import Progress, ProgressFn
from dvtr_bench.protocol import v2
from dvtr_bench.protocol.v1 import METRICS, RECALL_KS

# The two video->text conventions (module docstring; docs/protocol.md section 3).
V2T_RANK_CLIPS = "rank_clips"
V2T_RANK_CAPTIONS = "rank_captions"
V2T_CONVENTIONS: tuple[str, ...] = (V2T_RANK_CLIPS, V2T_RANK_CAPTIONS)
# The current protocol's convention; protocol 1 records were computed with rank_captions, and
# dvtr_bench.protocol.record recomputes every record with the convention of its own version.
DEFAULT_V2T = v2.V2T_CONVENTION

METRIC_KEYS: tuple[str, ...] = METRICS
RECALL_KEYS: tuple[str, ...] = tuple(f"{d}_r{k}" for d in ("t2v", "v2t") for k in RECALL_KS)
# True when a larger value is better; the leaderboard and the docs use it to sort and to mark columns.
HIGHER_IS_BETTER: dict[str, bool] = {k: not (k.endswith("_medr") or k.endswith("_meanr")) for k in METRIC_KEYS}

# Elements of the chunk being compared at a time: 16 Mi elements = 64 MiB of float32 plus 16 MiB of
# booleans, which keeps 100k x 20k well inside a few GB while staying large enough to be vectorised.
DEFAULT_CHUNK_ELEMENTS = 1 << 24


@dataclass
class RetrievalResult:
    """Everything the engine measured, for callers that need more than the summary dict.

    ``t2v_ranks[i]`` is caption ``i``'s pessimistic rank. ``v2t_ranks`` (under ``v2t_convention``),
    ``v2t_clip_ranks``, ``v2t_caption_ranks`` and ``v2t_ap`` are indexed like ``v2t_clips`` (the clips that have
    at least one caption, ascending).
    """

    metrics: dict[str, float]
    t2v_ranks: np.ndarray
    v2t_clips: np.ndarray
    v2t_ranks: np.ndarray
    v2t_ap: np.ndarray
    n_captions: int
    n_clips: int
    n_uncaptioned_clips: int
    chunk_size: int = field(default=0)
    v2t_convention: str = DEFAULT_V2T
    v2t_clip_ranks: Optional[np.ndarray] = None
    v2t_caption_ranks: Optional[np.ndarray] = None


def compute_metrics(scores: np.ndarray, caption_to_clip: np.ndarray, chunk_size: Optional[int] = None,
                    progress: Optional[ProgressFn] = None, v2t: str = DEFAULT_V2T) -> dict[str, float]:
    """Protocol metrics of a score matrix.

    Args:
        scores: ``[n_captions, n_clips]`` real scores, higher = more similar (float32/float64/ints; a
            ``np.memmap`` is read chunk by chunk). NaN or +-inf raises ``ValueError`` naming the position.
        caption_to_clip: ``[n_captions]`` integers, the column of each caption's own clip.
        chunk_size: captions compared at a time (rounded to whole clips: a clip's captions are never split,
            so a clip with more captions than this is one chunk); ``None`` picks about 16M elements per chunk.
            Any value >= 1 gives identical results.
        progress: optional callback, task ``"metrics"`` counted in rows.
        v2t: the video->text convention: ``"rank_clips"`` (protocol 2, the default) or ``"rank_captions"``
            (protocol 1). It decides v2t R@K, MdR and MnR (hence RSum and mR), never v2t mAP.

    Returns:
        A dict with exactly the keys of :data:`METRIC_KEYS`: ``t2v_r1 t2v_r5 t2v_r10 t2v_medr t2v_meanr
        t2v_map v2t_r1 v2t_r5 v2t_r10 v2t_medr v2t_meanr v2t_map rsum mr``. Recalls and mAP are percent
        (0-100), ranks are 1-based, ``rsum`` is the sum of the six recalls, ``mr`` their mean.

    Raises:
        ValueError: wrong shapes or dtypes, ``caption_to_clip`` out of range, non-finite scores, an unknown
            ``v2t`` convention.
    """
    return evaluate(scores, caption_to_clip, chunk_size=chunk_size, progress=progress, v2t=v2t).metrics


def evaluate(scores: np.ndarray, caption_to_clip: np.ndarray, chunk_size: Optional[int] = None,
             progress: Optional[ProgressFn] = None, v2t: str = DEFAULT_V2T) -> RetrievalResult:
    """Like :func:`compute_metrics` but also returns the per-query ranks and APs (a :class:`RetrievalResult`)."""
    if v2t not in V2T_CONVENTIONS:
        raise ValueError(f"v2t must be one of {', '.join(V2T_CONVENTIONS)}, got {v2t!r}")
    scores, c2c = _validate(scores, caption_to_clip)
    n_cap, n_clips = scores.shape
    if chunk_size is None:
        chunk_size = max(1, DEFAULT_CHUNK_ELEMENTS // n_clips)
    if int(chunk_size) < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    chunk_size = int(chunk_size)

    # The score of each caption with its own clip: the thresholds of both directions. Fancy indexing reads
    # only these n_captions elements (a memmap is not scanned twice).
    wdtype = _work_dtype(scores.dtype)
    correct = np.asarray(scores[np.arange(n_cap), c2c]).astype(wdtype, copy=False)

    # Own captions grouped by clip (CSR layout): flat position p holds caption order[p]; clip j owns
    # positions starts[j] .. starts[j] + counts[j] - 1, sorted by ascending own score. The k-th best own
    # caption (k = 1..m) of clip j is therefore at position starts[j] + counts[j] - k.
    counts = np.bincount(c2c, minlength=n_clips)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    order = np.lexsort((correct, c2c))
    flat_clip = c2c[order]
    flat_thr = correct[order]
    captioned = np.flatnonzero(counts > 0)
    max_caps = int(counts.max())
    # Level k (0-based) compares clip j's (k+1)-th best own score against the whole column j. Levels past
    # the first only concern clips with more captions, so only their columns are compared.
    levels = []
    for k in range(max_caps):
        cols = np.flatnonzero(counts > k)
        pos = starts[cols] + counts[cols] - 1 - k
        levels.append((cols, pos, flat_thr[pos]))
    # Each clip's best own score s_1: the threshold of the clip ranking. A clip without captions gets an
    # arbitrary value; it is never a query.
    best_own = np.zeros(n_clips, dtype=wdtype)
    best_own[captioned] = flat_thr[starts[captioned] + counts[captioned] - 1]

    t2v_ranks = np.empty(n_cap, dtype=np.int64)
    ge = np.zeros(n_cap, dtype=np.int64)             # ge[p] = #{all captions i : S[i, clip] >= flat_thr[p]}
    groups_ge = np.zeros(n_clips, dtype=np.int64)    # #{captioned g : max_{i in P_g} S[i, j] >= s_1(j)}
    done = 0
    for p0, p1 in _group_chunks(counts, chunk_size):
        rows = np.sort(order[p0:p1])
        r0, r1 = int(rows[0]), int(rows[-1]) + 1
        # Captions stored clip by clip make a chunk a contiguous run: read it as a slice (a memory map is
        # then read sequentially, once).
        block = np.asarray(scores[r0:r1] if r1 - r0 == rows.size else scores[rows])
        if block.dtype != wdtype:
            block = block.astype(wdtype)
        if block.dtype.kind == "f" and not np.isfinite(block).all():
            _raise_non_finite(block, rows)
        # The correct clip counts itself once, so this is already 1 + #{other clips >= correct}.
        t2v_ranks[rows] = np.count_nonzero(block >= correct[rows, None], axis=1)
        for cols, pos, thr in levels:
            sub = block if cols.size == n_clips else block[:, cols]
            ge[pos] += np.count_nonzero(sub >= thr[None, :], axis=0)
        # Each caption group of the chunk, reduced to its best caption per column, counts where it reaches s_1.
        owners = c2c[rows]
        if np.any(owners[1:] < owners[:-1]):
            perm = np.argsort(owners, kind="stable")
            block, owners = block[perm], owners[perm]
        group_rows = np.flatnonzero(np.concatenate(([True], owners[1:] != owners[:-1])))
        # A chunk of one caption per clip (a split of single captions, or uncaptioned distractors around them)
        # is its own reduction: no copy of the chunk.
        best = block if group_rows.size == block.shape[0] else np.maximum.reduceat(block, group_rows, axis=0)
        groups_ge += np.count_nonzero(best >= best_own[None, :], axis=0)
        done += rows.size
        if progress is not None:
            progress(Progress("metrics", completed=done, total=n_cap))

    # ge also counted the clip's own captions scoring >= the threshold: with ascending own scores that is
    # every own position from the first one tied with p to the group's end.
    idx = np.arange(n_cap)
    run_start = np.ones(n_cap, dtype=bool)
    run_start[1:] = (flat_clip[1:] != flat_clip[:-1]) | (flat_thr[1:] != flat_thr[:-1])
    first_tied = np.maximum.accumulate(np.where(run_start, idx, 0))
    group_end = starts[flat_clip] + counts[flat_clip]
    negatives_ge = ge - (group_end - first_tied)
    k1 = group_end - idx                       # 1-based position among the clip's own captions, best first
    pos_rank = k1 + negatives_ge               # pessimistic position of this own caption in the clip's list
    caption_ranks = pos_rank[starts[captioned] + counts[captioned] - 1]
    # groups_ge counted the clip's own group once (its best caption is s_1 itself): it is already the rank.
    clip_ranks = groups_ge[captioned]
    v2t_ap = np.bincount(flat_clip, weights=k1 / pos_rank, minlength=n_clips)[captioned] / counts[captioned]
    v2t_ranks = clip_ranks if v2t == V2T_RANK_CLIPS else caption_ranks

    metrics = _summarise(t2v_ranks, 1.0 / t2v_ranks, v2t_ranks, v2t_ap)
    return RetrievalResult(metrics=metrics, t2v_ranks=t2v_ranks, v2t_clips=captioned, v2t_ranks=v2t_ranks,
                           v2t_ap=v2t_ap, n_captions=n_cap, n_clips=n_clips,
                           n_uncaptioned_clips=int(n_clips - captioned.size), chunk_size=chunk_size,
                           v2t_convention=v2t, v2t_clip_ranks=clip_ranks, v2t_caption_ranks=caption_ranks)


def _group_chunks(counts: np.ndarray, chunk_size: int) -> list[tuple[int, int]]:
    """Ranges ``[p0, p1)`` of flat (clip-sorted) caption positions, each made of whole caption groups.

    A chunk takes as many whole groups as fit in ``chunk_size`` captions; a single group larger than that is
    a chunk of its own.
    """
    ends = np.cumsum(counts)
    n = int(ends[-1]) if ends.size else 0
    out = []
    p0 = 0
    while p0 < n:
        k = int(np.searchsorted(ends, p0 + chunk_size, side="right")) - 1
        p1 = int(ends[k]) if k >= 0 else 0
        if p1 <= p0:  # the next group alone exceeds chunk_size
            p1 = int(ends[np.searchsorted(ends, p0, side="right")])
        out.append((p0, p1))
        p0 = p1
    return out


def _summarise(t2v_ranks: np.ndarray, t2v_ap: np.ndarray, v2t_ranks: np.ndarray,
               v2t_ap: np.ndarray) -> dict[str, float]:
    out: dict[str, float] = {}
    for d, ranks, ap in (("t2v", t2v_ranks, t2v_ap), ("v2t", v2t_ranks, v2t_ap)):
        for k in RECALL_KS:
            out[f"{d}_r{k}"] = float(100.0 * np.count_nonzero(ranks <= k) / ranks.size)
        out[f"{d}_medr"] = float(np.median(ranks))
        out[f"{d}_meanr"] = float(np.mean(ranks))
        out[f"{d}_map"] = float(100.0 * np.mean(ap))
    out["rsum"] = float(sum(out[k] for k in RECALL_KEYS))
    out["mr"] = out["rsum"] / len(RECALL_KEYS)
    return {k: out[k] for k in METRIC_KEYS}


def _work_dtype(dtype: np.dtype) -> np.dtype:
    # float16 arithmetic is slow in numpy; widening it is exact, so comparisons do not change.
    if dtype == np.float16:
        return np.dtype(np.float32)
    return dtype


def _validate(scores: np.ndarray, caption_to_clip: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(scores, np.ndarray):
        scores = np.asarray(scores)
    if scores.ndim != 2:
        raise ValueError(f"scores must be 2-D [n_captions, n_clips], got shape {scores.shape}")
    if scores.dtype.kind not in "fiu":
        raise ValueError(f"scores must be real numbers (float or int), got dtype {scores.dtype}")
    n_cap, n_clips = scores.shape
    if n_cap == 0 or n_clips == 0:
        raise ValueError(f"scores must have at least one caption and one clip, got shape {scores.shape}")
    c2c = np.asarray(caption_to_clip)
    if c2c.shape != (n_cap,):
        raise ValueError(f"caption_to_clip must have shape ({n_cap},) to match scores {scores.shape}, "
                         f"got {c2c.shape}")
    if c2c.dtype.kind not in "iu":
        raise ValueError(f"caption_to_clip must hold integers, got dtype {c2c.dtype}")
    bad = np.flatnonzero((c2c < 0) | (c2c >= n_clips))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"caption_to_clip[{i}] = {int(c2c[i])} is outside [0, {n_clips}) "
                         f"({bad.size} captions out of range)")
    return scores, c2c.astype(np.int64, copy=False)


def _raise_non_finite(block: np.ndarray, rows: np.ndarray) -> None:
    bad = np.argwhere(~np.isfinite(block))
    i, j = (int(x) for x in bad[0])
    raise ValueError(f"scores[{int(rows[i])}, {j}] is {block[i, j]!r}: NaN and infinite scores are not "
                     f"allowed ({bad.shape[0]} non-finite values in rows {int(rows.min())}..{int(rows.max())} "
                     "of one chunk)")
