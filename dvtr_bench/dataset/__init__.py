"""The dataset build pipeline: jobs per source video, executors, splits, audit and Hub layout.

    from dvtr_bench.dataset import BuildConfig, build
    result = build(["footage/videos"], "footage/annotations.jsonl", "ds/", BuildConfig())
"""

from dvtr_bench.dataset.config import BuildConfig
from dvtr_bench.dataset.hub import load_dataset, push_to_hub
from dvtr_bench.dataset.pipeline import BuildResult, build

__all__ = ["BuildConfig", "BuildResult", "build", "load_dataset", "push_to_hub"]
