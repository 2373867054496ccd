"""Score files: the full (captions x clips) score matrix of one evaluation, saved so anyone can re-check it.

A score file is a ``.npz`` archive (readable with plain ``numpy.load``, without pickle) holding

* ``scores``           ``[n_captions, n_clips]`` float32 or float64, higher = more similar;
* ``caption_to_clip``  ``[n_captions]`` int64, the column of each caption's own clip;
* ``clip_ids``         ``[n_clips]`` unicode, the dataset ``clip_id`` of each column;
* ``caption_ids``      ``[n_captions]`` unicode, the id of each row (``"{clip_id}#{k}"`` unless given);
* ``caption_texts``    ``[n_captions]`` unicode, optional: the texts that were scored;
* ``captions_sha256``  scalar unicode, :func:`captions_sha256` of the texts (kept even when the texts are not);
* ``clip_digests``     ``[n_clips]`` unicode, optional: each column's row digest in the test split's
                       fingerprint (:func:`dvtr_bench.protocol.fingerprint.clip_digests`);
* ``format_version``   scalar int (2; files of version 1 lack the caption hash and the digests).

The ids, the caption hash and the digests *bind* the matrix to the data it scores: from ``clip_ids`` and
``clip_digests`` the dataset fingerprint is recomputed (:attr:`ScoreFile.fingerprint`), so a result record
cannot claim a test split other than the one its scores were computed on. A file without digests (every
version-1 file) is *unbound*: it is still read, and the leaderboard says so.

The bytes are deterministic -- same arrays, same file, same sha256 -- because every zip entry gets a fixed
timestamp and a fixed order; members are stored uncompressed, so :func:`load_scores` can memory-map the
matrix and the metrics engine reads it chunk by chunk (100k x 20k float32 is 8 GB on disk, and need not
be in RAM). No pickled objects are ever written or read.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from dvtr_bench.errors import InputError
from dvtr_bench.provenance import file_sha256

FORMAT_VERSION = 2
_FIXED_DATE = (1980, 1, 1, 0, 0, 0)
_MEMBERS = ("format_version", "scores", "caption_to_clip", "clip_ids", "caption_ids", "caption_texts",
            "captions_sha256", "clip_digests")
_REQUIRED = ("scores", "caption_to_clip", "clip_ids")
_SHA256 = re.compile(r"[0-9a-f]{64}")
# Every zip archive starts with a local file header (or, when empty, the end-of-directory record).
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")


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
    captions_sha256: Optional[str] = None    # stored, or computed from caption_texts for version-1 files
    clip_digests: Optional[list[str]] = None

    @property
    def n_captions(self) -> int:
        return int(self.scores.shape[0])

    @property
    def n_clips(self) -> int:
        return int(self.scores.shape[1])

    @property
    def fingerprint(self) -> Optional[str]:
        """The dataset fingerprint recomputed from the clip ids and digests (None for an unbound file)."""
        if self.clip_digests is None:
            return None
        from dvtr_bench.protocol.fingerprint import fingerprint_from_digests

        return fingerprint_from_digests(self.clip_ids, self.clip_digests)

    @property
    def bound(self) -> bool:
        """The file names the test split it scores: clip digests (hence the fingerprint) and caption hash."""
        return self.clip_digests is not None and self.captions_sha256 is not None

    def content_key(self) -> tuple[str, Optional[str]]:
        """(digest of the clip ids and caption-to-clip map, caption hash or None): what two files scoring the
        same captions and clips share."""
        h = hashlib.sha256(json.dumps(self.clip_ids, ensure_ascii=False).encode("utf-8"))
        h.update(np.ascontiguousarray(self.caption_to_clip, dtype="<i8").tobytes())
        if self.caption_ids is not None:
            h.update(json.dumps(self.caption_ids, ensure_ascii=False).encode("utf-8"))
        return h.hexdigest(), self.captions_sha256


def captions_sha256(texts: Sequence[str]) -> str:
    """sha256 (hex) of caption texts in row order: of their JSON list, compact, UTF-8."""
    return hashlib.sha256(json.dumps(list(texts), ensure_ascii=False, separators=(",", ":"))
                          .encode("utf-8")).hexdigest()


def default_caption_ids(clip_ids: Sequence[str], caption_to_clip: Sequence[int] | np.ndarray) -> list[str]:
    """``"{clip_id}#{k}"`` for each row, k counting the clip's captions in row order (the engine's ids)."""
    seen: dict[int, int] = {}
    out = []
    for c in np.asarray(caption_to_clip).tolist():
        k = seen.get(c, 0)
        seen[c] = k + 1
        out.append(f"{clip_ids[c]}#{k}")
    return out


def save_scores(path: str | Path, scores: np.ndarray, caption_to_clip: np.ndarray | Sequence[int],
                clip_ids: Sequence[str], caption_ids: Optional[Sequence[str]] = None,
                caption_texts: Optional[Sequence[str]] = None, clip_digests: Optional[Sequence[str]] = None,
                captions_hash: Optional[str] = None) -> str:
    """Write a score file and return the sha256 (hex) of its bytes.

    Args:
        path: destination; ``.npz`` is the conventional suffix (not added automatically). Parent folders are
            created. The file is written to a temporary name and renamed, so a crash never leaves half a file.
        scores: ``[n_captions, n_clips]`` real matrix (torch tensors: pass ``t.cpu().numpy()``). float32 and
            float64 are kept as they are; other real dtypes are stored as float64 (float16 as float32).
        caption_to_clip: ``[n_captions]`` column index of each caption's own clip.
        clip_ids: ``[n_clips]`` dataset clip ids, in column order (must be unique).
        caption_ids: ``[n_captions]`` unique row ids; default ``"{clip_id}#{k}"`` (:func:`default_caption_ids`).
        caption_texts: ``[n_captions]`` the texts that were scored; their :func:`captions_sha256` is stored.
        clip_digests: ``[n_clips]`` each column's row digest in the test split's fingerprint
            (``dvtr_bench.protocol.fingerprint.clip_digests(split)[clip_id]``). Without them the file is
            unbound: nothing in it says which test split it scores.
        captions_hash: the :func:`captions_sha256` of the scored texts, for a file that does not ship the
            texts themselves (e.g. for their license); must agree with ``caption_texts`` when both are given.

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
    if caption_ids is None:
        caption_ids = default_caption_ids(clip_arr.tolist(), c2c)
    cap_arr = _str_array(caption_ids, n_cap, "caption_ids")
    if len(set(cap_arr.tolist())) != n_cap:
        raise ValueError("caption_ids must be unique")
    arrays: dict[str, np.ndarray] = {
        "format_version": np.array(FORMAT_VERSION, dtype=np.int64),
        "scores": np.ascontiguousarray(scores),
        "caption_to_clip": c2c.astype(np.int64),
        "clip_ids": clip_arr,
        "caption_ids": cap_arr,
    }
    if caption_texts is not None:
        arrays["caption_texts"] = _str_array(caption_texts, n_cap, "caption_texts")
        text_hash = captions_sha256(arrays["caption_texts"].tolist())
        if captions_hash is not None and captions_hash != text_hash:
            raise ValueError("captions_hash does not match caption_texts")
        captions_hash = text_hash
    if captions_hash is not None:
        if not _SHA256.fullmatch(str(captions_hash)):
            raise ValueError("captions_hash must be 64 lowercase hex digits")
        arrays["captions_sha256"] = np.array(str(captions_hash), dtype="<U64")
    if clip_digests is not None:
        dig = _str_array(clip_digests, n_clips, "clip_digests")
        if not all(_SHA256.fullmatch(d) for d in dig.tolist()):
            raise ValueError("clip_digests must be 64 lowercase hex digits each")
        arrays["clip_digests"] = dig

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
                    _write_npy(fh, arrays[name])
        digest = file_sha256(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return digest


def load_scores(path: str | Path, expected_sha256: Optional[str] = None, mmap: bool = False) -> ScoreFile:
    """Read a score file written by :func:`save_scores` (any format version up to this one).

    Only uncompressed ``.npy`` members of known names, numeric or unicode, are read, and never with pickle:
    anything else is refused with the reason.

    Args:
        path: the ``.npz`` file.
        expected_sha256: when given, the file's sha256 must equal it (else :class:`InputError`).
        mmap: memory-map the score matrix read-only instead of reading it into RAM.

    Raises:
        InputError: missing or unreadable file, not a score file, wrong members or shapes, sha256 mismatch.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("score file not found", file=path)
    digest = file_sha256(path)
    if expected_sha256 is not None and digest != expected_sha256:
        raise InputError(f"sha256 mismatch: file has {digest[:16]}…, expected {expected_sha256[:16]}… "
                         "(the file was replaced or modified)", file=path)
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
        if magic not in _ZIP_MAGIC:
            raise InputError("not a score file: not a .npz (zip) archive", file=path)
        arrays = _read_members(path, mmap)
    except InputError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError, struct.error) as exc:
        raise InputError(f"not a score file: cannot read it ({_plain(exc)})", file=path) from exc
    return _score_file(path, digest, arrays)


def _read_members(path: Path, mmap: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            name = info.filename[:-4] if info.filename.endswith(".npy") else None
            if name not in _MEMBERS:
                raise InputError(f"not a score file: unexpected member {info.filename!r}", file=path)
            if info.compress_type != zipfile.ZIP_STORED:
                raise InputError(f"not a score file: member {info.filename!r} is compressed (score files "
                                 "are stored uncompressed by save_scores)", file=path)
            if name == "scores" and mmap:
                continue
            with zf.open(info) as fh:
                shape, _, dtype = _read_npy_header(fh)
                if dtype.hasobject or dtype.kind not in "biufU":
                    raise InputError(f"not a score file: member {info.filename!r} holds {dtype} values; score "
                                     "files hold numbers and text only", file=path)
                if info.file_size < dtype.itemsize * int(np.prod(shape, dtype=np.float64)):
                    raise InputError(f"not a score file: member {info.filename!r} is truncated", file=path)
            with zf.open(info) as fh:
                out[name] = np.lib.format.read_array(fh, allow_pickle=False)
    missing = [m for m in _REQUIRED if m not in out and not (m == "scores" and mmap)]
    if missing:
        raise InputError(f"not a score file: missing {missing}", file=path)
    if mmap:
        out["scores"] = _memmap_member(path, "scores.npy")
    return out


def _score_file(path: Path, digest: str, a: dict[str, Any]) -> ScoreFile:
    def bad(why: str) -> InputError:
        return InputError(f"inconsistent score file: {why}", file=path)

    fv = a.get("format_version")
    if fv is None:
        version = 1
    elif fv.shape != () or fv.dtype.kind not in "iu":
        raise bad("format_version must be one integer")
    else:
        version = int(fv)
    if version > FORMAT_VERSION:
        raise InputError(f"score file format {version} is newer than this dvtr ({FORMAT_VERSION})", file=path)
    scores, c2c = a["scores"], a["caption_to_clip"]
    if scores.ndim != 2 or scores.dtype.kind not in "fiu":
        raise bad(f"scores must be a 2-D real matrix, got {scores.dtype} {scores.shape}")
    n_cap, n_clips = scores.shape
    if c2c.shape != (n_cap,) or c2c.dtype.kind not in "iu":
        raise bad(f"caption_to_clip must be {n_cap} integers, got {c2c.dtype} {c2c.shape}")
    if n_cap and (int(c2c.min()) < 0 or int(c2c.max()) >= n_clips):
        raise bad(f"caption_to_clip must lie in [0, {n_clips})")

    def strings(name: str, n: int) -> Optional[list[str]]:
        v = a.get(name)
        if v is None:
            return None
        if v.dtype.kind != "U" or v.shape != (n,):
            raise bad(f"{name} must be {n} strings, got {v.dtype} {v.shape}")
        return v.tolist()

    clip_ids = strings("clip_ids", n_clips)
    assert clip_ids is not None
    if len(set(clip_ids)) != n_clips:
        raise bad("clip_ids are not unique")
    caption_ids = strings("caption_ids", n_cap)
    if caption_ids is not None and len(set(caption_ids)) != n_cap:
        raise bad("caption_ids are not unique")
    texts = strings("caption_texts", n_cap)
    digests = strings("clip_digests", n_clips)
    if digests is not None and not all(_SHA256.fullmatch(d) for d in digests):
        raise bad("clip_digests must be sha256 hex digests")
    stored_hash = a.get("captions_sha256")
    text_hash = None
    if stored_hash is not None:
        if stored_hash.dtype.kind != "U" or stored_hash.shape != () or not _SHA256.fullmatch(str(stored_hash)):
            raise bad("captions_sha256 must be one sha256 hex digest")
        text_hash = str(stored_hash)
    if texts is not None:
        # Version-1 files store the texts without their hash: compute it, so that they can be compared.
        computed = captions_sha256(texts)
        if text_hash is not None and text_hash != computed:
            raise bad("caption_texts do not match captions_sha256")
        text_hash = computed
    return ScoreFile(path=path, sha256=digest, scores=scores, caption_to_clip=c2c, clip_ids=clip_ids,
                     caption_ids=caption_ids, caption_texts=texts, format_version=version,
                     captions_sha256=text_hash, clip_digests=digests)


def _plain(exc: BaseException) -> str:
    """An exception's message without numpy's advice to load a file with pickle, which score files never need."""
    msg = str(exc).split(". If you trust")[0]
    return "pickled data" if "pickle" in msg else msg


def _write_npy(fh: Any, arr: np.ndarray, block_bytes: int = 1 << 20) -> None:
    """``np.lib.format.write_array(fh, arr)``, byte for byte, without its copy of the data.

    To a stream that is not a real file (a zip member) numpy writes ``tobytes()`` copies of up to 16 MiB: the
    whole score matrix of a 200 x 20,000 evaluation. A C-contiguous numeric array is written here as the same
    version 1.0 header followed by its rows, passed as buffers (no copy). Anything else goes to numpy.
    """
    if not (arr.flags.c_contiguous and arr.ndim >= 1 and arr.dtype.kind in "fiub" and arr.size):
        np.lib.format.write_array(fh, arr, allow_pickle=False)
        return
    header = io.BytesIO()
    try:
        np.lib.format.write_array_header_1_0(header, np.lib.format.header_data_from_array_1_0(arr))
    except ValueError:  # a header too long for version 1.0: numpy picks the version
        np.lib.format.write_array(fh, arr, allow_pickle=False)
        return
    fh.write(header.getvalue())
    rows = max(1, block_bytes // max(1, arr[0].nbytes))
    for r in range(0, arr.shape[0], rows):
        fh.write(memoryview(arr[r:r + rows]).cast("B"))


def _str_array(values: Sequence[str], n: int, name: str) -> np.ndarray:
    arr = np.asarray([str(v) for v in values], dtype=np.str_)
    if arr.shape != (n,):
        raise ValueError(f"{name} must have {n} entries, got {arr.shape[0] if arr.ndim else 0}")
    if n == 0:
        arr = np.zeros(0, dtype="<U1")
    return arr


def _read_npy_header(fh: Any) -> tuple[tuple[int, ...], bool, np.dtype]:
    version = np.lib.format.read_magic(fh)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(fh)
    if version == (2, 0):
        return np.lib.format.read_array_header_2_0(fh)
    raise ValueError(f".npy format {version} is not used by score files")


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
            shape, fortran, dtype = _read_npy_header(f)
            offset = f.tell()
    if dtype.kind not in "fiu" or len(shape) != 2:
        raise ValueError(f"the score matrix must be 2-D numbers, got {dtype} {shape}")
    return np.memmap(path, dtype=dtype, mode="r", shape=shape, offset=offset, order="F" if fortran else "C")


__all__ = ["FORMAT_VERSION", "ScoreFile", "captions_sha256", "default_caption_ids", "load_scores", "save_scores"]
