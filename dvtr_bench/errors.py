"""Exceptions shared by every stage.

Bad input must be reported with the file and the record it came from, so that a user with ten thousand
annotation lines can go straight to the broken one.
"""

from __future__ import annotations

from pathlib import Path


class DvtrError(Exception):
    """Base class of every error dvtr raises on purpose."""


class InputError(DvtrError):
    """A user-supplied file or record is invalid.

    ``file`` is the offending file and ``record`` locates the item inside it (a line number, a row
    index, an id); both are optional but should be given whenever they are known.
    """

    def __init__(self, reason: str, file: str | Path | None = None, record: str | int | None = None):
        self.reason = reason
        self.file = None if file is None else str(file)
        self.record = record
        super().__init__(self._format())

    def _format(self) -> str:
        where = []
        if self.file is not None:
            where.append(self.file)
        if self.record is not None:
            where.append(f"record {self.record}")
        return f"{': '.join(where)}: {self.reason}" if where else self.reason


class ConfigError(DvtrError):
    """An option or configuration value is invalid or inconsistent."""
