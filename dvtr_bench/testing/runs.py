"""Tiny finished runs for the search and gallery tests: a learnable dataset folder and `run_baseline` runs on it.

Made through the real entry points (``write_learnable_dataset``, ``run_baseline``), once per process, so what the
tests index, search and show is what a user's `dvtr run-baseline` leaves on disk: ``run.json``, ``seed0/best.pt``,
``scores_seed0.npz``, ``record.json``.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path
from typing import Any

# The demo overlay's tiny backbone at 64 px (4 patches a frame): seconds on a CPU, same code paths as 224 px.
TINY_OVERLAY: dict[str, Any] = {
    "model": {"backbone": "dvtr-tiny", "pretrained": None, "image_size": 64},
    "train": {"epochs": 2, "batch_size": 8, "eval_batch_size": 8, "lr": 1e-3, "backbone_lr": 1e-3, "warmup": 0.1,
              "num_workers": 0},
}


@functools.lru_cache(maxsize=None)
def tiny_runs(methods: tuple[str, ...] = ("meanP", "xpool"), n_train: int = 16, n_val: int = 8,
              n_test: int = 12) -> tuple[Path, dict[str, Path]]:
    """(dataset folder, {method: run folder}) under a temporary folder removed at interpreter exit."""
    from dvtr_bench.engine.run import run_baseline
    from dvtr_bench.testing.learnable import write_learnable_dataset

    root = Path(tempfile.mkdtemp(prefix="dvtr-tiny-runs-"))
    atexit.register(shutil.rmtree, root, True)
    ds = write_learnable_dataset(root / "ds", n_train=n_train, n_val=n_val, n_test=n_test)
    runs = {}
    for m in methods:
        # last.pt kept: the evaluate tests read a run's last epoch as well as its selected one
        record = run_baseline(m, ds, root / "runs", seeds=[0], device="cpu", config=TINY_OVERLAY, keep_last=True)
        runs[m] = record.parent
    return ds, runs
