"""AMFMN against the authors' code: MVSA, the visual-guided text attention, the pairwise cosine and ``calcul_loss``
re-implemented literally from xiaoyuan1996/AMFMN@c09bcfba90e8283f98317af3c0e35005c3587925 and run on identical
weights; the paper's dynamic margin; the multi-scale maps taken from the ViT tower; masking."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from dvtr_bench.errors import ConfigError
from dvtr_bench.models import create_method
from dvtr_bench.models.methods.amfmn import MVSA, VisualGuidedText, dynamic_margin, hinge_loss, stage_blocks
from dvtr_bench.protocol import v1

SIZE = 64
CAPTIONS = ["two white boats are moored beside a wooden pier", "a red car turns left at the crossroads",
            "a river bends past green fields", "rows of solar panels on a roof"]


def _tiny(**kw):
    torch.manual_seed(0)
    return create_method("amfmn", backbone="dvtr-tiny", pretrained=None, image_size=SIZE, **kw)


# ---- the authors' code, copied literally (AMFMN/layers/AMFMN_Modules.py, AMFMN/layers/AMFMN.py, AMFMN/utils.py) --
# Only changes: `F.sigmoid` -> `torch.sigmoid` (the same function, deprecated name) and the `.cuda()` of
# calcul_loss's mask, which follows the scores' device here.

class RefVSA_Module(nn.Module):
    def __init__(self, opt={}):  # noqa: B006 (the release's signature)
        super(RefVSA_Module, self).__init__()

        # extract value
        channel_size = opt['multiscale']['multiscale_input_channel']
        out_channels = opt['multiscale']['multiscale_output_channel']
        embed_dim = opt['embed']['embed_dim']

        # sub sample
        self.LF_conv = nn.Conv2d(in_channels=192, out_channels=channel_size, kernel_size=3, stride=4)
        self.HF_conv = nn.Conv2d(in_channels=768, out_channels=channel_size, kernel_size=1, stride=1)

        # visual attention
        self.conv1x1_1 = nn.Conv2d(in_channels=channel_size*2, out_channels=out_channels, kernel_size=1)
        self.conv1x1_2 = nn.Conv2d(in_channels=channel_size*2, out_channels=out_channels, kernel_size=1)

        # solo attention
        self.solo_attention = nn.Linear(in_features=256, out_features=embed_dim)

    def forward(self, lower_feature, higher_feature, solo_feature):

        # b x channel_size x 16 x 16
        lower_feature = self.LF_conv(lower_feature)
        higher_feature = self.HF_conv(higher_feature)

        # concat
        concat_feature = torch.cat([lower_feature, higher_feature], dim=1)

        # residual
        concat_feature = higher_feature.mean(dim=1,keepdim=True).expand_as(concat_feature) + concat_feature

        # attention
        main_feature = self.conv1x1_1(concat_feature)
        attn_feature = torch.sigmoid(self.conv1x1_2(concat_feature).view(concat_feature.shape[0],1,-1)).view(concat_feature.shape[0], 1, main_feature.shape[2], main_feature.shape[3])
        atted_feature = (main_feature*attn_feature).squeeze(dim=1).view(attn_feature.shape[0], -1)

        # solo attention
        solo_att = torch.sigmoid(self.solo_attention(atted_feature))
        solo_feature = solo_feature*solo_att

        return solo_feature


def ref_cosine_similarity(x1, x2, dim=-1, eps=1e-8):
    """Returns cosine similarity between x1 and x2, computed along dim."""
    w12 = torch.sum(x1 * x2, dim)
    w1 = torch.norm(x1, 2, dim)
    w2 = torch.norm(x2, 2, dim)
    return (w12 / (w1 * w2).clamp(min=eps)).squeeze()


class RefCrossAttention(nn.Module):

    def __init__(self, opt={}):  # noqa: B006 (the release's signature)
        super(RefCrossAttention, self).__init__()

        self.att_type = opt['cross_attention']['att_type']
        dim = opt['embed']['embed_dim']

        if self.att_type == "soft_att":
            self.cross_attention = nn.Sequential(
                nn.Linear(dim, dim),
                nn.Sigmoid()
            )
        elif self.att_type == "similarity_att":
            self.fc_visual = nn.Sequential(
                nn.Linear(dim, dim),
            )
            self.fc_text = nn.Sequential(
                nn.Linear(dim, dim),
            )
        else:
            raise Exception

    def forward(self, visual, text):
        batch_v = visual.shape[0]
        batch_t = text.shape[0]

        if self.att_type == "soft_att":
            visual_gate = self.cross_attention(visual)

            # mm
            visual_gate = visual_gate.unsqueeze(dim=1).expand(-1, batch_t, -1)
            text = text.unsqueeze(dim=0).expand(batch_v, -1, -1)

            return visual_gate*text

        elif self.att_type == "similarity_att":
            visual = self.fc_visual(visual)
            text = self.fc_text(text)

            visual = visual.unsqueeze(dim=1).expand(-1, batch_t, -1)
            text = text.unsqueeze(dim=0).expand(batch_v, -1, -1)

            sims = visual*text
            return torch.sigmoid(sims) * text


def ref_dual_sim(cross_attention_s, mvsa_feature, text_feature):
    """The tail of BaseModel.forward (AMFMN/layers/AMFMN.py): VGMF, then the pairwise cosine [image, text]."""
    Ft = cross_attention_s(mvsa_feature, text_feature)
    mvsa_feature = mvsa_feature.unsqueeze(dim=1).expand(-1, Ft.shape[1], -1)
    dual_sim = ref_cosine_similarity(mvsa_feature, Ft)
    return dual_sim


def ref_calcul_loss(scores, size, margin, loss_type="mse", max_violation=False, text_sim_matrix=None,
                    param="0.8 | 5"):
    diagonal = scores.diag().view(size, 1)

    d1 = diagonal.expand_as(scores)
    d2 = diagonal.t().expand_as(scores)

    # compare every diagonal score to scores in its column
    # caption retrieval
    cost_s = (margin + scores - d1).clamp(min=0)
    # compare every diagonal score to scores in its row
    # image retrieval
    cost_im = (margin + scores - d2).clamp(min=0)

    mask = torch.eye(scores.size(0)) > .5
    I = mask.to(scores.device)
    cost_s = cost_s.masked_fill_(I, 0)
    cost_im = cost_im.masked_fill_(I, 0)

    if max_violation:
        cost_s = cost_s.max(1)[0]
        cost_im = cost_im.max(0)[0]

    return cost_s.sum() + cost_im.sum()


OPT = {"multiscale": {"multiscale_input_channel": 3, "multiscale_output_channel": 1}, "embed": {"embed_dim": 512}}


# ---- the numeric checks ------------------------------------------------------------------------------------------

def test_mvsa_matches_the_release_on_identical_weights():
    torch.manual_seed(0)
    ref = RefVSA_Module(OPT)
    ours = MVSA(192, 768, 256, 512, channel_size=3, low_stride=4, low_padding=0)
    ours.load_state_dict(ref.state_dict())  # same submodule names and shapes
    lower, higher, solo = torch.randn(3, 192, 64, 64), torch.randn(3, 768, 16, 16), torch.randn(3, 512)
    with torch.no_grad():
        torch.testing.assert_close(ours(lower, higher, solo), ref(lower, higher, solo), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("att_type", ["soft_att", "similarity_att"])
def test_visual_guided_text_and_score_match_the_release(att_type):
    torch.manual_seed(1)
    ref = RefCrossAttention({"cross_attention": {"att_type": att_type}, "embed": {"embed_dim": 128}})
    for p in ref.parameters():  # not the identity start of ours: any weights must give the release's numbers
        nn.init.normal_(p, std=0.1)
    vga = VisualGuidedText(128, att_type)
    vga.load_state_dict(ref.state_dict())
    visual, text = torch.randn(3, 128), torch.randn(5, 128)
    with torch.no_grad():
        torch.testing.assert_close(vga(visual, text), ref(visual, text), rtol=1e-5, atol=1e-6)
        m = _tiny(att_type=att_type).eval()
        m.cross_attention_s.load_state_dict(ref.state_dict())
        ours = m.score({"text": text}, {"video": visual})  # [text, video]
        torch.testing.assert_close(ours, ref_dual_sim(ref, visual, text).t(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("max_violation", [False, True])
def test_hinge_loss_is_calcul_loss(max_violation):
    torch.manual_seed(2)
    scores = torch.rand(6, 6) * 2 - 1
    want = ref_calcul_loss(scores.clone(), 6, 0.2, max_violation=max_violation)
    torch.testing.assert_close(hinge_loss(scores, 0.2, max_violation), want)
    # a per-pair margin matrix goes through the same arithmetic (L_ct is L with alpha replaced, Eq. 29)
    margins = torch.rand(6, 6) * 0.6
    want = ref_calcul_loss(scores.clone(), 6, margins, max_violation=max_violation)
    torch.testing.assert_close(hinge_loss(scores, margins, max_violation), want)


def test_dynamic_margin_is_the_papers_equation():
    s = torch.tensor([0.0, 0.25, 0.5, 1.0])
    gamma, beta = 0.6, 5.0
    want = [gamma * (math.exp(beta) - math.exp(beta * x)) / (math.exp(beta) - 1) for x in s.tolist()]
    torch.testing.assert_close(dynamic_margin(s, gamma, beta), torch.tensor(want))
    assert dynamic_margin(s, gamma, beta)[0] == pytest.approx(gamma) and dynamic_margin(s, gamma, beta)[-1] == 0


def test_the_loss_takes_each_negative_pairs_margin_from_the_prior():
    m = _tiny().train()
    assert m.config["margin_type"] == "dynamic" and m.config["gamma"] == 0.6 and m.config["beta"] == 5.0
    # 7 captions of 4 clips; the batch holds captions 5, 0, 3 (clips 3, 0, 1)
    caption_to_clip = torch.tensor([0, 0, 1, 1, 2, 3, 3])
    prior = torch.rand(7, 4, generator=torch.Generator().manual_seed(3))
    m.set_prior(prior, caption_to_clip)
    rows = torch.tensor([5, 0, 3])
    text = {**m.encode_text(m.tokenize(CAPTIONS[:3])), "row": rows}
    video = m.encode_video(torch.randn(3, 2, 3, SIZE, SIZE), torch.ones(3, 2, dtype=torch.bool))
    out = m.loss(text, video)
    assert set(out) == {"loss", "triplet"}
    # by hand: negative pair (video i, caption j) uses S(caption rows[j], clip of video i)
    clips = [3, 0, 1]
    margins = torch.tensor([[float(dynamic_margin(prior[rows[j], clips[i]], 0.6, 5.0)) for j in range(3)]
                            for i in range(3)])
    scores_vt = m.score(text, video).t()
    torch.testing.assert_close(out["loss"], ref_calcul_loss(scores_vt.clone(), 3, margins), rtol=1e-5, atol=1e-6)
    fixed = _tiny(margin_type="fixed").train()
    fixed.load_state_dict(m.state_dict())
    torch.testing.assert_close(fixed.loss(text, video)["loss"], ref_calcul_loss(scores_vt.clone(), 3, 0.2),
                               rtol=1e-5, atol=1e-6)


def test_the_dynamic_margin_without_its_prior_is_an_error():
    m = _tiny().train()
    text = {**m.encode_text(m.tokenize(CAPTIONS[:2])), "row": torch.arange(2)}
    video = m.encode_video(torch.randn(2, 2, 3, SIZE, SIZE), torch.ones(2, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match="prepare_text"):
        m.loss(text, video)
    m.set_prior(torch.rand(2, 2), torch.arange(2))
    with pytest.raises(ValueError, match="corpus row"):
        m.loss({"text": text["text"]}, video)


def test_the_prior_is_not_in_the_state_dict():
    m = _tiny()
    m.set_prior(torch.rand(3, 2), torch.tensor([0, 0, 1]))
    assert not any("prior" in k for k in m.state_dict())


# ---- the port: multi-scale maps, pooling, masking ----------------------------------------------------------------

def test_stage_blocks_spread_over_the_tower():
    assert stage_blocks(12) == [2, 5, 8, 11]  # ViT-B-32: blocks 3, 6, 9, 12
    assert stage_blocks(2) == [0, 0, 1, 1]
    assert stage_blocks(24) == [5, 11, 17, 23]


def test_frame_vectors_read_the_normalised_patch_maps_of_the_stage_blocks():
    m = _tiny().eval()
    visual = m.backbone.model.visual
    frames = torch.randn(2, 3, SIZE, SIZE)
    seen: list[torch.Tensor] = []
    hooks = [blk.register_forward_hook(lambda _m, _i, o: seen.append(o)) for blk in visual.transformer.resblocks]
    with torch.no_grad():
        clip = m.backbone.encode_frames(frames)
    for h in hooks:
        h.remove()
    g = visual.grid_size[0]

    def grid(x):  # block output [N, 1 + g*g, W] -> final LayerNorm, drop the class token, [N, W, g, g]
        x = visual.ln_post(x)[:, 1:]
        return x.reshape(x.shape[0], g, g, -1).permute(0, 3, 1, 2)

    f = [grid(seen[b]) for b in stage_blocks(len(seen))]
    with torch.no_grad():
        want = m.mvsa(torch.cat(f[:2], 1), torch.cat(f[2:], 1), clip)
        torch.testing.assert_close(m.frame_vectors(frames), want, rtol=1e-5, atol=1e-6)


def test_a_clip_is_the_mean_of_its_real_frames():
    m = _tiny().eval()
    frames = torch.randn(2, v1.NUM_FRAMES, 3, SIZE, SIZE)
    mask = torch.ones(2, v1.NUM_FRAMES, dtype=torch.bool)
    mask[1, 4:] = False
    with torch.no_grad():
        got = m.encode_video(frames, mask)["video"]
        fv = F.normalize(m.frame_vectors(frames[1, :4]), dim=-1).mean(0)
    torch.testing.assert_close(got[1], fv, rtol=1e-5, atol=1e-6)


def test_padding_tokens_cannot_change_a_score():
    m = _tiny().eval()
    tokens = m.tokenize(CAPTIONS[:2])
    junk = tokens.clone()
    end = (tokens == 49407).float().argmax(1)
    for i, e in enumerate(end.tolist()):
        junk[i, e + 1:] = torch.randint(1, 49000, (tokens.shape[1] - e - 1,))
    video = m.encode_video(torch.randn(3, 2, 3, SIZE, SIZE), torch.ones(3, 2, dtype=torch.bool))
    with torch.no_grad():
        torch.testing.assert_close(m.score(m.encode_text(junk), video), m.score(m.encode_text(tokens), video),
                                   rtol=0, atol=1e-6)


def test_bad_options_are_config_errors():
    with pytest.raises(ConfigError, match="att_type"):
        _tiny(att_type="fusion")
    with pytest.raises(ConfigError, match="margin_type"):
        _tiny(margin_type="adaptive")
    with pytest.raises(ConfigError, match="gamma"):
        _tiny(gamma=1.5)


def test_tokenize_corpus_adds_the_rows():
    from dvtr_bench.text import CaptionCorpus

    m = _tiny()
    corpus = CaptionCorpus(tuple(CAPTIONS), np.array([0, 0, 1, 2]), ("a", "b", "c"))
    inputs = m.tokenize_corpus(corpus)
    assert inputs["row"].tolist() == [0, 1, 2, 3]
    torch.testing.assert_close(inputs["tokens"], m.tokenize(CAPTIONS))
    # eval-time inputs are plain tokens; the embedding carries the row only when given one
    assert "row" not in m.encode_text(m.tokenize(CAPTIONS)) and "row" in m.encode_text(inputs)


def test_prepare_text_takes_the_prior_from_the_text_layer():
    from dvtr_bench.text import CaptionCorpus
    from dvtr_bench.text.similarity import prior_similarity

    corpus = CaptionCorpus(tuple(CAPTIONS), np.array([0, 0, 1, 2]), ("a", "b", "c"))
    m = _tiny()
    m.prepare_text(corpus)
    torch.testing.assert_close(m._prior, torch.as_tensor(prior_similarity(corpus)))
    assert m._prior.shape == (4, 3) and m._caption_clip.tolist() == [0, 0, 1, 2]
    fixed = _tiny(margin_type="fixed")
    fixed.prepare_text(corpus)  # the release's margin needs no prior
    assert fixed._prior is None


@pytest.mark.slow
def test_the_trainer_trains_amfmn_with_its_prior(learnable_splits, tmp_path):
    from dvtr_bench.engine.trainer import TrainConfig, seed_everything, train

    seed_everything(0)
    m = create_method("amfmn", backbone="dvtr-tiny", pretrained=None, image_size=SIZE)
    cfg = TrainConfig.from_dict({"lr": 1e-3, "backbone_lr": 1e-3, "epochs": 1, "batch_size": 8, "num_workers": 0,
                                 "eval_batch_size": 8})
    result = train(m, learnable_splits["train"], learnable_splits["validation"], tmp_path / "run", config=cfg,
                   seed=0)
    n_captions = sum(len(c) for c in learnable_splits["train"]["captions"])
    assert m._prior is not None and m._prior.shape == (n_captions, len(learnable_splits["train"]))
    assert np.isfinite(result.history[0]["loss"]) and result.history[0]["loss"] > 0
    assert np.isfinite(result.best_val["rsum"])
