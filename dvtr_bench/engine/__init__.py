"""The engine: everything that runs a method on data, with torch.

- ``data``         frame sources and caption lists read from a dataset split (the loaders)
- ``distributed``  torch.distributed helpers (process groups, sharding, gathering)
- ``evaluate``     the evaluation runner: a frozen method on one split -> full score matrix, metrics, cost
- ``trainer``      ``train(...)``: fine-tuning with validation-only checkpoint selection
- ``optim``        optimiser and schedule; ``checkpoint``: save / resume
- ``run``          ``run_baseline(method, dataset, out, ...)``: the library form of ``dvtr run-baseline``

The engine sits above ``models/``, ``dataset/`` and ``protocol/`` and is the only layer that drives training or
evaluation; those layers never import it. Submodules import torch, so they are imported lazily.
"""

from __future__ import annotations

from typing import Any

__all__ = ["run_baseline", "train", "TrainConfig", "evaluate"]


def __getattr__(name: str) -> Any:
    if name == "run_baseline":
        from dvtr_bench.engine.run import run_baseline

        return run_baseline
    if name in ("train", "TrainConfig"):
        from dvtr_bench.engine import trainer

        return getattr(trainer, name)
    if name == "evaluate":
        from dvtr_bench.engine.evaluate import evaluate

        return evaluate
    raise AttributeError(name)
