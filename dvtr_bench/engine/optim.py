"""Optimisers, parameter groups and learning-rate schedules of the two training regimes.

``uniform`` (one regime for every method): ``torch.optim.AdamW`` with bias correction, weight decay on weight
matrices only, linear warmup then cosine (``warmup_cosine``).

``release`` (each method as its authors' code trains it):

* CLIP4Clip family and MSAM -- :class:`BertAdam`, the update of ``modules/optimization.py`` in ArrowLuo/CLIP4Clip
  (copied unchanged into huangjh98/ASLVT): no bias correction, eps added to ``sqrt(v)``, decoupled weight decay
  added to the update, each parameter's gradient clipped to norm ``param_clip`` on its own, and the schedule
  ``bert_warmup_cosine``. Both releases convert CLIP's weights to fp16 (``convert_weights``) before building
  the optimiser, so for those parameters the moments, the update and the weights themselves are fp16 tensors;
  with ``fp16=True`` a group reproduces that arithmetic exactly on a float32 parameter that holds fp16
  values (the model keeps running in float32 on a CPU). At realistic gradient sizes the fp16 second moment
  underflows to zero and the update becomes ``m / eps``: the CLIP weights move far more per step than an
  fp32 Adam at the same learning rate would move them (docs/methods.md, "The release update").
  Decay grouping: no decay on parameters whose name contains ``bias`` (CLIP4Clip's ``no_decay`` list; its
  ``LayerNorm.*`` entries match no parameter of CLIP4Clip or MSAM, whose norms are named ``ln_*``).
* X-Pool -- :class:`HFAdamW`, the ``AdamW`` of its ``modules/optimization.py`` (Hugging Face's): bias
  correction folded into the step size, eps added to ``sqrt(v)``, weight decay applied after the step, on
  every parameter; schedule ``warmup_cosine`` (``get_cosine_schedule_with_warmup``).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterable

import torch
from torch import nn

from dvtr_bench.errors import ConfigError

OPTIMIZERS = ("adamw", "bertadam", "hf_adamw")
DECAY_RULES = ("matrices", "no_decay_bias", "all")


# ------------------------------------------------------------------------------------------------ schedules

def warmup_cosine(step: int, total: int, warmup: float) -> float:
    """LR multiplier at optimiser step ``step`` (0-based) of ``total``: transformers'
    ``get_cosine_schedule_with_warmup`` (X-Pool's): linear from 0 over ``int(warmup * total)`` steps, then
    half a cosine from 1 to 0 over the rest."""
    if total <= 0:
        return 1.0
    w = int(warmup * total)
    if step < w:
        return float(step) / float(max(1, w))
    progress = float(step - w) / float(max(1, total - w))
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))


def bert_warmup_cosine(step: int, total: int, warmup: float) -> float:
    """LR multiplier of CLIP4Clip's BertAdam ``warmup_cosine`` at step ``step``: with ``x = step / total``,
    ``x / warmup`` during warmup, then ``0.5 (1 + cos(pi x))`` -- the cosine runs over the whole of training,
    so the rate drops from 1 to about ``0.5 (1 + cos(pi warmup))`` when warmup ends."""
    if total <= 0:
        return 1.0
    x = step / total
    if x < warmup:
        return x / warmup
    return 0.5 * (1.0 + math.cos(math.pi * x))


SCHEDULES: dict[str, Callable[[int, int, float], float]] = {
    "warmup_cosine": warmup_cosine,
    "bert_warmup_cosine": bert_warmup_cosine,
}


def build_scheduler(optimizer: torch.optim.Optimizer, total_steps: int, warmup: float,
                    schedule: str = "warmup_cosine") -> torch.optim.lr_scheduler.LambdaLR:
    """A LambdaLR setting every group's rate to ``base_lr * SCHEDULES[schedule](step, total_steps, warmup)``,
    the same product the releases compute before each step."""
    if schedule not in SCHEDULES:
        raise ConfigError(f"schedule {schedule!r} is not known (known: {', '.join(SCHEDULES)})")
    fn = SCHEDULES[schedule]
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: fn(s, total_steps, warmup))


# ------------------------------------------------------------------------------------------------ optimisers

class BertAdam(torch.optim.Optimizer):
    """CLIP4Clip's BertAdam update, with the release's fp16 CLIP parameters reproduced (``fp16`` groups).

    Per parameter, with ``g`` its gradient: ``g`` clipped to norm ``max_grad_norm`` on its own;
    ``m = b1 m + (1 - b1) g``; ``v = b2 v + (1 - b2) g^2``; ``u = m / (sqrt(v) + e) + weight_decay * w``;
    ``w = w - lr * u`` (``lr`` already scheduled, see :func:`build_scheduler`). No bias correction.

    In an ``fp16`` group the gradient, ``m``, ``v``, ``u`` and ``w`` are float16 tensors and every operation
    above runs on them in the release's order, so each rounding happens where the release's does; the float32
    parameter then holds the float16 result exactly. Give such a group parameters that already hold float16
    values (:func:`build_optimizer` rounds them, as ``convert_weights`` does).
    """

    def __init__(self, params: Iterable[Any], lr: float, b1: float = 0.9, b2: float = 0.999, e: float = 1e-6,
                 weight_decay: float = 0.01, max_grad_norm: float = 1.0, fp16: bool = False):
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        defaults = dict(lr=lr, b1=b1, b2=b2, e=e, weight_decay=weight_decay, max_grad_norm=max_grad_norm,
                        fp16=fp16)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            dtype = torch.float16 if group["fp16"] else None
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = 0
                    state["next_m"] = torch.zeros_like(p, dtype=dtype)
                    state["next_v"] = torch.zeros_like(p, dtype=dtype)
                if dtype is not None and state["next_m"].dtype != dtype:
                    # Optimizer.load_state_dict casts the moments to the parameter's dtype; they hold fp16
                    # values, so casting back is exact and a resumed run continues bit for bit.
                    state["next_m"] = state["next_m"].to(dtype)
                    state["next_v"] = state["next_v"].to(dtype)
                if dtype is None:
                    w, holder = p, p
                else:
                    w = p.detach().to(dtype)
                    holder = w                  # a float16 tensor whose .grad is the float16 gradient
                    holder.grad = p.grad.detach().to(dtype)
                if group["max_grad_norm"] > 0:
                    torch.nn.utils.clip_grad_norm_(holder, group["max_grad_norm"])
                grad = holder.grad
                next_m, next_v = state["next_m"], state["next_v"]
                next_m.mul_(group["b1"]).add_(grad, alpha=1 - group["b1"])
                next_v.mul_(group["b2"]).addcmul_(grad, grad, value=1 - group["b2"])
                update = next_m / (next_v.sqrt() + group["e"])
                if group["weight_decay"] > 0.0:
                    update += group["weight_decay"] * w
                w.add_(-(group["lr"] * update))
                if dtype is not None:
                    holder.grad = None
                    p.copy_(w)
                state["step"] += 1
        return loss


class HFAdamW(torch.optim.Optimizer):
    """X-Pool's AdamW (Hugging Face transformers' implementation, ``correct_bias=True``).

    ``m``, ``v`` as Adam; ``w = w - lr sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)``, then
    ``w = w - lr * weight_decay * w`` on the updated weights.
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-6, weight_decay: float = 0.0, correct_bias: bool = True):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, correct_bias=correct_bias)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                state["step"] += 1
                exp_avg.mul_(b1).add_(grad, alpha=1.0 - b1)
                exp_avg_sq.mul_(b2).addcmul_(grad, grad, value=1.0 - b2)
                denom = exp_avg_sq.sqrt().add_(group["eps"])
                step_size = group["lr"]
                if group["correct_bias"]:
                    step_size = step_size * math.sqrt(1.0 - b2 ** state["step"]) / (1.0 - b1 ** state["step"])
                p.addcdiv_(exp_avg, denom, value=-step_size)
                if group["weight_decay"] > 0.0:
                    p.add_(p, alpha=-group["lr"] * group["weight_decay"])
        return loss


# ------------------------------------------------------------------------------------------ parameter groups

def release_fp16_parameters(module: nn.Module) -> set[int]:
    """Ids of the parameters CLIP's ``convert_weights`` turns into fp16 (as CLIP4Clip and ASLVT call it on
    their CLIP model): Conv and Linear weights and biases, the attention input projections and biases, and
    the ``text_projection`` / ``proj`` matrices. Norms, embeddings, class and position embeddings and the
    logit scale stay float32."""
    ids: set[int] = set()
    for m in module.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)):
            ids.update(id(t) for t in (m.weight, m.bias) if t is not None)
        if isinstance(m, nn.MultiheadAttention):
            for attr in ("in_proj_weight", "q_proj_weight", "k_proj_weight", "v_proj_weight", "in_proj_bias",
                         "bias_k", "bias_v"):
                t = getattr(m, attr, None)
                if isinstance(t, nn.Parameter):
                    ids.add(id(t))
        for attr in ("text_projection", "proj"):
            t = getattr(m, attr, None)
            if isinstance(t, nn.Parameter):
                ids.add(id(t))
    return ids


def _decays(rule: str, name: str, method_says: bool) -> bool:
    if rule == "matrices":
        return method_says          # RetrievalMethod.param_groups: weight matrices yes; biases, norms, scalars no
    if rule == "no_decay_bias":
        return "bias" not in name
    if rule == "all":
        return True
    raise ConfigError(f"weight-decay rule {rule!r} is not known (known: {', '.join(DECAY_RULES)})")


def build_optimizer(method: nn.Module, lr: float, backbone_lr: float, weight_decay: float,
                    betas: Iterable[float] = (0.9, 0.98), eps: float = 1e-6, optimizer: str = "adamw",
                    decay: str = "matrices", fp16_backbone: bool = False,
                    param_clip: float = 0.0) -> torch.optim.Optimizer:
    """The optimiser over ``method.param_groups()``: "backbone" parameters at ``backbone_lr``, "new" at ``lr``.

    Args:
        optimizer: ``"adamw"`` (``torch.optim.AdamW``), ``"bertadam"`` (:class:`BertAdam`) or ``"hf_adamw"``
            (:class:`HFAdamW`).
        decay: which parameters get ``weight_decay``: ``"matrices"`` (the method's own choice: weight matrices,
            not biases, norms or scalars), ``"no_decay_bias"`` (CLIP4Clip: all but names containing "bias"),
            ``"all"`` (X-Pool).
        fp16_backbone: with ``bertadam``, the backbone parameters that CLIP's ``convert_weights`` makes fp16
            are rounded to fp16 now and updated in fp16 arithmetic (:class:`BertAdam`).
        param_clip: BertAdam's per-parameter gradient-norm clip (its ``max_grad_norm``; 0 = off).

    A parameter the method left out of every group would silently never train, so that is an error.
    """
    if lr <= 0 or backbone_lr < 0:
        raise ConfigError(f"learning rates must be positive (lr={lr}, backbone_lr={backbone_lr})")
    if optimizer not in OPTIMIZERS:
        raise ConfigError(f"optimizer {optimizer!r} is not known (known: {', '.join(OPTIMIZERS)})")
    if fp16_backbone and optimizer != "bertadam":
        raise ConfigError("fp16_backbone reproduces the CLIP4Clip/MSAM release's BertAdam; use optimizer bertadam")
    half = release_fp16_parameters(method.backbone) if fp16_backbone else set()
    buckets: dict[tuple[str, bool, bool], list[nn.Parameter]] = {}
    seen: set[int] = set()
    for g in method.param_groups():
        names = g.get("names") or [""] * len(g["params"])
        for name, p in zip(names, g["params"]):
            if not p.requires_grad:
                continue
            seen.add(id(p))
            kind = g.get("group", "new")
            key = (kind, _decays(decay, name, bool(g.get("decay", True))), id(p) in half)
            buckets.setdefault(key, []).append(p)
    missing = [n for n, p in method.named_parameters() if p.requires_grad and id(p) not in seen]
    if missing:
        raise ConfigError(f"{type(method).__name__}.param_groups() leaves out trainable parameters: {missing[:5]}")
    if not buckets:
        raise ConfigError(f"{type(method).__name__} has no trainable parameters")
    groups: list[dict[str, Any]] = []
    for (kind, decays, fp16), params in sorted(buckets.items(), key=lambda kv: (kv[0][0], not kv[0][1], kv[0][2])):
        base = backbone_lr if kind == "backbone" else lr
        if fp16:
            with torch.no_grad():
                for p in params:
                    p.copy_(p.to(torch.float16))  # convert_weights: the release trains fp16 values
        groups.append({"params": params, "lr": base, "initial_lr": base,
                       "weight_decay": weight_decay if decays else 0.0,
                       "name": f"{kind}{'' if decays else '/no_decay'}{'/fp16' if fp16 else ''}",
                       **({"fp16": fp16} if optimizer == "bertadam" else {})})
    b1, b2 = tuple(betas)
    if optimizer == "bertadam":
        return BertAdam(groups, lr=lr, b1=b1, b2=b2, e=eps, weight_decay=weight_decay, max_grad_norm=param_clip)
    if optimizer == "hf_adamw":
        return HFAdamW(groups, lr=lr, betas=(b1, b2), eps=eps, weight_decay=weight_decay)
    # foreach: one multi-tensor kernel per group instead of a Python loop over parameters (CPU default is the loop).
    return torch.optim.AdamW(groups, lr=lr, betas=(b1, b2), eps=eps, foreach=True)
