"""Caption annotations: the canonical record, readers and writers per format, validation and audit."""

from dvtr_bench.annotations.record import CaptionRecord, iter_jsonl, write_jsonl

__all__ = ["CaptionRecord", "iter_jsonl", "write_jsonl"]
