"""How far the releases' fp16 BertAdam moves CLIP weights, against an fp32 Adam at the same learning rate.

A 256 x 512 weight matrix initialised like CLIP's (N(0, 0.02), stored in fp16 as ``convert_weights`` stores it)
is stepped 100 times at a constant learning rate with gradients of one size (a persistent direction plus
noise of half its size), by

* the CLIP4Clip / MSAM release update: ``dvtr_bench.engine.optim.BertAdam`` on fp16 values (equal, step for
  step, to a re-implementation of the release on fp16 tensors: ``tests/test_release_update.py``);
* the same BertAdam in float32 (the release's update without its fp16 storage);
* ``torch.optim.AdamW`` in float32 (betas 0.9/0.98, eps 1e-6, bias correction): dvtr's former training and
  its ``uniform`` regime's optimiser.

It prints the mean |w_100 - w_0| of each and the share of weights the fp16 update moved at all.

    python benchmarks/release_update.py
"""

from __future__ import annotations

import torch
from torch import nn

from dvtr_bench.engine.optim import BertAdam


def run(opt_name: str, w0: torch.Tensor, grads: list[torch.Tensor], lr: float) -> torch.Tensor:
    p = nn.Parameter(w0.clone())
    if opt_name == "adamw":
        opt: torch.optim.Optimizer = torch.optim.AdamW([p], lr=lr, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.2)
    else:
        opt = BertAdam([{"params": [p], "fp16": opt_name == "bertadam_fp16"}], lr=lr, b1=0.9, b2=0.98, e=1e-6,
                       weight_decay=0.2, max_grad_norm=1.0)
    for g in grads:
        p.grad = g.clone()
        opt.step()
    return p.detach()


def main() -> int:
    g = torch.Generator().manual_seed(0)
    w0 = (torch.randn(256, 512, generator=g) * 0.02).half().float()
    print(f"torch {torch.__version__}; 256 x 512 weights ~ N(0, 0.02) in fp16; 100 steps, weight decay 0.2\n")
    print(f"{'grad size':>9} {'lr':>7} | {'release fp16':>12} {'BertAdam fp32':>13} {'AdamW fp32':>11} | "
          f"{'fp16 / AdamW':>12} {'moved':>6}")
    for size in (1e-6, 1e-5, 1e-4, 1e-3):
        base = torch.randn(256, 512, generator=g) * size
        grads = [base + 0.5 * size * torch.randn(256, 512, generator=g) for _ in range(100)]
        for lr in (1e-7, 1e-6):
            d = {name: (run(name, w0, grads, lr) - w0).abs() for name in ("bertadam_fp16", "bertadam", "adamw")}
            m = {k: float(v.mean()) for k, v in d.items()}
            moved = float((d["bertadam_fp16"] > 0).float().mean())
            print(f"{size:9.0e} {lr:7.0e} | {m['bertadam_fp16']:12.3e} {m['bertadam']:13.3e} {m['adamw']:11.3e} | "
                  f"{m['bertadam_fp16'] / m['adamw']:11.2f}x {moved:6.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
