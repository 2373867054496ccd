"""The index folder: clip vectors, what each row is, thumbnails, the model's identity, and the faiss index over them.

Layout (``docs/search.md``)::

    INDEX/
      index.json          manifest: format, model identity, source, row count, dimension, search kind, timings
      vectors.npy         [n, D] float32, one normalised vector per clip (plain numpy: readable without dvtr)
      rows.parquet        one row per clip, in vector order: clip_id, video_id, source, split, start_s, end_s,
                          label, captions, telemetry (JSON), thumb_offset, thumb_len, thumb_frames
      thumbs.bin          the thumbnail strips (JPEG), concatenated; rows give each one's offset and length
      index.faiss         only for an approximate index (IVF lists or HNSW graph); exact search is built from
                          vectors.npy
      embeddings/<k>.npy  only for methods whose score is not a dot product: their own clip embedding, per key,
                          which their ``score`` re-ranks the shortlisted candidates with
      clips/              only for an index of raw footage: the clips, cut by the build pipeline (resumable)

``index.json`` is written last, so a folder without it is an unfinished index, never a wrong one.

Exact search is faiss's ``IndexFlatIP`` (inner product of every vector, no approximation: the ranking is the
model's). Approximate search, for large archives:

* ``ivf`` (the default approximate kind): ``IndexIVFFlat``, inner product. k-means splits the vectors into
  ``nlist`` lists (about 4 sqrt(n), and never fewer than 39 vectors a list); a query scans the ``nprobe`` nearest
  lists (default nlist / 16). It stores the vectors uncompressed, so a candidate's score is exact; only which
  clips are scanned is approximate. On the benchmark's generated 100,000-clip index it keeps recall@10 above 0.99
  at about a twentieth of exact search's time.
* ``hnsw``: ``IndexHNSWFlat``, inner product, no training; ``ef_search`` trades speed for recall. On the same
  index it needs ef_search 512 for recall@10 0.97, and its graph takes three times as long to build.
"""

from __future__ import annotations

import json
import mmap
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from dvtr_bench.errors import ConfigError, InputError

FORMAT_VERSION = 1
MANIFEST = "index.json"
VECTORS = "vectors.npy"
ROWS = "rows.parquet"
THUMBS = "thumbs.bin"
FAISS = "index.faiss"
EMBEDDINGS = "embeddings"
CLIPS = "clips"
KINDS = ("exact", "ivf", "hnsw")
DEFAULT_HNSW_M = 32
DEFAULT_EF_CONSTRUCTION = 200
DEFAULT_EF_SEARCH = 512
MIN_PER_LIST = 39        # faiss's own floor for k-means: fewer training points per centroid and it warns
ROW_COLUMNS = ("clip_id", "video_id", "source", "split", "start_s", "end_s", "label", "captions", "telemetry",
               "thumb_offset", "thumb_len", "thumb_frames")


def faiss_module() -> Any:
    """faiss, or a ConfigError saying how to install it."""
    try:
        import faiss
    except ImportError as exc:
        raise ConfigError("search needs faiss: pip install 'dvtr-bench[search]' (or pip install faiss-cpu)") from exc
    return faiss


def set_threads(n: int | None) -> None:
    """Threads faiss may use (None: its default, every core)."""
    if n is not None:
        faiss_module().omp_set_num_threads(int(n))


def default_nlist(n: int) -> int:
    """IVF lists for ``n`` vectors: about 4 sqrt(n), with at least ``MIN_PER_LIST`` vectors a list."""
    return int(max(1, min(round(4 * n ** 0.5), n // MIN_PER_LIST)))


def default_nprobe(nlist: int) -> int:
    """Lists an IVF query scans by default: a sixteenth of them (every list of a small index)."""
    return int(max(1, -(-nlist // 16))) if nlist >= 64 else int(nlist)


def make_faiss(vectors: np.ndarray, kind: str = "exact", hnsw_m: int = DEFAULT_HNSW_M,
               ef_construction: int = DEFAULT_EF_CONSTRUCTION, nlist: int | None = None) -> Any:
    """A faiss inner-product index over ``vectors`` (``[n, D]`` float32): ``exact``, ``ivf`` or ``hnsw``."""
    faiss = faiss_module()
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"vectors must be [n, D], got {x.shape}")
    if kind == "exact":
        index = faiss.IndexFlatIP(x.shape[1])
    elif kind == "ivf":
        lists = int(nlist or default_nlist(x.shape[0]))
        if not 1 <= lists <= x.shape[0]:
            raise ConfigError(f"nlist must be between 1 and the number of clips ({x.shape[0]}), got {lists}")
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(x.shape[1]), x.shape[1], lists, faiss.METRIC_INNER_PRODUCT)
        index.train(x)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(x.shape[1], int(hnsw_m), faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = int(ef_construction)
    else:
        raise ConfigError(f"unknown index kind {kind!r}; choose one of {', '.join(KINDS)}")
    index.add(x)
    return index


def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")


class IndexWriter:
    """Writes an index folder incrementally: rows and thumbnails as clips are encoded, then the manifest.

    Files are written under temporary names and renamed into place by :meth:`finish`, which writes ``index.json``
    last; an interrupted build leaves the previous index (if any) intact.
    """

    def __init__(self, out: str | Path, n_rows: int):
        import pyarrow as pa

        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.n_rows = n_rows
        self._tmp: dict[str, Path] = {name: _tmp_name(self.out / name) for name in (VECTORS, ROWS, THUMBS)}
        self._vectors: np.ndarray | None = None
        self._embeddings: dict[str, np.ndarray] = {}
        self._emb_tmp: dict[str, Path] = {}
        self._thumbs = open(self._tmp[THUMBS], "wb")
        self._offset = 0
        self._filled = 0
        self._schema = pa.schema([("clip_id", pa.string()), ("video_id", pa.string()), ("source", pa.string()),
                                  ("split", pa.string()), ("start_s", pa.float64()), ("end_s", pa.float64()),
                                  ("label", pa.string()), ("captions", pa.list_(pa.string())),
                                  ("telemetry", pa.string()), ("thumb_offset", pa.int64()), ("thumb_len", pa.int64()),
                                  ("thumb_frames", pa.int32())])
        import pyarrow.parquet as pq

        self._rows = pq.ParquetWriter(self._tmp[ROWS], self._schema, compression="zstd")

    def add(self, rows: Sequence[dict[str, Any]], vectors: np.ndarray, thumbs: Sequence[bytes], thumb_frames: int,
            embeddings: dict[str, np.ndarray] | None = None) -> None:
        """Append a block of clips: their row metadata, vectors ``[b, D]``, strips and (re-ranking) embeddings."""
        import pyarrow as pa

        b = len(rows)
        if vectors.shape[0] != b or len(thumbs) != b:
            raise ValueError(f"{b} rows, {vectors.shape[0]} vectors and {len(thumbs)} thumbnails")
        if self._filled + b > self.n_rows:
            raise ValueError(f"more than the announced {self.n_rows} rows")
        if self._vectors is None:
            self._vectors = np.lib.format.open_memmap(self._tmp[VECTORS], mode="w+", dtype=np.float32,
                                                      shape=(self.n_rows, vectors.shape[1]))
        self._vectors[self._filled:self._filled + b] = vectors
        for key, arr in (embeddings or {}).items():
            if key not in self._embeddings:
                final = self.out / EMBEDDINGS / f"{key}.npy"
                final.parent.mkdir(parents=True, exist_ok=True)
                self._emb_tmp[key] = _tmp_name(final)
                dtype = np.bool_ if arr.dtype == np.bool_ else np.float32
                self._embeddings[key] = np.lib.format.open_memmap(self._emb_tmp[key], mode="w+", dtype=dtype,
                                                                  shape=(self.n_rows, *arr.shape[1:]))
            self._embeddings[key][self._filled:self._filled + b] = arr
        out_rows = []
        for r, t in zip(rows, thumbs):
            self._thumbs.write(t)
            out_rows.append({**{c: r.get(c) for c in ROW_COLUMNS[:9]}, "thumb_offset": self._offset,
                             "thumb_len": len(t), "thumb_frames": thumb_frames})
            self._offset += len(t)
        self._rows.write_table(pa.Table.from_pylist(out_rows, schema=self._schema))
        self._filled += b

    def finish(self, manifest: dict[str, Any], kind: str = "exact", hnsw_m: int = DEFAULT_HNSW_M,
               ef_construction: int = DEFAULT_EF_CONSTRUCTION, nlist: int | None = None) -> Path:
        """Build the faiss index (approximate kinds), move every file into place and write ``index.json``."""
        if self._filled != self.n_rows or self._vectors is None:
            raise ValueError(f"only {self._filled} of {self.n_rows} rows were added")
        self._rows.close()
        self._thumbs.close()
        self._vectors.flush()
        for arr in self._embeddings.values():
            arr.flush()
        moves = [(self._tmp[n], self.out / n) for n in (VECTORS, ROWS, THUMBS)]
        moves += [(tmp, self.out / EMBEDDINGS / f"{k}.npy") for k, tmp in self._emb_tmp.items()]
        if kind != "exact":
            faiss = faiss_module()
            index = make_faiss(np.asarray(self._vectors), kind, hnsw_m=hnsw_m, ef_construction=ef_construction,
                               nlist=nlist)
            tmp = _tmp_name(self.out / FAISS)
            faiss.write_index(index, str(tmp))
            moves.append((tmp, self.out / FAISS))
        (self.out / MANIFEST).unlink(missing_ok=True)   # the old manifest must not describe the new files
        for tmp, final in moves:
            os.replace(tmp, final)
        if kind == "exact":
            (self.out / FAISS).unlink(missing_ok=True)
        emb_dir = self.out / EMBEDDINGS
        if emb_dir.is_dir():
            for f in emb_dir.glob("*.npy"):
                if f.stem not in self._embeddings:
                    f.unlink()
        manifest = {**manifest, "format_version": FORMAT_VERSION, "n_clips": self.n_rows,
                    "dim": int(self._vectors.shape[1]), "embedding_keys": sorted(self._embeddings),
                    "size_bytes": folder_size(self.out)}
        tmp = _tmp_name(self.out / MANIFEST)
        tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
        os.replace(tmp, self.out / MANIFEST)
        return self.out / MANIFEST

    def abort(self) -> None:
        """Remove the temporary files of an unfinished build."""
        for closer in (self._rows.close, self._thumbs.close):
            try:
                closer()
            except Exception:  # noqa: BLE001 - best effort on the way out of an error
                pass
        for tmp in [*self._tmp.values(), *self._emb_tmp.values()]:
            tmp.unlink(missing_ok=True)


def folder_size(path: Path) -> int:
    """Bytes of the index's own files (the cut clips of a footage index are a dataset of their own)."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and CLIPS not in f.relative_to(path).parts[:1])


@dataclass
class Hit:
    """One row of an index with its score."""

    row: int
    score: float


class VectorIndex:
    """An index folder opened for search (see the module docstring).

    Vectors and re-ranking embeddings are memory-mapped; row metadata is read once (without thumbnails), and a
    thumbnail is sliced from ``thumbs.bin`` on demand.
    """

    def __init__(self, path: str | Path, threads: int | None = None):
        self.path = Path(path)
        man = self.path / MANIFEST
        if not self.path.is_dir():
            raise InputError("no such index folder", file=self.path)
        if not man.is_file():
            hint = ("an unfinished build: re-run `dvtr index`" if (self.path / ROWS).exists() or
                    any(self.path.glob(f".{VECTORS}.tmp-*")) else "not an index folder (make one with `dvtr index`)")
            raise InputError(f"no {MANIFEST}: {hint}", file=self.path)
        try:
            self.manifest: dict[str, Any] = json.loads(man.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot read the index manifest: {exc}", file=man) from None
        if int(self.manifest.get("format_version", 0)) > FORMAT_VERSION:
            raise InputError(f"index format {self.manifest.get('format_version')} is newer than this dvtr "
                             f"({FORMAT_VERSION})", file=man)
        self.manifest_path = man
        try:
            self.vectors = np.load(self.path / VECTORS, mmap_mode="r")
            import pyarrow.parquet as pq

            self.rows = pq.read_table(self.path / ROWS).to_pylist()
        except (OSError, ValueError) as exc:
            raise InputError(f"damaged index: {exc}", file=self.path) from None
        if self.vectors.shape[0] != len(self.rows) or len(self.rows) != int(self.manifest.get("n_clips", -1)):
            raise InputError(f"damaged index: {self.vectors.shape[0]} vectors, {len(self.rows)} rows, manifest says "
                             f"{self.manifest.get('n_clips')}", file=self.path)
        set_threads(threads)
        search = self.manifest.get("search") or {}
        self.kind = str(search.get("kind", "exact"))
        if self.kind not in KINDS:
            raise InputError(f"unknown index kind {self.kind!r} (this dvtr knows {', '.join(KINDS)})", file=man)
        if self.kind == "exact":
            self.faiss = make_faiss(np.asarray(self.vectors), "exact")
        else:
            try:
                self.faiss = faiss_module().read_index(str(self.path / FAISS))
            except RuntimeError as exc:
                raise InputError(f"damaged index: cannot read {FAISS}: {exc}", file=self.path) from None
            self.set_breadth(nprobe=search.get("nprobe"), ef_search=search.get("ef_search"))
        self._thumbs_file = open(self.path / THUMBS, "rb")
        size = os.fstat(self._thumbs_file.fileno()).st_size
        self._thumbs = mmap.mmap(self._thumbs_file.fileno(), 0, access=mmap.ACCESS_READ) if size else b""

    def set_breadth(self, nprobe: int | None = None, ef_search: int | None = None) -> None:
        """How much of an approximate index a query scans (higher: better recall, slower): IVF lists (``nprobe``)
        or HNSW's ``ef_search``. Values for the other kinds are ignored."""
        if self.kind == "ivf" and nprobe:
            self.faiss.nprobe = int(min(int(nprobe), self.faiss.nlist))
        elif self.kind == "hnsw" and ef_search:
            self.faiss.hnsw.efSearch = int(ef_search)

    @property
    def breadth(self) -> dict[str, int]:
        """The current search breadth of an approximate index (empty for an exact one)."""
        if self.kind == "ivf":
            return {"nlist": int(self.faiss.nlist), "nprobe": int(self.faiss.nprobe)}
        if self.kind == "hnsw":
            return {"ef_search": int(self.faiss.hnsw.efSearch)}
        return {}

    @property
    def n_clips(self) -> int:
        return len(self.rows)

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    @property
    def size_bytes(self) -> int:
        return int(self.manifest.get("size_bytes") or folder_size(self.path))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``(scores [q, k], rows [q, k])`` of the ``k`` best clips per query vector (rows -1 past the end)."""
        q = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        if q.shape[1] != self.dim:
            raise InputError(f"query vectors have {q.shape[1]} dimensions, the index {self.dim}",
                             file=self.manifest_path)
        return self.faiss.search(q, int(min(max(1, k), self.n_clips)))

    def thumb(self, row: int) -> bytes:
        r = self.rows[row]
        return bytes(self._thumbs[r["thumb_offset"]:r["thumb_offset"] + r["thumb_len"]])

    def embeddings(self, rows: Sequence[int]) -> dict[str, np.ndarray]:
        """The method's own embedding of the given rows (for re-ranking), per key."""
        idx = np.asarray(rows, dtype=np.int64)
        out = {}
        for key in self.manifest.get("embedding_keys") or []:
            arr = np.load(self.path / EMBEDDINGS / f"{key}.npy", mmap_mode="r")
            out[key] = np.asarray(arr[idx])
        return out

    def close(self) -> None:
        if isinstance(self._thumbs, mmap.mmap):
            self._thumbs.close()
        self._thumbs_file.close()

    def __enter__(self) -> "VectorIndex":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def human_kind(search: dict[str, Any]) -> str:
    """The search kind of a manifest in words."""
    if search.get("kind") == "hnsw":
        return (f"approximate inner product (faiss HNSW, M {search.get('hnsw_m')}, efSearch "
                f"{search.get('ef_search')})")
    if search.get("kind") == "ivf":
        return (f"approximate inner product (faiss IVF, {search.get('nlist')} lists, {search.get('nprobe')} scanned "
                "per query)")
    return "exact inner product (faiss IndexFlatIP)"
