"""Training and running baselines: trainer, losses' plumbing, optimiser/schedule, checkpoints, torch.distributed.

``run_baseline(method, dataset, out, ...)`` is the library form of ``dvtr run-baseline``; ``train(...)`` fine-tunes
a method with validation-only checkpoint selection. Submodules import torch, so they are imported lazily.
"""

from __future__ import annotations

from typing import Any

__all__ = ["run_baseline", "train", "TrainConfig"]


def __getattr__(name: str) -> Any:
    if name == "run_baseline":
        from dvtr_bench.train.run import run_baseline

        return run_baseline
    if name in ("train", "TrainConfig"):
        from dvtr_bench.train import trainer

        return getattr(trainer, name)
    raise AttributeError(name)
