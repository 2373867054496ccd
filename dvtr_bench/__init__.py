"""dvtr: drone video-text retrieval datasets and benchmarks."""

from __future__ import annotations

from typing import Any

from dvtr_bench._version import __version__

__all__ = ["__version__", "load_dataset"]


def load_dataset(path_or_repo_id: str, split: str | None = None, **kwargs: Any) -> Any:
    """Load a dvtr dataset from a local folder or a Hugging Face Hub repo id.

    Returns a ``datasets.DatasetDict`` (or a ``datasets.Dataset`` when ``split`` is given). Imported
    lazily so that ``import dvtr_bench`` stays cheap.
    """
    from dvtr_bench.dataset.hub import load_dataset as _load

    return _load(path_or_repo_id, split=split, **kwargs)
