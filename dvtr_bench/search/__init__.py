"""Text search over drone footage with a trained dvtr model (``dvtr index``, ``dvtr search``).

- ``model``   load a dvtr run's selected checkpoint or an open_clip backbone (zero-shot); the model's identity
- ``frames``  thumbnail strips, telemetry from clip metadata, a dataset's stored frames by clip id (no torch)
- ``index``   the index folder: vectors, rows, thumbnails, faiss (exact inner product or HNSW) (no torch)
- ``build``   ``build_index(source, out, model)``: a dataset or raw footage (through the build pipeline) -> index
- ``query``   ``Searcher(index).search("two boats moored beside a pier", k=10)``
- ``page``    the self-contained HTML page of a search result

This layer sits above ``engine/`` (it encodes clips as the evaluation runner does), ``models/`` and ``dataset/``;
only the commands import it. Submodules that need torch or faiss are imported on demand.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Searcher", "build_index", "load_run", "load_zero_shot"]


def __getattr__(name: str) -> Any:
    if name == "Searcher":
        from dvtr_bench.search.query import Searcher

        return Searcher
    if name == "build_index":
        from dvtr_bench.search.build import build_index

        return build_index
    if name in ("load_run", "load_zero_shot"):
        from dvtr_bench.search import model

        return getattr(model, name)
    raise AttributeError(name)
