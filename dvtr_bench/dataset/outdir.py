"""The dataset folder as a build sees it: one build at a time, atomic swaps, no leftovers from killed builds.

``BuildLock`` is an advisory lock (``fcntl.flock``) on ``<out>/.dvtr-build.lock``: the kernel releases it when the
holding process ends, however it ends, so a killed build never leaves a stale lock behind, and a second build into
the same folder is told which process holds it instead of silently overwriting its dataset. Under the lock, temp
files and folders that a killed build left (``.data.tmp-*``, ``.data.old-*``, ``.<name>.tmp-*``) are removed, and
``swap_in`` replaces ``data/`` with the new shards in one atomic exchange where the platform has one.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import shutil
import socket
import time
from pathlib import Path
from typing import Any

from dvtr_bench.errors import ConfigError

LOCK_NAME = ".dvtr-build.lock"
# Written under these names and renamed into place; anything still bearing one when the lock is free is debris.
TEMP_PATTERNS = (".data.tmp-*", ".data.old-*", ".*.tmp-*")


class BuildLock:
    """Exclusive lock on a dataset folder for the duration of a build (a context manager)."""

    def __init__(self, out_dir: str | Path):
        self.out = Path(out_dir)
        self.path = self.out / LOCK_NAME
        self._fd: int | None = None

    def __enter__(self) -> "BuildLock":
        import fcntl

        self.out.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _read_holder(fd)
            os.close(fd)
            raise ConfigError(f"{self.out}: another build is writing this dataset folder ({holder}); wait for it "
                              "to finish or give another --out") from None
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                 "started": time.strftime("%Y-%m-%d %H:%M:%S")}).encode("utf-8"))
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)   # closing releases the flock; the file stays (removing it would race)
            self._fd = None


def _read_holder(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        info: dict[str, Any] = json.loads(os.read(fd, 4096).decode("utf-8") or "{}")
    except (OSError, ValueError):
        return "process unknown"
    return f"pid {info.get('pid', '?')} on {info.get('host', '?')}, started {info.get('started', '?')}"


def remove_stale_temp(out_dir: str | Path) -> list[Path]:
    """Remove what killed builds left in ``out_dir`` and ``out_dir/build/jobs`` (call with the lock held)."""
    out = Path(out_dir)
    removed = []
    for folder in (out, out / "build", out / "build" / "jobs"):
        if not folder.is_dir():
            continue
        for pattern in TEMP_PATTERNS:
            for p in folder.glob(pattern):
                if p.name == LOCK_NAME:
                    continue
                if p.is_dir():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    p.unlink(missing_ok=True)
                removed.append(p)
    return removed


_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths with renameat2(RENAME_EXCHANGE) (Linux 3.15+, glibc 2.28+); False when the
    platform or file system cannot."""
    libc_name = ctypes.util.find_library("c")
    if not libc_name:
        return False
    try:
        libc = ctypes.CDLL(libc_name, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd = -100
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    return fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE) == 0


def swap_in(new: Path, final: Path) -> None:
    """Put folder ``new`` in the place of ``final``: one atomic exchange when possible (a reader sees the old
    folder or the new one, never none), else two renames; the old folder is removed."""
    if final.exists() and _exchange(new, final):
        shutil.rmtree(new, ignore_errors=True)     # ``new`` now holds the old content
        return
    old = final.with_name(f".{final.name}.old-{os.getpid()}")
    if final.exists():
        os.replace(final, old)
    os.replace(new, final)
    shutil.rmtree(old, ignore_errors=True)
