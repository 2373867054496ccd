"""Training-time frame augmentation of the ``release`` regime (X-Pool's; the other releases use none).

X-Pool (layer6ai-labs/xpool@bc88718, ``datasets/model_transforms.py``, ``clip_train``) applies to the stacked
frames of a clip ``RandomResizedCrop(224, scale=(0.5, 1.0))``, ``RandomHorizontalFlip()``, a ``ColorJitter``
with all strengths 0 (a no-op) and CLIP's normalisation. On a ``[T, C, H, W]`` tensor torchvision draws one
crop and one flip for the whole clip; it ran on PyTorch 1.8 (torchvision 0.9), where tensor resizing is
bilinear without antialiasing. Here the same draws (torchvision's ``RandomResizedCrop.get_params``
algorithm, default ratio 3/4 to 4/3, ten attempts then a centre crop) come from an explicit generator, so a
resumed run replays them. The crop is taken from the stored protocol frames (short side 224) rather than from
the decoded video, which keeps its area fraction and aspect ratio.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from dvtr_bench.models.base import FrameSpec


def random_resized_crop_params(height: int, width: int, scale: tuple[float, float], ratio: tuple[float, float],
                               generator: torch.Generator | None) -> tuple[int, int, int, int]:
    """torchvision's ``RandomResizedCrop.get_params`` with an explicit generator: (top, left, h, w)."""
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target_area = area * float(torch.empty(1).uniform_(scale[0], scale[1], generator=generator))
        aspect = math.exp(float(torch.empty(1).uniform_(log_ratio[0], log_ratio[1], generator=generator)))
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = int(torch.randint(0, height - h + 1, size=(1,), generator=generator))
            left = int(torch.randint(0, width - w + 1, size=(1,), generator=generator))
            return top, left, h, w
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        h, w = height, int(round(height * max(ratio)))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


class XPoolTrainAugment:
    """X-Pool's training transform for one clip: uint8 ``[t, H, W, 3]`` -> normalised float ``[t, 3, S, S]``."""

    scale = (0.5, 1.0)
    ratio = (3.0 / 4.0, 4.0 / 3.0)

    def __init__(self, spec: FrameSpec):
        self.spec = spec

    def __call__(self, frames: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        x = frames.permute(0, 3, 1, 2).float().div_(255.0)
        top, left, h, w = random_resized_crop_params(int(x.shape[-2]), int(x.shape[-1]), self.scale, self.ratio,
                                                     generator)
        s = self.spec.image_size
        x = F.interpolate(x[:, :, top:top + h, left:left + w], size=(s, s), mode="bilinear", align_corners=False)
        if float(torch.rand(1, generator=generator)) < 0.5:
            x = x.flip(-1)
        mean = torch.tensor(self.spec.mean, dtype=x.dtype).view(1, 3, 1, 1)
        std = torch.tensor(self.spec.std, dtype=x.dtype).view(1, 3, 1, 1)
        return ((x - mean) / std).contiguous()
