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
    "meta": "optional JSON metadata (scene graph, ...), may be null",
    "telemetry": "flight telemetry over the clip from the video's DJI .SRT sidecar (position and altitudes at "
                 "start and end, distance, ground speed, heading, climb rate, camera settings), null without one",
}


# The clip row's types, as data: what clip_arrow_schema() and the card's dataset_info are made of without
# importing ``datasets`` (2-3 s, most of a short build's start-up). "list:" holds the element type; a dict is a
# struct. tests/test_dataset.py checks both against what ``datasets`` itself makes of clip_features().
def _row_types() -> dict[str, Any]:
    from dvtr_bench.video.telemetry import TELEMETRY_FIELDS

    return {"clip_id": "string", "video_id": "string", "split": "string", "start_s": "float64", "end_s": "float64",
            "fps": "float64", "width": "int32", "height": "int32", "captions": ["string"], "frames": ["image"],
            "frame_times_s": ["float64"], "segmenter": "string", "segmenter_params": "string", "label": "string",
            "clip_path": "string", "meta": "string", "telemetry": dict(TELEMETRY_FIELDS)}


def _arrow_type(t: Any) -> Any:
    import pyarrow as pa

    if isinstance(t, list):
        return pa.list_(_arrow_type(t[0]))
    if isinstance(t, dict):
        return pa.struct([(k, _arrow_type(v)) for k, v in t.items()])
    if t == "image":
        return pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    return {"string": pa.string(), "float64": pa.float64(), "int32": pa.int32()}[t]


def _feature_json(t: Any) -> Any:
    if isinstance(t, list):
        return {"feature": _feature_json(t[0]), "_type": "List"}
    if isinstance(t, dict):
        return {k: _feature_json(v) for k, v in t.items()}
    if t == "image":
        return {"_type": "Image"}
    return {"dtype": t, "_type": "Value"}


def clip_arrow_schema() -> Any:
    """The pyarrow schema of the shards, with the ``datasets`` features in its metadata (as
    ``clip_features().arrow_schema`` gives it), made without importing ``datasets``."""
    import json

    import pyarrow as pa

    types = _row_types()
    meta = json.dumps({"info": {"features": {k: _feature_json(v) for k, v in types.items()}}})
    return pa.schema([(k, _arrow_type(v)) for k, v in types.items()], metadata={"huggingface": meta})


def dataset_info_features_yaml() -> list[str]:
    """The ``features:`` lines of a card's ``dataset_info`` block, as ``datasets`` writes them."""
    out = ["  features:"]

    def one(name: str, t: Any, indent: str) -> list[str]:
        if isinstance(t, list):
            return [f"{indent}- name: {name}", f"{indent}  list: {t[0]}"]
        if isinstance(t, dict):
            lines = [f"{indent}- name: {name}", f"{indent}  struct:"]
            for k, v in t.items():
                lines += one(k, v, indent + "  ")
            return lines
        return [f"{indent}- name: {name}", f"{indent}  dtype: {t}"]

    for k, v in _row_types().items():
        out += one(k, v, "  ")
    return out


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
        "telemetry": telemetry_features(),
    })


def telemetry_features() -> Any:
    """The typed ``telemetry`` struct (fields of :data:`dvtr_bench.video.telemetry.TELEMETRY_FIELDS`)."""
    from datasets import Value

    from dvtr_bench.video.telemetry import TELEMETRY_FIELDS

    return {name: Value(dtype) for name, dtype in TELEMETRY_FIELDS.items()}
