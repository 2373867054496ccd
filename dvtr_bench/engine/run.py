"""``run_baseline``: recipe + dataset -> trained (or zero-shot) method per seed -> test scores -> one result record.

Layout of ``out/<run>/`` (``<run>`` = ``<method>-<backbone>`` plus ``-zeroshot``):

* ``run.json``               resolved recipe, training options, per-seed summaries (history, timings)
* ``seed<S>/last.pt``        checkpoint of the last finished epoch (resume point)
* ``seed<S>/best.pt``        weights of the epoch selected on the validation split
* ``seed<S>/history.jsonl``  per-epoch loss, learning rates and validation metrics
* ``scores_seed<S>.npz``     the (test captions x test clips) score matrix (protocol score file)
* ``record.json``            the result record, built by the protocol engine from the score files

Re-running the same command resumes every seed from its ``last.pt``; the test split is read only after a
seed's training has finished and its checkpoint has been selected on validation.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from dvtr_bench.errors import ConfigError, InputError
from dvtr_bench.progress import Progress, ProgressFn


@dataclass
class SeedOutcome:
    seed: int
    scores_path: Path
    scores_sha256: str | None
    test_metrics: dict[str, float]
    eval_clips_per_s: float
    eval_seconds: float
    peak_memory_mb: float
    memory_kind: str
    train_seconds: float = 0.0
    best_epoch: int | None = None
    best_val: dict[str, float] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    resumed_from_epoch: int | None = None
    steps_per_epoch: list[int] = field(default_factory=list)


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", s).strip("_") or "run"


def resolve_recipe(method: str | Path | dict[str, Any], config: str | Path | dict[str, Any] | None = None,
                   backbone: str | None = None, pretrained: Any = ..., epochs: int | None = None,
                   batch_size: int | None = None, workers: int | None = None,
                   train_overrides: dict[str, Any] | None = None, regime: str | None = None) -> dict[str, Any]:
    """The baseline recipe under ``regime``, then the config overlay's and the options' overrides (options win).

    ``regime``: ``"uniform"`` (the default, :data:`dvtr_bench.engine.regimes.DEFAULT_REGIME`) or ``"release"``
    (the recipe's own train section); see :func:`dvtr_bench.engine.regimes.apply_regime`.
    """
    from dvtr_bench.engine.regimes import DEFAULT_REGIME, apply_regime
    from dvtr_bench.models.registry import load_recipe

    if config is not None and not isinstance(config, dict):
        path = Path(config)
        if path.suffix == ".json" and not path.is_file():
            raise InputError("config file not found", file=path)
    # The regime sets the train section first; the config is an overlay in the models' recipe format
    # ("model"/"train" sections plus optional "per_method": {method: {...}}; baselines/demo.json is one).
    recipe = apply_regime(load_recipe(method), regime or DEFAULT_REGIME)
    recipe = load_recipe(recipe, overlay=config)
    recipe.setdefault("model", {})
    recipe.setdefault("train", {})
    if backbone is not None:
        recipe["model"]["backbone"] = backbone
    if pretrained is not ...:
        recipe["model"]["pretrained"] = pretrained
    for key, val in (("epochs", epochs), ("batch_size", batch_size), ("num_workers", workers)):
        if val is not None:
            recipe["train"][key] = val
    if train_overrides:
        recipe["train"].update(train_overrides)
    return recipe


def _load(dataset: Any) -> Any:
    if not isinstance(dataset, (str, Path)):
        return dataset
    from dvtr_bench.dataset.hub import open_dataset

    return open_dataset(dataset)


def _dataset_name(dataset: Any) -> str:
    """The name a result record shows: the build's pretty name, else the repo id or folder name.

    A local path names the machine it ran on, not the dataset, and would make two users' rows look different.
    """
    if not isinstance(dataset, (str, Path)):
        return "dataset"
    p = Path(str(dataset).rstrip("/"))
    try:
        name = json.loads((p / "build" / "build.json").read_text(encoding="utf-8"))["config"]["pretty_name"]
        if isinstance(name, str) and name.strip():
            return name.strip()
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return str(dataset) if not p.exists() else (p.name or str(dataset))


def run_baseline(method: str | Path | dict[str, Any], dataset: Any, out: str | Path, *, zero_shot: bool = False,
                 seeds: Sequence[int] | None = None, device: str = "auto", backbone: str | None = None,
                 pretrained: Any = ..., epochs: int | None = None, batch_size: int | None = None,
                 workers: int | None = None, config: str | Path | dict[str, Any] | None = None,
                 train_overrides: dict[str, Any] | None = None, resume: bool = True,
                 progress: ProgressFn | None = None, regime: str | None = None) -> Path:
    """Train (unless ``zero_shot``) and evaluate a baseline under the protocol; return the result record's path.

    ``method``: a name from ``baselines/`` (``meanP``, ``seqTransf``, ``xpool``, ``msam``, ...), a recipe JSON
    path or a recipe dict. ``dataset``: a dvtr dataset folder, a Hub repo id or a ``datasets.DatasetDict``.
    ``seeds`` default to the protocol's (0, 1, 2) for trained runs and (0,) for zero-shot runs (nothing random).
    ``regime``: ``"uniform"`` (default) or ``"release"``; it is recorded, and a release run goes to its own
    folder (``<method>-<backbone>-release``) so the two never resume each other.
    Launched by torchrun, every process must call this; rank 0 writes the files, all ranks return the path.
    """
    from dvtr_bench.models import create_method
    from dvtr_bench.protocol import v1
    from dvtr_bench.engine.evaluate import evaluate
    from dvtr_bench.engine import distributed as D
    from dvtr_bench.engine.trainer import TrainConfig, seed_everything, train

    recipe = resolve_recipe(method, config, backbone, pretrained, epochs, batch_size, workers, train_overrides,
                            regime=regime)
    tcfg = TrainConfig.from_dict(recipe["train"])
    pre = recipe["model"].get("pretrained")
    if zero_shot and isinstance(pre, (str, Path)) and Path(pre).expanduser().is_file():
        from dvtr_bench.engine.saved import is_dvtr_checkpoint

        # A run's checkpoint is a trained model, not backbone weights: as --pretrained only its backbone would
        # load (a seqTransf's temporal transformer would be dropped) and the record would say zero-shot.
        if is_dvtr_checkpoint(Path(pre).expanduser()):
            raise ConfigError(f"--pretrained {pre} is a checkpoint of a dvtr run, i.e. a trained model: evaluate "
                              f"it with `dvtr evaluate {pre} --dataset DS` (every weight of the method loaded, the "
                              "record labelled with the checkpoint) rather than as zero-shot backbone weights")
    if seeds is None:
        seeds = (0,) if zero_shot else v1.SEEDS
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds must be distinct integers (got {seeds})")

    info, dev = D.init(device)
    ds = _load(dataset)
    needed = ("test",) if zero_shot else ("train", "validation", "test")
    have = list(ds.keys()) if hasattr(ds, "keys") else []
    missing = [s for s in needed if s not in have]
    if missing:
        raise InputError(f"dataset has no {', '.join(missing)} split (has: {', '.join(have) or 'none'})",
                         file=str(dataset) if isinstance(dataset, (str, Path)) else None)

    def report(task: str, **kw: Any) -> None:
        if progress is not None and info.is_main:
            progress(Progress(task=task, **kw))

    bb = recipe["model"].get("backbone")
    pt = recipe["model"].get("pretrained", ...)
    suffix = "-zeroshot" if zero_shot else ("-release" if tcfg.regime == "release" else "")
    run_name = _slug(f"{recipe['method']}-{bb or 'default'}{suffix}")
    run_dir = Path(out) / run_name
    if info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
    D.barrier()

    from dvtr_bench.protocol.fingerprint import clip_digests

    test_digests: dict[str, str] | None = None
    outcomes: list[SeedOutcome] = []
    method_obj = None
    sources: dict[str, Any] = {}  # decoded train/validation frames, shared by the seeds
    t_run = time.perf_counter()
    for si, seed in enumerate(seeds):
        report("seeds", completed=si, total=len(seeds), info={"seed": seed})
        seed_everything(seed)
        method_obj = create_method(recipe, backbone=bb, pretrained=pt)
        method_obj.to(dev)
        seed_dir = run_dir / f"seed{seed}"
        tr = None
        if not zero_shot:
            tr = train(method_obj, ds["train"], ds["validation"], seed_dir, config=tcfg, seed=seed, device=dev,
                       resume=resume, progress=progress, sources=sources)
        # The test split is touched here, and only here: after the checkpoint was selected on validation.
        if test_digests is None:
            # Hashed once: every seed's score file carries them, and the record's fingerprint is made of them.
            test_digests = clip_digests(ds["test"]) if info.is_main else {}
        scores_path = run_dir / f"scores_seed{seed}.npz"
        res = evaluate(method_obj, ds["test"], device=dev, split_name="test", batch_size=tcfg.eval_batch_size,
                       text_batch_size=tcfg.text_batch_size, num_workers=tcfg.num_workers,
                       frame_cache=tcfg.frame_cache, scores_path=scores_path, clip_digests=test_digests,
                       autocast=dev.type == "cuda" and tcfg.amp is not False, progress=progress)
        outcomes.append(SeedOutcome(
            seed=seed, scores_path=scores_path, scores_sha256=res.scores_sha256, test_metrics=res.metrics,
            eval_clips_per_s=res.clips_per_s, eval_seconds=res.seconds, peak_memory_mb=res.peak_memory_mb,
            memory_kind=res.memory_kind, train_seconds=tr.train_seconds if tr else 0.0,
            best_epoch=tr.best_epoch if tr else None, best_val=tr.best_val if tr else {},
            history=tr.history if tr else [], resumed_from_epoch=tr.resumed_from_epoch if tr else None,
            steps_per_epoch=tr.steps_per_epoch if tr else []))
        report("seeds", completed=si + 1, total=len(seeds),
               info={"seed": seed, "test rsum": res.metrics.get("rsum", float("nan"))})

    record_path = run_dir / "record.json"
    if info.is_main:
        assert method_obj is not None and test_digests is not None
        record = _make_record(recipe, tcfg, method_obj, test_digests, dataset, outcomes, zero_shot,
                              info.world_size, dev, time.perf_counter() - t_run, record_path, progress)
        from dvtr_bench.protocol.record import write_record

        write_record(record, record_path)
        _write_run_json(run_dir / "run.json", recipe, tcfg, outcomes, zero_shot, info.world_size, record_path)
    D.barrier()
    return record_path


def _write_run_json(path: Path, recipe: dict[str, Any], tcfg: Any, outcomes: list[SeedOutcome],
                    zero_shot: bool, world: int, record_path: Path) -> None:
    doc = {"recipe": recipe, "train": tcfg.to_dict(), "zero_shot": zero_shot, "world_size": world,
           "record": record_path.name,
           "seeds": [{"seed": o.seed, "scores": o.scores_path.name, "scores_sha256": o.scores_sha256,
                      "test_metrics": o.test_metrics, "best_epoch": o.best_epoch, "best_val": o.best_val,
                      "train_seconds": o.train_seconds, "eval_seconds": o.eval_seconds,
                      "eval_clips_per_s": o.eval_clips_per_s, "peak_memory_mb": o.peak_memory_mb,
                      "memory_kind": o.memory_kind, "resumed_from_epoch": o.resumed_from_epoch,
                      "steps_per_epoch": o.steps_per_epoch, "history": o.history} for o in outcomes]}
    path.write_text(json.dumps(doc, indent=2, default=str) + "\n", encoding="utf-8")


def _training_info(tcfg: Any, outcomes: list[SeedOutcome], zero_shot: bool) -> dict[str, Any]:
    """The record's ``training`` section: regime and optimiser steps per epoch (one number when constant)."""
    if zero_shot:
        return {"regime": None, "steps_per_epoch": None}
    counts = {n for o in outcomes for n in o.steps_per_epoch}
    per_epoch: Any = counts.pop() if len(counts) == 1 else list(outcomes[0].steps_per_epoch)
    return {"regime": getattr(tcfg, "regime", None), "steps_per_epoch": per_epoch,
            "total_steps": int(sum(outcomes[0].steps_per_epoch))}


def _make_record(recipe: dict[str, Any], tcfg: Any, method: Any, test_digests: dict[str, str], dataset_arg: Any,
                 outcomes: list[SeedOutcome], zero_shot: bool, world: int, dev: Any, wall_s: float,
                 record_path: Path, progress: ProgressFn | None, checkpoint_selection: str | None = None,
                 evaluated: dict[str, Any] | None = None,
                 run_info: dict[int, dict[str, Any]] | None = None) -> dict[str, Any]:
    """The result record, built by the protocol's builder (metrics recomputed by the engine from the files).

    ``checkpoint_selection`` / ``evaluated`` / ``run_info``: set by ``dvtr evaluate`` (a saved model's record);
    by default those of a run that trained (or not, ``zero_shot``) the method itself.
    """
    from dvtr_bench.models import count_parameters, gflops_per_clip
    from dvtr_bench.protocol import record as R
    from dvtr_bench.protocol.fingerprint import fingerprint_from_digests

    params = count_parameters(method)
    try:
        gflops = float(gflops_per_clip(method))
    except Exception:  # a FLOP counter that cannot trace a method must not lose a finished run
        gflops = None
    cost = R.collect_cost(
        parameters=params.get("total"), gflops_per_clip=gflops,
        eval_clips_per_s=float(np.mean([o.eval_clips_per_s for o in outcomes])),
        train_time_s=0.0 if zero_shot else float(np.mean([o.train_seconds for o in outcomes])),
        peak_memory_mb=max(o.peak_memory_mb for o in outcomes),
        trainable_parameters=params.get("trainable"))
    # Where the figures were measured: the schema keeps hardware free-form.
    cost["hardware"] = {**cost.get("hardware", {}), "device": str(dev), "world_size": world,
                        "peak_memory_kind": outcomes[0].memory_kind}
    backbone = getattr(method, "backbone", None)
    config = {"recipe": recipe, "train": tcfg.to_dict(), "method_config": getattr(method, "config", {})}
    if run_info is None:
        run_info = {o.seed: {"checkpoint": f"seed{o.seed}/best.pt", "best_epoch": o.best_epoch}
                    for o in outcomes if o.best_epoch is not None}
    if checkpoint_selection is None:
        checkpoint_selection = "none" if zero_shot else "validation"
    name = _dataset_name(dataset_arg)
    return R.build_record(
        method=recipe["method"], config=config,
        dataset={"name": name, "fingerprint": fingerprint_from_digests(list(test_digests),
                                                                       list(test_digests.values()))},
        backbone={"name": getattr(backbone, "model_name", recipe["model"].get("backbone")),
                  "pretrained": getattr(backbone, "pretrained", recipe["model"].get("pretrained"))},
        score_files={o.seed: o.scores_path for o in outcomes}, record_path=record_path,
        transductive=bool(getattr(method, "transductive", False)), zero_shot=zero_shot,
        checkpoint_selection=checkpoint_selection, cost=cost, run_info=run_info, evaluated=evaluated,
        training=_training_info(tcfg, outcomes, zero_shot),
        extra={"world_size": world, "wall_time_s": wall_s,
               "eval_time_s": float(np.mean([o.eval_seconds for o in outcomes])), "per_seed": [{"seed": o.seed, "train_time_s": o.train_seconds,
                                                  "eval_clips_per_s": o.eval_clips_per_s,
                                                  "best_val": o.best_val} for o in outcomes]},
        progress=progress)
