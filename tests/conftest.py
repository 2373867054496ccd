"""Test-wide settings: no network, a fresh datasets cache, and quiet third-party loggers."""

from __future__ import annotations

import os

# Set before datasets / huggingface_hub are imported anywhere: tests must never reach a hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def _fresh_datasets_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    # A stale cache can hide a dataset whose images are stored as paths instead of bytes.
    os.environ["HF_DATASETS_CACHE"] = str(tmp_path_factory.mktemp("hf_datasets_cache"))
