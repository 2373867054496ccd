"""CLIP4Clip seqLSTM: a 1-layer LSTM over the frame embeddings, residual, then meanP.

F' = LSTM(F) (packed by clip length, so padded frames never enter), F'' = F' + F, v = meanP(F'').
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from dvtr_bench.models.methods.meanp import MeanP
from dvtr_bench.models.common import FrameMethod
from dvtr_bench.models.registry import register


@register
class SeqLSTM(MeanP):
    name = "seqLSTM"

    def __init__(self, backbone, **options):
        if options:
            raise TypeError(f"seqLSTM has no options, got {sorted(options)}")
        FrameMethod.__init__(self, backbone)
        d = self.embed_dim
        # CLIP4Clip leaves the LSTM at PyTorch's default initialisation
        self.lstm_visual = nn.LSTM(input_size=d, hidden_size=d, batch_first=True, num_layers=1)

    def temporal(self, frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        lengths = mask.sum(1).clamp(min=1).cpu()
        packed = pack_padded_sequence(frames, lengths, batch_first=True, enforce_sorted=False)
        out, _ = self.lstm_visual(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=frames.shape[1])
        out = out * mask.unsqueeze(-1).to(out.dtype)
        return out + frames
