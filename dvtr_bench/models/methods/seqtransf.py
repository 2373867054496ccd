"""CLIP4Clip seqTransf: a 4-layer transformer over the frames with learned frame positions, residual, then meanP.

F' = TT(F + P) with key-padding masks, F'' = F' + F, v = meanP(F''). P and TT start from CLIP's text positional
embedding and its first text blocks (when the text width equals the embedding width), as in CLIP4Clip.
"""

from __future__ import annotations

import torch

from dvtr_bench.models.common import FrameMethod, TemporalTransformer, position_table, text_heads
from dvtr_bench.models.methods.meanp import MeanP
from dvtr_bench.models.registry import register


class SeqTransfHeader(torch.nn.Module):
    """The seqTransf temporal module, shared with MSAM."""

    def __init__(self, backbone, layers: int = 4, max_positions: int | None = None):
        super().__init__()
        d = backbone.embed_dim
        heads, blocks = text_heads(backbone, d)
        n_pos = max_positions or backbone.context_length
        self.frame_position_embeddings = position_table(backbone, n_pos, d)
        self.transformer = TemporalTransformer(d, layers, heads, init_blocks=blocks)

    def forward(self, frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        t = frames.shape[1]
        x = frames + self.frame_position_embeddings[:t].unsqueeze(0).to(frames.dtype)
        return self.transformer(x, mask) + frames


@register
class SeqTransf(MeanP):
    name = "seqTransf"

    def __init__(self, backbone, temporal_layers: int = 4, **options):
        if options:
            raise TypeError(f"seqTransf options: temporal_layers; got {sorted(options)}")
        FrameMethod.__init__(self, backbone, max_frames=backbone.context_length)
        self.header = SeqTransfHeader(backbone, layers=temporal_layers)
        self.config = {"temporal_layers": temporal_layers,
                       "layers_copied_from_text": self.header.transformer.n_copied}

    def temporal(self, frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.header(frames, mask)
