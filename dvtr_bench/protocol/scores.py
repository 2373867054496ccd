"""Score files: the full (captions x clips) score matrix of one evaluation, saved so anyone can re-check it.

A score file is a ``.npz`` archive (readable with plain ``numpy.load``) holding

* ``scores``           ``[n_captions, n_clips]`` float32 or float64, higher = more similar;
* ``caption_to_clip``  ``[n_captions]`` int64, the column of each caption's own clip;
* ``clip_ids``         ``[n_clips]`` unicode, the dataset ``clip_id`` of each column;
* ``caption_ids``      ``[n_captions]`` unicode, optional (e.g. ``"{clip_id}#{k}"``);
* ``caption_texts``    ``[n_captions]`` unicode, optional;
* ``format_version``   scalar int (currently 1).

The bytes are deterministic -- same arrays, same file, same sha256 -- because every zip entry gets a fixed
timestamp and a fixed order; members are stored uncompressed, so :func:`load_scores` can memory-map the
matrix and the metrics engine reads it chunk by chunk (100k x 20k float32 is 8 GB on disk, and need not
be in RAM). No pickled objects are ever written or read.
"""

from __future__ import annotations

import hashlib
import os
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from dvtr_bench.errors import InputError

FORMAT_VERSION = 1
_FIXED_DATE = (1980, 1, 1, 0, 0, 0)
_MEMBERS = ("format_version", "scores", "caption_to_clip", "clip_ids", "caption_ids", "caption_texts")


@dataclass
class ScoreFile:
    """A loaded score file. ``scores`` may be a read-only ``np.memmap`` (``load_scores(..., mmap=True)``)."""

    path: Path
    sha256: str
    scores: np.ndarray
    caption_to_clip: np.ndarray
    clip_ids: list[str]
    caption_ids: Optional[list[str]] = None
    caption_texts: Optional[list[str]] = None
    format_version: int = FORMAT_VERSION

    @property
    def n_captions(self) -> int:
        return int(self.scores.shape[0])

    @property
    def n_clips(self) -> int:
        return int(self.scores.shape[1])


def save_scores(path: str | Path, scores: np.ndarray, caption_to_clip: np.ndarray | Sequence[int],
                clip_ids: Sequence[str], caption_ids: Optional[Sequence[str]] = None,
                caption_texts: Optional[Sequence[str]] = None) -> str:
    """Write a score file and return the sha256 (hex) of its bytes.

    Args:
        path: destination; ``.npz`` is the conventional suffix (not added automatically). Parent folders are
            created. The file is written to a temporary name and renamed, so a crash never leaves half a file.
        scores: ``[n_captions, n_clips]`` real matrix (torch tensors: pass ``t.cpu().numpy()``). float32 and
            float64 are kept as they are; other real dtypes are stored as float64 (float16 as float32).
        caption_to_clip: ``[n_captions]`` column index of each caption's own clip.
        clip_ids: ``[n_clips]`` dataset clip ids, in column order (must be unique).
        caption_ids / caption_texts: optional per-row identifiers / texts.

    Raises:
        ValueError: inconsistent shapes, ids, non-finite scores, or ``caption_to_clip`` out of range.
    """
    scores = np.asarray(scores)
    if scores.ndim != 2:
        raise ValueError(f"scores must be 2-D [n_captions, n_clips], got shape {scores.shape}")
    if scores.dtype.kind not in "fiu":
        raise ValueError(f"scores must be real numbers, got dtype {scores.dtype}")
    if scores.dtype == np.float16:
        scores = scores.astype(np.float32)
    elif scores.dtype not in (np.float32, np.float64):
        scores = scores.astype(np.float64)
    n_cap, n_clips = scores.shape
    if scores.dtype.kind == "f":
        # Row chunks: a full boolean mask of a 100k x 20k matrix would cost 2 GB.
        step = max(1, (1 << 24) // max(1, n_clips))
        for r0 in range(0, n_cap, step):
            block = scores[r0:r0 + step]
            if not np.isfinite(block).all():
                i, j = (int(x) for x in np.argwhere(~np.isfinite(block))[0])
                raise ValueError(f"scores[{r0 + i}, {j}] is {block[i, j]!r}: NaN and infinite scores are not "
                                 "allowed")
    c2c = np.asarray(caption_to_clip)
    if c2c.shape != (n_cap,) or c2c.dtype.kind not in "iu":
        raise ValueError(f"caption_to_clip must be {n_cap} integers, got shape {c2c.shape} dtype {c2c.dtype}")
    if n_cap and (c2c.min() < 0 or c2c.max() >= n_clips):
        raise ValueError(f"caption_to_clip must lie in [0, {n_clips})")
    clip_arr = _str_array(clip_ids, n_clips, "clip_ids")
    if len(set(clip_arr.tolist())) != n_clips:
        raise ValueError("clip_ids must be unique")
    arrays: dict[str, np.ndarray] = {
        "format_version": np.array(FORMAT_VERSION, dtype=np.int64),
        "scores": np.ascontiguousarray(scores),
        "caption_to_clip": c2c.astype(np.int64),
        "clip_ids": clip_arr,
    }
    if caption_ids is not None:
        arrays["caption_ids"] = _str_array(caption_ids, n_cap, "caption_ids")
    if caption_texts is not None:
        arrays["caption_texts"] = _str_array(caption_texts, n_cap, "caption_texts")

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
            for name in _MEMBERS:
                if name not in arrays:
                    continue
                info = zipfile.ZipInfo(f"{name}.npy", date_time=_FIXED_DATE)
                info.compress_type = zipfile.ZIP_STORED
                info.external_attr = 0o644 << 16
                with zf.open(info, "w", force_zip64=True) as fh:
                    np.lib.format.write_array(fh, arrays[name], allow_pickle=False)
        digest = _sha256(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return digest


def load_scores(path: str | Path, expected_sha256: Optional[str] = None, mmap: bool = False) -> ScoreFile:
    """Read a score file written by :func:`save_scores`.

    Args:
        path: the ``.npz`` file.
        expected_sha256: when given, the file's sha256 must equal it (else :class:`InputError`).
        mmap: memory-map the score matrix read-only instead of reading it into RAM.

    Raises:
        InputError: missing or unreadable file, wrong members or shapes, sha256 mismatch.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("score file not found", file=path)
    digest = _sha256(path)
    if expected_sha256 is not None and digest != expected_sha256:
        raise InputError(f"sha256 mismatch: file has {digest[:16]}…, expected {expected_sha256[:16]}… "
                         "(the file was replaced or modified)", file=path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            names = set(npz.files)
            missing = {"scores", "caption_to_clip", "clip_ids"} - names
            if missing:
                raise InputError(f"not a dvtr score file: missing {sorted(missing)}", file=path)
            version = int(npz["format_version"]) if "format_version" in names else FORMAT_VERSION
            c2c = npz["caption_to_clip"]
            clip_ids = npz["clip_ids"].tolist()
            caption_ids = npz["caption_ids"].tolist() if "caption_ids" in names else None
            caption_texts = npz["caption_texts"].tolist() if "caption_texts" in names else None
            scores = _memmap_member(path, "scores.npy") if mmap else npz["scores"]
    except InputError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, KeyError) as exc:
        raise InputError(f"cannot read score file: {exc}", file=path) from exc
    if version > FORMAT_VERSION:
        raise InputError(f"score file format {version} is newer than this dvtr ({FORMAT_VERSION})", file=path)
    if scores.ndim != 2 or c2c.shape != (scores.shape[0],) or len(clip_ids) != scores.shape[1]:
        raise InputError(f"inconsistent score file: scores {scores.shape}, caption_to_clip {c2c.shape}, "
                         f"{len(clip_ids)} clip ids", file=path)
    return ScoreFile(path=path, sha256=digest, scores=scores, caption_to_clip=c2c, clip_ids=clip_ids,
                     caption_ids=caption_ids, caption_texts=caption_texts, format_version=version)


def _str_array(values: Sequence[str], n: int, name: str) -> np.ndarray:
    arr = np.asarray([str(v) for v in values], dtype=np.str_)
    if arr.shape != (n,):
        raise ValueError(f"{name} must have {n} entries, got {arr.shape[0] if arr.ndim else 0}")
    if n == 0:
        arr = np.zeros(0, dtype="<U1")
    return arr


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 22):
            h.update(block)
    return h.hexdigest()


def _memmap_member(path: Path, member: str) -> np.ndarray:
    """Memory-map an uncompressed ``.npy`` member of a zip archive (np.load cannot do it for .npz)."""
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(member)
        if info.compress_type != zipfile.ZIP_STORED:
            raise ValueError(f"{member} is compressed and cannot be memory-mapped")
        with open(path, "rb") as f:
            f.seek(info.header_offset)
            local = f.read(30)
            if local[:4] != b"PK\x03\x04":
                raise ValueError("bad zip local header")
            name_len, extra_len = struct.unpack("<HH", local[26:30])
            data_start = info.header_offset + 30 + name_len + extra_len
            f.seek(data_start)
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            else:
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            offset = f.tell()
    if dtype.hasobject:
        raise ValueError("object arrays are not allowed in score files")
    return np.memmap(path, dtype=dtype, mode="r", shape=shape, offset=offset, order="F" if fortran else "C")


__all__ = ["FORMAT_VERSION", "ScoreFile", "save_scores", "load_scores"]
