"""AMFMN (Yuan et al., TGRS 2021/22), ported from the authors' code (xiaoyuan1996/AMFMN, ``AMFMN/layers``) to CLIP.

Per frame (the release works on one image; here every real frame of a clip):

1. Multi-scale maps from the ViT image tower: the patch tokens after blocks ceil(m L / 4), m = 1..4 (L blocks; 3, 6,
   9, 12 for ViT-B-32), through the tower's final LayerNorm (open_clip ``forward_intermediates(
   normalize_intermediates=True)``), as grids. They stand in for ResNet-18's four stages: low = Cat(f1, f2),
   high = Cat(f3, f4). The global vector v_g is the CLIP frame embedding.
2. MVSA (the release's ``VSA_Module``): l = conv3x3(low), h = conv1x1(high) to ``multiscale_channels`` channels
   each; c = Cat(l, h) + mean_channels(h); a = conv1x1(c) * sigmoid(conv1x1(c)) (one channel); mask =
   sigmoid(Linear(flatten(a))); F_v = v_g * mask.

Images -> video: F_v(clip) = mean over the clip's real frames of F_v(frame) / |F_v(frame)| (padded frames never go
through the tower). Text: t = the CLIP sentence (EOT) embedding. Visual-guided text (the release's
``CrossAttention``), for every (clip, caption) pair:

* ``soft_att`` (release default): t_vg = sigmoid(W F_v + b) * t;
* ``similarity_att``: t_vg = sigmoid(f_v(F_v) * f_t(t)) * f_t(t), f_v, f_t linear.

s(t, clip) = cos(F_v, t_vg), so the score is pairwise (not a dot product of independent embeddings). Loss: the
release's ``calcul_loss`` (VSE++ sum of hinges over the batch, both directions, on raw cosines), with

* ``margin_type="dynamic"`` (the paper's L_ct, Eq. 29-30): the margin of a negative pair (clip i, caption j) is
  alpha = gamma (e^beta - e^(beta S)) / (e^beta - 1), S = S(T_j, T_{I_i}) the prior similarity of caption j to
  clip i's training captions (``dvtr_bench.text.similarity.prior_similarity``, received through ``prepare_text``
  and looked up by the corpus rows ``tokenize_corpus`` adds);
* ``margin_type="fixed"`` (the release): alpha = ``margin``.

docs/methods.md lists what was ported and every difference from the authors' code.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch
from open_clip.transformer import VisionTransformer
from torch import nn

from dvtr_bench.errors import ConfigError
from dvtr_bench.models.backbone import frame_mask_mean, l2n
from dvtr_bench.models.base import Embedding, TextInputs
from dvtr_bench.models.common import FrameMethod, chunked_over_text
from dvtr_bench.models.registry import register

if TYPE_CHECKING:
    from dvtr_bench.text import CaptionCorpus

ATT_TYPES = ("soft_att", "similarity_att")
MARGIN_TYPES = ("dynamic", "fixed")


class MVSA(nn.Module):
    """The release's ``VSA_Module`` with the geometry as arguments (the release hard-codes 192/768 channels, a 64x64
    low map taken to 16x16 by a stride-4 conv, and 256 cells); submodule names are the release's."""

    def __init__(self, low_channels: int, high_channels: int, cells: int, embed_dim: int, channel_size: int = 3,
                 low_stride: int = 1, low_padding: int = 1):
        super().__init__()
        self.LF_conv = nn.Conv2d(low_channels, channel_size, kernel_size=3, stride=low_stride, padding=low_padding)
        self.HF_conv = nn.Conv2d(high_channels, channel_size, kernel_size=1, stride=1)
        # the release's out_channels is 1 (multiscale_output_channel); its reshapes only work with 1
        self.conv1x1_1 = nn.Conv2d(channel_size * 2, 1, kernel_size=1)
        self.conv1x1_2 = nn.Conv2d(channel_size * 2, 1, kernel_size=1)
        self.solo_attention = nn.Linear(cells, embed_dim)

    def forward(self, lower: torch.Tensor, higher: torch.Tensor, solo: torch.Tensor) -> torch.Tensor:
        """lower ``[N, Cl, H', W']``, higher ``[N, Ch, H, W]``, global ``[N, D]`` -> masked global ``[N, D]``."""
        lower = self.LF_conv(lower)
        higher = self.HF_conv(higher)
        concat = torch.cat([lower, higher], dim=1)
        concat = higher.mean(dim=1, keepdim=True).expand_as(concat) + concat
        main = self.conv1x1_1(concat)
        attn = torch.sigmoid(self.conv1x1_2(concat))
        atted = (main * attn).flatten(1)
        return solo * torch.sigmoid(self.solo_attention(atted))


class VisualGuidedText(nn.Module):
    """The release's ``CrossAttention`` (``soft_att`` / ``similarity_att``); submodule names are the release's."""

    def __init__(self, dim: int, att_type: str = "soft_att"):
        super().__init__()
        self.att_type = att_type
        if att_type == "soft_att":
            self.cross_attention = nn.Sequential(nn.Linear(dim, dim), nn.Sigmoid())
        elif att_type == "similarity_att":
            self.fc_visual = nn.Sequential(nn.Linear(dim, dim))
            self.fc_text = nn.Sequential(nn.Linear(dim, dim))
            # The release starts these from PyTorch's random init, which scrambles a pretrained CLIP text embedding
            # (t_vg = sigmoid(.) * f_t(t)); from the identity, training starts from CLIP's own alignment.
            for lin in (self.fc_visual[0], self.fc_text[0]):
                nn.init.eye_(lin.weight)
                nn.init.zeros_(lin.bias)
        else:
            raise ValueError(f"att_type must be one of {ATT_TYPES}, got {att_type!r}")

    def forward(self, visual: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """visual ``[Nv, D]``, text ``[Nt, D]`` -> visual-guided texts ``[Nv, Nt, D]``."""
        nv, nt = visual.shape[0], text.shape[0]
        if self.att_type == "soft_att":
            gate = self.cross_attention(visual)
            return gate.unsqueeze(1).expand(-1, nt, -1) * text.unsqueeze(0).expand(nv, -1, -1)
        v = self.fc_visual(visual).unsqueeze(1).expand(-1, nt, -1)
        t = self.fc_text(text).unsqueeze(0).expand(nv, -1, -1)
        return torch.sigmoid(v * t) * t


def cosine_similarity(x1: torch.Tensor, x2: torch.Tensor, dim: int = -1, eps: float = 1e-8) -> torch.Tensor:
    """The release's cosine (norms multiplied, then clamped), without its trailing ``squeeze``."""
    w12 = torch.sum(x1 * x2, dim)
    return w12 / (torch.norm(x1, 2, dim) * torch.norm(x2, 2, dim)).clamp(min=eps)


def dynamic_margin(prior: torch.Tensor, gamma: float, beta: float) -> torch.Tensor:
    """The paper's Eq. 30: gamma at prior 0, falling (convex for beta > 0) to 0 at prior 1."""
    return gamma * (math.exp(beta) - torch.exp(beta * prior)) / (math.exp(beta) - 1.0)


def hinge_loss(scores: torch.Tensor, margin: float | torch.Tensor, max_violation: bool = False) -> torch.Tensor:
    """The release's ``utils.calcul_loss`` on ``scores[image i, text j]`` (pair i positive); ``margin`` is a number
    or a ``[n, n]`` tensor of per-pair margins (the dynamic margin), used in both directions."""
    n = scores.shape[0]
    diagonal = scores.diag().view(n, 1)
    d1 = diagonal.expand_as(scores)
    d2 = diagonal.t().expand_as(scores)
    cost_s = (margin + scores - d1).clamp(min=0)   # image i against the other texts of its row
    cost_im = (margin + scores - d2).clamp(min=0)  # text j against the other images of its column
    eye = torch.eye(n, dtype=torch.bool, device=scores.device)
    cost_s = cost_s.masked_fill(eye, 0)
    cost_im = cost_im.masked_fill(eye, 0)
    if max_violation:
        cost_s = cost_s.max(1)[0]
        cost_im = cost_im.max(0)[0]
    return cost_s.sum() + cost_im.sum()


def stage_blocks(n_blocks: int) -> list[int]:
    """0-based indices of the blocks standing for ResNet's four stages: ceil(m L / 4) - 1 for m = 1..4."""
    return [max(1, math.ceil(m * n_blocks / 4)) - 1 for m in (1, 2, 3, 4)]


@register
class AMFMN(FrameMethod):
    name = "amfmn"

    def __init__(self, backbone, att_type: str = "soft_att", multiscale_channels: int = 3,
                 margin_type: str = "dynamic", margin: float = 0.2, gamma: float = 0.6, beta: float = 5.0,
                 max_violation: bool = False, pair_budget: int = 65536, **options: Any):
        if options:
            raise TypeError(f"unknown amfmn options {sorted(options)}")
        if att_type not in ATT_TYPES:
            raise ConfigError(f"amfmn att_type must be one of {', '.join(ATT_TYPES)} (got {att_type!r})")
        if margin_type not in MARGIN_TYPES:
            raise ConfigError(f"amfmn margin_type must be one of {', '.join(MARGIN_TYPES)} (got {margin_type!r})")
        if not 0.0 < gamma < 1.0 or beta <= 0:
            raise ConfigError(f"amfmn's dynamic margin needs 0 < gamma < 1 and beta > 0 (got {gamma}, {beta})")
        super().__init__(backbone)
        visual = backbone.model.visual
        if not isinstance(visual, VisionTransformer):
            raise ConfigError(f"amfmn's multi-scale attention reads the patch-token maps of intermediate blocks of a "
                              f"ViT image tower; backbone {backbone.model_name} has a {type(visual).__name__}: use a "
                              "ViT open_clip model (ViT-B-32, ViT-B-16, dvtr-tiny)")
        width = int(visual.transformer.width)
        gh, gw = (int(g) for g in visual.grid_size)
        self.blocks = stage_blocks(len(visual.transformer.resblocks))
        self.mvsa = MVSA(2 * width, 2 * width, gh * gw, self.embed_dim, channel_size=multiscale_channels)
        self.cross_attention_s = VisualGuidedText(self.embed_dim, att_type)
        self.margin_type = margin_type
        self.margin = float(margin)
        self.gamma, self.beta = float(gamma), float(beta)
        self.max_violation = bool(max_violation)
        self.pair_budget = pair_budget
        # Training-only caption prior (prepare_text): [n_captions, n_clips] on the CPU, not in the state dict, since
        # a checkpoint evaluates without it.
        self._prior: torch.Tensor | None = None
        self._caption_clip: torch.Tensor | None = None
        self.config = {"att_type": att_type, "multiscale_channels": multiscale_channels,
                       "margin_type": margin_type, "margin": self.margin, "gamma": self.gamma, "beta": self.beta,
                       "max_violation": self.max_violation, "stage_blocks": [b + 1 for b in self.blocks]}

    # ---- the caption-corpus hook ------------------------------------------------------------------------------
    def prepare_text(self, corpus: "CaptionCorpus") -> None:
        """The dynamic margin's prior S(T, T_I) of every training caption against every training clip."""
        if self.margin_type != "dynamic":
            return
        from dvtr_bench.text.similarity import prior_similarity

        self.set_prior(torch.as_tensor(prior_similarity(corpus), dtype=torch.float32),
                       torch.as_tensor(corpus.caption_to_clip, dtype=torch.long))

    def set_prior(self, prior: torch.Tensor, caption_to_clip: torch.Tensor) -> None:
        """Use ``prior[k, c]`` = S(caption k, captions of clip c) for the dynamic margin; caption ``k`` belongs to
        clip ``caption_to_clip[k]``."""
        if prior.ndim != 2 or prior.shape[0] != caption_to_clip.shape[0]:
            raise ValueError(f"prior {tuple(prior.shape)} does not fit {caption_to_clip.shape[0]} captions")
        self._prior = prior.detach().float().cpu()
        self._caption_clip = caption_to_clip.detach().long().cpu()

    def tokenize_corpus(self, corpus: "CaptionCorpus") -> TextInputs:
        """Tokens plus each caption's corpus row, so the loss can look up its prior."""
        return {"tokens": self.tokenize(list(corpus.texts)), "row": torch.arange(len(corpus))}

    # ---- encoders -------------------------------------------------------------------------------------------
    def encode_text(self, tokens: TextInputs) -> Embedding:
        ids = tokens["tokens"] if isinstance(tokens, dict) else tokens
        sentence, _ = self.backbone.encode_text(ids)
        out = {"text": sentence.float()}
        if isinstance(tokens, dict) and "row" in tokens:
            out["row"] = tokens["row"]
        return out

    def frame_vectors(self, frames: torch.Tensor) -> torch.Tensor:
        """``[N, 3, S, S]`` frames -> F_v ``[N, D]``: the CLIP frame embedding masked by MVSA."""
        visual = self.backbone.model.visual
        unique = sorted(set(self.blocks))
        out = visual.forward_intermediates(frames, indices=unique, normalize_intermediates=True)
        maps = dict(zip(unique, out["image_intermediates"]))
        f1, f2, f3, f4 = (maps[b].float() for b in self.blocks)
        return self.mvsa(torch.cat([f1, f2], dim=1), torch.cat([f3, f4], dim=1), out["image_features"].float())

    def encode_video(self, frames: torch.Tensor, frame_mask: torch.Tensor) -> Embedding:
        if frames.ndim != 5:
            raise ValueError(f"frames must be [B, T, 3, H, W], got {tuple(frames.shape)}")
        mask = frame_mask.to(device=frames.device, dtype=torch.bool)
        # only real frames go through the tower, so a padded slot cannot reach any output
        fv = self.frame_vectors(frames[mask]).float()  # fp32 pooling under autocast too
        per_frame = fv.new_zeros((*mask.shape, fv.shape[-1]))
        per_frame[mask] = l2n(fv)
        return {"video": frame_mask_mean(per_frame, mask)}

    # ---- scoring --------------------------------------------------------------------------------------------
    def _pairs(self, text: Embedding, video: Embedding) -> torch.Tensor:
        v = video["video"]
        t_vg = self.cross_attention_s(v, text["text"])  # [Nv, Nt, D]
        sims = cosine_similarity(v.unsqueeze(1).expand_as(t_vg), t_vg)  # [Nv, Nt]
        return sims.t()

    def score(self, text: Embedding, video: Embedding) -> torch.Tensor:
        return chunked_over_text(self._pairs, text, video, self.pair_budget)

    def video_vector(self, video: Embedding) -> torch.Tensor:
        """F_v normalised; with the CLIP sentence embedding it shortlists, and ``score`` re-ranks."""
        return l2n(video["video"].float())

    # ---- training -------------------------------------------------------------------------------------------
    def pair_margins(self, rows: torch.Tensor) -> torch.Tensor:
        """``[n, n]`` margins, [video i, text j] = alpha(S(caption rows[j], clip of caption rows[i]))."""
        if self._prior is None or self._caption_clip is None:
            raise ValueError("amfmn's dynamic margin needs the caption prior: the trainer calls prepare_text(corpus) "
                             "with the training captions; or use margin_type='fixed'")
        r = rows.detach().cpu().long()
        clips = self._caption_clip[r]
        s = self._prior[r][:, clips].t()  # [video i, text j]
        return dynamic_margin(s, self.gamma, self.beta)

    def loss(self, text: Embedding, video: Embedding) -> dict[str, torch.Tensor]:
        scores = self._pairs(text, video).t()  # [video, text], the release's layout
        if self.margin_type == "dynamic":
            if "row" not in text:
                raise ValueError("amfmn's dynamic margin needs each caption's corpus row (tokenize_corpus adds it)")
            margin: float | torch.Tensor = self.pair_margins(text["row"]).to(scores.device, scores.dtype)
        else:
            margin = self.margin
        loss = hinge_loss(scores, margin, self.max_violation)
        return {"loss": loss, "triplet": loss.detach()}
