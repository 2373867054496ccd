"""Evaluation's memory: embedding blocks written in place, the score matrix filled in place, no whole-split copies.

Every test compares the new in-place result with what the old code built (a list of blocks, then a
concatenation), bit for bit: the memory work must never change a number.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dvtr_bench.engine.evaluate import _all_finite, encode_captions, encode_clips, evaluate
from dvtr_bench.models.base import EmbeddingBuffer, RetrievalMethod, concat_embeddings, slice_embedding


def _blocks(sizes: list[int], seed: int = 0, dtype: torch.dtype = torch.float32) -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for b in sizes:
        out.append({"video": torch.randn(b, 8, generator=g).to(dtype),
                    "frames": torch.randn(b, 12, 8, generator=g).to(dtype),
                    "mask": torch.rand(b, 12, generator=g) > 0.3,
                    "count": torch.randint(0, 100, (b,), generator=g)})
    return out


def _assert_identical(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, k
        assert torch.equal(a[k], b[k]), k


@pytest.mark.parametrize("sizes", [[4, 4, 3], [4], [1, 1, 1], [5, 2, 5, 1]])
def test_buffer_equals_concat_with_several_keys_and_a_ragged_last_block(sizes):
    parts = _blocks(sizes)
    buf = EmbeddingBuffer(sum(sizes))
    for p in parts:
        buf.write(p)
    _assert_identical(buf.result(), concat_embeddings(parts))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_buffer_float_dtype_converts_like_tensor_float(dtype):
    # encode_clips under autocast: blocks come in half precision and are stored as float32, exactly as
    # `v.float()` then concatenation did; integer and bool tensors keep their dtype.
    parts = _blocks([3, 3, 2], seed=1, dtype=dtype)
    for p in parts:
        p["mask"], p["count"] = p["mask"].bool(), p["count"].long()
    buf = EmbeddingBuffer(8, float_dtype=torch.float32)
    for p in parts:
        buf.write(p)
    ref = concat_embeddings([{k: v.float() if v.is_floating_point() else v for k, v in p.items()} for p in parts])
    out = buf.result()
    _assert_identical(out, ref)
    assert out["video"].dtype == torch.float32 and out["mask"].dtype == torch.bool
    assert out["count"].dtype == torch.int64


def test_buffer_refuses_what_concatenation_would_not_give():
    parts = _blocks([2, 2])
    buf = EmbeddingBuffer(3)
    buf.write(parts[0])
    with pytest.raises(ValueError, match="more than the 3 rows"):
        buf.write(parts[1])
    with pytest.raises(ValueError, match="2 of its 3 rows"):
        buf.result()
    buf = EmbeddingBuffer(4)
    buf.write(parts[0])
    with pytest.raises(ValueError, match="keys"):
        buf.write({k: v for k, v in parts[1].items() if k != "mask"})
    with pytest.raises(ValueError, match="'video' has shape"):
        buf.write({**parts[1], "video": torch.zeros(2, 9)})
    with pytest.raises(ValueError, match="'mask' has shape"):
        buf.write({**parts[1], "mask": torch.zeros(1, 12, dtype=torch.bool)})  # a batch size unlike video's
    assert buf.filled == 2  # a refused block writes nothing
    # torch.cat would promote float16 + float32; a copy into the first block's dtype could round
    with pytest.raises(ValueError, match="float64"):
        buf.write({**parts[1], "video": parts[1]["video"].double()})
    with pytest.raises(ValueError, match="at least one row"):
        EmbeddingBuffer(0)


class _Source:
    """A FrameSource stand-in: fixed random frames, served in the batches asked for."""

    def __init__(self, n: int, t: int = 4, s: int = 32):
        g = torch.Generator().manual_seed(3)
        self.frames = torch.randn(n, t, 3, s, s, generator=g)
        self.mask = torch.ones(n, t, dtype=torch.bool)
        self.mask[::3, -1] = False

    def batches(self, batches):
        for b in batches:
            idx = torch.as_tensor(list(b), dtype=torch.long)
            yield idx, self.frames[idx], self.mask[idx]


@pytest.fixture(scope="module")
def xpool():
    from dvtr_bench.models import create_method

    torch.manual_seed(0)
    return create_method("xpool", backbone="dvtr-tiny", pretrained=None, image_size=32).eval()


@pytest.mark.parametrize("autocast", [False, torch.bfloat16])
def test_encode_clips_in_place_equals_the_concatenated_blocks(xpool, autocast):
    # X-Pool's video embedding has several keys (pooled and per-frame); 11 clips in batches of 4: ragged.
    src = _Source(11)
    order = [2, 5, 0, 1, 9, 10, 3, 4, 6, 8, 7]
    got = encode_clips(xpool, src, order, torch.device("cpu"), 4, autocast=autocast)
    parts = []
    with torch.no_grad():
        for s in range(0, len(order), 4):
            idx = torch.as_tensor(order[s:s + 4])
            with torch.autocast("cpu", dtype=autocast or torch.float32, enabled=bool(autocast)):
                emb = xpool.encode_video(src.frames[idx], src.mask[idx])
            parts.append({k: v.float() if v.is_floating_point() else v for k, v in emb.items()})
    assert len(parts[0]) >= 2
    _assert_identical(got, concat_embeddings(parts))
    # a range is sliced lazily (no list of every index), with the same result
    _assert_identical(encode_clips(xpool, src, range(11), torch.device("cpu"), 4, autocast=autocast),
                      encode_clips(xpool, src, list(range(11)), torch.device("cpu"), 4, autocast=autocast))
    with pytest.raises(ValueError, match="no clips"):
        encode_clips(xpool, src, range(0), torch.device("cpu"), 4)


def test_encode_captions_in_place_equals_the_concatenated_blocks(xpool):
    tokens = xpool.tokenize([f"a drone over field {i}" for i in range(10)])
    got = encode_captions(xpool, tokens, torch.device("cpu"), 3)
    with torch.no_grad():
        ref = concat_embeddings([xpool.encode_text(tokens[s:s + 3]) for s in range(0, 10, 3)])
    _assert_identical(got, ref)
    with pytest.raises(ValueError, match="no captions"):
        encode_captions(xpool, tokens[:0], torch.device("cpu"), 3)


class _Blocky(RetrievalMethod):
    """Scores are a fixed function of the pair (plus, when transductive, of the block's caption count)."""

    name = "blocky"

    def __init__(self, transductive: bool = False, eval_text_block: int | None = None):
        super().__init__(torch.nn.Identity())
        self.transductive = transductive
        self.eval_text_block = eval_text_block
        self.calls: list[tuple[int, int]] = []

    def score(self, text, video):
        return text["t"] @ video["v"].T

    def score_batch(self, text, video):
        self.calls.append((text["t"].shape[0], video["v"].shape[0]))
        s = self.score(text, video)
        return s + text["t"].shape[0] if self.transductive else s.to(torch.float64)


def _old_score_all(m: RetrievalMethod, text, video, block: int) -> torch.Tensor:
    n_t, n_v = text["t"].shape[0], video["v"].shape[0]
    t_block = m.eval_text_block if m.transductive and m.eval_text_block else block
    rows = []
    for i in range(0, n_t, t_block):
        t = slice_embedding(text, i, i + t_block)
        rows.append(torch.cat([m.score_batch(t, slice_embedding(video, j, j + block)).float().cpu()
                               for j in range(0, n_v, block)], dim=1))
    return torch.cat(rows, dim=0)


@pytest.mark.parametrize("transductive,block", [(False, 4), (False, 100), (True, 4), (True, 3)])
def test_score_all_fills_one_matrix_equal_to_the_concatenated_blocks(transductive, block):
    g = torch.Generator().manual_seed(5)
    text, video = {"t": torch.randn(10, 6, generator=g)}, {"v": torch.randn(13, 6, generator=g)}
    m = _Blocky(transductive, eval_text_block=3 if transductive else None)
    got = m.score_all(text, video, block=block)
    calls = list(m.calls)
    m.calls.clear()
    ref = _old_score_all(m, text, video, block)
    assert got.dtype == torch.float32 and got.shape == (10, 13)
    assert torch.equal(got, ref)
    assert calls == m.calls  # the same blocks, in the same order (a transductive method's blocks are fixed)
    if transductive:
        assert sorted({c[0] for c in calls}) == [1, 3]  # 10 captions in blocks of exactly 3, the last shorter


def test_score_all_refuses_a_block_of_the_wrong_shape():
    m = _Blocky()
    m.score_batch = lambda t, v: torch.zeros(1, v["v"].shape[0])  # type: ignore[method-assign]
    with pytest.raises(ValueError, match="returned shape"):
        m.score_all({"t": torch.zeros(4, 2)}, {"v": torch.zeros(5, 2)}, block=2)


def test_all_finite_checks_every_row_block():
    x = np.zeros((7, 5), dtype=np.float32)
    assert _all_finite(x, elements=5) and _all_finite(x)
    for i, j, bad in ((6, 4, np.inf), (0, 0, np.nan), (3, 2, -np.inf)):
        y = x.copy()
        y[i, j] = bad
        assert not _all_finite(y, elements=5) and not _all_finite(y, elements=10**6)
        assert not _all_finite(y, elements=1)


def test_evaluate_keeps_scores_and_results_of_the_concatenating_code(learnable_splits):
    # The whole runner, ragged everywhere, against the old recipe assembled from the same parts.
    from dvtr_bench.engine.data import Captions, FrameSource
    from dvtr_bench.models import create_method
    from dvtr_bench.protocol.metrics import compute_metrics

    torch.manual_seed(0)
    m = create_method("meanP", backbone="dvtr-tiny", pretrained=None).eval()
    split = learnable_splits["test"]
    res = evaluate(m, split, batch_size=3, text_batch_size=5, score_block=3)
    caps = Captions.from_split(split)
    src = FrameSource(split, m.frame_spec, cache="stream")
    tokens = m.tokenize(caps.texts)
    with torch.no_grad():
        text = concat_embeddings([m.encode_text(tokens[s:s + 5]) for s in range(0, len(caps.texts), 5)])
        video = concat_embeddings([{k: v.float() for k, v in m.encode_video(f, mask).items()}
                                   for _, f, mask in src.batches([range(s, min(len(split), s + 3))
                                                                  for s in range(0, len(split), 3)])])
    rows = []
    for i in range(0, len(caps.texts), 3):
        t = slice_embedding(text, i, i + 3)
        rows.append(torch.cat([m.score_batch(t, slice_embedding(video, j, j + 3)).float()
                               for j in range(0, len(split), 3)], dim=1))
    ref = torch.cat(rows, dim=0).numpy()
    assert res.scores is not None and res.scores.tobytes() == ref.tobytes()
    assert res.metrics == compute_metrics(ref, caps.caption_to_clip)
    assert res.clip_ids == caps.clip_ids and res.caption_texts == caps.texts
