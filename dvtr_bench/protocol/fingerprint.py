"""Dataset fingerprint: one hash that says "these results were computed on exactly this test split".

The leaderboard only ranks records that share a fingerprint, so the hash covers what changes a number:
which clips there are, their captions (in order: the order defines the rows of a score matrix) and the
exact bytes of the stored protocol frames. It ignores what does not (row order of the Parquet shards,
shard boundaries, the dataset card), so re-sharding or re-uploading a dataset keeps its fingerprint.

Definition (version 1)::

    row_digest(clip)  = sha256( canonical_json([clip_id, captions, [sha256(frame bytes) for each frame]]) )
    fingerprint       = sha256( "dvtr-fingerprint-v1\\n" + "".join(f"{clip_id}\\t{row_digest}\\n"
                                                                 for clips sorted by clip_id) )

Frames are hashed as stored (JPEG bytes), never decoded: decoding is slow and decoder-dependent.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Optional, Sequence

from dvtr_bench.errors import InputError
from dvtr_bench.progress import Progress, ProgressFn

FINGERPRINT_VERSION = 1
_PREFIX = b"dvtr-fingerprint-v1\n"


def dataset_fingerprint(split_dataset: Any, batch_size: int = 64, progress: Optional[ProgressFn] = None) -> str:
    """sha256 (hex) of a dataset split's content: sorted clip ids, captions and the frames' stored bytes.

    Args:
        split_dataset: a ``datasets.Dataset`` with at least the columns ``clip_id``, ``captions`` and
            ``frames`` of :func:`dvtr_bench.dataset.schema.clip_features` (one split, e.g. ``ds["test"]``).
        batch_size: rows read at a time.
        progress: optional callback, task ``"fingerprint"`` counted in clips.

    Raises:
        TypeError: given a ``DatasetDict`` (pick the split first) or something that is not a Dataset.
        InputError: missing columns, duplicate clip ids, a frame with neither bytes nor a readable path.
    """
    digests = clip_digests(split_dataset, batch_size=batch_size, progress=progress)
    return fingerprint_from_digests(list(digests), list(digests.values()))


def clip_digests(split_dataset: Any, batch_size: int = 64, progress: Optional[ProgressFn] = None) -> dict[str, str]:
    """``clip_id -> row digest`` of every clip of a split, in row order (the parts of its fingerprint).

    A score file stores these (``save_scores(..., clip_digests=...)``) so that the fingerprint a result
    record claims can be recomputed from the score file alone (:func:`fingerprint_from_digests`).
    Arguments and errors as :func:`dataset_fingerprint`.
    """
    import datasets

    if isinstance(split_dataset, datasets.DatasetDict):
        raise TypeError("dataset_fingerprint takes one split (e.g. ds['test']), not a DatasetDict")
    if not isinstance(split_dataset, datasets.Dataset):
        raise TypeError(f"expected a datasets.Dataset, got {type(split_dataset).__name__}")
    missing = {"clip_id", "captions", "frames"} - set(split_dataset.column_names)
    if missing:
        raise InputError(f"dataset split lacks columns {sorted(missing)} needed for its fingerprint")

    _check_frames_feature(split_dataset.features["frames"])
    # Read the Arrow storage of the Image feature (struct<bytes, path>) directly: that is what
    # Image(decode=False) returns, without casting (which would rewrite the table) and without decoding
    # (slow and Pillow-version dependent).
    ds = split_dataset.select_columns(["clip_id", "captions", "frames"]).with_format("arrow")

    digests: dict[str, str] = {}
    n = len(ds)
    for start in range(0, n, batch_size):
        batch = ds[start:start + batch_size].to_pydict()
        for clip_id, captions, frames in zip(batch["clip_id"], batch["captions"], batch["frames"]):
            if clip_id in digests:
                raise InputError(f"duplicate clip_id {clip_id!r}: a split's clip ids must be unique",
                                 record=clip_id)
            frame_hashes = [_frame_sha256(f, clip_id) for f in (frames or [])]
            digests[clip_id] = row_digest(clip_id, list(captions or []), frame_hashes)
        if progress is not None:
            progress(Progress("fingerprint", completed=min(n, start + batch_size), total=n))
    return digests


def row_digest(clip_id: str, captions: Sequence[str], frame_sha256s: Sequence[str]) -> str:
    """The digest of one clip: sha256 of the canonical JSON ``[clip_id, captions, frame sha256s]``."""
    row = json.dumps([clip_id, list(captions), list(frame_sha256s)], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(row.encode("utf-8")).hexdigest()


def fingerprint_from_digests(clip_ids: Sequence[str], digests: Sequence[str]) -> str:
    """The fingerprint of a split given each clip's :func:`row_digest` (any order).

    Raises:
        ValueError: lengths differ or a clip id appears twice.
    """
    if len(clip_ids) != len(digests):
        raise ValueError(f"{len(clip_ids)} clip ids but {len(digests)} digests")
    pairs = dict(zip(clip_ids, digests))
    if len(pairs) != len(clip_ids):
        raise ValueError("clip ids must be unique")
    h = hashlib.sha256(_PREFIX)
    for clip_id in sorted(pairs):
        h.update(f"{clip_id}\t{pairs[clip_id]}\n".encode("utf-8"))
    return h.hexdigest()


def _check_frames_feature(feature: Any) -> None:
    from datasets import Image, LargeList, List

    inner = feature.feature if isinstance(feature, (List, LargeList)) else (
        feature[0] if isinstance(feature, list) and len(feature) == 1 else None)
    if not isinstance(inner, Image):
        raise InputError(f"the frames column must be a list of images, got {feature}")


def _frame_sha256(frame: Any, clip_id: str) -> str:
    data = frame.get("bytes") if isinstance(frame, dict) else None
    if data is None:
        path = frame.get("path") if isinstance(frame, dict) else None
        if not path:
            raise InputError("a frame has neither bytes nor a path", record=clip_id)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as exc:
            raise InputError(f"cannot read frame file {path}: {exc}", record=clip_id) from exc
    return hashlib.sha256(data).hexdigest()
