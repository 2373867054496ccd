"""MCSAN, a reconstruction (no public code): the pieces that follow a published reference are checked against it --
the focal BCE against torchvision's ``sigmoid_focal_loss``, the KL term against ``torch.nn.KLDivLoss``, the soft
attribute labels against a literal copy of HANet's ``data/make_gt.py`` loop -- and the rest against what
docs/methods.md says: the loss terms and weights, the shared attribute projection, the vocabulary in the state
dict, masking of padded frames, phrases and tokens."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dvtr_bench.errors import ConfigError
from dvtr_bench.models import create_method
from dvtr_bench.models.methods.mcsan import (LEVELS, caption_attributes, caption_phrases, focal_bce, frame_tokens,
                                             soft_labels, symmetric_kl, top_k)
from dvtr_bench.text import CaptionCorpus

SIZE = 64
CAPTIONS = ["two white boats are moored beside a wooden pier", "a red car turns left at the crossroads",
            "a boat sails along the river past a wooden pier", "cars park beside a school",
            "a train crosses a bridge over the river", "rows of solar panels on a roof"]


def _tiny(**kw):
    torch.manual_seed(0)
    return create_method("mcsan", backbone="dvtr-tiny", pretrained=None, image_size=SIZE, **kw)


def _corpus() -> CaptionCorpus:
    return CaptionCorpus(tuple(CAPTIONS), np.array([0, 1, 0, 1, 2, 2]), ("c0", "c1", "c2"))


def _clips(n: int, t: int = 4, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, t, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(seed))


# ---- caption-derived inputs, on hand-checked sentences ----------------------------------------------------------

def test_phrases_and_attributes_of_hand_checked_captions():
    from dvtr_bench.text.parse import parse_captions

    boats, _ = parse_captions(CAPTIONS[:2])
    phrases = caption_phrases(boats)
    assert phrases["entity"] == ["two white boats", "a wooden pier"]
    assert phrases["action"] == ["moor"]
    assert phrases["relation"] == ["boat moored beside pier"]
    attrs = caption_attributes(boats)
    assert attrs["entity"] == ["boat", "pier"] and attrs["action"] == ["moor"]
    assert attrs["relation"] == ["moored beside"]
    assert {"boat", "pier", "white", "wooden", "moor"} <= set(attrs["global"])


def test_top_k_breaks_ties_alphabetically():
    from collections import Counter

    assert top_k(Counter({"pier": 2, "boat": 2, "car": 3, "road": 1}), 3) == ["car", "boat", "pier"]


def _hanet_gt_all(concepts_of_video: list[list[str]], topk: list[str]) -> dict[int, float]:
    """Roc-Ng/HANet@c4394c7 data/make_gt.py, the ``verb_gt_all`` loop for one video, copied literally."""
    labels = {}
    for j, sent in enumerate(concepts_of_video):  # noqa: B007  (as released)
        if len(sent):
            for k in sent:
                try:
                    idx = topk.index(k)
                    try:
                        labels[idx] += 1
                    except:  # noqa: E722  (as released)
                        labels[idx] = 1
                except:  # noqa: E722
                    pass
    max_num = 0
    for k in labels:
        if labels[k] > max_num:
            max_num = labels[k]
    for k in labels:
        labels[k] = round(labels[k] / max_num, 2)
    labels = dict(sorted(labels.items(), key=lambda kv: (kv[1], kv[0]), reverse=True))
    return labels


def test_soft_labels_equal_hanet_make_gt():
    topk = ["boat", "pier", "car", "river", "road", "roof", "train"]
    videos = [[["boat", "pier", "boat"], ["boat", "river"], [], ["pier", "dog"]],
              [["car"], ["car", "road"], ["car", "roof", "train"]],
              [["dog"], ["cat"]],
              [["boat"], ["pier"], ["river"]]]
    for video in videos:
        assert soft_labels(video, {w: i for i, w in enumerate(topk)}) == _hanet_gt_all(video, topk)


# ---- the loss pieces that follow a published reference --------------------------------------------------------

def test_focal_bce_is_torchvisions_sigmoid_focal_loss():
    from torchvision.ops import sigmoid_focal_loss

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 40, generator=g) * 3
    hard = (torch.rand(6, 40, generator=g) < 0.1).float()
    soft = torch.round(torch.rand(6, 40, generator=g) * 100) / 100 * hard
    for y in (hard, soft):
        for alpha, gamma in ((0.25, 2.0), (0.5, 1.0), (-1.0, 2.0)):
            torch.testing.assert_close(focal_bce(logits, y, alpha, gamma),
                                       sigmoid_focal_loss(logits, y, alpha=alpha, gamma=gamma, reduction="mean"))
    # and the formula as written in docs/methods.md, for hard labels
    p = torch.sigmoid(logits)
    by_hand = -(0.25 * hard * (1 - p) ** 2 * torch.log(p) + 0.75 * (1 - hard) * p ** 2 * torch.log(1 - p)).mean()
    torch.testing.assert_close(focal_bce(logits, hard), by_hand)


def test_symmetric_kl_is_kldivloss_both_ways():
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(5, 30, generator=g), torch.randn(5, 30, generator=g)
    kl = torch.nn.KLDivLoss(reduction="batchmean")
    want = 0.5 * (kl(torch.log_softmax(b, -1), torch.softmax(a, -1)) + kl(torch.log_softmax(a, -1), torch.softmax(b, -1)))
    torch.testing.assert_close(symmetric_kl(a, b), want)
    pa, pb = torch.softmax(a, -1), torch.softmax(b, -1)
    torch.testing.assert_close(symmetric_kl(a, b), 0.5 * ((pa * (pa / pb).log()).sum(-1)
                                                          + (pb * (pb / pa).log()).sum(-1)).mean())


# ---- the method ---------------------------------------------------------------------------------------------------

def test_patch_tokens_are_open_clips_own():
    import copy

    m = _tiny().eval()
    frames = _clips(1, t=3)[0]
    with torch.no_grad():
        cls, patches = frame_tokens(m.backbone, frames)
        torch.testing.assert_close(cls, m.backbone.encode_frames(frames))
        visual = copy.deepcopy(m.backbone.model.visual)
        visual.output_tokens = True
        pooled, tokens = visual(frames)
    torch.testing.assert_close(cls, pooled)
    torch.testing.assert_close(patches, tokens @ visual.proj)
    assert patches.shape == (3, (SIZE // 32) ** 2, m.embed_dim)


def test_vocabulary_lives_in_the_state_dict():
    m = _tiny()
    corpus = _corpus()
    m.prepare_text(corpus)
    # boat, car, pier and river are each in two captions: a tie, broken alphabetically
    assert m.vocab_words["entity"][:4] == ["boat", "car", "pier", "river"]
    assert m.vocab_words["action"] and "moored beside" in m.vocab_words["relation"]
    inputs = m.tokenize_corpus(corpus)
    # a method built from the recipe alone (no corpus) loads the checkpoint and labels captions the same way
    fresh = _tiny()
    assert (fresh.vocab_ids == -1).all()
    fresh.load_state_dict(m.state_dict())
    again = fresh.tokenize(CAPTIONS)
    own = m.tokenize(CAPTIONS)
    for key in own:
        torch.testing.assert_close(again[key], own[key])
    m.eval(), fresh.eval()
    with torch.no_grad():
        video = _clips(3)
        mask = torch.ones(3, 4, dtype=torch.bool)
        torch.testing.assert_close(fresh.score(fresh.encode_text(again), fresh.encode_video(video, mask)),
                                   m.score(m.encode_text(own), m.encode_video(video, mask)))
    # corpus rows are labelled by every caption of their clip: rows 0 and 2 share clip 0, so their labels agree
    m.train()
    labels = m.encode_text(inputs)["attr_labels"]
    torch.testing.assert_close(labels[0], labels[2])
    off = 1024  # the entity level's columns start after the global level's 1024
    boat = m.vocab_words["entity"].index("boat")
    pier = m.vocab_words["entity"].index("pier")
    # clip 0: "boat" twice and "pier" twice over its two captions -> 1.0 each; "river" once -> 0.5
    assert labels[0, off + boat] == 1.0 and labels[0, off + pier] == 1.0
    assert labels[0, off + m.vocab_words["entity"].index("river")] == 0.5
    # a caption's own labels at evaluation: "a red car turns left..." has no boat
    assert float(m.encode_text(m.tokenize([CAPTIONS[1]]))["attr_labels"][0, off + boat]) == 0.0


def test_loss_terms_weights_and_shared_projection():
    m = _tiny(kl_weight=0.7, focal_weight=0.3)
    m.prepare_text(_corpus())
    m.train()
    text = m.encode_text(m.tokenize_corpus(_corpus()))
    video = m.encode_video(_clips(6), torch.ones(6, 4, dtype=torch.bool))
    out = m.loss(text, video)
    assert set(out) == {"loss", "infonce", "kl", "fbce"}
    torch.testing.assert_close(out["loss"].detach(), out["infonce"] + 0.7 * out["kl"] + 0.3 * out["fbce"])
    # the terms as documented, recomputed from the embeddings
    kl = sum(symmetric_kl(m.attributes[lvl](text[lvl]), m.attributes[lvl](video[lvl])) for lvl in LEVELS)
    offsets = np.cumsum([0] + [m.vocab_sizes[lvl] for lvl in LEVELS])
    fbce = sum(focal_bce(m.attributes[lvl](e[lvl]), text["attr_labels"][:, offsets[i]:offsets[i + 1]])
               for i, lvl in enumerate(LEVELS) for e in (text, video))
    torch.testing.assert_close(out["kl"], kl.detach())
    torch.testing.assert_close(out["fbce"], fbce.detach())
    # one projection per level, shared by both modalities: the text-only and video-only terms both train it
    m.zero_grad()
    focal_bce(m.attributes["entity"](text["entity"]), torch.ones(6, 1024)).backward(retain_graph=True)
    g_text = m.attributes["entity"].weight.grad.clone()
    m.zero_grad()
    focal_bce(m.attributes["entity"](video["entity"]), torch.ones(6, 1024)).backward()
    assert g_text.abs().sum() > 0 and m.attributes["entity"].weight.grad.abs().sum() > 0
    # without the attribute terms the loss is the InfoNCE of the fused score alone
    plain = _tiny(kl_weight=0.0, focal_weight=0.0).train()
    out = plain.loss(plain.encode_text(plain.tokenize(CAPTIONS[:3])),
                     plain.encode_video(_clips(3), torch.ones(3, 4, dtype=torch.bool)))
    assert set(out) == {"loss", "infonce"}


def test_score_is_the_weighted_sum_of_level_cosines():
    m = _tiny(level_weights={"global": 2, "entity": 1, "action": 1, "relation": 0}).eval()
    assert m.level_weights == {"global": 0.5, "entity": 0.25, "action": 0.25, "relation": 0.0}
    with torch.no_grad():
        text = m.encode_text(m.tokenize(CAPTIONS[:3]))
        video = m.encode_video(_clips(2), torch.ones(2, 4, dtype=torch.bool))
        want = sum(w * text[lvl] @ video[lvl].T for lvl, w in m.level_weights.items())
        torch.testing.assert_close(m.score(text, video), want)


def test_padded_phrases_and_tokens_cannot_change_a_text():
    m = _tiny().eval()
    inputs = m.tokenize(CAPTIONS[:3])
    junk = {k: v.clone() for k, v in inputs.items()}
    free = ~junk["phrase_mask"]
    assert free.any()
    junk["phrase_tokens"][free] = torch.randint(1, 49000, (int(free.sum()), m.phrase_tokens))
    # the caption tokens after the end token are padding too
    tok = junk["tokens"]
    after = torch.cumsum((tok == 49407).int(), dim=1) > 0
    after &= tok != 49407
    tok[after] = 320
    with torch.no_grad():
        clean, dirty = m.encode_text(inputs), m.encode_text(junk)
    for lvl in LEVELS:
        torch.testing.assert_close(dirty[lvl], clean[lvl], rtol=0, atol=1e-6)


def test_a_caption_without_phrases_of_a_level_falls_back_to_its_sentence():
    m = _tiny().eval()
    inputs = m.tokenize(["rows of solar panels on a roof"])
    slot = m.max_phrases["entity"]
    assert not inputs["phrase_mask"][0, slot:slot + m.max_phrases["action"]].any()  # no verb
    with torch.no_grad():
        emb = m.encode_text(inputs)
        x = emb["global"]
        torch.testing.assert_close(emb["action"], torch.nn.functional.normalize(x + m.text_heads["action"](x), dim=-1))


def test_padded_frames_cannot_change_any_level():
    m = _tiny().eval()
    frames = _clips(2, t=6, seed=3)
    mask = torch.ones(2, 6, dtype=torch.bool)
    mask[0, 2:] = False
    mask[1, :1] = False  # padding first: real frames are moved to the front
    junk = frames.clone()
    junk[~mask] = float("nan")
    with torch.no_grad():
        clean = m.encode_video(frames * mask[..., None, None, None], mask)
        dirty = m.encode_video(junk, mask)
        alone = m.encode_video(frames[1:, 1:], torch.ones(1, 5, dtype=torch.bool))
    for lvl in LEVELS:
        torch.testing.assert_close(dirty[lvl], clean[lvl], rtol=0, atol=1e-6)
        torch.testing.assert_close(alone[lvl][0], clean[lvl][1], rtol=0, atol=1e-5)


def test_bad_options_are_config_errors():
    with pytest.raises(ConfigError, match="vocab_sizes"):
        _tiny(vocab_sizes={"global": 8, "entity": 8})
    with pytest.raises(ConfigError, match="level_weights"):
        _tiny(level_weights={"global": -1, "entity": 1, "action": 1, "relation": 1})
    with pytest.raises(ConfigError, match="bad options"):
        _tiny(not_an_option=1)


@pytest.mark.slow
@pytest.mark.parametrize("regime", ["uniform", "release"])
def test_trains_under_both_regimes_and_its_checkpoint_evaluates_without_the_corpus(learnable_splits, tmp_path,
                                                                                   regime):
    from dvtr_bench.engine import checkpoint as ckpt
    from dvtr_bench.engine.evaluate import evaluate
    from dvtr_bench.engine.trainer import TrainConfig, seed_everything, train
    from dvtr_bench.engine.run import resolve_recipe

    recipe = resolve_recipe("mcsan", "demo", regime=regime)
    cfg = TrainConfig.from_dict({**recipe["train"], "epochs": 1, "batch_size": 8, "num_workers": 0,
                                 "eval_batch_size": 8})
    seed_everything(0)
    m = create_method("mcsan", backbone="dvtr-tiny", pretrained=None)
    result = train(m, learnable_splits["train"], learnable_splits["validation"], tmp_path / "run", config=cfg, seed=0)
    assert result.steps > 0 and (m.vocab_ids >= 0).any()
    trained = evaluate(m, learnable_splits["test"], batch_size=8)
    # a method built from the recipe alone (what `dvtr run-baseline` does to evaluate a checkpoint) never sees
    # the training captions, yet scores the test split exactly as the trained one did
    fresh = create_method("mcsan", backbone="dvtr-tiny", pretrained=None)
    fresh.load_state_dict(ckpt.load(result.best_path)["model"])
    again = evaluate(fresh, learnable_splits["test"], batch_size=8)
    assert np.isfinite(trained.metrics["rsum"])
    assert again.metrics == trained.metrics
