"""The two registries of methods: recipe folders (what can be run) and method classes (what implements it).

**Recipes** are JSON files, one per leaderboard row recipe: ``{"method": name, "model": {"backbone", "pretrained",
"options": {...}}, "train": {...}, "source": {...}}``. ``model.options`` are the method's constructor options;
``train`` is read by the trainer; ``source`` cites where each value comes from. A file without a ``"method"`` field
is an *overlay* (``demo.json`` swaps in the tiny backbone and demo-sized training). Recipes are found in folders,
searched in order, the first holding ``<name>.json`` winning:

1. folders added with :func:`add_recipe_dir` (newest first), then those in ``$DVTR_RECIPE_PATH`` (``os.pathsep``
   separated), so a user's folder can add recipes or shadow a shipped one;
2. the shipped recipes: ``dvtr_bench/baselines`` in an installed wheel (built from the checkout's ``baselines/``,
   which stays the one source), or the checkout's ``baselines/`` when running from source or an editable install.

**Method classes** register themselves with :func:`register`; the built-in ones are the modules of
:mod:`dvtr_bench.models.methods`, one file per method, found by listing that package (no hand-kept list). A recipe's
``"method"`` names its class; a recipe may list ``"aliases"`` (``clip4clip`` for ``meanP``).

**Methods from outside the package** (docs/add-a-method.md): a recipe may name the module that defines its class
(``"module": "my_lab.maxp"``, imported before the class is looked up), and an installed package may declare its
methods and recipes with entry points: group ``dvtr.methods`` (each entry a module that registers classes) and group
``dvtr.recipes`` (each entry a package whose folder holds recipe JSON files, searched after the user's folders and
before the shipped ones).
"""

from __future__ import annotations

import copy
import difflib
import functools
import importlib
import inspect
import json
import os
import pkgutil
from pathlib import Path
from typing import Any, Collection, Mapping, Sequence

from dvtr_bench.errors import ConfigError

_METHODS: dict[str, type] = {}
_USER_DIRS: list[Path] = []
RECIPE_PATH_ENV = "DVTR_RECIPE_PATH"
_UNSET: Any = ...


# ------------------------------------------------------------------------------------------ method classes

def register(cls: type) -> type:
    """Class decorator: make a :class:`RetrievalMethod` subclass creatable by its ``name``."""
    _METHODS[cls.name] = cls
    return cls


@functools.lru_cache(maxsize=None)
def _import_builtin_methods() -> None:
    from dvtr_bench.models import methods

    for info in pkgutil.iter_modules(methods.__path__):
        importlib.import_module(f"{methods.__name__}.{info.name}")
    for ep in _entry_points(METHODS_GROUP):
        _import_plugin(ep.value, f"entry point {ep.name!r} ({METHODS_GROUP}) of {_dist_name(ep)}")


METHODS_GROUP = "dvtr.methods"
RECIPES_GROUP = "dvtr.recipes"


def _entry_points(group: str) -> list[Any]:
    from importlib.metadata import entry_points

    return sorted(entry_points(group=group), key=lambda ep: ep.name)


def _dist_name(ep: Any) -> str:
    dist = getattr(ep, "dist", None)
    return f"the installed package {dist.name}" if dist is not None else "an installed package"


def _import_plugin(module: str, origin: str) -> Any:
    try:
        return importlib.import_module(module.split(":")[0])
    except Exception as exc:  # an ImportError, or any error raised while the plugin module runs
        raise ConfigError(f"{origin} names the module {module!r}, which cannot be imported: "
                          f"{type(exc).__name__}: {exc}") from exc


def list_methods() -> list[str]:
    """Names of the registered method classes (the built-in ones and any registered since), sorted."""
    _import_builtin_methods()
    return sorted(_METHODS, key=str.lower)


def method_class(name: str) -> type:
    """The class registered under ``name`` (case-insensitive)."""
    _import_builtin_methods()
    by_lower = {k.lower(): k for k in _METHODS}
    key = by_lower.get(str(name).lower())
    if key is None:
        raise ConfigError(f"no method class is registered as {name!r}; registered: {', '.join(list_methods())}")
    return _METHODS[key]


# ------------------------------------------------------------------------------------------------ recipes

def builtin_recipe_dir() -> Path:
    """The shipped recipe folder: the wheel's ``dvtr_bench/baselines``, else the checkout's ``baselines/``."""
    package = Path(__file__).resolve().parents[1]
    for d in (package / "baselines", package.parent / "baselines"):
        if d.is_dir():
            return d
    raise ConfigError(f"this dvtr install has no recipe folder (looked for {package / 'baselines'} and "
                      f"{package.parent / 'baselines'}); reinstall the package")


def add_recipe_dir(path: str | Path) -> None:
    """Search ``path`` for recipes before every folder known so far (like open_clip's ``add_model_config``)."""
    p = Path(path).expanduser().resolve()
    if not p.is_dir():
        raise ConfigError(f"recipe folder {path} does not exist")
    if p in _USER_DIRS:
        _USER_DIRS.remove(p)
    _USER_DIRS.insert(0, p)


def recipe_dirs() -> list[Path]:
    """Folders searched for recipes, first match wins."""
    env = [Path(p).expanduser() for p in os.environ.get(RECIPE_PATH_ENV, "").split(os.pathsep) if p]
    for p in env:
        if not p.is_dir():
            raise ConfigError(f"${RECIPE_PATH_ENV} names {p}, which is not a folder")
    return [*_USER_DIRS, *env, *_plugin_recipe_dirs(), builtin_recipe_dir()]


def _plugin_recipe_dirs() -> list[Path]:
    dirs = []
    for ep in _entry_points(RECIPES_GROUP):
        module = _import_plugin(ep.value, f"entry point {ep.name!r} ({RECIPES_GROUP}) of {_dist_name(ep)}")
        dirs.append(Path(module.__file__).resolve().parent)
    return dirs


def list_recipes(overlays: bool = False) -> dict[str, Path]:
    """Recipe name -> file, over every recipe folder (the first folder holding a name wins).

    Method recipes (files with a ``"method"`` field) by default; ``overlays=True`` lists the overlays instead.
    """
    found: dict[str, Path] = {}
    for d in recipe_dirs():
        for f in sorted(d.glob("*.json")):
            if f.stem in found:
                continue
            is_overlay = "method" not in _read_json(f)
            if is_overlay == overlays:
                found[f.stem] = f
    return found


def _find_recipe(name: str, overlays: bool = False) -> Path:
    recipes = list_recipes(overlays=overlays)
    if name in recipes:
        return recipes[name]
    lower = name.lower()
    for stem, path in recipes.items():
        if stem.lower() == lower:
            return path
        if not overlays and lower in (str(a).lower() for a in _read_json(path).get("aliases", ())):
            return path
    if name in list_recipes(overlays=not overlays):
        hint = ("is an overlay, not a method recipe: apply it on top of one (--config / overlay=)" if not overlays
                else "is a method recipe, not an overlay")
        raise ConfigError(f"{name!r} {hint}")
    what = "overlay" if overlays else "method or recipe"
    raise ConfigError(f"unknown {what} {name!r}; known: {', '.join(sorted(recipes))} "
                      f"(searched {', '.join(str(d) for d in recipe_dirs())})")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text())
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


def _is_path(value: str | Path) -> bool:
    p = Path(value)
    return p.suffix == ".json" or p.is_file()


# Every key a recipe or an overlay may hold, per section: anything else is a typo or a misplaced key, and a run
# that silently ignored it would record a configuration it never used.
# "reconstruction": true marks a method rebuilt from a paper without its authors' code (named so in every table);
# "note" is free text beside the description.
RECIPE_KEYS = ("method", "aliases", "description", "note", "reconstruction", "module", "model", "train", "protocol",
               "source", "overlay")
OVERLAY_KEYS = ("description", "model", "train", "per_method", "source")
MODEL_KEYS = ("backbone", "pretrained", "image_size", "options")
PROTOCOL_KEYS = ("num_frames", "max_tokens", "seeds", "checkpoint_selection")
SET_SECTIONS = ("model", "train")
# Names the releases' argument parsers use for train keys: offered as the "did you mean" of an unknown key.
TRAIN_KEY_SYNONYMS = {"learning_rate": "lr", "clip_lr": "backbone_lr", "noclip_lr": "lr", "num_epochs": "epochs",
                      "lr_backbone": "backbone_lr", "warmup_ratio": "warmup"}


def check_keys(section: Any, known: Collection[str], where: str, prefix: str = "",
               synonyms: Mapping[str, str] | None = None) -> None:
    """Raise a :class:`ConfigError` naming ``where`` for the first key of ``section`` not in ``known``.

    The message offers the closest known key (did you mean ...?; ``synonyms`` maps names other projects use,
    such as ``learning_rate``, to ours) and lists them all.
    """
    if not isinstance(section, Mapping):
        raise ConfigError(f"{where}: {prefix.rstrip('.') or 'the file'} must be a JSON object "
                          f"(got {type(section).__name__})")
    for key in section:
        if key not in known:
            close = ([synonyms[key]] if synonyms and key in synonyms else
                     difflib.get_close_matches(str(key), [str(k) for k in known], n=1, cutoff=0.6))
            hint = f" (did you mean {prefix}{close[0]!s}?)" if close else ""
            listing = ", ".join(sorted(known)) or "none"
            raise ConfigError(f"{where}: unknown key {prefix}{key}{hint}; known: {listing}")


def method_options(cls: type) -> tuple[str, ...]:
    """The options a method class accepts: the named parameters of its constructor after the backbone."""
    params = list(inspect.signature(cls.__init__).parameters.values())[2:]  # self, backbone
    return tuple(p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))


def _check_model(model: Any, where: str, cls: type | None, prefix: str = "model.") -> None:
    check_keys(model, MODEL_KEYS, where, prefix)
    options = model.get("options")
    if options is None:
        return
    if not isinstance(options, Mapping):
        raise ConfigError(f"{where}: {prefix}options must be a JSON object (got {type(options).__name__})")
    if cls is not None:
        check_keys(options, method_options(cls), where, f"{prefix}options.")


def validate_recipe(recipe: Mapping[str, Any], where: str, train_keys: Collection[str] | None = None) -> None:
    """Check every section of a method recipe for unknown keys (``train_keys``: those of the trainer, if given)."""
    check_keys(recipe, RECIPE_KEYS, where)
    if not isinstance(recipe.get("reconstruction", False), bool):
        raise ConfigError(f"{where}: reconstruction must be true or false (got {recipe['reconstruction']!r})")
    cls = method_class(recipe["method"]) if "method" in recipe else None
    _check_model(recipe.get("model") or {}, where, cls)
    check_keys(recipe.get("protocol") or {}, PROTOCOL_KEYS, where, "protocol.")
    if train_keys is not None:
        check_keys(recipe.get("train") or {}, train_keys, where, "train.", TRAIN_KEY_SYNONYMS)


def validate_overlay(over: Mapping[str, Any], where: str, train_keys: Collection[str] | None = None) -> None:
    """Check an overlay: its sections, and each ``per_method`` entry (a registered method, model/train only)."""
    check_keys(over, OVERLAY_KEYS, where)
    _check_model(over.get("model") or {}, where, None)
    if train_keys is not None:
        check_keys(over.get("train") or {}, train_keys, where, "train.", TRAIN_KEY_SYNONYMS)
    per = over.get("per_method") or {}
    if not isinstance(per, Mapping):
        raise ConfigError(f"{where}: per_method must be a JSON object of method name -> overrides")
    by_lower = {m.lower(): m for m in list_methods()}
    for name, section in per.items():
        if str(name).lower() not in by_lower:
            check_keys({name: None}, list_methods(), where, "per_method.")
        cls = method_class(name)
        check_keys(section, ("model", "train"), where, f"per_method.{name}.")
        _check_model(section.get("model") or {}, where, cls, f"per_method.{name}.model.")
        if train_keys is not None:
            check_keys(section.get("train") or {}, train_keys, where, f"per_method.{name}.train.",
                       TRAIN_KEY_SYNONYMS)


def parse_assignment(text: str) -> dict[str, Any]:
    """``"train.lr=1e-5"`` -> ``{"train": {"lr": 1e-05}}``: the value is JSON if it parses as JSON, else a string.

    Dotted paths nest (``model.options.dropout=0.1``); the first part must be one of :data:`SET_SECTIONS`.
    """
    path, sep, raw = str(text).partition("=")
    parts = [p.strip() for p in path.split(".")]
    if not sep or len(parts) < 2 or not all(parts):
        raise ConfigError(f"--set {text!r}: write SECTION.KEY=VALUE, e.g. train.lr=1e-5 or "
                          "model.options.dropout=0.1")
    if parts[0] not in SET_SECTIONS:
        check_keys({parts[0]: None}, SET_SECTIONS, f"--set {text}")
    try:
        value: Any = json.loads(raw)
    except ValueError:
        value = raw
    out: dict[str, Any] = {}
    node = out
    for p in parts[:-1]:
        node = node.setdefault(p, {})
    node[parts[-1]] = value
    return out


def read_overlay(overlay: str | Path | Mapping[str, Any]) -> tuple[dict[str, Any], str, str]:
    """An overlay as ``(dict, label, where)``: from a name in the recipe folders, a JSON path or a dict."""
    if isinstance(overlay, Mapping):
        return copy.deepcopy(dict(overlay)), "custom", "the overlay"
    op = Path(overlay) if _is_path(overlay) else _find_recipe(str(overlay), overlays=True)
    return _read_json(op), op.stem, str(op)


def apply_overlay(recipe: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``recipe`` with the overlay's ``model`` and ``train`` sections, then its ``per_method[<method>]``, merged in."""
    per = (over.get("per_method") or {})
    by_lower = {str(k).lower(): v for k, v in per.items()}
    out = deep_merge(recipe, {k: over[k] for k in ("model", "train") if k in over})
    return deep_merge(out, by_lower.get(str(recipe["method"]).lower(), {}))


def load_recipe(name_or_path: str | Path | Mapping[str, Any],
                overlay: str | Path | Mapping[str, Any] | Sequence[str | Path | Mapping[str, Any]] | None = None,
                train_keys: Collection[str] | None = None) -> dict[str, Any]:
    """A recipe as a dict, from a recipe name (see the module docstring), a JSON path, or a dict.

    ``overlay`` (an overlay name such as ``"demo"``, a path or a dict, or a list of them applied in order) is
    merged on top: its ``model`` and ``train`` sections, then its ``per_method[<method>]`` section. The result
    records the overlays' names under ``"overlay"`` (joined by ``+``). A name that matches no recipe, and a key no
    section knows (with ``train_keys``, the trainer's keys, for ``train`` sections), is a :class:`ConfigError`.
    """
    if isinstance(name_or_path, Mapping):
        recipe = copy.deepcopy(dict(name_or_path))
        where = "the recipe"
    elif _is_path(name_or_path):
        recipe = _read_json(Path(name_or_path))
        where = str(name_or_path)
    else:
        path = _find_recipe(str(name_or_path))
        recipe, where = _read_json(path), str(path)
    if "method" not in recipe:
        raise ConfigError(f"{where}: a recipe needs a 'method' field (a file without one is an overlay: pass it "
                          "as the overlay)")
    if recipe.get("module"):
        _import_plugin(str(recipe["module"]), f"recipe {where}")
    recipe["method"] = method_class(recipe["method"]).name
    validate_recipe(recipe, where, train_keys)
    recipe.setdefault("model", {}).setdefault("options", {})
    recipe.setdefault("train", {})
    if overlay is None:
        return recipe
    overlays = [overlay] if isinstance(overlay, (str, Path, Mapping)) else list(overlay)
    labels = [str(recipe["overlay"])] if recipe.get("overlay") else []
    for item in overlays:
        over, label, over_where = read_overlay(item)
        if "method" in over:
            raise ConfigError(f"{over_where} is a method recipe, not an overlay (it has a 'method' field)")
        validate_overlay(over, over_where, train_keys)
        recipe = apply_overlay(recipe, over)
        labels.append(label)
    recipe["overlay"] = "+".join(labels)
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
