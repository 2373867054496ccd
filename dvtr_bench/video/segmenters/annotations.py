"""Annotation-aligned spans: the caption records' own start/end times are the clips."""

from __future__ import annotations

from typing import Any, Sequence

from dvtr_bench.video.probe import VideoInfo
from dvtr_bench.video.segmenters.base import Segmenter, Span, register_segmenter


@register_segmenter
class AnnotationSegmenter(Segmenter):
    """The annotation file's own start/end times are the clips (one clip per timed record).

    Records without times describe the whole video and become one clip spanning it. ``min_len`` drops spans
    too short to sample; spans are never split, since their captions describe the whole span.
    """

    name = "annotations"
    description = "exactly the annotation records' spans, with their captions (needs --annotations)"
    spans_from_records = True

    def __init__(self, min_len: float | None = None):
        self.min_len = min_len

    def params(self) -> dict[str, Any]:
        return {"min_len": self.min_len}

    def start(self, info: VideoInfo, records: Sequence[Any] = ()) -> list[Span] | None:
        super().start(info, records)
        spans: list[Span] = []
        for i, r in enumerate(records):
            s = 0.0 if r.start_s is None else max(0.0, float(r.start_s))
            e = info.duration_s if r.end_s is None else min(float(r.end_s), info.duration_s)
            if e <= s or (self.min_len and e - s < self.min_len):
                continue
            spans.append(Span(s, e, clip_id=r.clip_id, captions=tuple(r.captions), label=r.label,
                              meta={"record": i, **({"meta": r.meta} if r.meta else {})}))
        return spans
