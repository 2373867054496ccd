"""Method registry, recipes (``baselines/<method>.json``) and ``create_method``.

A recipe is ``{"method": name, "model": {"backbone", "pretrained", "options": {...}}, "train": {...},
"source": {...}}``. ``model.options`` are the method's constructor options; ``train`` is read by the trainer
(lr, backbone_lr, epochs, batch_size, warmup, weight_decay, grad_clip, ...); ``source`` cites where each value
comes from. ``baselines/demo.json`` is an overlay that swaps in the tiny backbone and demo-sized training.
"""

from __future__ import annotations

import copy
import importlib
import json
from pathlib import Path
from typing import Any, Mapping

from dvtr_bench.errors import ConfigError

_METHODS: dict[str, type] = {}
# name -> module; imported on first use so that listing methods does not build anything
_MODULES = {
    "meanP": "dvtr_bench.models.meanp",
    "seqLSTM": "dvtr_bench.models.seqlstm",
    "seqTransf": "dvtr_bench.models.seqtransf",
    "tightTransf": "dvtr_bench.models.tighttransf",
    "xpool": "dvtr_bench.models.xpool",
    "msam": "dvtr_bench.models.msam",
}
_ALIASES = {k.lower(): k for k in _MODULES} | {"x-pool": "xpool", "clip4clip": "meanP"}

# the repo checkout's baselines/ (editable installs), then ./baselines for a user's own recipes
REPO_BASELINES = Path(__file__).resolve().parents[2] / "baselines"
_UNSET: Any = ...


def register(cls: type) -> type:
    """Class decorator: make a :class:`RetrievalMethod` subclass creatable by its ``name``."""
    _METHODS[cls.name] = cls
    return cls


def list_methods() -> list[str]:
    return list(_MODULES)


def canonical_name(name: str) -> str:
    key = _ALIASES.get(str(name).lower())
    if key is None:
        raise ConfigError(f"unknown method {name!r}; known: {', '.join(_MODULES)}")
    return key


def method_class(name: str) -> type:
    name = canonical_name(name)
    if name not in _METHODS:
        importlib.import_module(_MODULES[name])
    return _METHODS[name]


def baselines_dir() -> Path | None:
    for d in (REPO_BASELINES, Path.cwd() / "baselines"):
        if d.is_dir():
            return d
    return None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as e:
        raise ConfigError(f"recipe not found: {path}") from e
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: not valid JSON ({e})") from e
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a recipe must be a JSON object")
    return data


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` wins; nested dicts are merged key by key."""
    out = copy.deepcopy(dict(base))
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def load_recipe(name_or_path: str | Path | Mapping[str, Any], overlay: str | Path | Mapping[str, Any] | None = None
                ) -> dict[str, Any]:
    """A recipe as a dict, from a method name (``baselines/<name>.json``), a JSON path, or a dict.

    ``overlay`` (``"demo"``, a path or a dict) is merged on top: its ``model`` and ``train`` sections, then its
    ``per_method[<method>]`` section. The result records the overlay's name under ``"overlay"``.
    """
    if isinstance(name_or_path, Mapping):
        recipe = copy.deepcopy(dict(name_or_path))
    else:
        p = Path(name_or_path)
        if p.suffix == ".json" or p.is_file():
            recipe = _read_json(p)
        else:
            name = canonical_name(str(name_or_path))
            d = baselines_dir()
            if d is None or not (d / f"{name}.json").is_file():
                # Without the repo's baselines/ folder the method still has its built-in (paper) defaults.
                recipe = {"method": name, "model": {"backbone": "ViT-B-32", "pretrained": "openai", "options": {}},
                          "train": {}}
            else:
                recipe = _read_json(d / f"{name}.json")
    if "method" not in recipe:
        raise ConfigError("a recipe needs a 'method' field")
    recipe["method"] = canonical_name(recipe["method"])
    recipe.setdefault("model", {}).setdefault("options", {})
    recipe.setdefault("train", {})
    if overlay is not None:
        if isinstance(overlay, Mapping):
            over, label = dict(overlay), "custom"
        else:
            op = Path(overlay)
            if op.suffix != ".json" and not op.is_file():
                d = baselines_dir()
                op = (d / f"{overlay}.json") if d is not None else op
            over, label = _read_json(op), op.stem
        per = (over.get("per_method") or {}).get(recipe["method"], {})
        recipe = deep_merge(recipe, {k: over[k] for k in ("model", "train") if k in over})
        recipe = deep_merge(recipe, per)
        recipe["overlay"] = label
    return recipe


def create_method(name_or_recipe: Any, backbone: str | None = None, pretrained: Any = _UNSET,
                  device: str | Any = "cpu", image_size: int | None = None, **overrides: Any) -> Any:
    """Build a method from a name, a recipe dict or a recipe path (see :func:`dvtr_bench.models.create_method`)."""
    from dvtr_bench.models.backbone import create_backbone

    recipe = load_recipe(name_or_recipe)
    model_cfg = recipe["model"]
    bb_name = backbone or model_cfg.get("backbone") or "ViT-B-32"
    pre = model_cfg.get("pretrained", "openai") if pretrained is _UNSET else pretrained
    options = dict(model_cfg.get("options") or {})
    options.update(overrides)
    cls = method_class(recipe["method"])
    bb = create_backbone(bb_name, pre, image_size=image_size or model_cfg.get("image_size"))
    try:
        method = cls(bb, **options)
    except TypeError as e:
        raise ConfigError(f"bad options for {cls.name}: {e}") from e
    method.config = {"method": cls.name, "backbone": bb_name, "pretrained": bb.pretrained,
                     "options": options, **{k: v for k, v in method.config.items()}}
    return method.to(device)
