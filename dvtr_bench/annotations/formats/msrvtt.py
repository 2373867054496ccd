"""MSR-VTT-style JSON: ``{"videos": [...], "sentences": [...]}``, as in MSR-VTT's own ``MSRVTT_data.json``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from dvtr_bench.annotations.formats._common import _first, _load_json, _looks_like_jsonl, _Sink, _text_head
from dvtr_bench.annotations.formats.base import AnnotationFormat, register_format
from dvtr_bench.annotations.record import CaptionRecord, normalize_id
from dvtr_bench.annotations.validate import Problem
from dvtr_bench.errors import InputError


def read_msrvtt(path: str | Path, *, problems: list[Problem] | None = None) -> list[CaptionRecord]:
    """MSR-VTT-style JSON: ``{"videos": [...], "sentences": [...]}``.

    Each ``videos`` entry is one record: ``video_id`` (the video file the captions describe), optional
    ``clip_id``, ``split`` ("validate" counts as validation), ``"start time"``/``"end time"`` (or
    start_s/end_s), ``category``/``label``, ``meta``. Each sentence ``{"video_id", "caption", "sen_id"}``
    (plus ``clip_id`` when entries share a video) attaches to its entry. In the original MSR-VTT the
    entries carry a YouTube ``url`` and their times locate the clip inside that YouTube video, not inside
    the local file; for such entries the times are kept in ``meta`` (``url``, ``source_start_s``,
    ``source_end_s``) and the record covers the whole local file.
    """
    data = _load_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("videos"), list) \
            or not isinstance(data.get("sentences"), list):
        raise InputError('expected an object with "videos" and "sentences" arrays (MSR-VTT layout)', path)
    sink = _Sink(problems)
    records: list[CaptionRecord] = []
    by_clip: dict[str, CaptionRecord] = {}
    by_video: dict[str, list[CaptionRecord]] = {}
    for i, v in enumerate(data["videos"]):
        loc = f"videos[{i}]"
        try:
            if not isinstance(v, dict):
                raise InputError(f"expected an object, got {type(v).__name__}", path, loc)
            start = _first(v, "start_s", "start time", "start_time")
            end = _first(v, "end_s", "end time", "end_time")
            meta = dict(v.get("meta") or {}) if isinstance(v.get("meta") or {}, dict) else v.get("meta")
            if v.get("url") is not None:
                # Original MSR-VTT: the times locate the clip in the YouTube video, not in the local file.
                if isinstance(meta, dict):
                    meta.update({"url": v["url"], "source_start_s": start, "source_end_s": end})
                start = end = None
            rec = CaptionRecord.from_dict({
                "video_id": v.get("video_id"), "clip_id": v.get("clip_id"), "captions": [],
                "start_s": start, "end_s": end, "label": _first(v, "label", "category"),
                "split": v.get("split"), "meta": meta,
            }, path, loc)
            if rec.clip_id is not None:
                if rec.clip_id in by_clip:
                    raise InputError(f"clip_id {rec.clip_id!r} is also used by {by_clip[rec.clip_id].source.record}",
                                     path, loc)
                by_clip[rec.clip_id] = rec
            by_video.setdefault(rec.video_id, []).append(rec)
            records.append(rec)
        except InputError as exc:
            sink.error(exc)
    for j, s in enumerate(data["sentences"]):
        loc = f"sentences[{j}]"
        try:
            if not isinstance(s, dict):
                raise InputError(f"expected an object, got {type(s).__name__}", path, loc)
            cap = s.get("caption", s.get("sentence"))
            if not isinstance(cap, str):
                raise InputError("caption must be a string", path, loc)
            target = None
            if s.get("clip_id") is not None:
                target = by_clip.get(normalize_id(s["clip_id"]))
                if target is None:
                    raise InputError(f"sentence refers to unknown clip_id {s['clip_id']!r}", path, loc)
            else:
                if s.get("video_id") is None:
                    raise InputError("sentence has no video_id", path, loc)
                vid = normalize_id(s["video_id"])
                # A sentence names its entry by clip_id when it has one, else by video_id.
                cands = by_clip.get(vid) and [by_clip[vid]] or by_video.get(vid, [])
                if not cands:
                    raise InputError(f"sentence refers to unknown video_id {s['video_id']!r}", path, loc)
                if len(cands) > 1:
                    raise InputError(f"video_id {vid!r} has {len(cands)} entries; give the sentence a clip_id",
                                     path, loc)
                target = cands[0]
            target.captions.append(cap)
        except InputError as exc:
            sink.error(exc)
    return records


def write_msrvtt(records: Sequence[CaptionRecord], path: str | Path) -> None:
    """MSR-VTT-style JSON; entries carry clip_id when records have one, and sentences name their entry."""
    videos, sentences = [], []
    for r in records:
        entry: dict[str, Any] = {"video_id": r.video_id_as_given}
        if r.clip_id:
            entry["clip_id"] = r.clip_id_as_given
        if r.split:
            entry["split"] = "validate" if r.split == "validation" else r.split
        if r.start_s is not None:
            entry["start time"] = r.start_s
        if r.end_s is not None:
            entry["end time"] = r.end_s
        if r.label is not None:
            entry["label"] = r.label
        if r.meta:
            entry["meta"] = r.meta
        videos.append(entry)
        for cap in r.captions:
            s: dict[str, Any] = {"video_id": r.video_id_as_given, "caption": cap, "sen_id": len(sentences)}
            if r.clip_id:
                s["clip_id"] = r.clip_id_as_given
            sentences.append(s)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        json.dump({"info": {"format": "MSR-VTT style, written by dvtr"}, "videos": videos,
                   "sentences": sentences}, f, ensure_ascii=False, indent=1)
        f.write("\n")


def _sniff(path: Path) -> bool:
    text = _text_head(path)
    # .json is MSR-VTT's own extension (JSON Lines have theirs), so there any object is taken for MSR-VTT;
    # elsewhere an object whose first line parses alone is a JSON Lines record.
    return text.startswith("{") and (path.suffix.lower() == ".json" or not _looks_like_jsonl(text))


MSRVTT = register_format(AnnotationFormat(
    name="msrvtt", title="MSR-VTT JSON",
    description='MSR-VTT-style JSON: {"videos": [...], "sentences": [...]}, one videos entry per record',
    extensions=(".json",), read=read_msrvtt, write=write_msrvtt, sniff=_sniff,
    # MSR-VTT JSON holds every field and is what other retrieval code reads, so a bare .json output is this.
    default_output_for=(".json",),
))
