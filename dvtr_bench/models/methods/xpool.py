"""X-Pool (Gorti et al. 2022): text-conditioned attention pooling of the frame embeddings.

x_t = LN1(c_t), X_v = LN1(C_v); one-head attention with q = W_q x_t, K = W_k X_v, V = W_v X_v,
alpha = softmax over the real frames of K q / sqrt(d); r = LN2(W_o alpha^T V); psi = LN3(r + Dropout(W_l r)).
s(t, v) = cos(c_t, psi(C_v | t)); loss = symmetric InfoNCE on exp(lambda) * s. Projections start at the identity
with zero biases, as in the X-Pool code. The pooled video is recomputed for every pair (n_text x n_video x D), so
``score`` works on chunks of at most ``pair_budget`` pairs.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from dvtr_bench.models.base import Embedding, symmetric_infonce
from dvtr_bench.models.common import FrameMethod, chunked_over_text
from dvtr_bench.models.registry import register


class TextConditionedPool(nn.Module):
    """X-Pool's pooling transformer (``num_mha_heads`` heads; 1 in the released configs)."""

    def __init__(self, d: int, heads: int = 1, dropout: float = 0.3):
        super().__init__()
        if d % heads:
            raise ValueError(f"embedding width {d} not divisible by {heads} heads")
        self.heads, self.head_dim = heads, d // heads
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (nn.Linear(d, d) for _ in range(4))
        self.linear_proj = nn.Linear(d, d)
        self.layer_norm1, self.layer_norm2, self.layer_norm3 = nn.LayerNorm(d), nn.LayerNorm(d), nn.LayerNorm(d)
        self.dropout = nn.Dropout(dropout)
        for lin in (self.q_proj, self.k_proj, self.v_proj, self.out_proj, self.linear_proj):
            nn.init.eye_(lin.weight)
            nn.init.zeros_(lin.bias)

    def forward(self, text: torch.Tensor, frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """text ``[Nt, D]``, frames ``[Nv, T, D]``, mask ``[Nv, T]`` -> pooled ``[Nv, Nt, D]``."""
        nt, (nv, nf, d) = text.shape[0], frames.shape
        h, hd = self.heads, self.head_dim
        x_t = self.layer_norm1(text)
        x_v = self.layer_norm1(frames)
        q = self.q_proj(x_t).reshape(nt, h, hd)
        k = self.k_proj(x_v).reshape(nv, nf, h, hd)
        v = self.v_proj(x_v).reshape(nv, nf, h, hd)
        logits = torch.einsum("vfhd,thd->vhft", k, q) / math.sqrt(hd)
        logits = logits.masked_fill(~mask[:, None, :, None], float("-inf"))
        # a clip without real frames would give NaN; its (masked) zero features are as good as anything
        weights = torch.nan_to_num(F.softmax(logits, dim=2), nan=0.0)
        attn = torch.einsum("vhft,vfhd->vthd", weights, v).reshape(nv, nt, d)
        r = self.layer_norm2(self.out_proj(attn))
        return self.layer_norm3(r + self.dropout(self.linear_proj(r)))


@register
class XPool(FrameMethod):
    name = "xpool"

    def __init__(self, backbone, heads: int = 1, dropout: float = 0.3, pair_budget: int = 65536, **options):
        if options:
            raise TypeError(f"xpool options: heads, dropout, pair_budget; got {sorted(options)}")
        super().__init__(backbone)
        self.pool_frames = TextConditionedPool(self.embed_dim, heads=heads, dropout=dropout)
        self.pair_budget = pair_budget
        self.config = {"heads": heads, "dropout": dropout}

    def encode_video_features(self, feats: torch.Tensor, mask: torch.Tensor) -> Embedding:
        return {"frames": feats, "frame_mask": mask}

    def _pairs(self, text: Embedding, video: Embedding) -> torch.Tensor:
        pooled = self.pool_frames(text["text"], video["frames"], video["frame_mask"])  # [Nv, Nt, D]
        return torch.einsum("td,vtd->tv", F.normalize(text["text"], dim=-1), F.normalize(pooled, dim=-1))

    def score(self, text: Embedding, video: Embedding) -> torch.Tensor:
        return chunked_over_text(self._pairs, text, video, self.pair_budget)

    def loss(self, text: Embedding, video: Embedding) -> dict[str, torch.Tensor]:
        loss = symmetric_infonce(self.logit_scale() * self._pairs(text, video))
        return {"loss": loss, "infonce": loss.detach()}
