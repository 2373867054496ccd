"""The two training regimes: ``release`` (each method as its authors' code trains it) and ``uniform``.

A recipe's ``train`` section (``baselines/<method>.json``) is its method's ``release`` regime: the optimiser,
fp16 handling, weight-decay grouping, schedule, loss batch, augmentation, selection metric, learning rates,
batch and epochs of the authors' release, each value cited in the recipe's ``source``. :data:`UNIFORM` is the
one regime dvtr applies to every method for controlled comparisons, where only the method differs.
:func:`apply_regime` puts one or the other into a recipe; an overlay such as ``--config demo`` and the
command-line options are applied after it. docs/protocol.md ("Training regimes") gives the reasons for each
uniform value and for the default; docs/methods.md lists, per method, release vs dvtr for every choice.
"""

from __future__ import annotations

import copy
from typing import Any, Mapping

from dvtr_bench.errors import ConfigError

REGIMES = ("uniform", "release")
DEFAULT_REGIME = "uniform"

# Keys of a recipe's train section that change how fast a run goes, not what it computes: a uniform run keeps
# the recipe's own values.
_RUNTIME_KEYS = ("eval_batch_size", "text_batch_size", "num_workers", "frame_cache", "amp")

UNIFORM: dict[str, Any] = {
    "regime": "uniform",
    "optimizer": "adamw",           # torch AdamW with bias correction, fp32 master weights
    "fp16_backbone": False,
    "lr": 1e-4,                     # new modules: CLIP4Clip's and MSAM's
    "backbone_lr": 1e-6,            # X-Pool's fp32 clip_lr; inside the effective range of the fp16 releases
    "weight_decay": 0.2,            # all three releases
    "decay": "matrices",            # not on biases, norms, scalars (open_clip's training rule)
    "warmup": 0.1,                  # all three releases
    "schedule": "warmup_cosine",    # linear warmup, then cosine to 0 (transformers; X-Pool)
    "grad_clip": 1.0,               # all three releases
    "param_clip": 0.0,
    "betas": [0.9, 0.98],           # CLIP's and CLIP4Clip's
    "eps": 1e-6,
    "batch_size": 128,              # CLIP4Clip's global batch
    "epochs": 5,                    # all three releases: with every caption every epoch, one step budget
    "loss_group": None,             # InfoNCE over the whole global batch
    "augment": "none",
    "select_metric": "rsum",        # on validation: both directions, steadier than one R@1 on a small split
    "select_ties": "earlier",
}


def apply_regime(recipe: Mapping[str, Any], regime: str) -> dict[str, Any]:
    """``recipe`` with its ``train`` section set for ``regime`` (a new dict; the recipe is not changed).

    ``release`` keeps the recipe's own section (its method's release regime); ``uniform`` replaces it with
    :data:`UNIFORM`, keeping only the runtime keys (batch sizes of evaluation, workers, caches).
    """
    if regime not in REGIMES:
        raise ConfigError(f"unknown training regime {regime!r} (known: {', '.join(REGIMES)})")
    out = copy.deepcopy(dict(recipe))
    train = dict(out.get("train") or {})
    if regime == "uniform":
        train = {**copy.deepcopy(UNIFORM), **{k: train[k] for k in _RUNTIME_KEYS if k in train}}
    else:
        train["regime"] = "release"
    out["train"] = train
    return out
