"""Saved models: a run's checkpoint loaded whole, and ``evaluate_saved`` (the library form of ``dvtr evaluate``).

A checkpoint alone is not a model: its recipe (method, options, backbone) lives in the run's ``run.json``. So a
saved model is named by a run folder (``dvtr run-baseline`` output; every finished seed's selected checkpoint
``seed<S>/best.pt``) or by a checkpoint file inside one (``<run>/seed<S>/best.pt`` or ``last.pt``). The method is
rebuilt from the recipe without fetching any backbone weights and *every* weight of the checkpoint is loaded into
it (the temporal transformer of seqTransf, X-Pool's pooling, MSAM's heads, not only the backbone), strictly: a
key too many, a key missing, a shape that differs or a checkpoint written for another method is an
:class:`~dvtr_bench.errors.InputError` naming the file, never a half-loaded model.

The record ``evaluate_saved`` writes is labelled with what was evaluated (its ``evaluated`` section: the run, and
per seed the checkpoint's path inside the run, its sha256 and epoch); it is never a zero-shot record.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch

from dvtr_bench.errors import ConfigError, InputError
from dvtr_bench.progress import Progress, ProgressFn
from dvtr_bench.provenance import file_sha256

SELECTED = "best.pt"
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin")


@dataclass
class SavedModel:
    """A method rebuilt from a run's recipe with one checkpoint's weights, in eval mode."""

    method: Any
    recipe: dict[str, Any]
    run_dir: Path
    run_doc: dict[str, Any]
    seed: int
    checkpoint: Path
    checkpoint_sha256: str
    epoch: int | None                       # 0-based epoch the weights are from (None: not stored)
    selected: bool                          # the checkpoint chosen on validation (best.pt), not e.g. last.pt
    validation: dict[str, float] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def relative_checkpoint(self) -> str:
        """The checkpoint's path inside its run folder (``seed0/best.pt``)."""
        try:
            return self.checkpoint.resolve().relative_to(self.run_dir.resolve()).as_posix()
        except ValueError:
            return str(self.checkpoint)


def read_run(run_dir: str | Path) -> dict[str, Any]:
    """A run folder's ``run.json`` (recipe, training options, finished seeds).

    Raises:
        InputError: no run.json, unreadable, or without a recipe.
    """
    run_dir = Path(run_dir)
    path = run_dir / "run.json"
    if not path.is_file():
        raise InputError("not a dvtr run folder: it has no run.json (give the folder `dvtr run-baseline` wrote, "
                         "e.g. runs/meanP-dvtr-tiny-2c0007a3, or a checkpoint inside it, e.g. runs/meanP-dvtr-tiny-2c0007a3/seed0/"
                         "best.pt)", file=run_dir)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read run.json: {exc}", file=path) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("recipe"), dict) or "method" not in doc["recipe"]:
        raise InputError("run.json has no recipe", file=path)
    return doc


def run_seeds(doc: dict[str, Any]) -> list[int]:
    """The finished seeds a run.json lists, in its order."""
    return [int(s["seed"]) for s in doc.get("seeds") or [] if isinstance(s, dict) and "seed" in s]


def locate(target: str | Path) -> tuple[Path, Path | None, int | None]:
    """(run folder, checkpoint file or None, seed named by the checkpoint's ``seed<S>`` folder or None).

    Raises:
        InputError: nothing at ``target``.
    """
    p = Path(target).expanduser()
    if p.is_file():
        in_seed = re.fullmatch(r"seed(-?\d+)", p.parent.name)
        return (p.parent.parent if in_seed else p.parent), p, (int(in_seed.group(1)) if in_seed else None)
    if p.is_dir():
        return p, None, None
    if p.suffix in CHECKPOINT_SUFFIXES + (".safetensors",):
        raise InputError("checkpoint not found", file=p)
    raise InputError("no such run folder or checkpoint", file=p)


def _rng_state_globals() -> list[Any]:
    """The numpy types of a ``last.pt``'s saved RNG states: plain arrays, no code, so safe to unpickle."""
    import numpy as np

    try:
        from numpy._core.multiarray import _reconstruct  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import _reconstruct  # type: ignore[no-redef]
    return [np.ndarray, np.dtype, _reconstruct, type(np.dtype(np.uint32))]


def read_state(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(state dict, the checkpoint's other entries) of a dvtr checkpoint (``best.pt`` / ``last.pt``).

    Loaded with ``weights_only``: a checkpoint is data, and a pickle that would run code is refused.

    Raises:
        InputError: unreadable, or not a dvtr checkpoint (no ``"model"`` state dict of tensors).
    """
    try:
        with torch.serialization.safe_globals(_rng_state_globals()):
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a damaged, foreign or unsafe file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise InputError(f"cannot read the checkpoint ({type(exc).__name__}: {first[:300]}); a dvtr checkpoint "
                         "is the seed<S>/best.pt a run wrote", file=path) from None
    sd = state.get("model") if isinstance(state, dict) else None
    if not isinstance(sd, dict) or not sd or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise InputError("not a dvtr checkpoint: it has no 'model' state dict (a dvtr checkpoint is the "
                         "seed<S>/best.pt that `dvtr run-baseline` wrote)", file=path)
    return sd, {k: v for k, v in state.items() if k != "model"}


def is_dvtr_checkpoint(path: str | Path) -> bool:
    """Whether ``path`` is a checkpoint a dvtr run wrote (a dict with a ``"model"`` state dict), not backbone weights."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - not loadable as data: not ours (open_clip's loader has its own errors)
        return False
    return isinstance(state, dict) and isinstance(state.get("model"), dict)


def load_into(method: torch.nn.Module, sd: dict[str, torch.Tensor], path: Path, describe: str) -> None:
    """Load every weight of ``sd`` into ``method``; any mismatch is an InputError naming ``path``.

    ``describe`` names what the method was built from (e.g. "meanP on dvtr-tiny"), for the message.
    """
    own = method.state_dict()
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    shapes = [f"{k} {tuple(sd[k].shape)} vs {tuple(own[k].shape)}" for k in own
              if k in sd and tuple(sd[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or shapes:
        parts = []
        if shapes:
            parts.append(f"{len(shapes)} weights of another shape (checkpoint vs model; e.g. {'; '.join(shapes[:3])})")
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
        raise InputError(f"the checkpoint does not fit {describe}: {'; '.join(parts)}. Was it written by this "
                         "run (same method, options, backbone and image size)?", file=path)
    method.load_state_dict(sd, strict=True)


def load_saved(target: str | Path, seed: int | None = None, device: str | torch.device = "cpu") -> SavedModel:
    """A run's checkpoint as a frozen method, every weight loaded.

    Args:
        target: a run folder (holding ``run.json``; its ``seed<S>/best.pt`` is loaded) or a checkpoint file inside
            one (``<run>/seed<S>/best.pt``, ``last.pt``).
        seed: which seed of a run folder; default the seed named by the checkpoint's folder, else the run's first.
        device: where the method runs.

    Raises:
        InputError: not a run folder, a zero-shot run (nothing was trained), an unknown seed, a missing,
            unreadable or foreign checkpoint, one written for another method, weights that do not fit.
    """
    from dvtr_bench.models.registry import create_method

    run_dir, ckpt, ckpt_seed = locate(target)
    doc = read_run(run_dir)
    seeds = run_seeds(doc)
    if seed is None:
        seed = ckpt_seed
    elif ckpt_seed is not None and seed != ckpt_seed:
        raise InputError(f"the checkpoint is seed {ckpt_seed}'s, not seed {seed}'s", file=ckpt)
    if seed is None:
        if not seeds:
            raise InputError("run.json lists no finished seed (the run did not complete)", file=run_dir / "run.json")
        seed = seeds[0]
    elif ckpt is None and seeds and seed not in seeds:
        raise InputError(f"the run has no seed {seed} (it has {', '.join(map(str, seeds))})", file=run_dir)
    recipe = doc["recipe"]
    if doc.get("zero_shot") and ckpt is None:
        raise InputError("a zero-shot run has no trained checkpoint: its model is the backbone's weights as they "
                         "are; evaluate those with `dvtr run-baseline METHOD --zero-shot --dataset DS`",
                         file=run_dir)
    if ckpt is None:
        ckpt = run_dir / f"seed{seed}" / SELECTED
    if not ckpt.is_file():
        raise InputError(f"checkpoint not found: the run has no selected checkpoint for seed {seed} (was its "
                         "training finished? `dvtr run-baseline` writes it when validation selects an epoch)",
                         file=ckpt)
    sd, info = read_state(ckpt)
    written_by = info.get("method")
    if isinstance(written_by, str) and written_by != recipe["method"]:
        raise InputError(f"the checkpoint was written by method {written_by}, but its run {run_dir.name} is "
                         f"{recipe['method']}'s", file=ckpt)
    model_cfg = recipe.get("model") or {}
    # The checkpoint replaces every weight, so the recipe's base weights are never fetched (offline-safe);
    # a fixed seed makes the throw-away initialisation reproducible.
    torch.manual_seed(seed)
    try:
        method = create_method(recipe, pretrained=None)
    except ConfigError as exc:
        raise InputError(f"cannot rebuild the run's method from its run.json: {exc}", file=run_dir / "run.json") \
            from None
    load_into(method, sd, ckpt, f"the run's recipe ({recipe['method']} on {model_cfg.get('backbone')})")
    method.eval()
    method.to(device)
    epoch = info.get("epoch")
    val = info.get("val")
    return SavedModel(method=method, recipe=recipe, run_dir=run_dir, run_doc=doc, seed=int(seed), checkpoint=ckpt,
                      checkpoint_sha256=file_sha256(ckpt), epoch=int(epoch) if isinstance(epoch, int) else None,
                      selected=ckpt.name == SELECTED,
                      validation=dict(val) if isinstance(val, dict) else None)


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", s).strip("_") or "dataset"


def evaluate_saved(target: str | Path, dataset: Any, out: str | Path | None = None, *,
                   seeds: Sequence[int] | None = None, device: str = "auto",
                   eval_batch_size: int | None = None, workers: int | None = None,
                   progress: ProgressFn | None = None) -> Path:
    """Evaluate a saved model on a dataset's test split and write a result record; return its path.

    Args:
        target: a run folder (every finished seed's ``best.pt``, the checkpoints selected on validation) or one
            checkpoint inside a run (that seed only).
        dataset: a dvtr dataset folder, a Hub repo id or a ``datasets.DatasetDict`` with a ``test`` split.
        out: the folder receiving ``record.json`` and ``scores_seed<S>.npz``; default
            ``<run>/eval-<dataset name>-<test fingerprint[:8]>``.
        seeds: restrict a run folder to these seeds.
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N``.
        eval_batch_size / workers: override the run's evaluation batch and data-loader workers.
        progress: progress callback (main process only).

    Raises:
        InputError: as :func:`load_saved`; a dataset without a test split. ConfigError: bad device.
    """
    from dvtr_bench.engine import distributed as D
    from dvtr_bench.engine.evaluate import evaluate
    from dvtr_bench.engine.run import SeedOutcome, _dataset_name, _load, _make_record
    from dvtr_bench.engine.trainer import TrainConfig
    from dvtr_bench.protocol.fingerprint import clip_digests, fingerprint_from_digests
    from dvtr_bench.protocol.record import write_record

    run_dir, ckpt, ckpt_seed = locate(target)
    doc = read_run(run_dir)
    if ckpt is not None:
        if seeds is not None and (len(seeds) != 1 or (ckpt_seed is not None and seeds[0] != ckpt_seed)):
            raise ConfigError(f"a checkpoint is one seed's model ({ckpt}); --seeds selects among a run folder's")
        plan: list[tuple[str | Path, int | None]] = [(ckpt, seeds[0] if seeds else None)]
    else:
        have = run_seeds(doc)
        want = [int(s) for s in seeds] if seeds is not None else have
        unknown = [s for s in want if s not in have]
        if not have:
            raise InputError("run.json lists no finished seed (the run did not complete)", file=run_dir / "run.json")
        if unknown or not want:
            raise InputError(f"the run has no finished seed {', '.join(map(str, unknown))} (it has "
                             f"{', '.join(map(str, have))})", file=run_dir)
        plan = [(run_dir, s) for s in want]

    info, dev = D.init(device)
    ds = _load(dataset)
    have_splits = list(ds.keys()) if hasattr(ds, "keys") else []
    if "test" not in have_splits:
        raise InputError(f"dataset has no test split (has: {', '.join(have_splits) or 'none'})",
                         file=str(dataset) if isinstance(dataset, (str, Path)) else None)
    tcfg = TrainConfig.from_dict(doc.get("train") or (doc["recipe"].get("train") or {}))
    batch = eval_batch_size or tcfg.eval_batch_size
    n_workers = tcfg.num_workers if workers is None else workers

    def report(task: str, **kw: Any) -> None:
        if progress is not None and info.is_main:
            progress(Progress(task=task, **kw))

    digests = clip_digests(ds["test"])
    fingerprint = fingerprint_from_digests(list(digests), list(digests.values()))
    out_dir = Path(out) if out is not None else run_dir / f"eval-{_slug(_dataset_name(dataset))}-{fingerprint[:8]}"
    if out_dir.resolve() == run_dir.resolve():
        # the run's own record.json and score files live there
        raise ConfigError(f"--out {out_dir} is the run folder itself; give another folder (default: a subfolder "
                          "eval-<dataset>-<fingerprint> of the run)")
    if info.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
    D.barrier()
    by_seed = {int(s["seed"]): s for s in doc.get("seeds") or [] if isinstance(s, dict) and "seed" in s}
    outcomes: list[SeedOutcome] = []
    loaded: list[SavedModel] = []
    t0 = time.perf_counter()
    for i, (where, seed) in enumerate(plan):
        report("seeds", completed=i, total=len(plan), info={"seed": seed if seed is not None else ckpt_seed})
        saved = load_saved(where, seed=seed, device=dev)
        loaded.append(saved)
        scores_path = out_dir / f"scores_seed{saved.seed}.npz"
        res = evaluate(saved.method, ds["test"], device=dev, split_name="test", batch_size=batch,
                       text_batch_size=tcfg.text_batch_size, num_workers=n_workers, frame_cache=tcfg.frame_cache,
                       scores_path=scores_path, clip_digests=digests,
                       autocast=dev.type == "cuda" and tcfg.amp is not False, loader=tcfg.loader, progress=progress)
        trained = by_seed.get(saved.seed) or {}
        outcomes.append(SeedOutcome(
            seed=saved.seed, scores_path=scores_path, scores_sha256=res.scores_sha256, test_metrics=res.metrics,
            eval_clips_per_s=res.clips_per_s, eval_seconds=res.seconds, peak_memory_mb=res.peak_memory_mb,
            memory_kind=res.memory_kind, train_seconds=float(trained.get("train_seconds") or 0.0),
            best_epoch=saved.epoch, best_val=saved.validation or {},
            steps_per_epoch=list(trained.get("steps_per_epoch") or [])))
        report("seeds", completed=i + 1, total=len(plan), info={"test rsum": res.metrics.get("rsum", float("nan"))})

    record_path = out_dir / "record.json"
    if info.is_main:
        evaluated = evaluated_section(loaded, record_path)
        selection = "validation" if all(s.selected for s in loaded) else "last_epoch"
        record = _make_record(doc["recipe"], tcfg, loaded[0].method, digests, dataset, outcomes, False,
                              info.world_size, dev, time.perf_counter() - t0, record_path, progress,
                              checkpoint_selection=selection, evaluated=evaluated,
                              run_info={s.seed: {"checkpoint": s.relative_checkpoint, "best_epoch": s.epoch}
                                        for s in loaded})
        write_record(record, record_path)
    D.barrier()
    return record_path


def evaluated_section(models: Sequence[SavedModel], record_path: Path) -> dict[str, Any]:
    """The record's ``evaluated`` section: the run the checkpoints come from and each checkpoint's identity."""
    import os

    run_dir = models[0].run_dir
    try:
        run_rel = Path(os.path.relpath(run_dir.resolve(), record_path.resolve().parent)).as_posix()
    except ValueError:  # another drive (Windows)
        run_rel = str(run_dir.resolve())
    run_record: dict[str, Any] = {"config_hash": None, "dataset": None}
    rec_path = run_dir / str(models[0].run_doc.get("record") or "record.json")
    try:
        rec = json.loads(rec_path.read_text(encoding="utf-8"))
        run_record = {"config_hash": rec.get("config_hash"),
                      "dataset": {"name": rec["dataset"]["name"], "fingerprint": rec["dataset"]["fingerprint"]}}
    except (OSError, ValueError, KeyError, TypeError):
        pass  # a run whose record was deleted still names its checkpoints
    return {"run": run_rel, "run_name": run_dir.name, "run_config_hash": run_record["config_hash"],
            "trained_on": run_record["dataset"],
            "checkpoints": [{"seed": s.seed, "path": s.relative_checkpoint, "sha256": s.checkpoint_sha256,
                             "epoch": s.epoch} for s in models]}
