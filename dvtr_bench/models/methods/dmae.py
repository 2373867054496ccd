"""DMAE with TPM-CL (Jiang et al., ACM MM 2023), ported from the authors' release to CLIP word and frame tokens.

Source: alipay/Ant-Multi-Modal-Framework@e7b7dc7, ``prj/dmae_vtp`` (``roi_univl/univl/model/dmae_utils.py``,
``tpmcl_utils.py``, ``univl_video_ret.py``, ``video_text/ret_dataset.py``). docs/methods.md ("dmae") has the
equations and every difference from the release.

Inputs: CLIP word tokens ``w_t`` (text transformer outputs after ``ln_final`` and the projection, normalised), the
CLIP sentence embedding ``c`` (the end-token output, normalised), frame embeddings ``f_v`` (normalised; the release's
default ``meanP`` header, i.e. no temporal module), and per-token weights ``a_t``: 2 for content words (spaCy POS
NOUN/ADJ/VERB and not a stop word), 1 for other real tokens (start and end included), 0 for padding -- the
release's "twm" mask, mapped onto CLIP BPE tokens through their characters (:func:`content_word_weights`).

Score of a pair (pair-only), ``s_tv = <w_t, f_v>`` over real tokens and frames:

* textual clue: ``t2v = sum_t a_t m_t / sum_t a_t`` (interaction ``ti``) with ``m_t = max_v s_tv``;
* visual clue (neighbour-frame compensation): ``m_t += 0.5 * c(v*) * s_{t, n(v*)}``, where ``v*`` is word t's best
  frame, ``n(v*)`` the other frame of the clip most similar to it and ``c(v*) = max(0, <f_v*, f_n(v*)>)``;
* ``v2t = mean_v max_t s_tv``; a level's score is ``(t2v + v2t) / 2``; ``att_ti`` averages the sentence level
  (the sentence embedding as a one-token text) and the word level. ``wti`` / ``att_wti`` weight tokens and frames
  with learned softmax weights (``Linear(D, 1)``) instead of plain means.

Loss: ``(NegNCE(S) + NegNCE(S^T)) / 2`` at logit scale 100 (c_pos 1.0, c_neg 0.5, margin 0) plus the TPM-CL triplet
partial margins (``partial_type`` 4 = m1 + m2 + m3, each ``MarginRankingLoss(delta)`` over the matched pairs).
"""

from __future__ import annotations

import difflib
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from dvtr_bench.models.backbone import l2n
from dvtr_bench.models.base import Embedding, TextInputs
from dvtr_bench.models.common import FrameMethod, chunked_over_text
from dvtr_bench.models.registry import register
from dvtr_bench.protocol import v1

CONTENT_POS = frozenset({"NOUN", "ADJ", "VERB"})  # ret_dataset.AddDmaeCaptionMixin._get_text_spacy IMPORTANTS
INTERACTIONS = ("ti", "wti", "att_ti", "att_wti")
NFC_FACTOR = 0.5  # dmae_utils._get_wti_similarity: "t2v_logits + att_max_sim * 0.5", hard-coded


# ---------------------------------------------------------------------------------- textual clue: POS -> BPE

def _bpe_strings(tokenizer: Any, ids: Sequence[int]) -> list[str]:
    """The text of each CLIP BPE id (the ``</w>`` word-end marker removed)."""
    out = []
    for i in ids:
        s = tokenizer.decoder[int(i)].replace("</w>", "")
        out.append(bytearray(tokenizer.byte_decoder[c] for c in s).decode("utf-8", errors="replace"))
    return out


def content_word_weights(tokens: torch.Tensor, words: Sequence[Sequence[str]], content: Sequence[Sequence[bool]],
                         tokenizer: Any) -> torch.Tensor:
    """Per-token weights ``[B, L]`` for CLIP token rows: 2 on BPE pieces of content words, 1 on other real tokens
    (start/end included), 0 on padding.

    ``words[b]`` are caption b's parser tokens and ``content[b]`` says which are content words. Both tokenisations
    cover the same characters, so each BPE piece takes the flag of the parser token that holds its first character,
    aligned on the whitespace-free lowercase character streams (``difflib`` absorbs what CLIP's text cleaning
    changed). A piece whose characters match no parser token counts as an ordinary token.
    """
    if not hasattr(tokenizer, "decoder") or not hasattr(tokenizer, "byte_decoder"):
        from dvtr_bench.errors import ConfigError
        raise ConfigError("dmae's textual clue maps part-of-speech tags onto CLIP BPE tokens and needs open_clip's "
                          f"SimpleTokenizer; this backbone's tokenizer is {type(tokenizer).__name__}. Set "
                          "textual_clue=false to run without it.")
    special = {int(tokenizer.sot_token_id), int(tokenizer.eot_token_id), 0}
    out = (tokens != 0).to(torch.float32)
    for b in range(tokens.shape[0]):
        pos_ids = [j for j in range(tokens.shape[1]) if int(tokens[b, j]) not in special]
        if not pos_ids:
            continue
        pieces = _bpe_strings(tokenizer, [int(tokens[b, j]) for j in pos_ids])
        # character streams without whitespace, and for each parser character the index of its word
        word_chars, owner = [], []
        for k, w in enumerate(words[b]):
            w = "".join(w.lower().split())
            word_chars.append(w)
            owner.extend([k] * len(w))
        a = "".join(word_chars)
        piece_start, bpe_text = [], []
        for p in pieces:
            piece_start.append(sum(len(x) for x in bpe_text))
            bpe_text.append(p.lower())
        bstream = "".join(bpe_text)
        char_map: dict[int, int] = {}
        for blk in difflib.SequenceMatcher(None, bstream, a, autojunk=False).get_matching_blocks():
            for d in range(blk.size):
                char_map[blk.a + d] = blk.b + d
        for j, start, p in zip(pos_ids, piece_start, bpe_text):
            hit = next((char_map[start + d] for d in range(len(p)) if start + d in char_map), None)
            if hit is not None and content[b][owner[hit]]:
                out[b, j] = 2.0
    return out


def is_content_word(pos: str, token: str, stop_words: frozenset[str] | set[str]) -> bool:
    """The release's rule: POS in {NOUN, ADJ, VERB} and not a stop word (spaCy's ``is_stop``: the lowercase form
    in the language's stop-word list)."""
    return pos in CONTENT_POS and token.lower() not in stop_words


def english_stop_words() -> frozenset[str]:
    """spaCy's English stop-word list, which its ``Token.is_stop`` reads."""
    from spacy.lang.en.stop_words import STOP_WORDS

    return frozenset(STOP_WORDS)


# ---------------------------------------------------------------------------------- TPM-CL modules

class MaskedLayerNorm(nn.Module):
    """``nn.LayerNorm([n, d])`` (statistics over a whole ``[n, d]`` sequence, elementwise affine) whose statistics
    use only the real rows; with every row real it is exactly the release's ``LayerNorm([num_tokens, 2 * D])``."""

    def __init__(self, n: int, d: int, eps: float = 1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n, d))
        self.bias = nn.Parameter(torch.zeros(n, d))
        self.eps = eps

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = mask.to(x.dtype)[..., None]
        count = (m.sum(dim=(1, 2), keepdim=True) * x.shape[-1]).clamp(min=1.0)
        mean = (x * m).sum(dim=(1, 2), keepdim=True) / count
        var = (((x - mean) * m) ** 2).sum(dim=(1, 2), keepdim=True) / count
        return ((x - mean) / torch.sqrt(var + self.eps) * self.weight + self.bias) * m


class CrossWeightPredictor(nn.Module):
    """``tpmcl_utils.LinearXWeightPredictor``: resample the query along its sequence to the key length
    (``Linear(n_q -> n_k)``), concatenate with the keys, LayerNorm -> Linear(2D, D/2) -> GELU -> Linear(D/2, 1) ->
    sigmoid, normalised to sum 1 over the real keys. Padded queries and keys are zeroed and take no weight."""

    def __init__(self, n_query: int, n_key: int, d: int):
        super().__init__()
        self.n_query, self.n_key = n_query, n_key
        self.qk_proj = nn.Linear(n_query, n_key, bias=False)
        self.norm = MaskedLayerNorm(n_key, 2 * d)
        self.fc1 = nn.Linear(2 * d, d // 2, bias=False)
        self.fc2 = nn.Linear(d // 2, 1, bias=False)

    def forward(self, q: torch.Tensor, q_mask: torch.Tensor, k: torch.Tensor, k_mask: torch.Tensor) -> torch.Tensor:
        """q ``[C, n_q, D]``, k ``[C, n_k, D]`` (shorter sequences are zero-padded) -> weights ``[C, n_k]``."""
        q, q_mask = _pad_to(q, q_mask, self.n_query)
        k, k_mask = _pad_to(k, k_mask, self.n_key)
        q = q * q_mask[..., None].to(q.dtype)
        k = k * k_mask[..., None].to(k.dtype)
        q = self.qk_proj(q.transpose(-2, -1)).transpose(-1, -2)
        w = torch.sigmoid(self.fc2(F.gelu(self.fc1(self.norm(torch.cat([q, k], dim=-1), k_mask))))).squeeze(-1)
        w = w * k_mask.to(w.dtype)
        return w / w.sum(dim=1, keepdim=True).clamp(min=1e-12)


def _pad_to(x: torch.Tensor, mask: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    t = x.shape[1]
    if t > n:
        raise ValueError(f"sequence of {t} tokens, the weight predictor was built for {n}")
    if t == n:
        return x, mask
    return (torch.cat([x, x.new_zeros(x.shape[0], n - t, x.shape[2])], dim=1),
            torch.cat([mask, mask.new_zeros(mask.shape[0], n - t)], dim=1))


def importance_mask(weights: torch.Tensor, thresh: float) -> torch.Tensor:
    """``tpmcl_utils.TokenImportanceSelector``: True for tokens to keep. The most important tokens, whose cumulative
    weight (sorted in descending order) stays below ``thresh``, are dropped."""
    sorted_w, idx = weights.sort(dim=1, descending=True)
    drop_sorted = sorted_w.cumsum(dim=1) < thresh
    drop = torch.zeros_like(drop_sorted).scatter(1, idx, drop_sorted)
    return ~drop


def neg_nce(sim: torch.Tensor, logit_scale: float = 100.0, c_pos: float = 1.0, c_neg: float = 0.5,
            margin: float = 0.0) -> torch.Tensor:
    """``dmae_utils.NegNCE`` on a ``[B, B]`` similarity matrix (rows are the anchors, pair i is the positive)."""
    p = F.softmax(sim * logit_scale, dim=-1).clamp(1e-6, 1 - 1e-6)
    eye = torch.eye(sim.shape[0], dtype=torch.bool, device=sim.device)
    d = torch.diagonal(sim)
    hard = (F.relu(margin + sim - d.view(-1, 1)) + F.relu(margin + sim - d.view(1, -1))).masked_fill(eye, 0) > 0
    loss = -c_pos * torch.log(torch.diagonal(p)).mean()
    if bool(hard.any()):
        loss = loss - c_neg * torch.log(1 - p[hard]).mean()
    return loss


# ---------------------------------------------------------------------------------- the method

@register
class DMAE(FrameMethod):
    name = "dmae"

    def __init__(self, backbone, interaction: str = "att_ti", visual_clue: bool = True, textual_clue: bool = True,
                 partial_type: int = 4, margin: float = 0.6, importance_thresh: float = 0.6,
                 neg_weight: float = 0.5, logit_scale: float = 100.0, max_frames: int = v1.NUM_FRAMES,
                 pair_budget: int = 8192, **options):
        if options:
            raise TypeError(f"unknown dmae options {sorted(options)}")
        from dvtr_bench.errors import ConfigError

        if interaction not in INTERACTIONS:
            raise ConfigError(f"dmae interaction {interaction!r} is not known (known: {', '.join(INTERACTIONS)})")
        if partial_type not in (-1, 2, 3, 4):
            raise ConfigError(f"dmae partial_type must be -1 (off), 2, 3 or 4 (got {partial_type})")
        if not backbone.has_text_tokens:
            raise ConfigError(f"dmae compares word tokens with frames; backbone {backbone.model_name} exposes no "
                              "token outputs: use an open_clip CLIP model")
        super().__init__(backbone, max_frames=max_frames)
        d = self.embed_dim
        self.interaction = interaction
        if "wti" in interaction:
            self.text_weight_fc = nn.Linear(d, 1)
            self.video_weight_fc = nn.Linear(d, 1)
        if partial_type > 0:
            # t2v: the sentence (one token) weighs the frames; v2t: the frames weigh the words
            self.t2v_xwp = CrossWeightPredictor(1, max_frames, d)
            self.v2t_xwp = CrossWeightPredictor(max_frames, backbone.context_length, d)
        # no re-initialisation: the release's retrieval head builds these modules with PyTorch's defaults
        self.visual_clue, self.textual_clue = bool(visual_clue), bool(textual_clue)
        self.partial_type, self.margin, self.thresh = int(partial_type), float(margin), float(importance_thresh)
        self.neg_weight, self.scale = float(neg_weight), float(logit_scale)
        self.pair_budget = pair_budget
        self._stop_words: frozenset[str] | None = None
        self.config = {"interaction": interaction, "visual_clue": self.visual_clue,
                       "textual_clue": self.textual_clue, "partial_type": self.partial_type, "margin": self.margin,
                       "importance_thresh": self.thresh, "neg_weight": self.neg_weight, "logit_scale": self.scale,
                       "max_frames": max_frames, "sim_header": "meanP"}
        if self.textual_clue:
            from dvtr_bench.text.parse import pipeline_info

            # the tagger that made the content-word weights is part of what ran; a missing one fails here, early
            self.config["pos_tagger"] = pipeline_info()

    # ---- text inputs ----------------------------------------------------------------------------------------
    def tokenize(self, captions: list[str]) -> TextInputs:
        """``{"tokens": [B, 32], "word_weight": [B, 32]}``; the weights come from a spaCy parse of the captions
        when the textual clue is on (cached by :func:`dvtr_bench.text.parse.parse_captions`)."""
        tokens = self.backbone.tokenize(captions)
        if not self.textual_clue:
            return {"tokens": tokens, "word_weight": (tokens != 0).to(torch.float32)}
        from dvtr_bench.text.parse import parse_captions

        parsed = parse_captions(list(captions))
        return {"tokens": tokens, "word_weight": self.weights_from_parses(tokens, parsed)}

    def weights_from_parses(self, tokens: torch.Tensor, parsed: Sequence[Any]) -> torch.Tensor:
        """Content-word weights of CLIP token rows from parsed captions (``tokens`` and ``pos`` of each)."""
        if self._stop_words is None:
            self._stop_words = english_stop_words()
        stops = self._stop_words
        content = [[is_content_word(p, t, stops) for t, p in zip(pc.tokens, pc.pos)] for pc in parsed]
        return content_word_weights(tokens, [pc.tokens for pc in parsed], content, self.backbone._tokenizer)

    def encode_text(self, inputs: TextInputs) -> Embedding:
        tokens = inputs["tokens"] if isinstance(inputs, dict) else inputs
        weight = inputs["word_weight"] if isinstance(inputs, dict) else (tokens != 0).to(torch.float32)
        sentence, words = self.backbone.encode_text(tokens)
        mask = self.backbone.token_mask(tokens)
        words = l2n(words.float()) * mask[..., None].to(torch.float32)
        return {"text": l2n(sentence.float()), "words": words, "word_weight": weight.float() * mask}

    def encode_video_features(self, x: torch.Tensor, mask: torch.Tensor) -> Embedding:
        return {"frames": l2n(x) * mask[..., None].to(x.dtype), "frame_mask": mask}

    # ---- the dual-modal attention interaction -----------------------------------------------------------------
    def _level(self, feats: torch.Tensor, weight: torch.Tensor, video: Embedding, text_fc: bool) -> torch.Tensor:
        """One ``_get_wti_similarity`` level: texts ``feats [A, L, D]`` with weights ``[A, L]`` (0 = padding)
        against every video -> ``[A, B]``."""
        f, fm = video["frames"], video["frame_mask"]
        tm = weight > 0
        s = torch.einsum("atd,bvd->abtv", feats, f)
        neg = torch.finfo(s.dtype).min
        s_v = s.masked_fill(~fm[None, :, None, :], neg)
        t2v, best = s_v.max(dim=-1)  # [A, B, L]
        if self.visual_clue:
            ff = torch.einsum("bvd,bwd->bvw", f, f)
            eye = torch.eye(ff.shape[1], dtype=torch.bool, device=ff.device)
            ff = ff.masked_fill(eye[None] | ~fm[:, None, :], neg)
            c, nb = ff.max(dim=-1)  # [B, V]
            # the release's zero-filled diagonal and padding make 0 the floor of the neighbour weight
            c = c.clamp(min=0.0)
            b_idx = torch.arange(f.shape[0], device=f.device)[None, :, None].expand_as(best)
            n_idx = nb[b_idx, best]
            t2v = t2v + NFC_FACTOR * c[b_idx, best] * torch.gather(s, -1, n_idx[..., None]).squeeze(-1)
        t2v = t2v.masked_fill(~tm[:, None, :], 0.0)
        v2t = s.masked_fill(~tm[:, None, :, None], neg).max(dim=-2).values  # [A, B, V]
        v2t = v2t.masked_fill(~fm[None], 0.0)
        fmf = fm.to(s.dtype)
        if "wti" in self.interaction:
            tw = self._softmax_weights(self.text_weight_fc, feats, tm) if text_fc else tm.to(s.dtype)
            vw = self._softmax_weights(self.video_weight_fc, f, fm)
            t_score = torch.einsum("abt,at->ab", t2v, weight * tw)
            v_score = torch.einsum("abv,bv->ab", v2t, fmf * vw)
        else:
            t_score = torch.einsum("abt,at->ab", t2v, weight) / weight.sum(-1, keepdim=True).clamp(min=1e-12)
            v_score = torch.einsum("abv,bv->ab", v2t, fmf) / fmf.sum(-1)[None].clamp(min=1.0)
        return (t_score + v_score) / 2.0

    @staticmethod
    def _softmax_weights(fc: nn.Module, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        w = fc(x).squeeze(-1).masked_fill(~mask, float("-inf"))
        return torch.nan_to_num(torch.softmax(w, dim=-1), nan=0.0)

    def _pairs(self, text: Embedding, video: Embedding) -> torch.Tensor:
        sent = text["text"][:, None, :]
        sent_w = torch.ones_like(text["word_weight"][:, :1])  # the release's word_mask[:, 0]: the start token's 1
        sim = self._level(sent, sent_w, video, text_fc=False)
        if self.interaction.startswith("att_"):
            sim = (sim + self._level(text["words"], text["word_weight"], video, text_fc=True)) / 2.0
        return sim

    def score(self, text: Embedding, video: Embedding) -> torch.Tensor:
        return chunked_over_text(self._pairs, text, video, self.pair_budget)

    # ---- TPM-CL -----------------------------------------------------------------------------------------------
    def _row_sim(self, t: torch.Tensor, f: torch.Tensor, fm: torch.Tensor) -> torch.Tensor:
        """``wti_interaction_row`` for one-token texts: text ``t [C, D]`` against its own video ``f [C, V, D]``
        (no neighbour-frame term there)."""
        s = torch.einsum("cd,cvd->cv", t, f)
        best = s.masked_fill(~fm, torch.finfo(s.dtype).min).max(dim=-1).values
        fmf = fm.to(s.dtype)
        if "wti" in self.interaction:
            v2t = (s * self._softmax_weights(self.video_weight_fc, f, fm)).sum(-1)
        else:
            v2t = (s * fmf).sum(-1) / fmf.sum(-1).clamp(min=1.0)
        return (best + v2t) / 2.0

    def partial_margins(self, text: Embedding, video: Embedding) -> dict[str, torch.Tensor]:
        """The TPM-CL margin terms of the matched pairs (text i, video i): ``{"m1", "m2", "m3"}`` as enabled."""
        c, words, wmask = text["text"], text["words"], text["word_weight"] > 0
        f, fm = video["frames"], video["frame_mask"]
        w_t = self.v2t_xwp(f, fm, words, wmask)[:, : words.shape[1]]  # word weights, given the video
        w_v = self.t2v_xwp(c[:, None, :], torch.ones_like(fm[:, :1]), f, fm)[:, : f.shape[1]]  # frame weights
        t_g = l2n(torch.einsum("cld,cl->cd", words, w_t))
        keep_t = importance_mask(w_t, self.thresh)
        t_g_part = torch.einsum("cld,cl->cd", words * keep_t[..., None].to(words.dtype), w_t)
        f_part = f * importance_mask(w_v, self.thresh)[..., None].to(f.dtype)
        out: dict[str, torch.Tensor] = {}
        pos_g = self._row_sim(t_g, f, fm)
        if self.partial_type in (2, 4):
            out["m1"] = F.relu(self.margin - (self._row_sim(c, f, fm) - self._row_sim(c, f_part, fm))).mean()
            out["m2"] = F.relu(self.margin - (pos_g - self._row_sim(t_g, f_part, fm))).mean()
        if self.partial_type in (3, 4):
            out["m3"] = F.relu(self.margin - (pos_g - self._row_sim(t_g_part, f, fm))).mean()
        return out

    def loss(self, text: Embedding, video: Embedding) -> dict[str, torch.Tensor]:
        sim = self._pairs(text, video)
        nce = 0.5 * (neg_nce(sim, self.scale, c_neg=self.neg_weight) + neg_nce(sim.t(), self.scale,
                                                                               c_neg=self.neg_weight))
        out: dict[str, torch.Tensor] = {"negnce": nce.detach()}
        total = nce
        if self.partial_type > 0:
            for k, v in self.partial_margins(text, video).items():
                total = total + v
                out[k] = v.detach()
        out["loss"] = total
        return out
