"""Caption annotations: the canonical record, the registry of formats (readers, writers), validation, alignment, audit.

Typical use (what ``dvtr build-dataset`` does)::

    records = read_annotations("annotations.jsonl")          # format sniffed; ids normalised
    problems = validate(records, videos={"flight_000": 62.4})  # every problem, with file and record
    result = align(records, clips)                           # captions per clip + unattached records
    audit = audit_captions(result.captions, splits, video_of)  # dataset-card statistics
"""

from dvtr_bench.annotations.align import AlignedCaptions, Alignment, Attachment, Clip, Unattached, align
from dvtr_bench.annotations.audit import CaptionAudit, audit_captions, audit_records
from dvtr_bench.annotations.formats import (FORMATS, WRITE_FORMATS, AnnotationFormat, get_format, output_format,
                                            read_annotations, register_format, sniff_format, write_annotations)
from dvtr_bench.annotations.record import (SPLIT_NAMES, VIDEO_EXTENSIONS, CaptionRecord, SourceRef, iter_jsonl,
                                           normalize_id, normalize_split, video_id_from_path, write_jsonl)
from dvtr_bench.annotations.safe_pickle import load_plain, loads_plain
from dvtr_bench.annotations.validate import Problem, caption_problem, has_errors, validate

__all__ = [
    "AlignedCaptions", "Alignment", "AnnotationFormat", "Attachment", "CaptionAudit", "CaptionRecord", "Clip",
    "FORMATS", "Problem", "SPLIT_NAMES", "SourceRef", "Unattached", "VIDEO_EXTENSIONS", "WRITE_FORMATS", "align",
    "audit_captions", "audit_records", "caption_problem", "get_format", "has_errors", "iter_jsonl", "load_plain",
    "loads_plain", "normalize_id", "normalize_split", "output_format", "read_annotations", "register_format",
    "sniff_format", "validate", "video_id_from_path", "write_annotations", "write_jsonl",
]
