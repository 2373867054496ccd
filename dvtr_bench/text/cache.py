"""Where the text layer keeps what it computed from a caption corpus, and how it writes it.

One folder, ``$DVTR_CACHE_DIR/text`` (default ``~/.cache/dvtr/text``). Every file is written to a temporary name in
the same folder and renamed into place, so a reader never sees half a file, and two processes filling the same entry
(the ranks of a distributed run) at worst both compute it. Whoever reads an entry treats anything it cannot use
(unreadable, truncated, written for other texts) as absent and recomputes it.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

CACHE_ENV = "DVTR_CACHE_DIR"


def cache_root() -> Path:
    """The text layer's cache folder: ``$DVTR_CACHE_DIR/text``, or ``~/.cache/dvtr/text``."""
    base = os.environ.get(CACHE_ENV)
    return (Path(base) if base else Path.home() / ".cache" / "dvtr") / "text"


def texts_digest(texts: Sequence[str]) -> str:
    """A hash of the texts in their order (length-prefixed, so no two lists share one)."""
    h = hashlib.sha256()
    for t in texts:
        b = t.encode("utf-8")
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.hexdigest()


def entry_key(*parts: str) -> str:
    """A file-name-safe key for an entry made of ``parts`` (fingerprint, library versions, texts digest...)."""
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:32]


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a cache is not
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: Path) -> object | None:
    """The JSON in ``path``, or ``None`` when it is missing or not valid JSON (a corrupt entry is recomputed)."""
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
