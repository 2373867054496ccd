"""``run_baseline``: recipe + dataset -> trained (or zero-shot) method per seed -> test scores -> one result record.

Layout of ``out/<run>/`` (``<run>`` = ``<method>-<backbone>`` plus ``-zeroshot`` / ``-release``, plus ``-<id>``,
the first characters of :func:`run_identity`: one folder per method, resolved recipe, data and weights):

* ``run.json``               status (running / finished / failed + reason), resolved recipe, training options,
                             split fingerprints, the command, per-seed summaries (history, timings) of every
                             finished seed
* ``seed<S>/last.pt``        checkpoint of the last finished epoch (resume point; deleted when the seed finishes,
                             unless ``keep_last``)
* ``seed<S>/best.pt``        weights of the epoch selected on the validation split
* ``seed<S>/history.jsonl``  per-epoch loss, learning rates and validation metrics
* ``scores_seed<S>.npz``     the (test captions x test clips) score matrix (protocol score file)
* ``record.json``            the result record of every finished seed, built by the protocol engine from the
                             score files

Re-running the same command resumes every unfinished seed from its ``last.pt`` and reuses the finished ones; a
command with other seeds adds them to the same record. The test split is decoded only after a seed's training
has finished and its checkpoint has been selected on validation.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from dvtr_bench.errors import ConfigError, InputError
from dvtr_bench.progress import Progress, ProgressFn, warning_event


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
    command: list[str] | None = None      # the command line that ran this seed
    frame_features: dict[str, str] | None = None  # split -> "encoded" | "loaded" | "memory" when features were cached
    data_path: dict[str, Any] | None = None       # how frames reached the model (decoder, FrameSpec device, precision)


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", s).strip("_") or "run"


ConfigArg = Any  # an overlay name, a JSON path or a dict, or a list of them (applied in order)


def resolve_recipe(method: str | Path | dict[str, Any], config: ConfigArg | None = None,
                   backbone: str | None = None, pretrained: Any = ..., epochs: int | None = None,
                   batch_size: int | None = None, workers: int | None = None,
                   train_overrides: dict[str, Any] | None = None, regime: str | None = None,
                   sets: Sequence[str] = ()) -> dict[str, Any]:
    """The baseline recipe under ``regime``, then each config overlay in order, the ``sets`` (``"train.lr=1e-5"``,
    in order), and the options' overrides (options win).

    ``regime``: ``"uniform"`` (the default, :data:`dvtr_bench.engine.regimes.DEFAULT_REGIME`) or ``"release"``
    (the recipe's own train section); see :func:`dvtr_bench.engine.regimes.apply_regime`. Every key of every
    layer is checked: an unknown one is a :class:`ConfigError` naming its file (or ``--set``) and the closest
    known key. The returned recipe's ``train`` section holds the resolved training options (aliases and
    ``coef_lr`` resolved, defaults filled in): the values the trainer uses.
    """
    from dvtr_bench.engine.regimes import DEFAULT_REGIME, apply_regime
    from dvtr_bench.engine.trainer import TrainConfig
    from dvtr_bench.models.registry import (apply_overlay, load_recipe, parse_assignment, validate_overlay,
                                           validate_recipe)

    overlays = [] if config is None else ([config] if isinstance(config, (str, Path, dict)) else list(config))
    for item in overlays:
        if not isinstance(item, dict):
            path = Path(item)
            if path.suffix == ".json" and not path.is_file():
                raise InputError("config file not found", file=path)
    keys = TrainConfig.known_keys()
    # The regime sets the train section first; the configs are overlays in the models' recipe format
    # ("model"/"train" sections plus optional "per_method": {method: {...}}; baselines/demo.json is one).
    recipe = apply_regime(load_recipe(method, train_keys=keys), regime or DEFAULT_REGIME)
    recipe = load_recipe(recipe, overlay=overlays or None, train_keys=keys)
    for text in sets:
        over = parse_assignment(text)
        validate_overlay(over, f"--set {text}", train_keys=keys)
        recipe = apply_overlay(recipe, over)
        # The options of a method are known once the overlays are merged: check them again against its class.
        validate_recipe(recipe, f"--set {text}", train_keys=keys)
        TrainConfig.from_dict(recipe["train"], where=f"--set {text}")  # the value's type, named after its --set
        recipe["overlay"] = "+".join(filter(None, [recipe.get("overlay"), f"--set {text}"]))
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
    if not recipe.get("overlay"):
        recipe.pop("overlay", None)
    recipe["train"] = TrainConfig.from_dict(recipe["train"], where="train (resolved)").to_dict()
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
                 workers: int | None = None, config: ConfigArg | None = None,
                 train_overrides: dict[str, Any] | None = None, resume: bool = True,
                 progress: ProgressFn | None = None, regime: str | None = None, sets: Sequence[str] = (),
                 keep_last: bool = False, command: Sequence[str] | None = None) -> Path:
    """Train (unless ``zero_shot``) and evaluate a baseline under the protocol; return the result record's path.

    ``method``: a name from ``baselines/`` (``meanP``, ``seqTransf``, ``xpool``, ``msam``, ...), a recipe JSON
    path or a recipe dict. ``dataset``: a dvtr dataset folder, a Hub repo id or a ``datasets.DatasetDict``.
    ``seeds`` default to the protocol's (0, 1, 2) for trained runs and (0,) for zero-shot runs (nothing random).
    ``config``: overlays applied in order; ``sets``: ``"SECTION.KEY=VALUE"`` overrides applied after them
    (:func:`resolve_recipe`). ``regime``: ``"uniform"`` (default) or ``"release"``; it is recorded.

    The run folder is ``out/<method>-<backbone>[-zeroshot|-release]-<id>``, ``<id>`` a short hash of what
    identifies the run (:func:`run_identity`): the same configuration on the same data and weights always lands
    in the same folder, and its record gathers every finished seed, whichever command ran it (a seed already
    finished there is reused, unless ``resume`` is False). ``keep_last``: keep each seed's ``last.pt`` (the
    resume point, three times the model) after the seed has finished; by default it is deleted then.
    ``command``: the command line to record. Launched by torchrun, every process must call this; rank 0 writes
    the files, all ranks return the path.
    """
    from dvtr_bench.models import create_method
    from dvtr_bench.protocol import v1
    from dvtr_bench.engine import distributed as D
    from dvtr_bench.engine.trainer import TrainConfig

    recipe = resolve_recipe(method, config, backbone, pretrained, epochs, batch_size, workers, train_overrides,
                            regime=regime, sets=sets)
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

    if progress is not None and info.is_main:
        for message in recipe_warnings(recipe, tcfg, ds, zero_shot):
            progress(warning_event(message))

    from dvtr_bench.protocol.fingerprint import clip_digests, fingerprint_from_digests

    # Every split the run reads is hashed first: the hashes name the run folder and go into the record. Hashing
    # reads the test split's stored bytes; nothing of it is decoded or scored before a checkpoint is selected.
    digests: dict[str, dict[str, str]] = {}
    fingerprints: dict[str, str] = {}
    if info.is_main:
        for split in needed:
            digests[split] = clip_digests(ds[split])
            fingerprints[split] = fingerprint_from_digests(list(digests[split]), list(digests[split].values()))
    weights = _weights_identity(recipe["model"].get("pretrained", "openai"))  # create_method's default
    run_id = ""
    if info.is_main:
        run_id = run_identity(recipe, fingerprints, weights, zero_shot)
    if info.world_size > 1:
        run_id = str(D.broadcast_object(run_id))
    bb = recipe["model"].get("backbone")
    suffix = "-zeroshot" if zero_shot else ("-release" if tcfg.regime == "release" else "")
    run_dir = Path(out) / _slug(f"{recipe['method']}-{bb or 'default'}{suffix}-{run_id[:RUN_ID_CHARS]}")
    run_json = run_dir / "run.json"
    # Seeds finished earlier in this folder (same identity, so the same configuration, data and weights).
    finished = {o.seed: o for o in _finished_seeds(run_dir)}
    D.barrier()
    state: dict[str, Any] = {"recipe": recipe, "tcfg": tcfg, "zero_shot": zero_shot, "world": info.world_size,
                             "run_id": run_id, "fingerprints": fingerprints, "weights": weights,
                             "command": list(command) if command is not None else None}
    if info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        _write_run_json(run_json, state, sorted(finished.values(), key=lambda o: o.seed), "running",
                        requested=seeds)
    try:
        record_path = _run_seeds(state, ds, dataset, run_dir, seeds, finished, dev, info, resume, keep_last,
                                 progress, report, digests.get("test", {}), create_method)
    except BaseException as exc:
        if info.is_main:
            # A failed run says so, with the reason, and keeps every seed that did finish.
            reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            _write_run_json(run_json, state, sorted(finished.values(), key=lambda o: o.seed), "failed",
                            requested=seeds, reason=reason)
        raise
    return record_path


RUN_ID_CHARS = 8
# Train keys that change how fast a run goes, not what it computes: they do not make a new run.
_RUNTIME_TRAIN_KEYS = ("num_workers", "frame_cache", "eval_batch_size", "text_batch_size", "feature_cache",
                       "feature_cache_dir", "frame_transform", "gpu_decode", "channels_last", "compile", "loader")


def run_identity(recipe: dict[str, Any], fingerprints: dict[str, str], weights: str | None,
                 zero_shot: bool) -> str:
    """sha256 of what identifies a run: the method, its resolved recipe, the data and the backbone weights.

    Descriptions, sources and overlay names are left out (text, not configuration), and so are the runtime keys
    of the train section (workers, caches, evaluation batch sizes); a zero-shot run ignores the train section.
    """
    from dvtr_bench.provenance import config_hash

    # The weights stand for model.pretrained: the same checkpoint under another path is the same run.
    model = {k: v for k, v in (recipe.get("model") or {}).items() if k != "pretrained"}
    train = {} if zero_shot else {k: v for k, v in (recipe.get("train") or {}).items()
                                  if k not in _RUNTIME_TRAIN_KEYS}
    return config_hash({"method": recipe["method"], "model": model, "train": train, "zero_shot": zero_shot,
                        "data": fingerprints, "weights": weights})


def _weights_identity(pretrained: Any) -> str | None:
    """A local checkpoint's sha256, else the open_clip tag (which names fixed weights), else None (random init)."""
    if pretrained is None or pretrained is ... or str(pretrained).strip().lower() in ("", "none", "null"):
        return None
    path = Path(str(pretrained)).expanduser()
    if path.is_file():
        from dvtr_bench.provenance import file_sha256

        return "sha256:" + file_sha256(path)
    return str(pretrained)


def _run_seeds(state: dict[str, Any], ds: Any, dataset_arg: Any, run_dir: Path, seeds: list[int],
               finished: dict[int, SeedOutcome], dev: Any, info: Any, resume: bool, keep_last: bool,
               progress: ProgressFn | None, report: Any, test_digests: dict[str, str], create_method: Any) -> Path:
    from dvtr_bench.engine import distributed as D
    from dvtr_bench.engine.evaluate import evaluate
    from dvtr_bench.engine.trainer import seed_everything, train
    from dvtr_bench.models.common import uses_frame_features

    recipe, tcfg, zero_shot = state["recipe"], state["tcfg"], state["zero_shot"]
    bb = recipe["model"].get("backbone")
    pt = recipe["model"].get("pretrained", ...)
    method_obj = None
    sources: dict[str, Any] = {}  # decoded train/validation frames, shared by the seeds
    # Frozen-backbone frame features are kept beside the runs, so methods sharing a backbone share them too.
    feature_dir = tcfg.feature_cache_dir or str(Path(run_dir).parent / "feature-cache")
    from dvtr_bench.engine.data import choose_frame_path
    from dvtr_bench.engine.execution import apply_model_options, autocast_dtype, run_precision

    precision = run_precision(dev, tcfg.amp, tcfg.bf16)
    frame_device, decode_device = choose_frame_path(dev, tcfg.frame_transform, tcfg.gpu_decode)
    train_cfg = dataclasses.replace(tcfg, feature_cache_dir=feature_dir)
    t_run = time.perf_counter()
    for si, seed in enumerate(seeds):
        report("seeds", completed=si, total=len(seeds), info={"seed": seed})
        if resume and seed in finished:
            continue  # finished by an earlier command: its scores are in the folder already
        finished.pop(seed, None)
        seed_everything(seed)
        method_obj = create_method(recipe, backbone=bb, pretrained=pt)
        method_obj.to(dev)
        if zero_shot:  # training applies them itself (after the frozen-backbone switch)
            apply_model_options(method_obj, channels_last=tcfg.channels_last, compile=tcfg.compile)
        seed_dir = run_dir / f"seed{seed}"
        tr = None
        if not zero_shot:
            tr = train(method_obj, ds["train"], ds["validation"], seed_dir, config=train_cfg, seed=seed, device=dev,
                       resume=resume, progress=progress, sources=sources)
        # The test split is decoded and scored here, and only here: after the checkpoint was selected.
        scores_path = run_dir / f"scores_seed{seed}.npz"
        test_features = None
        if (zero_shot or tcfg.freeze_backbone) and tcfg.feature_cache != "off" and uses_frame_features(method_obj):
            from dvtr_bench.engine.data import FrameSource
            from dvtr_bench.engine.features import frame_features_for
            from dvtr_bench.protocol.fingerprint import dataset_fingerprint

            if "fingerprint:test" not in sources:
                sources["fingerprint:test"] = dataset_fingerprint(ds["test"])
            test_features = frame_features_for(
                method_obj, FrameSource(ds["test"], method_obj.frame_spec, num_workers=tcfg.num_workers,
                                        cache="stream", name="test", frame_device=frame_device,
                                        decode_device=decode_device, loader=tcfg.loader),
                sources["fingerprint:test"], device=dev, batch_size=tcfg.eval_batch_size, cache_dir=feature_dir,
                precision=precision,
                memo=sources.setdefault("features", {}), progress=progress if info.is_main else None, name="test")
        res = evaluate(method_obj, ds["test"], device=dev, split_name="test", batch_size=tcfg.eval_batch_size,
                       text_batch_size=tcfg.text_batch_size, num_workers=tcfg.num_workers,
                       frame_cache="stream", scores_path=scores_path,
                       clip_digests=test_digests if info.is_main else {},
                       autocast=autocast_dtype(precision) or False, features=test_features,
                       frame_device=frame_device, decode_device=decode_device, loader=tcfg.loader,
                       progress=progress)
        finished[seed] = SeedOutcome(
            seed=seed, scores_path=scores_path, scores_sha256=res.scores_sha256, test_metrics=res.metrics,
            eval_clips_per_s=res.clips_per_s, eval_seconds=res.seconds, peak_memory_mb=res.peak_memory_mb,
            memory_kind=res.memory_kind, train_seconds=tr.train_seconds if tr else 0.0,
            best_epoch=tr.best_epoch if tr else None, best_val=tr.best_val if tr else {},
            history=tr.history if tr else [], resumed_from_epoch=tr.resumed_from_epoch if tr else None,
            steps_per_epoch=tr.steps_per_epoch if tr else [], command=state["command"],
            data_path={"train": tr.extra.get("data_path") if tr else None, "test": res.extra.get("data_path"),
                       "precision": precision},
            frame_features=({**((tr.extra.get("frame_features") or {}) if tr else {}),
                             **({"test": test_features.origin} if test_features is not None else {})} or None))
        if info.is_main:
            _write_run_json(run_dir / "run.json", state, sorted(finished.values(), key=lambda o: o.seed),
                            "running", requested=seeds)
            last = seed_dir / "last.pt"
            if not keep_last and last.exists():
                last.unlink()  # the seed is finished and recorded: the resume point is no longer needed
        report("seeds", completed=si + 1, total=len(seeds),
               info={"seed": seed, "test rsum": res.metrics.get("rsum", float("nan"))})

    outcomes = sorted(finished.values(), key=lambda o: o.seed)
    record_path = run_dir / "record.json"
    if info.is_main:
        if method_obj is None:
            # Every seed was finished before: a fresh instance is enough for counting parameters and FLOPs.
            method_obj = create_method(recipe, backbone=bb, pretrained=pt)
        record = _make_record(recipe, tcfg, method_obj, test_digests, dataset_arg, outcomes, zero_shot,
                              info.world_size, dev, time.perf_counter() - t_run, record_path, progress,
                              reproducibility=_reproducibility(state, dev, outcomes))
        from dvtr_bench.protocol.record import write_record

        write_record(record, record_path)
        _write_run_json(run_dir / "run.json", state, outcomes, "finished", requested=seeds,
                        record_path=record_path)
    D.barrier()
    return record_path


def recipe_warnings(recipe: dict[str, Any], tcfg: Any, ds: Any, zero_shot: bool) -> list[str]:
    """What in a resolved recipe will run but is probably not what was meant, one sentence each.

    A random backbone under a recipe made for pretrained weights (a backbone learning rate far below the new
    modules' barely moves random weights, and a zero-shot random backbone scores chance), and a batch larger than
    the train split's captioned clips (the trainer caps it: a batch holds distinct clips).
    """
    out = []
    pretrained = recipe.get("model", {}).get("pretrained", "openai")
    random_init = pretrained is None or str(pretrained).strip().lower() in ("", "none", "null")
    if random_init and zero_shot:
        out.append("zero-shot evaluation of a randomly initialised backbone (pretrained: none): the scores measure "
                   "chance, not a model")
    elif random_init and tcfg.backbone_lr < tcfg.lr:
        out.append(f"the backbone is randomly initialised (pretrained: none) but trains at backbone_lr "
                   f"{tcfg.backbone_lr:g}, {tcfg.lr / max(tcfg.backbone_lr, 1e-300):.3g}x below the new modules' lr "
                   f"{tcfg.lr:g}: a rate meant for pretrained weights, so the backbone will barely learn (the "
                   "demo overlay, --config demo, trains it at the same rate: --set train.backbone_lr=...)")
    if not zero_shot and "train" in ds:
        captioned = sum(1 for caps in ds["train"]["captions"] if caps)
        if 0 < captioned < tcfg.batch_size:
            out.append(f"batch_size {tcfg.batch_size} is larger than the train split's {captioned} captioned clips: "
                       f"each step uses a batch of {captioned} (a batch holds distinct clips), not "
                       f"{tcfg.batch_size}")
    return out


def _reproducibility(state: dict[str, Any], dev: Any, outcomes: list[SeedOutcome]) -> dict[str, Any]:
    """The record's ``reproducibility`` section: command, split fingerprints, CPU/GPU models, threads, flags."""
    import torch

    from dvtr_bench.provenance import cpu_model

    gpus = ([torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
            if torch.cuda.is_available() else [])
    return {"command": state["command"], "seed_commands": {str(o.seed): o.command for o in outcomes},
            "fingerprints": state["fingerprints"], "run_id": state["run_id"],
            "cpu_model": cpu_model(), "gpu_models": gpus, "device": str(dev), "world_size": state["world"],
            "torch_threads": torch.get_num_threads(), "interop_threads": torch.get_num_interop_threads(),
            "deterministic": {"algorithms": torch.are_deterministic_algorithms_enabled(),
                              "cudnn_deterministic": bool(torch.backends.cudnn.deterministic),
                              "cudnn_benchmark": bool(torch.backends.cudnn.benchmark)}}


def _finished_seeds(run_dir: Path) -> list[SeedOutcome]:
    """The seeds an earlier command finished in ``run_dir``: listed in its run.json, score file still there."""
    path = run_dir / "run.json"
    if not path.is_file():
        return []
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read the run's state: {exc}; delete the file to start the run over",
                         file=path) from None
    out = []
    for s in doc.get("seeds") or []:
        try:
            scores = run_dir / str(s["scores"])
            if not scores.is_file():
                continue
            out.append(SeedOutcome(
                seed=int(s["seed"]), scores_path=scores, scores_sha256=s.get("scores_sha256"),
                test_metrics=dict(s["test_metrics"]), eval_clips_per_s=float(s["eval_clips_per_s"]),
                eval_seconds=float(s["eval_seconds"]), peak_memory_mb=float(s["peak_memory_mb"]),
                memory_kind=str(s["memory_kind"]), train_seconds=float(s.get("train_seconds") or 0.0),
                best_epoch=s.get("best_epoch"), best_val=dict(s.get("best_val") or {}),
                history=list(s.get("history") or []), resumed_from_epoch=s.get("resumed_from_epoch"),
                steps_per_epoch=list(s.get("steps_per_epoch") or []), command=s.get("command"),
                frame_features=s.get("frame_features"), data_path=s.get("data_path")))
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"a seed entry of run.json is incomplete ({type(exc).__name__}: {exc}); delete the "
                             "file to start the run over", file=path) from None
    return out


def _write_run_json(path: Path, state: dict[str, Any], outcomes: list[SeedOutcome], status: str, *,
                    requested: list[int], reason: str | None = None, record_path: Path | None = None) -> None:
    """The run's state: ``status`` running / finished / failed (+ ``reason``), and every finished seed."""
    doc: dict[str, Any] = {
        "status": status, **({"reason": reason} if reason is not None else {}),
        "run_id": state["run_id"], "recipe": state["recipe"], "train": state["tcfg"].to_dict(),
        "zero_shot": state["zero_shot"], "world_size": state["world"], "fingerprints": state["fingerprints"],
        "weights": state["weights"], "command": state["command"], "requested_seeds": requested,
        "record": record_path.name if record_path is not None else "record.json",
        "seeds": [{"seed": o.seed, "scores": o.scores_path.name, "scores_sha256": o.scores_sha256,
                   "test_metrics": o.test_metrics, "best_epoch": o.best_epoch, "best_val": o.best_val,
                   "train_seconds": o.train_seconds, "eval_seconds": o.eval_seconds,
                   "eval_clips_per_s": o.eval_clips_per_s, "peak_memory_mb": o.peak_memory_mb,
                   "memory_kind": o.memory_kind, "resumed_from_epoch": o.resumed_from_epoch,
                   "steps_per_epoch": o.steps_per_epoch, "command": o.command,
                   "frame_features": o.frame_features, "data_path": o.data_path, "history": o.history}
                  for o in outcomes]}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)


def _training_info(tcfg: Any, outcomes: list[SeedOutcome], zero_shot: bool) -> dict[str, Any]:
    """The record's ``training`` section: regime and optimiser steps per epoch (one number when constant)."""
    if zero_shot:
        return {"regime": None, "steps_per_epoch": None}
    counts = {n for o in outcomes for n in o.steps_per_epoch}
    per_epoch: Any = counts.pop() if len(counts) == 1 else list(outcomes[0].steps_per_epoch)
    batches = {h.get("batch") for o in outcomes for h in o.history if h.get("batch") is not None}
    return {"regime": getattr(tcfg, "regime", None), "steps_per_epoch": per_epoch,
            "total_steps": int(sum(outcomes[0].steps_per_epoch)),
            "batch_size": int(batches.pop()) if len(batches) == 1 else None}


def _make_record(recipe: dict[str, Any], tcfg: Any, method: Any, test_digests: dict[str, str], dataset_arg: Any,
                 outcomes: list[SeedOutcome], zero_shot: bool, world: int, dev: Any, wall_s: float,
                 record_path: Path, progress: ProgressFn | None,
                 reproducibility: dict[str, Any] | None = None, checkpoint_selection: str | None = None,
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
        # From cached frame features the evaluation ran the method's head only: no throughput to compare.
        eval_clips_per_s=(None if any((o.frame_features or {}).get("test") for o in outcomes)
                          else float(np.mean([o.eval_clips_per_s for o in outcomes]))),
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
                  "pretrained": getattr(backbone, "pretrained", recipe["model"].get("pretrained")),
                  "weights_sha256": getattr(backbone, "weights_sha256", None),
                  "frozen": bool(zero_shot or getattr(tcfg, "freeze_backbone", False))},
        score_files={o.seed: o.scores_path for o in outcomes}, record_path=record_path,
        transductive=bool(getattr(method, "transductive", False)), zero_shot=zero_shot,
        checkpoint_selection=checkpoint_selection, cost=cost, run_info=run_info, evaluated=evaluated,
        training=_training_info(tcfg, outcomes, zero_shot), reproducibility=reproducibility,
        extra={"world_size": world, "wall_time_s": wall_s,
               "eval_time_s": float(np.mean([o.eval_seconds for o in outcomes])),
               # where each seed's frame features came from when they were cached (None: encoded every step)
               "frame_features": [o.frame_features for o in outcomes],
               "data_path": outcomes[0].data_path, "per_seed": [{"seed": o.seed, "train_time_s": o.train_seconds,
                                                  "eval_clips_per_s": o.eval_clips_per_s,
                                                  "best_val": o.best_val} for o in outcomes]},
        progress=progress)
