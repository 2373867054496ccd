"""CLIP4Clip meanP: the parameter-free mean of the normalised frame embeddings (Luo et al. 2021).

v = norm(mean_i norm(f_i)) over real frames; s(t, v) = cos(t, v); loss = symmetric InfoNCE on exp(lambda) * s.
"""

from __future__ import annotations

import torch

from dvtr_bench.models.base import Embedding, symmetric_infonce
from dvtr_bench.models.common import FrameMethod, cosine_logits, mean_pool
from dvtr_bench.models.registry import register


@register
class MeanP(FrameMethod):
    name = "meanP"
    dot_product = True  # cosine of two independently computed embeddings (seqLSTM, seqTransf inherit it)

    def __init__(self, backbone, **options):
        if options:
            raise TypeError(f"meanP has no options, got {sorted(options)}")
        super().__init__(backbone)

    def temporal(self, frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Frame features after the method's temporal module (identity here)."""
        return frames

    def encode_video_features(self, feats: torch.Tensor, mask: torch.Tensor) -> Embedding:
        return {"video": mean_pool(self.temporal(feats, mask), mask)}

    def score(self, text: Embedding, video: Embedding) -> torch.Tensor:
        return cosine_logits(text["text"], video["video"])

    def loss(self, text: Embedding, video: Embedding) -> dict[str, torch.Tensor]:
        logits = self.logit_scale() * self.score(text, video)
        loss = symmetric_infonce(logits)
        return {"loss": loss, "infonce": loss.detach()}
