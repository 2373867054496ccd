"""Test-wide settings: no network, a fresh datasets cache, and quiet third-party loggers."""

from __future__ import annotations

import os
import shutil
import tempfile

# Set before datasets / huggingface_hub are imported anywhere (they read these at import time, and test
# modules import them at collection): tests must never reach a hub, and a stale cache can hide a dataset whose
# images are stored as paths instead of bytes.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
_CACHE = tempfile.mkdtemp(prefix="dvtr-test-hf-cache-")
os.environ["HF_DATASETS_CACHE"] = _CACHE


def pytest_sessionfinish(session: object, exitstatus: int) -> None:
    shutil.rmtree(_CACHE, ignore_errors=True)
