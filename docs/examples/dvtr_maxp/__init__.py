"""An example retrieval method that lives outside dvtr: max-pooling of the frame embeddings.

v = norm(max_i norm(f_i)) over the real frames of a clip; s(t, v) = cos(t, v); loss = symmetric InfoNCE. It is the
walk-through of docs/add-a-method.md: copy this folder, rename the method, and change ``encode_video_features``.
"""

from __future__ import annotations

import torch

from dvtr_bench.models.base import Embedding, symmetric_infonce
from dvtr_bench.models.common import FrameMethod, cosine_logits
from dvtr_bench.models.registry import register


@register
class MaxP(FrameMethod):
    name = "maxP"

    def __init__(self, backbone, **options):
        if options:
            # unknown options must fail loudly: a typo in a recipe would otherwise be recorded as applied
            raise TypeError(f"maxP has no options, got {sorted(options)}")
        super().__init__(backbone)

    def encode_video_features(self, feats: torch.Tensor, mask: torch.Tensor) -> Embedding:
        feats = torch.nn.functional.normalize(feats, dim=-1)
        # padded frames must never win the max (the lowest float, not -inf: a clip with no real frame stays finite)
        feats = feats.masked_fill(~mask[..., None], torch.finfo(feats.dtype).min)
        return {"video": torch.nn.functional.normalize(feats.max(dim=1).values, dim=-1)}

    def score(self, text: Embedding, video: Embedding) -> torch.Tensor:
        return cosine_logits(text["text"], video["video"])

    def loss(self, text: Embedding, video: Embedding) -> dict[str, torch.Tensor]:
        logits = self.logit_scale() * self.score(text, video)
        loss = symmetric_infonce(logits)
        return {"loss": loss, "infonce": loss.detach()}
