"""Cost figures a result record carries: parameter counts and forward GFLOPs per clip.

GFLOPs are counted with ``torch.utils.flop_counter.FlopCounterMode`` (2 FLOPs per multiply-add; matrix products,
convolutions and attention kernels — normalisations and activations are not counted) for: encoding one clip of
``num_frames`` frames + encoding one caption + scoring that pair. For pairwise methods (X-Pool, MSAM, tightTransf)
the pair term is what every extra caption costs again; ``cost_breakdown`` reports the three parts separately.
"""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from dvtr_bench.models.base import text_to
from dvtr_bench.protocol import v1


def count_parameters(method: torch.nn.Module) -> dict[str, int]:
    """``{"total", "backbone", "new", "trainable"}`` parameter counts."""
    total = backbone = trainable = 0
    for name, p in method.named_parameters():
        n = p.numel()
        total += n
        trainable += n if p.requires_grad else 0
        backbone += n if name.startswith("backbone.") else 0
    return {"total": total, "backbone": backbone, "new": total - backbone, "trainable": trainable}


def _flops(fn) -> tuple[float, object]:
    with FlopCounterMode(display=False) as counter:
        out = fn()
    return float(counter.get_total_flops()), out


@torch.no_grad()
def cost_breakdown(method, num_frames: int | None = None) -> dict[str, float]:
    """GFLOPs of ``video`` (one clip), ``text`` (one caption), ``pair`` (one score) and their ``total``."""
    n = int(num_frames or v1.NUM_FRAMES)
    was_training = method.training
    method.eval()
    try:
        p = next(method.parameters())
        s = method.image_size
        frames = torch.zeros(1, n, 3, s, s, device=p.device, dtype=p.dtype)
        mask = torch.ones(1, n, dtype=torch.bool, device=p.device)
        tokens = text_to(method.tokenize(["a drone flies over a river next to a road"]), p.device)
        fv, video = _flops(lambda: method.encode_video(frames, mask))
        ft, text = _flops(lambda: method.encode_text(tokens))
        fp, _ = _flops(lambda: method.score(text, video))
    finally:
        method.train(was_training)
    return {"video": fv / 1e9, "text": ft / 1e9, "pair": fp / 1e9, "total": (fv + ft + fp) / 1e9}


def gflops_per_clip(method, num_frames: int | None = None) -> float:
    """Forward GFLOPs to encode one clip and one caption and score them (see module docstring)."""
    return cost_breakdown(method, num_frames)["total"]
