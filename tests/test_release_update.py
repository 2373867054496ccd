"""The release regime's optimiser updates against literal re-implementations of the releases' code.

CLIP4Clip (ArrowLuo/CLIP4Clip@508ffa3) and the MSAM release (huangjh98/ASLVT, same file) build their model,
call ``convert_weights(self.clip)`` -- CLIP's conv, linear, attention and projection weights become fp16
tensors -- and step them with ``modules/optimization.BertAdam``. X-Pool (layer6ai-labs/xpool@bc88718) steps an
fp32 model with Hugging Face's ``AdamW`` and ``get_cosine_schedule_with_warmup``. The classes and functions
below follow that code line by line (written for these tests); dvtr's optimisers must reproduce them exactly.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from dvtr_bench.engine.optim import (BertAdam, HFAdamW, bert_warmup_cosine, build_optimizer, build_scheduler,
                                     release_fp16_parameters, warmup_cosine)


# ---------------------------------------------------------------------------------------------------------
# CLIP4Clip's modules/optimization.py, step by step (schedule inside the optimiser, state per parameter).
# ---------------------------------------------------------------------------------------------------------
def release_warmup_cosine(x: float, warmup: float = 0.002) -> float:
    if x < warmup:
        return x / warmup
    return 0.5 * (1.0 + math.cos(math.pi * x))


class ReleaseBertAdam(torch.optim.Optimizer):
    def __init__(self, params, lr, warmup=-1, t_total=-1, b1=0.9, b2=0.999, e=1e-6, weight_decay=0.01,
                 max_grad_norm=1.0):
        super().__init__(params, dict(lr=lr, warmup=warmup, t_total=t_total, b1=b1, b2=b2, e=e,
                                      weight_decay=weight_decay, max_grad_norm=max_grad_norm))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad.data
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = 0
                    state["next_m"] = torch.zeros_like(p.data)
                    state["next_v"] = torch.zeros_like(p.data)
                next_m, next_v = state["next_m"], state["next_v"]
                beta1, beta2 = group["b1"], group["b2"]
                if group["max_grad_norm"] > 0:
                    torch.nn.utils.clip_grad_norm_(p, group["max_grad_norm"])
                next_m.mul_(beta1).add_(grad, alpha=1 - beta1)
                next_v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                update = next_m / (next_v.sqrt() + group["e"])
                if group["weight_decay"] > 0.0:
                    update += group["weight_decay"] * p.data
                if group["t_total"] != -1:
                    progress = state["step"] / group["t_total"]
                    lr_scheduled = group["lr"] * release_warmup_cosine(progress, group["warmup"])
                else:
                    lr_scheduled = group["lr"]
                update_with_lr = lr_scheduled * update
                p.data.add_(-update_with_lr)
                state["step"] += 1


def release_convert_weights(model: nn.Module) -> None:
    """CLIP's convert_weights (CLIP4Clip modules/module_clip.py), applied to an open_clip model."""
    def to_fp16(m: nn.Module) -> None:
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)):
            m.weight.data = m.weight.data.half()
            if m.bias is not None:
                m.bias.data = m.bias.data.half()
        if isinstance(m, nn.MultiheadAttention):
            for attr in [*[f"{s}_proj_weight" for s in ["in", "q", "k", "v"]], "in_proj_bias", "bias_k", "bias_v"]:
                tensor = getattr(m, attr)
                if tensor is not None:
                    tensor.data = tensor.data.half()
        for name in ["text_projection", "proj"]:
            if hasattr(m, name):
                attr = getattr(m, name)
                if attr is not None:
                    attr.data = attr.data.half()
    model.apply(to_fp16)


# ---------------------------------------------------------------------------------------------------------
# X-Pool's modules/optimization.py AdamW + get_cosine_schedule_with_warmup.
# ---------------------------------------------------------------------------------------------------------
class ReleaseHFAdamW(torch.optim.Optimizer):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.0, correct_bias=True):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      correct_bias=correct_bias))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad.data
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p.data)
                    state["exp_avg_sq"] = torch.zeros_like(p.data)
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                beta1, beta2 = group["betas"]
                state["step"] += 1
                exp_avg.mul_(beta1).add_(grad, alpha=(1.0 - beta1))
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1.0 - beta2)
                denom = exp_avg_sq.sqrt().add_(group["eps"])
                step_size = group["lr"]
                if group["correct_bias"]:
                    bias_correction1 = 1.0 - beta1 ** state["step"]
                    bias_correction2 = 1.0 - beta2 ** state["step"]
                    step_size = step_size * math.sqrt(bias_correction2) / bias_correction1
                p.data.addcdiv_(exp_avg, denom, value=-step_size)
                if group["weight_decay"] > 0.0:
                    p.data.add_(p.data, alpha=(-group["lr"] * group["weight_decay"]))


def release_cosine_lambda(num_warmup_steps: int, num_training_steps: int):
    def lr_lambda(current_step):
        if current_step < num_warmup_steps:
            return float(current_step) / float(max(1, num_warmup_steps))
        progress = float(current_step - num_warmup_steps) / float(max(1, num_training_steps - num_warmup_steps))
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * 0.5 * 2.0 * progress)))
    return lr_lambda


def _grads(n_steps: int, shape: tuple[int, ...], scales: list[float], seed: int = 0) -> list[torch.Tensor]:
    """Gradients of realistic sizes: a persistent direction plus noise, per-row scales from 1e-6 to 1e-3."""
    g = torch.Generator().manual_seed(seed)
    scale = torch.tensor(scales).repeat_interleave(shape[0] // len(scales)).view(-1, *([1] * (len(shape) - 1)))
    base = torch.randn(shape, generator=g) * scale
    return [base + 0.5 * scale * torch.randn(shape, generator=g) for _ in range(n_steps)]


SCALES = [1e-6, 1e-5, 1e-4, 1e-3]


# ---------------------------------------------------------------------------------------------------------
# The update rules.
# ---------------------------------------------------------------------------------------------------------
def test_schedules_are_the_releases() -> None:
    for total, warm in ((50, 0.1), (7, 0.1), (100, 0.0), (30, 0.25)):
        for step in range(total + 1):
            assert bert_warmup_cosine(step, total, warm) == release_warmup_cosine(step / total, warm)
            assert warmup_cosine(step, total, warm) == release_cosine_lambda(int(warm * total), total)(step)
    # CLIP4Clip's cosine runs over the whole of training: the rate drops from ~1 to 0.976 when warmup ends
    assert bert_warmup_cosine(9, 100, 0.1) == pytest.approx(0.9)
    assert bert_warmup_cosine(10, 100, 0.1) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.1)))
    # both schedules give the very first step a rate of 0, as the releases do
    assert bert_warmup_cosine(0, 100, 0.1) == warmup_cosine(0, 100, 0.1) == 0.0


@pytest.mark.parametrize("weight_decay", [0.2, 0.0])
def test_fp16_bertadam_equals_the_release_on_fp16_tensors(weight_decay: float) -> None:
    # A weight matrix as CLIP's, stored in fp16 by convert_weights; dvtr keeps a float32 parameter holding the
    # same values. 60 steps with the release's schedule (lr 1e-7, warmup 0.1 of 60 steps).
    torch.manual_seed(0)
    w0 = (torch.randn(64, 32) * 0.02).half()
    theirs = nn.Parameter(w0.clone())                       # the release: an fp16 tensor
    ours = nn.Parameter(w0.float())                         # dvtr: float32 holding fp16 values
    total, warm, lr = 60, 0.1, 1e-7
    ref = ReleaseBertAdam([theirs], lr=lr, warmup=warm, t_total=total, b1=0.9, b2=0.98, e=1e-6,
                          weight_decay=weight_decay, max_grad_norm=1.0)
    opt = BertAdam([{"params": [ours], "fp16": True}], lr=lr, b1=0.9, b2=0.98, e=1e-6, weight_decay=weight_decay,
                   max_grad_norm=1.0)
    sched = build_scheduler(opt, total, warm, "bert_warmup_cosine")
    for g in _grads(total, (64, 32), SCALES):
        theirs.grad = g.half()                              # the release's gradient of an fp16 weight
        ours.grad = g.clone()                               # dvtr's float32 gradient
        ref.step()
        opt.step()
        sched.step()
        assert torch.equal(ours.detach(), theirs.detach().float())
    moved = (ours.detach() - w0.float()).abs()
    assert moved.max() > 0


def test_fp32_bertadam_and_hf_adamw_equal_the_releases() -> None:
    torch.manual_seed(1)
    w0 = torch.randn(40, 8) * 0.02
    total, warm = 30, 0.1
    for ref_cls, ours_cls in ((ReleaseBertAdam, BertAdam), (ReleaseHFAdamW, HFAdamW)):
        theirs, ours = nn.Parameter(w0.clone()), nn.Parameter(w0.clone())
        if ref_cls is ReleaseBertAdam:
            ref = ref_cls([theirs], lr=1e-4, warmup=warm, t_total=total, b1=0.9, b2=0.98, e=1e-6,
                          weight_decay=0.2, max_grad_norm=1.0)
            opt = ours_cls([ours], lr=1e-4, b1=0.9, b2=0.98, e=1e-6, weight_decay=0.2, max_grad_norm=1.0)
            sched = build_scheduler(opt, total, warm, "bert_warmup_cosine")
            ref_sched = None
        else:
            ref = ref_cls([theirs], lr=3e-5, weight_decay=0.2)
            ref_sched = torch.optim.lr_scheduler.LambdaLR(ref, release_cosine_lambda(int(warm * total), total))
            opt = ours_cls([ours], lr=3e-5, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.2)
            sched = build_scheduler(opt, total, warm, "warmup_cosine")
        for g in _grads(total, (40, 8), SCALES, seed=3):
            theirs.grad, ours.grad = g.clone(), g.clone()
            ref.step()
            opt.step()
            sched.step()
            if ref_sched is not None:
                ref_sched.step()
            assert torch.equal(ours.detach(), theirs.detach()), ref_cls.__name__


def test_fp16_parameters_are_those_convert_weights_converts() -> None:
    from dvtr_bench.models import create_method

    method = create_method("seqTransf", backbone="dvtr-tiny", pretrained=None)
    model = copy.deepcopy(method.backbone.model)
    release_convert_weights(model)
    want = {n for n, p in model.named_parameters() if p.dtype == torch.float16}
    ids = release_fp16_parameters(method.backbone)
    got = {n for n, p in method.backbone.model.named_parameters() if id(p) in ids}
    assert got == want
    assert "visual.conv1.weight" in got and "text_projection" in got and "visual.proj" in got
    assert not any("ln_" in n or "embedding" in n or n == "logit_scale" for n in got)
    # the new modules (seqTransf's header) are built after convert_weights in the release: fp32
    opt = build_optimizer(method, 1e-4, 1e-7, 0.2, optimizer="bertadam", decay="no_decay_bias", fp16_backbone=True)
    names = {g["name"]: g for g in opt.param_groups}
    assert {"backbone/fp16", "backbone/no_decay/fp16", "backbone", "new", "new/no_decay"} <= set(names)
    assert all(g["lr"] == 1e-7 for n, g in names.items() if n.startswith("backbone"))
    # CLIP4Clip's grouping: only names containing "bias" skip weight decay, so LayerNorm weights and the
    # logit scale are decayed, unlike the uniform regime's matrices-only rule
    decayed = {id(p) for g in opt.param_groups if g["weight_decay"] > 0 for p in g["params"]}
    by_name = dict(method.named_parameters())
    assert id(by_name["backbone.model.logit_scale"]) in decayed
    assert id(by_name["backbone.model.visual.ln_post.weight"]) in decayed
    assert id(by_name["backbone.model.visual.ln_post.bias"]) not in decayed


# ---------------------------------------------------------------------------------------------------------
# The trainer, from saved weights: the backbone moves by what the release's update predicts.
# ---------------------------------------------------------------------------------------------------------
WATCH = ("backbone.model.visual.transformer.resblocks.0.attn.in_proj_weight",   # fp16 in the release
         "backbone.model.visual.transformer.resblocks.1.mlp.c_fc.weight",       # fp16
         "backbone.model.transformer.resblocks.0.ln_1.weight")                  # a float32 CLIP parameter


@pytest.mark.slow
def test_release_regime_moves_saved_backbone_weights_as_the_release_predicts(tmp_path, learnable_splits,
                                                                            monkeypatch) -> None:
    from dvtr_bench.engine import optim
    from dvtr_bench.engine.run import resolve_recipe
    from dvtr_bench.engine.trainer import TrainConfig, seed_everything, train
    from dvtr_bench.models import create_method
    from dvtr_bench.models.backbone import create_backbone

    # "Pretrained" weights: a tiny backbone's state dict saved to a file, loaded the way a user loads a
    # checkpoint (--pretrained PATH).
    torch.manual_seed(0)
    ckpt = tmp_path / "tiny-clip.pt"
    torch.save(create_backbone("dvtr-tiny", None).model.state_dict(), ckpt)
    seed_everything(0)
    method = create_method("meanP", backbone="dvtr-tiny", pretrained=str(ckpt))
    saved = torch.load(ckpt, weights_only=True)
    # The release's recipe, with the release's learning rates (backbone 1e-4 x 1e-3 = 1e-7), a small budget.
    recipe = resolve_recipe("meanP", regime="release")
    cfg = TrainConfig.from_dict({**recipe["train"], "epochs": 2, "batch_size": 8, "num_workers": 0,
                                 "eval_batch_size": 8})
    assert (cfg.optimizer, cfg.fp16_backbone, cfg.backbone_lr) == ("bertadam", True, pytest.approx(1e-7))

    params = dict(method.named_parameters())
    seen: dict[str, list[torch.Tensor]] = {n: [] for n in WATCH}
    lrs: list[float] = []
    real_step = optim.BertAdam.step

    def recording_step(self, closure=None):
        for n in WATCH:
            seen[n].append(params[n].grad.detach().clone())   # after the global clip, as the release's step sees it
        lrs.append(next(g["lr"] for g in self.param_groups if g["name"] == "backbone/fp16"))
        return real_step(self, closure)

    monkeypatch.setattr(optim.BertAdam, "step", recording_step)
    res = train(method, learnable_splits["train"], learnable_splits["validation"], tmp_path / "run", config=cfg,
                seed=0)
    # The trainer reloads the best epoch's weights at the end: compare with the last epoch's checkpoint.
    last = torch.load(tmp_path / "run" / "last.pt", weights_only=False)["model"]
    total = sum(res.steps_per_epoch)
    assert len(lrs) == total == 8

    report = {}
    for n in WATCH:
        key = n[len("backbone.model."):]
        fp16 = "ln_1" not in n
        # The release: convert_weights, then BertAdam with its own schedule on the recorded gradients.
        w_release = nn.Parameter(saved[key].clone().half() if fp16 else saved[key].clone())
        wd = 0.2                                                     # no "bias" in these names: decayed
        ref = ReleaseBertAdam([w_release], lr=1e-7, warmup=0.1, t_total=total, b1=0.9, b2=0.98, e=1e-6,
                              weight_decay=wd, max_grad_norm=1.0)
        # An fp32 AdamW at the same rate and schedule shape: what dvtr did before the release regime existed.
        w_adamw = nn.Parameter(saved[key].clone())
        adamw = torch.optim.AdamW([w_adamw], lr=1e-7, betas=(0.9, 0.98), eps=1e-6, weight_decay=wd)
        for g, lr in zip(seen[n], lrs):
            w_release.grad = g.half() if fp16 else g.clone()
            ref.step()
            for group in adamw.param_groups:
                group["lr"] = lr
            w_adamw.grad = g.clone()
            adamw.step()
        trained = last[n]
        assert torch.equal(trained, w_release.detach().float()), n
        start = saved[key].half().float() if fp16 else saved[key]
        moved = (trained - start).abs().mean().item()
        moved_adamw = (w_adamw.detach() - saved[key]).abs().mean().item()
        report[n] = (moved, moved_adamw)
        assert moved > 0
    # The fp16 update moves the converted weights much further than an fp32 AdamW would at the same rate.
    for n in WATCH[:2]:
        moved, moved_adamw = report[n]
        assert moved > moved_adamw, (n, report[n])
    print("mean |dw| over", total, "steps (release fp16 BertAdam, fp32 AdamW):", report)
