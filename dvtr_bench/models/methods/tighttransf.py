"""CLIP4Clip tightTransf: a cross-encoder over [sentence token; frame tokens], scored by a linear head.

For every (text, video) pair: X = [t; f_1..f_T] + P (dropout 0.1), 4 CLIP blocks with key-padding masks,
pooled = QuickGELU(W LN(X'_0)), s = w^T pooled + b. The loss is symmetric InfoNCE on the raw s (no logit scale).
As in CLIP4Clip's code the text enters as its single EOT sentence embedding (the CLIP text tower returns only that),
and P and the blocks start from CLIP's text positional embedding and first text blocks (when widths agree).

Cost: unlike the other methods, every pair goes through the cross-encoder: scoring n_text x n_video pairs costs
n_text * n_video forward passes of a (1 + T)-token, 4-layer transformer. ``score`` processes texts in chunks so
that at most ``pair_budget`` pairs are in memory at once.
"""

from __future__ import annotations

import torch
from open_clip.transformer import QuickGELU
from torch import nn

from dvtr_bench.models.base import Embedding, symmetric_infonce
from dvtr_bench.models.common import (FrameMethod, TemporalTransformer, chunked_over_text, init_new_module,
                                      position_table, text_heads)
from dvtr_bench.models.registry import register


@register
class TightTransf(FrameMethod):
    name = "tightTransf"

    def __init__(self, backbone, cross_layers: int = 4, dropout: float = 0.1, pair_budget: int = 4096, **options):
        if options:
            raise TypeError(f"tightTransf options: cross_layers, dropout, pair_budget; got {sorted(options)}")
        super().__init__(backbone, max_frames=backbone.context_length - 1)
        d = self.embed_dim
        heads, blocks = text_heads(backbone, d)
        self.position_embeddings = position_table(backbone, backbone.context_length, d)
        self.embed_dropout = nn.Dropout(dropout)
        self.cross = TemporalTransformer(d, cross_layers, heads, init_blocks=blocks)
        self.ln_pool = nn.LayerNorm(d)
        self.pool_dense = nn.Linear(d, d)
        self.pool_act = QuickGELU()
        self.similarity_dense = nn.Linear(d, 1)
        init_new_module(nn.ModuleList([self.ln_pool, self.pool_dense, self.similarity_dense]))
        self.pair_budget = pair_budget
        self.config = {"cross_layers": cross_layers, "dropout": dropout,
                       "layers_copied_from_text": self.cross.n_copied}

    def encode_video_features(self, feats: torch.Tensor, mask: torch.Tensor) -> Embedding:
        return {"frames": feats, "frame_mask": mask}

    def _pairs(self, text: Embedding, video: Embedding) -> torch.Tensor:
        t, f, m = text["text"], video["frames"], video["frame_mask"]
        nt, (nv, nf, d) = t.shape[0], f.shape
        seq = torch.cat([t[:, None, None, :].expand(nt, nv, 1, d), f[None].expand(nt, nv, nf, d)], dim=2)
        seq = seq.reshape(nt * nv, nf + 1, d)
        mask = torch.cat([m.new_ones(nv, 1), m], dim=1)[None].expand(nt, nv, nf + 1).reshape(nt * nv, nf + 1)
        x = self.embed_dropout(seq + self.position_embeddings[: nf + 1].to(seq.dtype))
        x = self.cross(x, mask)
        pooled = self.pool_act(self.pool_dense(self.ln_pool(x[:, 0])))
        return self.similarity_dense(pooled).reshape(nt, nv)

    def score(self, text: Embedding, video: Embedding) -> torch.Tensor:
        return chunked_over_text(self._pairs, text, video, self.pair_budget)

    def loss(self, text: Embedding, video: Embedding) -> dict[str, torch.Tensor]:
        loss = symmetric_infonce(self._pairs(text, video))
        return {"loss": loss, "infonce": loss.detach()}
