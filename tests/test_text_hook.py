"""The caption-corpus hook of the method interface: what the trainer hands a method that learns from caption text,
and that dict-shaped text inputs travel through training, evaluation and the cost probe unchanged."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dvtr_bench.engine.data import Captions
from dvtr_bench.engine.evaluate import evaluate
from dvtr_bench.engine.trainer import TrainConfig, seed_everything, train
from dvtr_bench.models import create_method
from dvtr_bench.models.base import select_text, text_len, text_to
from dvtr_bench.models.cost import cost_breakdown
from dvtr_bench.text import CaptionCorpus

pytestmark = pytest.mark.slow

FAST = {"lr": 1e-3, "backbone_lr": 1e-3, "warmup": 0.1, "num_workers": 0, "eval_batch_size": 8}


def _corpus_spy(method):
    """Wrap a built method's hooks: record the corpus, return dict inputs carrying each caption's corpus row."""
    seen: dict = {"rows": []}
    plain_tokenize, plain_encode, plain_loss = method.tokenize, method.encode_text, method.loss

    def prepare_text(corpus):
        seen["corpus"] = corpus
        # a buffer made from the corpus must reach the device and the state dict like any other
        method.register_buffer("n_corpus", torch.tensor(len(corpus)))

    def tokenize(captions):
        return {"tokens": plain_tokenize(captions), "row": torch.full((len(captions),), -1)}

    def tokenize_corpus(corpus):
        return {"tokens": plain_tokenize(list(corpus.texts)), "row": torch.arange(len(corpus))}

    def encode_text(inputs):
        emb = plain_encode(inputs["tokens"])
        return {**emb, "row": inputs["row"]}

    def loss(text, video):
        seen["rows"].append(text["row"].tolist())
        return plain_loss({k: v for k, v in text.items() if k != "row"}, video)

    method.prepare_text, method.tokenize, method.tokenize_corpus = prepare_text, tokenize, tokenize_corpus
    method.encode_text, method.loss = encode_text, loss
    return seen


def test_the_trainer_hands_the_training_captions_and_their_rows(learnable_splits, tmp_path):
    seed_everything(0)
    method = create_method("meanP", backbone="dvtr-tiny", pretrained=None)
    seen = _corpus_spy(method)
    cfg = TrainConfig.from_dict({**FAST, "epochs": 1, "batch_size": 8})
    train(method, learnable_splits["train"], learnable_splits["validation"], tmp_path / "run", config=cfg, seed=0)

    corpus: CaptionCorpus = seen["corpus"]
    caps = Captions.from_split(learnable_splits["train"])
    assert list(corpus.texts) == caps.texts and np.array_equal(corpus.caption_to_clip, caps.caption_to_clip)
    assert list(corpus.clip_ids) == caps.clip_ids
    assert corpus.fingerprint == learnable_splits["train"]._fingerprint
    assert int(method.n_corpus) == len(corpus) and "n_corpus" in method.state_dict()
    # every training batch carried the corpus rows of its captions; each row at most once per epoch
    rows = [r for batch in seen["rows"] for r in batch]
    assert rows and all(0 <= r < len(corpus) for r in rows)
    assert len(rows) == len(set(rows))
    # a clip appears at most once per batch (distinct clips): the rows say which clip each caption came from
    for batch in seen["rows"]:
        clips = corpus.caption_to_clip[batch]
        assert len(set(clips.tolist())) == len(batch)
    # validation captions are not corpus rows
    val = evaluate(method, learnable_splits["validation"], batch_size=8)
    assert np.isfinite(val.metrics["rsum"])


def test_dict_inputs_slice_move_and_count():
    inputs = {"tokens": torch.arange(12).view(4, 3), "row": torch.arange(4)}
    part = select_text(inputs, torch.tensor([3, 1]))
    assert part["row"].tolist() == [3, 1] and part["tokens"][0].tolist() == [9, 10, 11]
    assert text_len(inputs) == 4 and text_len(inputs["tokens"]) == 4
    assert text_to(part, "cpu")["row"].device.type == "cpu"
    assert select_text(inputs["tokens"], slice(1, 3)).shape == (2, 3)


def test_cost_probe_accepts_dict_inputs():
    method = create_method("meanP", backbone="dvtr-tiny", pretrained=None)
    _corpus_spy(method)
    cost = cost_breakdown(method)
    assert cost["text"] > 0 and cost["video"] > 0


def test_corpus_rows_of_a_clip():
    corpus = CaptionCorpus(("a", "b", "c"), np.array([0, 1, 0]), ("x", "y"))
    assert corpus.captions_of(0) == [0, 2] and corpus.n_clips == 2 and len(corpus) == 3
    with pytest.raises(ValueError):
        CaptionCorpus(("a",), np.array([0, 1]), ("x",))
