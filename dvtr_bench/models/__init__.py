"""Retrieval methods behind one interface (see :mod:`dvtr_bench.models.base` and docs/methods.md).

``create_method("seqTransf", backbone="ViT-B-32", pretrained="openai")`` builds a method; ``list_methods()`` names
them; ``load_recipe("msam")`` reads ``baselines/msam.json``. Submodules import torch and open_clip, so they are
imported lazily here to keep ``import dvtr_bench.models`` cheap.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_method", "list_methods", "load_recipe", "count_parameters", "gflops_per_clip"]


def create_method(name_or_recipe: Any, backbone: str | None = None, pretrained: Any = ..., device: Any = "cpu",
                  image_size: int | None = None, **overrides: Any) -> Any:
    """Build a :class:`~dvtr_bench.models.base.RetrievalMethod`.

    ``name_or_recipe`` is a method name (``meanP``, ``seqLSTM``, ``seqTransf``, ``tightTransf``, ``xpool``,
    ``msam``, ``amfmn``), a recipe dict or the path of a recipe JSON. ``backbone`` is an open_clip model name (default
    ``ViT-B-32``, or the recipe's); ``pretrained`` is an open_clip tag (``"openai"``), a local checkpoint path or
    None for random init (default: the recipe's, else ``"openai"``). ``image_size`` overrides the vision input
    size (default: the backbone's, or the recipe's ``model.image_size``). ``overrides`` replace the method's options.
    """
    from dvtr_bench.models.registry import create_method as _create

    return _create(name_or_recipe, backbone=backbone, pretrained=pretrained, device=device, image_size=image_size,
                   **overrides)


def list_methods() -> list[str]:
    """Names of the registered methods."""
    from dvtr_bench.models.registry import list_methods as _list

    return _list()


def load_recipe(name_or_path: Any, overlay: Any = None) -> dict[str, Any]:
    """A method's recipe (``baselines/<name>.json``, a JSON path or a dict), with an optional overlay merged on top
    (``"demo"`` = ``baselines/demo.json``, a path or a dict)."""
    from dvtr_bench.models.registry import load_recipe as _load

    return _load(name_or_path, overlay=overlay)


def count_parameters(method: Any) -> dict[str, int]:
    """Parameter counts of a method: total, backbone, new."""
    from dvtr_bench.models.cost import count_parameters as _count

    return _count(method)


def gflops_per_clip(method: Any, num_frames: int | None = None) -> float:
    """Forward GFLOPs to encode one clip and score it against one caption."""
    from dvtr_bench.models.cost import gflops_per_clip as _gf

    return _gf(method, num_frames=num_frames)
