"""AdamW with separate learning rates for the pretrained backbone and the new modules, warmup-cosine schedule.

CLIP4Clip's recipe: new modules at ``lr``, CLIP parameters at ``backbone_lr`` (lr × 1e-3), weight decay on
weight matrices only (not on biases, norms, embeddings' scalars such as logit_scale), linear warmup over the
first ``warmup`` fraction of steps then cosine decay to zero.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

import torch

from dvtr_bench.errors import ConfigError


def warmup_cosine(step: int, total: int, warmup: float) -> float:
    """LR multiplier at optimiser step ``step`` (0-based) of ``total``: linear warmup, then half a cosine to 0."""
    if total <= 0:
        return 1.0
    w = int(round(warmup * total))
    if w > 0 and step < w:
        return (step + 1) / w
    span = max(1, total - w)
    x = min(1.0, (step - w) / span)
    return 0.5 * (1.0 + math.cos(math.pi * x))


def build_optimizer(method: torch.nn.Module, lr: float, backbone_lr: float, weight_decay: float,
                    betas: Iterable[float] = (0.9, 0.98), eps: float = 1e-6) -> torch.optim.AdamW:
    """AdamW over ``method.param_groups()``: "backbone" groups at ``backbone_lr``, "new" groups at ``lr``.

    Weight decay applies only to groups marked ``decay`` (weight matrices); a parameter the method left out
    of every group would silently never train, so that is an error.
    """
    if lr <= 0 or backbone_lr < 0:
        raise ConfigError(f"learning rates must be positive (lr={lr}, backbone_lr={backbone_lr})")
    groups: list[dict[str, Any]] = []
    seen: set[int] = set()
    for g in method.param_groups():
        params = [p for p in g["params"] if p.requires_grad]
        if not params:
            continue
        seen.update(id(p) for p in params)
        base = backbone_lr if g.get("group") == "backbone" else lr
        groups.append({"params": params, "lr": base, "initial_lr": base,
                       "weight_decay": weight_decay if g.get("decay", True) else 0.0,
                       "name": f"{g.get('group', 'new')}{'' if g.get('decay', True) else '/no_decay'}"})
    missing = [n for n, p in method.named_parameters() if p.requires_grad and id(p) not in seen]
    if missing:
        raise ConfigError(f"{type(method).__name__}.param_groups() leaves out trainable parameters: {missing[:5]}")
    if not groups:
        raise ConfigError(f"{type(method).__name__} has no trainable parameters")
    # foreach: one multi-tensor kernel per group instead of a Python loop over parameters (CPU default is the loop).
    return torch.optim.AdamW(groups, lr=lr, betas=tuple(betas), eps=eps, foreach=True)


def build_scheduler(optimizer: torch.optim.Optimizer, total_steps: int,
                    warmup: float) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: warmup_cosine(s, total_steps, warmup))
