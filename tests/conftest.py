"""Test-wide settings: no network, a fresh datasets cache, and quiet third-party loggers."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

# Set before datasets / huggingface_hub are imported anywhere (they read these at import time, and test
# modules import them at collection): tests must never reach a hub, and a stale cache can hide a dataset whose
# images are stored as paths instead of bytes.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
_CACHE = tempfile.mkdtemp(prefix="dvtr-test-hf-cache-")
os.environ["HF_DATASETS_CACHE"] = _CACHE
# caption parses and priors (dvtr_bench.text) are cached under $DVTR_CACHE_DIR: keep the tests' out of the user's
os.environ["DVTR_CACHE_DIR"] = os.path.join(_CACHE, "dvtr")


def pytest_sessionfinish(session: object, exitstatus: int) -> None:
    shutil.rmtree(_CACHE, ignore_errors=True)


# Shared test data, made once per session through the real entry points (dvtr_bench.testing).

@pytest.fixture(scope="session")
def footage():
    """The shared `dvtr synth` output folder (3 flights, 192x108, 25 fps): videos/, annotations.jsonl, shots.json."""
    from dvtr_bench.testing.footage import synth_footage

    return synth_footage()


@pytest.fixture(scope="session")
def learnable_splits():
    """A small learnable in-memory dataset (16 train / 8 validation / 8 test clips) shared by the engine tests."""
    from dvtr_bench.testing.learnable import learnable_dataset

    return learnable_dataset(n_train=16, n_val=8, n_test=8)


@pytest.fixture(scope="session")
def tiny_runs():
    """(dataset folder, {"meanP": run folder, "xpool": run folder}): a learnable dataset and two finished tiny runs,
    shared by the search, gallery and browser tests."""
    from dvtr_bench.testing.runs import tiny_runs

    return tiny_runs()


@pytest.fixture
def hide_import(monkeypatch):
    """``hide_import("spacy")``: importing that package (or a submodule) raises ImportError, as when it is not
    installed; undone at the end of the test."""
    import builtins

    real_import = builtins.__import__

    def hide(package: str) -> None:
        def fake(name, *args, **kwargs):
            if name == package or name.startswith(package + "."):
                raise ImportError(f"No module named '{package}'")
            return real_import(name, *args, **kwargs)

        monkeypatch.setattr(builtins, "__import__", fake)

    return hide
