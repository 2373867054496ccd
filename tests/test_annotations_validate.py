"""Validation lists every problem with file and record; alignment by id and by overlap; the caption audit."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from dvtr_bench.annotations import (CaptionRecord, Problem, align, audit_captions, audit_records, caption_problem,
                                    has_errors, read_annotations, validate)
from dvtr_bench.annotations.align import overlap_fraction

EXAMPLES = Path(__file__).resolve().parents[1] / "annotations"


# ------------------------------------------------------------------------------------------ validate

def _messy(tmp_path: Path) -> Path:
    lines = [
        {"video_id": "flight_000", "clip_id": "a", "start_s": 0, "end_s": 5, "captions": ["fine caption"]},  # 1
        {"video_id": "flight_009", "captions": ["unknown video"]},                                           # 2
        {"video_id": "flight_000", "clip_id": "b", "start_s": 7, "end_s": 7, "captions": ["empty span"]},     # 3
        {"video_id": "flight_000", "clip_id": "c", "start_s": -1, "end_s": 70, "captions": ["outside"]},      # 4
        {"video_id": "flight_000", "clip_id": "d", "start_s": 3, "captions": ["only start"]},                  # 5
        {"video_id": "flight_000", "clip_id": "e", "captions": ["", "   ", "caf\u00c3\u00a9 mojibake",
                                                                "bell\u0007", "repl \ufffd"]},              # 6
        {"video_id": "flight_000", "clip_id": "a", "captions": ["other"]},                                   # 7
        {"video_id": "flight_001", "captions": []},                                                          # 8
        {"video_id": "flight_001", "captions": [], "split": "holdout"},                                     # 9
        {"video_id": "flight_000", "clip_id": "a", "start_s": 0, "end_s": 5, "captions": ["fine caption"]},  # 10
    ]
    p = tmp_path / "messy.jsonl"
    body = "\n".join(json.dumps(x) for x in lines) + "\n"
    # Line 11: a caption holding a byte that is not UTF-8.
    raw = body.encode() + b'{"video_id": "flight_001", "clip_id": "f", "captions": ["caf\xe9"]}\n'
    p.write_bytes(raw)
    return p


def test_validate_lists_every_problem_with_file_and_record(tmp_path: Path) -> None:
    p = _messy(tmp_path)
    records = read_annotations(p)
    problems = validate(records, videos={"flight_000.mp4": 60.0, "flight_001": None})
    assert all(q.file == str(p) for q in problems)
    got = {(q.record, q.code) for q in problems}
    expected = {
        ("line 2", "unknown_video"),
        ("line 3", "bad_span"),
        ("line 4", "negative_time"), ("line 4", "beyond_video"),
        ("line 5", "partial_span"),
        ("line 6", "empty_caption"), ("line 6", "undecodable_caption"),
        ("line 7", "duplicate_clip_id"),
        ("line 8", "no_captions"),
        ("line 9", "no_captions"), ("line 9", "unknown_split"),
        ("line 10", "duplicate_record"),
        ("line 11", "undecodable_caption"),
    }
    assert got == expected
    line6 = [q.message for q in problems if q.record == "line 6"]
    assert len(line6) == 5  # two empty, mojibake, control character, replacement character: one problem each
    assert any("mojibake" in m for m in line6) and any("U+0007" in m for m in line6) and any("U+FFFD" in m for m in line6)
    assert "0xe9" in next(q.message for q in problems if q.record == "line 11")
    assert "line 1" in next(q.message for q in problems if q.code == "duplicate_clip_id")
    assert str(problems[0]).startswith(f"{p}: line 2 [video_id=flight_009]")
    assert has_errors(problems)


def test_validate_without_videos_skips_video_checks(tmp_path: Path) -> None:
    codes = {q.code for q in validate(read_annotations(_messy(tmp_path)))}
    assert "unknown_video" not in codes and "beyond_video" not in codes and "negative_time" in codes


def test_validate_tolerance_and_clean_examples() -> None:
    recs = [CaptionRecord("v", ["x"], start_s=0.0, end_s=10.0004)]
    assert validate(recs, {"v": 10.0}) == []
    assert [q.code for q in validate(recs, {"v": 10.0}, tolerance_s=0.0)] == ["beyond_video"]
    examples = read_annotations(EXAMPLES / "example.jsonl")
    assert validate(examples, {"flight_000": 19.2, "flight_001": 12.0, "flight_002": 9.6}) == []


def test_validate_names_file_for_records_without_source() -> None:
    (q,) = validate([CaptionRecord("v", [])], file="mem.jsonl")
    assert (q.file, q.record, q.code) == ("mem.jsonl", None, "no_captions")


def test_repeated_caption_in_one_record_is_a_warning() -> None:
    problems = validate([CaptionRecord("v", ["A drone.", "a  drone."])])
    assert [(q.code, q.severity) for q in problems] == [("repeated_caption", "warning")]
    assert not has_errors(problems)


@pytest.mark.parametrize("text,ok", [
    ("A drone flies over a river.", True), ("Überflug über den Fluss, café, naïve", True), ("川の上を飛ぶドローン", True),
    ("", False), (" \t", False), ("caf\udce9", False), ("a\x00b", False), ("Ã©tÃ©", False), ("x\u0085y", False), ("icon \ue000", False), ("del\x7f", False),
])
def test_caption_problem(text: str, ok: bool) -> None:
    assert (caption_problem(text) is None) == ok


def test_problem_is_serialisable() -> None:
    q = Problem("f.csv", "line 3", "bad", "bad_span", "v", "c")
    assert json.loads(json.dumps(q.to_dict()))["record"] == "line 3"
    assert str(q) == "f.csv: line 3 [video_id=v, clip_id=c]: bad"


# ------------------------------------------------------------------------------------------ align

@dataclass
class Clip:
    video_id: str
    clip_id: str
    start_s: float
    end_s: float


def _clips() -> list[Clip]:
    return [Clip("flight_000", "s0", 0.0, 8.0), Clip("flight_000", "s1", 8.0, 19.2),
            Clip("flight_001", "s2", 0.0, 12.0), Clip("flight_003", "s3", 0.0, 5.0), Clip("flight_003", "s4", 5.0, 9.0)]


def test_align_by_clip_id_then_overlap() -> None:
    recs = [
        CaptionRecord("flight_000", ["by id"], clip_id="s1"),
        CaptionRecord("flight_000", ["by overlap"], clip_id="take_00", start_s=0.2, end_s=8.4),
        CaptionRecord("flight_001.mp4", ["whole single"]),
        CaptionRecord("flight_003", ["whole of two"]),
        CaptionRecord("flight_000", ["too little"], start_s=6.0, end_s=11.0),
        CaptionRecord("flight_002", ["no clips"], start_s=0.0, end_s=1.0),
        CaptionRecord("flight_001", ["wrong video"], clip_id="s0"),
        CaptionRecord("flight_000", ["half"], start_s=3.0),
        CaptionRecord("flight_000", ["missing clip"], clip_id="s9"),
        CaptionRecord("flight_000", ["past the end"], start_s=30.0, end_s=40.0),
    ]
    res = align(recs, _clips())
    assert res.captions == {"s0": ["by overlap"], "s1": ["by id"], "s2": ["whole single"], "s3": [], "s4": []}
    assert [(a.record_index, a.clip_id, a.method) for a in res.attachments] == [
        (0, "s1", "clip_id"), (1, "s0", "overlap"), (2, "s2", "whole_video")]
    assert res.attachments[1].overlap == pytest.approx(7.8 / 8.4)
    reasons = {u.record_index: u.reason for u in res.unattached}
    assert set(reasons) == {3, 4, 5, 6, 7, 8, 9}
    assert "whole_video='all'" in reasons[3]
    assert "best overlap is 23% (iou) with clip 's1'" in reasons[4] and "below the minimum 50%" in reasons[4]
    assert "no clip comes from video 'flight_002'" in reasons[5]
    assert "belongs to video 'flight_000'" in reasons[6]
    assert "only one of" in reasons[7]
    assert "matches no clip" in reasons[8]
    assert "overlaps no clip" in reasons[9]
    assert res.uncaptioned() == ["s3", "s4"]
    assert res.summary()["unattached_records"] == 7


def test_align_options() -> None:
    recs = [CaptionRecord("flight_003", ["whole"]), CaptionRecord("flight_000", ["x"], start_s=6.0, end_s=11.0)]
    res = align(recs, _clips(), whole_video="all", min_overlap=0.2)
    assert res.captions["s3"] == ["whole"] and res.captions["s4"] == ["whole"]
    # 6-11 s: IoU 2/11 with s0 (0-8), 3/13.2 with s1 (8-19.2) -> s1 wins.
    assert res.captions["s1"] == ["x"]
    res = align(recs, _clips(), overlap="record", min_overlap=0.6)
    assert res.captions["s1"] == ["x"] and res.attachments[0].overlap == pytest.approx(0.6)
    res = align([CaptionRecord("flight_001", ["w"])], _clips(), whole_video="none")
    assert res.attachments == [] and "not attached" in res.unattached[0].reason
    # Mappings work as clips too, and ids are normalised on both sides.
    res = align([CaptionRecord("v", ["m"], clip_id="c.mp4")], [{"video_id": "v.MP4", "clip_id": " c", "start_s": 0,
                                                               "end_s": 1}])
    assert res.captions == {"c": ["m"]}
    with pytest.raises(ValueError, match="twice"):
        align([], [Clip("v", "c", 0, 1), Clip("v", "c", 1, 2)])
    with pytest.raises(ValueError):
        align([], [], min_overlap=2)


def test_align_ties_go_to_the_earliest_clip() -> None:
    res = align([CaptionRecord("v", ["t"], start_s=4.0, end_s=6.0)], [Clip("v", "b", 5.0, 7.0), Clip("v", "a", 3.0, 5.0)],
                min_overlap=0.1)
    assert res.attachments[0].clip_id == "a"


def test_align_labels_and_splits() -> None:
    recs = [CaptionRecord("flight_000", ["x"], clip_id="s0", label="farm", split="train")]
    recs.append(CaptionRecord("flight_000", ["y"], start_s=0.5, end_s=7.5, meta={"k": 1}))
    res = align(recs, _clips())
    assert res.labels()["s0"] == "farm" and res.splits()["s0"] == "train" and res.labels()["s1"] is None
    per = res.per_clip()
    assert per["s0"].captions == ["x", "y"] and per["s0"].record_indices == [0, 1] and per["s0"].meta == {"k": 1}
    assert per["s1"].captions == [] and per["s1"].label is None and per["s1"].meta == {}


def test_overlap_fraction() -> None:
    assert overlap_fraction((0, 10), (5, 15), "iou") == pytest.approx(5 / 15)
    assert overlap_fraction((0, 10), (5, 15), "record") == pytest.approx(0.5)
    assert overlap_fraction((0, 10), (5, 7), "clip") == pytest.approx(1.0)
    assert overlap_fraction((0, 1), (2, 3)) == 0.0


def test_examples_align_to_their_own_spans() -> None:
    recs = read_annotations(EXAMPLES / "example.csv")
    clips = [Clip(r.video_id, f"shot_{i}", r.start_s, r.end_s) for i, r in enumerate(recs)]
    res = align([CaptionRecord(r.video_id, r.captions, start_s=r.start_s, end_s=r.end_s) for r in recs], clips)
    assert not res.unattached and [len(v) for v in res.captions.values()] == [3, 3, 2, 3]


# ------------------------------------------------------------------------------------------ audit

def test_audit_captions() -> None:
    captions = {"c1": ["A river.", "a long caption " + "word " * 40], "c2": ["a river"], "c3": [],
                "c4": ["Forest road", "forest road."], "c5": ["Forest  Road"]}
    splits = {"c1": "train", "c2": "test", "c3": "train", "c4": "validation", "c5": "train"}
    video_of = {"c1": "f0", "c2": "f0", "c3": "f1", "c4": "f2", "c5": "f3"}
    a = audit_captions(captions, splits, video_of)
    assert (a.clips, a.captions, a.videos) == (5, 6, 4)
    assert a.per_split == {"train": {"clips": 3, "captions": 3, "videos": 3},
                           "validation": {"clips": 1, "captions": 2, "videos": 1},
                           "test": {"clips": 1, "captions": 1, "videos": 1}}
    assert [(x.caption, x.clip_ids, x.splits) for x in a.ambiguous_captions] == [
        ("A river.", ["c1", "c2"], ["train", "test"]), ("Forest road", ["c4", "c5"], ["train", "validation"])]
    assert a.ambiguous_captions[0].crosses_splits
    assert a.videos_in_several_splits == {"f0": ["train", "test"]}
    assert a.clips_without_captions == ["c3"]
    assert a.caption_words.max == 43 and a.caption_words.histogram[">32"] == 1
    assert a.captions_per_clip.histogram == {"0": 1, "1": 2, "2": 2}
    assert not a.ok
    md = a.to_markdown()
    assert "leak): **1**" in md and "`f0`: train, test" in md and "ambiguous ground truth): **2**" in md
    assert '"A river.": `c1`, `c2` (across train / test)' in md
    d = json.loads(json.dumps(a.to_dict()))
    assert d["videos_in_several_splits"] == {"f0": ["train", "test"]}


def test_audit_of_clean_examples() -> None:
    a = audit_records(read_annotations(EXAMPLES / "example.jsonl"))
    assert a.ok and a.clips == 4 and a.captions == 11 and a.videos == 3
    assert set(a.per_split) == {"train", "validation", "test"}
    assert "none." in a.to_markdown()


def test_audit_records_merges_and_notes() -> None:
    recs = [CaptionRecord("v", ["a"]), CaptionRecord("v", ["b"]), CaptionRecord("v", ["c"], start_s=0, end_s=2)]
    a = audit_records(recs)
    assert a.clips == 2 and a.notes and "merged" in a.notes[0]


def test_align_matches_a_brute_force_scan_on_many_windows() -> None:
    import random

    rng = random.Random(0)
    # Overlapping windows of varied length (ends are not sorted), as a window segmenter with overlap makes.
    clips = []
    t = 0.0
    for k in range(400):
        length = rng.uniform(1.0, 20.0)
        clips.append(Clip("v", f"w{k}", t, t + length))
        t += rng.uniform(0.5, 10.0)
    recs = []
    for _ in range(300):
        a = rng.uniform(-5.0, t + 5.0)
        recs.append(CaptionRecord("v", ["x"], start_s=a, end_s=a + rng.uniform(0.1, 15.0)))
    res = align(recs, clips, min_overlap=0.0, overlap="record")
    got = {a.record_index: a.clip_id for a in res.attachments}
    for i, r in enumerate(recs):
        best, key = None, (0.0, 0.0)
        for c in clips:  # given in start order, so the first maximum is the earliest clip
            frac = overlap_fraction((r.start_s, r.end_s), (c.start_s, c.end_s), "record")
            inter = max(0.0, min(r.end_s, c.end_s) - max(r.start_s, c.start_s))
            if (frac, inter) > key:
                best, key = c.clip_id, (frac, inter)
        assert got.get(i) == best, i
