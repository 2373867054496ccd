"""The one interface of an annotation format, and the registry of formats.

A format module builds one :class:`AnnotationFormat` and passes it to :func:`register_format`. Everything the rest
of dvtr knows about formats (format names on the command line, which extension means which format, which formats
can be written, help text, which reader options apply) is read from the registry, so a new format is one module
(imported by the package's ``__init__``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Iterator, Mapping, Sequence

from dvtr_bench.annotations.record import FIELDS, CaptionRecord
from dvtr_bench.errors import InputError

Reader = Callable[..., list[CaptionRecord]]
Writer = Callable[[Sequence[CaptionRecord], Path], None]

# The value a record field takes when a format cannot hold it.
_EMPTY: dict[str, Any] = {"clip_id": None, "start_s": None, "end_s": None, "label": None, "split": None}


@dataclass(frozen=True)
class AnnotationFormat:
    """One caption-file format: how it is recognised, read and written, and what it can hold.

    ``read(path, *, problems=None, **options)`` returns canonical records; with ``problems=[]`` it collects
    record-level errors there instead of raising. ``write(records, path)`` writes them, or is None when the
    format is read-only. ``options`` names the reader keywords the format accepts beyond ``problems``.

    ``extensions`` (lower case, with the dot) are the extensions the format both reads and writes. An extension
    claimed by one format means that format; an extension several formats share is told apart by their
    ``sniff(path)`` when reading, and written as the format listing it in ``default_output_for``. A file whose
    extension no format claims is offered to every ``sniff``; when none accepts it, the ``fallback`` format
    reads it. A format with a ``folder_marker`` also reads and writes a folder holding a file of that name.

    ``holds`` is the set of record fields (:data:`~dvtr_bench.annotations.record.FIELDS`) the format keeps;
    ``reshape`` describes any other change a write and a read make to a record. :meth:`hold` applies both:
    it is exactly what reading back a written record gives. ``title`` names the format in messages (default:
    ``name``). ``inputs(path, **options)`` lists the files a read reads when there are several (see
    :meth:`input_files`).
    """

    name: str
    description: str
    extensions: tuple[str, ...]
    read: Reader
    write: Writer | None = None
    sniff: Callable[[Path], bool] | None = None
    options: tuple[str, ...] = ()
    holds: frozenset[str] = frozenset(FIELDS)
    reshape: Callable[[CaptionRecord], CaptionRecord] | None = None
    title: str = ""
    folder_marker: str | None = None
    default_output_for: tuple[str, ...] = ()
    fallback: bool = False
    inputs: Callable[..., list[Path]] | None = None

    def __post_init__(self) -> None:
        # Mistakes here are a format author's, found the first time the module is imported.
        if not self.name or self.name != self.name.strip().lower() or " " in self.name:
            raise ValueError(f"format name {self.name!r} must be a non-empty lower-case word")
        if not self.description.strip() or "\n" in self.description:
            raise ValueError(f"format {self.name!r}: the description must be one non-empty line")
        if not self.extensions:
            raise ValueError(f"format {self.name!r}: give at least one file extension")
        for ext in self.extensions:
            if not ext.startswith(".") or ext != ext.lower() or len(ext) < 2:
                raise ValueError(f"format {self.name!r}: extension {ext!r} must be lower case and start with a dot")
        if not set(self.default_output_for) <= set(self.extensions):
            raise ValueError(f"format {self.name!r}: default_output_for must name some of its own extensions")
        if not {"video_id", "captions"} <= self.holds <= set(FIELDS):
            raise ValueError(f"format {self.name!r}: holds must include video_id and captions and name only "
                             f"record fields ({', '.join(FIELDS)})")
        if not self.title:
            object.__setattr__(self, "title", self.name)

    @property
    def writable(self) -> bool:
        return self.write is not None

    def input_files(self, path: Path, **options: Any) -> list[Path]:
        """Every file a read of ``path`` reads, the main one first (``inputs`` when the format reads several,
        as CLIP4Clip reads its split lists beside the pickle): what a build hashes into its provenance."""
        if self.inputs is not None:
            return self.inputs(path, **options)
        return [path]

    def hold(self, record: CaptionRecord) -> CaptionRecord:
        """``record`` as it reads back after being written in this format (ids already normalised)."""
        r = self.reshape(record) if self.reshape is not None else record
        cleared: dict[str, Any] = {f: ({} if f == "meta" else _EMPTY[f]) for f in FIELDS if f not in self.holds}
        return dataclasses.replace(r, **cleared) if cleared else r


# ---------------------------------------------------------------------------------------------- registry

_REGISTRY: dict[str, AnnotationFormat] = {}

#: Every registered format by name, in registration order (a live, read-only view of the registry).
FORMATS: Mapping[str, AnnotationFormat] = MappingProxyType(_REGISTRY)


class _WritableView(Mapping[str, AnnotationFormat]):
    """The registered formats that can be written, live like :data:`FORMATS`."""

    def __getitem__(self, name: str) -> AnnotationFormat:
        fmt = _REGISTRY[name]
        if not fmt.writable:
            raise KeyError(name)
        return fmt

    def __iter__(self) -> Iterator[str]:
        return iter([name for name, fmt in _REGISTRY.items() if fmt.writable])

    def __len__(self) -> int:
        return sum(fmt.writable for fmt in _REGISTRY.values())

    def __repr__(self) -> str:
        return f"WRITE_FORMATS({', '.join(self)})"


#: The registered formats that can be written, by name.
WRITE_FORMATS: Mapping[str, AnnotationFormat] = _WritableView()


def register_format(fmt: AnnotationFormat, *, replace: bool = False) -> AnnotationFormat:
    """Add ``fmt`` to the registry (``replace=True`` to override a format of the same name); returns it."""
    if fmt.name in _REGISTRY and not replace:
        raise ValueError(f"an annotation format named {fmt.name!r} is already registered")
    if fmt.fallback:
        other = [f.name for f in _REGISTRY.values() if f.fallback and f.name != fmt.name]
        if other:
            raise ValueError(f"format {fmt.name!r} cannot be the fallback: {other[0]!r} already is")
    _REGISTRY[fmt.name] = fmt
    return fmt


def unregister_format(name: str) -> None:
    """Remove a registered format (for tests and plugins that registered one temporarily)."""
    _REGISTRY.pop(name, None)


def get_format(name: str) -> AnnotationFormat:
    """The registered format called ``name``."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise InputError(f"unknown annotation format {name!r}; expected one of {', '.join(_REGISTRY)}") from None


def formats_for_extension(ext: str) -> list[AnnotationFormat]:
    """The registered formats that claim the extension ``ext`` (with the dot, any case), in registration order."""
    ext = ext.lower()
    return [f for f in _REGISTRY.values() if ext in f.extensions]


def output_choice(ext: str) -> tuple[AnnotationFormat | None, list[AnnotationFormat]]:
    """The format written for extension ``ext`` (None when no writer or several claim it), and every writer of it."""
    writers = [f for f in formats_for_extension(ext) if f.writable]
    if len(writers) == 1:
        return writers[0], writers
    preferred = [f for f in writers if ext.lower() in f.default_output_for]
    return (preferred[0] if len(preferred) == 1 else None), writers


def output_extensions() -> dict[str, str]:
    """Every extension that decides the output format on its own: extension -> format name."""
    out: dict[str, str] = {}
    for fmt in WRITE_FORMATS.values():
        for ext in fmt.extensions:
            if output_choice(ext)[0] is fmt:
                out[ext] = fmt.name
    return out
