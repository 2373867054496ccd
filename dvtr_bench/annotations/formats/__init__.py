"""Readers and writers of caption annotations in the formats researchers actually have.

Each format is one module of this package that registers an :class:`AnnotationFormat` (see :mod:`.base`);
:data:`FORMATS` and :data:`WRITE_FORMATS` are views of that registry, and :func:`sniff_format`,
:func:`output_format`, :func:`read_annotations` and :func:`write_annotations` dispatch through it.

Every reader returns canonical :class:`CaptionRecord` objects with normalised ids and a :class:`SourceRef`
naming the file and the record (JSONL/CSV: ``line N``; Parquet: ``row N`` (0-based, as pandas and pyarrow
count); MSR-VTT JSON: ``videos[i]`` / ``sentences[j]``; CLIP4Clip: ``key 'id'`` or ``<list file>: line N``).

Errors in a single record raise :class:`InputError` by default. Pass ``problems=[]`` to collect them as
:class:`Problem` objects instead and skip the broken records, so that ``validate`` can list every problem
of a file in one pass. File-level errors (unreadable file, a refused pickle, JSON that does not parse as a
whole) always raise.

Undecodable bytes in text files are kept as lone surrogates (``errors="surrogateescape"``) rather than
stopping the reader, so validation can report the exact caption that holds them.
"""

from dvtr_bench.annotations.formats.base import (FORMATS, WRITE_FORMATS, AnnotationFormat, formats_for_extension,
                                                 get_format, output_extensions, register_format,
                                                 unregister_format)
from dvtr_bench.annotations.formats.dispatch import (output_format, read_annotations, sniff_format,
                                                     write_annotations)

# The built-in formats register on import, in this order: the order FORMATS lists them and --format offers them.
# isort: off
from dvtr_bench.annotations.formats.jsonl import read_jsonl, write_jsonl
from dvtr_bench.annotations.formats.json_array import read_json, write_json
from dvtr_bench.annotations.formats.csv_tsv import read_csv, write_csv
from dvtr_bench.annotations.formats.parquet import read_parquet, write_parquet
from dvtr_bench.annotations.formats.msrvtt import read_msrvtt, write_msrvtt
from dvtr_bench.annotations.formats.clip4clip import (CLIP4CLIP_CAPTIONS, CLIP4CLIP_SPLITS, read_clip4clip,
                                                      write_clip4clip)
# isort: on

__all__ = [
    "AnnotationFormat", "CLIP4CLIP_CAPTIONS", "CLIP4CLIP_SPLITS", "FORMATS", "WRITE_FORMATS", "formats_for_extension",
    "get_format", "output_extensions", "output_format", "read_annotations", "read_clip4clip", "read_csv",
    "read_json", "read_jsonl", "read_msrvtt", "read_parquet", "register_format", "sniff_format",
    "unregister_format", "write_annotations", "write_clip4clip", "write_csv", "write_json", "write_jsonl",
    "write_msrvtt", "write_parquet",
]
