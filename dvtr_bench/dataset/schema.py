"""The clip row: one row per clip in every dvtr dataset (see docs/dataset-format.md).

Frames are the protocol frames, decoded once at build time and stored as JPEG, so every model is
evaluated on identical pixels whatever decoder the user has.
"""

from __future__ import annotations

from typing import Any

SPLITS = ("train", "validation", "test")

# Version of the on-disk layout (data/ shards, build/manifest.parquet, build/build.json); bump on breaking change.
FORMAT_VERSION = 1

# Column name -> short description; the order is the column order of the Parquet shards.
CLIP_COLUMNS: dict[str, str] = {
    "clip_id": "stable id of the clip, unique in the dataset",
    "video_id": "id of the source video (flight); splits are assigned per video_id",
    "split": "train / validation / test",
    "start_s": "clip start in the source video, seconds",
    "end_s": "clip end in the source video, seconds",
    "fps": "source frame rate",
    "width": "source width in pixels",
    "height": "source height in pixels",
    "captions": "list of captions of the clip",
    "frames": "protocol frames as JPEG images (12 under protocol v1)",
    "frame_times_s": "timestamp of each stored frame in the source video, seconds",
    "segmenter": "name of the segmenter that produced the clip",
    "segmenter_params": "JSON of the segmenter's parameters",
    "label": "optional class label (scene kind), may be null",
    "clip_path": "relative path of the exported clip, null when clips were not exported",
    "meta": "optional JSON metadata (scene graph, telemetry), may be null",
}


def clip_features() -> Any:
    """The ``datasets.Features`` of a clip row (imported lazily: ``datasets`` is slow to import)."""
    from datasets import Features, Image, List, Value

    return Features({
        "clip_id": Value("string"),
        "video_id": Value("string"),
        "split": Value("string"),
        "start_s": Value("float64"),
        "end_s": Value("float64"),
        "fps": Value("float64"),
        "width": Value("int32"),
        "height": Value("int32"),
        "captions": List(Value("string")),
        "frames": List(Image()),
        "frame_times_s": List(Value("float64")),
        "segmenter": Value("string"),
        "segmenter_params": Value("string"),
        "label": Value("string"),
        "clip_path": Value("string"),
        "meta": Value("string"),
    })
