"""Load a pickle that may only hold plain data, without ever running code from it.

CLIP4Clip-style datasets ship their captions as ``raw-captions.pkl``. A pickle can name any importable
callable and have the loader call it, so a downloaded one is untrusted code. Here every global lookup
(the only way a pickle reaches a callable: GLOBAL, STACK_GLOBAL, INST/OBJ and the extension registry all go
through ``find_class``) is refused, persistent ids are refused, and the loaded value is then checked to
contain only dict, list, tuple, str, bytes, int, float, bool and None. Nothing a pickle names is imported
or called.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

from dvtr_bench.errors import InputError

ALLOWED_TYPES = (dict, list, tuple, str, bytes, int, float, bool, type(None))
# A pickle can nest deeper than Python's recursion limit; the check walks iteratively but still bounds it.
_MAX_DEPTH = 64


class RefusedPickle(pickle.UnpicklingError):
    """The pickle asked for something other than plain data."""


class PlainDataUnpickler(pickle.Unpickler):
    """An unpickler whose ``find_class`` refuses every global: no class, function or module is reachable."""

    def find_class(self, module: str, name: str) -> Any:  # noqa: D401 - pickle API
        raise RefusedPickle(f"it references the global {module}.{name}")

    def persistent_load(self, pid: Any) -> Any:
        raise RefusedPickle("it uses a persistent id")


def _check_plain(value: Any) -> None:
    stack: list[tuple[Any, int]] = [(value, 0)]
    # Memo references let a small pickle share one container many times over (a "billion laughs" DAG);
    # each container is checked once, so the check stays linear in the pickle's size.
    seen: set[int] = set()
    while stack:
        v, depth = stack.pop()
        if type(v) in (dict, list, tuple):
            if id(v) in seen:
                continue
            seen.add(id(v))
        if depth > _MAX_DEPTH:
            raise RefusedPickle(f"it nests deeper than {_MAX_DEPTH} levels")
        # type() rather than isinstance(): a subclass of dict or str is a class the pickle had to name.
        if type(v) not in ALLOWED_TYPES:
            raise RefusedPickle(f"it holds a {type(v).__name__}")
        if type(v) is dict:
            for k, item in v.items():
                stack.append((k, depth + 1))
                stack.append((item, depth + 1))
        elif type(v) in (list, tuple):
            stack.extend((item, depth + 1) for item in v)


def loads_plain(data: bytes, file: str | Path | None = None) -> Any:
    """Unpickle ``data`` holding only plain containers and scalars; anything else raises :class:`InputError`."""
    try:
        value = PlainDataUnpickler(io.BytesIO(data)).load()
        _check_plain(value)
    except RefusedPickle as exc:
        raise InputError(f"refused to load the pickle: {exc}; only dict, list, tuple, str, bytes, int, "
                         "float, bool and None are allowed", file) from None
    except Exception as exc:  # a damaged pickle raises anything from EOFError to TypeError
        raise InputError(f"not a readable pickle: {type(exc).__name__}: {exc}", file) from None
    return value


def load_plain(path: str | Path) -> Any:
    """Read a pickle file safely (see :func:`loads_plain`); errors name the file."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", path) from None
    return loads_plain(data, path)
