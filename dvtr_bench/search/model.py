"""The model behind an index: loading it from a dvtr run or an open_clip backbone, and naming it exactly.

An index is only meaningful with the model that embedded it: a query embedded by another model lands in another
space, and its nearest clips are noise that looks like an answer. So every loaded model carries an *identity*
(recorded in ``index.json``) whose ``weights_sha256`` hashes every parameter and buffer of the method. Two models
are the same exactly when those hashes agree, whatever path, tag or device they were loaded from; a run retrained
in place, another seed, or a random initialisation drawn differently all change it.

Two ways to name a model:

* a dvtr run (``dvtr run-baseline`` output): its folder, or a checkpoint inside it (``<run>/seed<S>/best.pt``).
  The recipe comes from ``run.json``, the weights from the seed's ``best.pt`` -- the checkpoint selected on the
  validation split. A zero-shot run has no checkpoint: its recipe's backbone weights are the model.
* a backbone with weights, zero-shot: an open_clip model name and pretrained tag (or a local checkpoint, or none)
  under any registered method (meanP by default: the mean of CLIP's frame embeddings, CLIP's own zero-shot).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from dvtr_bench.errors import ConfigError, InputError


@dataclass
class LoadedModel:
    """A frozen method (in eval mode) with the identity an index records."""

    method: Any
    identity: dict[str, Any]
    details: dict[str, Any] = field(default_factory=dict)   # what was loaded (epoch, validation metrics), not identity

    @property
    def description(self) -> str:
        return describe(self.identity)


def describe(identity: dict[str, Any]) -> str:
    """One line naming a model identity, for messages and pages."""
    weights = identity.get("pretrained") or "random init"
    if identity.get("kind") == "run":
        where = f"run {_relative(identity.get('run'))}, seed {identity.get('seed')}"
        where += f" ({Path(str(identity['checkpoint'])).name})" if identity.get("checkpoint") else " (zero-shot run)"
    else:
        where = f"zero-shot, {weights}" + (f", seed {identity.get('seed')}" if weights == "random init" else "")
    return (f"{identity.get('method')} · {identity.get('backbone')} · {where} · weights "
            f"{str(identity.get('weights_sha256', ''))[:12]}")


def scoring_note(identity: dict[str, Any], candidates: int | None = None) -> str:
    """How an index of this model ranks, in one sentence for the user."""
    m = identity.get("method")
    if identity.get("dot_product"):
        return (f"{m}'s score is the inner product of independent text and clip embeddings: the index ranks clips "
                f"exactly as {m} does")
    c = f"the top {candidates}" if candidates else "the best"
    return (f"{m}'s score is not a dot product of independent embeddings (it looks at the caption and the clip "
            f"together): {c} candidates by the inner product of its candidate vectors are re-ranked with {m}'s own "
            "score" + ("; it is transductive, and a query is scored as a block of one caption"
                       if identity.get("transductive") else ""))


def _relative(path: Any) -> str:
    """A path below the working directory as a relative one (what the user typed), else as it is."""
    try:
        return str(Path(str(path)).resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(path)


def weights_sha256(method: torch.nn.Module) -> str:
    """sha256 over every parameter and buffer (name, dtype, shape, bytes), in sorted name order."""
    h = hashlib.sha256(b"dvtr-weights-v1\n")
    state = method.state_dict()
    for name in sorted(state):
        t = state[name].detach().to("cpu").contiguous()
        h.update(f"{name}\t{t.dtype}\t{tuple(t.shape)}\n".encode("utf-8"))
        # a uint8 view reads the raw bytes of any dtype (bfloat16 included) without a numpy conversion
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _finish(method: Any, identity: dict[str, Any], device: str | torch.device, details: dict[str, Any]) -> LoadedModel:
    method.eval()
    identity = {**identity, "dot_product": bool(getattr(method, "dot_product", False)),
                "transductive": bool(getattr(method, "transductive", False)),
                "weights_sha256": weights_sha256(method)}
    return LoadedModel(method.to(device), identity, details)


def load_run(run: str | Path, seed: int | None = None, device: str | torch.device = "cpu") -> LoadedModel:
    """A trained (or zero-shot) dvtr run as a frozen method.

    Args:
        run: the run folder (holding ``run.json``) or a checkpoint file inside it (``<run>/seed<S>/best.pt``).
        seed: which seed's checkpoint; default: the seed named by a checkpoint path, else the run's first seed.
        device: where the method runs.

    Raises:
        InputError: not a run folder, unknown seed, a missing or unreadable checkpoint, weights that do not fit.
    """
    from dvtr_bench.engine.saved import load_saved, locate, read_run, run_seeds
    from dvtr_bench.models.registry import create_method

    run_dir, ckpt, _ = locate(run)
    doc = read_run(run_dir)
    recipe = doc["recipe"]
    model_cfg = recipe.get("model") or {}
    if doc.get("zero_shot") and ckpt is None:
        seeds = run_seeds(doc)
        if seed is None:
            if not seeds:
                raise InputError("run.json lists no finished seed (the run did not complete)",
                                 file=run_dir / "run.json")
            seed = seeds[0]
        elif seeds and seed not in seeds:
            raise InputError(f"the run has no seed {seed} (it has {', '.join(map(str, seeds))})", file=run_dir)
        # Nothing was trained: the recipe's backbone weights are the model (random ones drawn from the seed).
        torch.manual_seed(seed)
        method = create_method(recipe)
        identity = {"kind": "run", "method": recipe["method"], "backbone": model_cfg.get("backbone"),
                    "pretrained": model_cfg.get("pretrained"), "options": dict(method.config.get("options") or {}),
                    "run": str(run_dir.resolve()), "seed": seed, "checkpoint": None, "checkpoint_sha256": None}
        return _finish(method, identity, device, {"zero_shot": True})
    # Every weight of the checkpoint, loaded strictly (the engine's loader: the same one `dvtr evaluate` uses).
    saved = load_saved(run, seed=seed)
    identity = {"kind": "run", "method": recipe["method"], "backbone": model_cfg.get("backbone"),
                "pretrained": model_cfg.get("pretrained"),
                "options": dict(saved.method.config.get("options") or {}), "run": str(run_dir.resolve()),
                "seed": saved.seed, "checkpoint": str(saved.checkpoint.resolve()),
                "checkpoint_sha256": saved.checkpoint_sha256}
    return _finish(saved.method, identity, device, {"epoch": saved.epoch, "validation": saved.validation})


def load_zero_shot(backbone: str, pretrained: Any = "openai", method: str = "meanP", seed: int = 0,
                   image_size: int | None = None, device: str | torch.device = "cpu") -> LoadedModel:
    """An open_clip backbone with its weights under a registered method, untrained (zero-shot).

    Args:
        backbone: an open_clip model name (``ViT-B-32``, ``dvtr-tiny``, ...).
        pretrained: an open_clip tag, a local checkpoint path, or None for random weights (drawn from ``seed``).
        method: a method or recipe name; meanP is CLIP's zero-shot retrieval.
        seed: seeds the initialisation of whatever the weights do not cover (new modules, or everything).
        image_size: vision input size (default: the backbone's).
        device: where the method runs.

    Raises:
        ConfigError: unknown backbone, tag or method; weights that cannot be fetched offline.
        InputError: a checkpoint path that does not exist.
    """
    from dvtr_bench.models.registry import create_method

    if isinstance(pretrained, str) and ("/" in pretrained or Path(pretrained).suffix) and \
            not Path(pretrained).expanduser().exists():
        raise InputError("checkpoint not found", file=pretrained)
    torch.manual_seed(seed)
    m = create_method(method, backbone=backbone, pretrained=pretrained, image_size=image_size)
    identity = {"kind": "zero-shot", "method": m.config.get("method", method), "backbone": backbone,
                "pretrained": m.config.get("pretrained"), "options": dict(m.config.get("options") or {}),
                "seed": seed, "image_size": image_size}
    return _finish(m, identity, device, {})


def load_identity(identity: dict[str, Any], device: str | torch.device = "cpu", file: str | Path | None = None
                  ) -> LoadedModel:
    """Load the model an index recorded (its run checkpoint, or its zero-shot backbone) and check it is the same.

    Raises:
        InputError: the recorded checkpoint is gone, or what loads from it now is another model (retrained in
            place, other weights behind the tag); ``file`` (the index manifest) is named in the message.
    """
    try:
        if identity.get("kind") == "run":
            model = load_run(identity.get("checkpoint") or identity["run"], seed=identity.get("seed"), device=device)
        elif identity.get("kind") == "zero-shot":
            model = load_zero_shot(identity["backbone"], identity.get("pretrained"), identity["method"],
                                   seed=int(identity.get("seed") or 0), image_size=identity.get("image_size"),
                                   device=device)
        else:
            raise InputError(f"unknown model kind {identity.get('kind')!r} in the index", file=file)
    except (InputError, ConfigError) as exc:
        raise InputError(f"cannot load the model this index was built with ({describe(identity)}): {exc}. "
                         "Pass the model with --run / --backbone if it moved, or rebuild the index.", file=file) from None
    check_same_model(identity, model, file=file)
    return model


def check_same_model(index_identity: dict[str, Any], model: LoadedModel, file: str | Path | None = None) -> None:
    """Raise :class:`InputError` unless ``model`` has the weights the index was built with."""
    if index_identity.get("weights_sha256") == model.identity.get("weights_sha256"):
        return
    raise InputError(
        f"the index was built with another model than the query's: index {describe(index_identity)}; query "
        f"{model.description}. Embeddings of different models are not comparable: search with the index's own "
        "model (leave out --run / --backbone), or rebuild the index with this one (`dvtr index ... --out NEW`).",
        file=file)


def load_model(run: str | Path | None = None, seed: int | None = None, backbone: str | None = None,
               pretrained: Any = "openai", method: str = "meanP", device: str | torch.device = "cpu") -> LoadedModel:
    """A model named either by a dvtr run (``run``, ``seed``) or by a backbone (``backbone``, ``pretrained``,
    ``method``, ``seed``): exactly one of ``run`` and ``backbone``.

    Raises:
        ConfigError: both or neither given. InputError / ConfigError: as :func:`load_run` / :func:`load_zero_shot`.
    """
    if (run is None) == (backbone is None):
        raise ConfigError("name the model with either --run RUN (a dvtr run folder or its checkpoint) or --backbone "
                          "NAME [--pretrained TAG] (zero-shot), not " + ("both" if run is not None else "neither"))
    if run is not None:
        return load_run(run, seed=seed, device=device)
    return load_zero_shot(str(backbone), pretrained, method=method, seed=0 if seed is None else seed, device=device)


def resolve_device(device: str) -> str:
    """``auto``: CUDA when available, else the CPU."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device
