"""Searching an index by text: the query embedded by the index's own model, faiss, and re-ranking when needed.

A :class:`Searcher` opens an index, loads the model named in its manifest (or takes one and checks it is the same
model, by its weights hash), and answers queries. Timings are kept apart: text encoding (the model's cost),
the vector search (the index's cost), re-ranking (the method's pairwise score on the shortlist).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dvtr_bench.errors import InputError
from dvtr_bench.models.base import text_to
from dvtr_bench.search.index import VectorIndex
from dvtr_bench.search.model import LoadedModel, check_same_model, describe, load_identity, scoring_note

DEFAULT_CANDIDATES = 100


@dataclass
class SearchHit:
    """One retrieved clip."""

    rank: int
    row: int
    clip_id: str
    video_id: str | None
    source: str | None
    start_s: float | None
    end_s: float | None
    score: float                      # the method's score (the re-ranked one for pairwise methods)
    vector_score: float               # inner product in the index
    label: str | None = None
    captions: list[str] = field(default_factory=list)
    telemetry: dict[str, Any] | None = None


@dataclass
class SearchResult:
    """A query's answer, with what it cost."""

    query: str
    k: int
    hits: list[SearchHit]
    encode_text_ms: float
    search_ms: float
    rerank_ms: float
    reranked: bool
    candidates: int
    index: dict[str, Any]
    model: dict[str, Any]
    scoring: str

    @property
    def total_ms(self) -> float:
        return self.encode_text_ms + self.search_ms + self.rerank_ms

    def to_dict(self) -> dict[str, Any]:
        """The JSON answer (``dvtr search --json``)."""
        d = asdict(self)
        d["total_ms"] = self.total_ms
        d["model"] = {**self.model, "description": describe(self.model)}
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False, default=str) + "\n"


class Searcher:
    """An index and its model, ready for queries.

    Args:
        index: the index folder.
        model: the model to embed queries with; default: load the one the index was built with. Either way it must
            have the index's weights (:func:`dvtr_bench.search.model.check_same_model`).
        device: where the model runs when it is loaded here.
        threads: faiss threads (None: all cores).
        nprobe, ef_search: search breadth of an approximate index (IVF lists scanned, HNSW ef_search; default: the
            index's own).
        warm_up: run the model once on a dummy query, so the first real query's latency is its own.

    Raises:
        InputError: not an index, a model that cannot be loaded (missing checkpoint), another model than the index's.
    """

    def __init__(self, index: str | Path | VectorIndex, model: LoadedModel | None = None,
                 device: str | torch.device = "cpu", threads: int | None = None, nprobe: int | None = None,
                 ef_search: int | None = None, warm_up: bool = True):
        self.index = index if isinstance(index, VectorIndex) else VectorIndex(index, threads=threads)
        self.index.set_breadth(nprobe=nprobe, ef_search=ef_search)
        identity = self.index.manifest.get("model") or {}
        if model is None:
            model = load_identity(identity, device=device, file=self.index.manifest_path)
        else:
            check_same_model(identity, model, file=self.index.manifest_path)
        self.model = model
        self.device = next(model.method.parameters()).device
        self.dot_product = bool(identity.get("dot_product"))
        if warm_up:
            # A process's first forward pass pays one-time setup (allocator, kernels): not a query's latency.
            emb, _ = self.encode("warm-up")
            if not self.dot_product and self.index.n_clips:
                self._rerank(emb, np.zeros(1, dtype=np.int64))

    def encode(self, query: str) -> tuple[dict[str, torch.Tensor], np.ndarray]:
        """The query's method embedding and its index vector ``[1, D]``."""
        m = self.model.method
        with torch.no_grad():
            emb = m.encode_text(text_to(m.tokenize([query]), self.device))
            vec = m.text_vector(emb).float().cpu().numpy()
        return emb, vec

    def search(self, query: str, k: int = 10, candidates: int | None = None) -> SearchResult:
        """The ``k`` best clips for ``query``.

        For a method whose score is not a dot product, the ``candidates`` best clips by inner product (default
        ``max(100, 10 k)``) are re-scored with the method's own ``score`` and the best ``k`` of them returned.

        Raises:
            InputError: an empty query; ``k`` < 1.
        """
        if not isinstance(query, str) or not query.strip():
            raise InputError("the query is empty: give the text to search for, e.g. \"two boats moored beside "
                             "a pier\"", record="query")
        if k < 1:
            raise InputError(f"k must be at least 1 (got {k})", record="-k")
        query = query.strip()
        t0 = time.perf_counter()
        emb, vec = self.encode(query)
        t1 = time.perf_counter()
        n_cand = k if self.dot_product else max(k, candidates or max(DEFAULT_CANDIDATES, 10 * k))
        scores, rows = self.index.search(vec, n_cand)
        t2 = time.perf_counter()
        rows_1, scores_1 = rows[0], scores[0]
        keep = rows_1 >= 0
        rows_1, scores_1 = rows_1[keep], scores_1[keep]
        final = scores_1.astype(np.float64)
        rerank_ms = 0.0
        if not self.dot_product and len(rows_1):
            t3 = time.perf_counter()
            final = self._rerank(emb, rows_1)
            order = np.lexsort((rows_1, -final))      # score descending, row ascending among ties
            rows_1, scores_1, final = rows_1[order], scores_1[order], final[order]
            rerank_ms = 1000 * (time.perf_counter() - t3)
        hits = [self._hit(r + 1, int(row), float(s), float(v))
                for r, (row, s, v) in enumerate(zip(rows_1[:k], final[:k], scores_1[:k]))]
        man = self.index.manifest
        info = {"path": str(self.index.path), "n_clips": self.index.n_clips, "dim": self.index.dim,
                "kind": self.index.kind, "size_bytes": self.index.size_bytes, **self.index.breadth}
        return SearchResult(query=query, k=k, hits=hits, encode_text_ms=1000 * (t1 - t0),
                            search_ms=1000 * (t2 - t1), rerank_ms=rerank_ms, reranked=not self.dot_product,
                            candidates=int(len(rows_1)) if not self.dot_product else 0, index=info,
                            model=man.get("model") or {},
                            scoring=scoring_note(man.get("model") or {}, None if self.dot_product else len(rows_1)))

    def _rerank(self, text: dict[str, torch.Tensor], rows: np.ndarray) -> np.ndarray:
        m = self.model.method
        stored = self.index.embeddings(rows)
        video = {k: torch.from_numpy(np.ascontiguousarray(v)).to(self.device) for k, v in stored.items()}
        with torch.no_grad():
            return m.score(text, video)[0].float().cpu().numpy().astype(np.float64)

    def _hit(self, rank: int, row: int, score: float, vector_score: float) -> SearchHit:
        r = self.index.rows[row]
        tel = json.loads(r["telemetry"]) if r.get("telemetry") else None
        return SearchHit(rank=rank, row=row, clip_id=r["clip_id"], video_id=r.get("video_id"), source=r.get("source"),
                         start_s=r.get("start_s"), end_s=r.get("end_s"), score=score, vector_score=vector_score,
                         label=r.get("label"), captions=list(r.get("captions") or []), telemetry=tel)

    def close(self) -> None:
        self.index.close()
