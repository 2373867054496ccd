"""The footage `dvtr synth` writes must pass annotation validation against its own videos, and align to its shots."""

from __future__ import annotations

import json
from pathlib import Path


from dvtr_bench.annotations import align, read_annotations, validate, video_id_from_path
from dvtr_bench.commands.annotations import video_durations


def test_synth_annotations_validate_against_the_footage(footage: Path) -> None:
    records = read_annotations(footage / "annotations.jsonl")
    assert records and all(len(r.captions) == 5 and r.has_span and r.label for r in records)
    durations, video_problems = video_durations(footage / "videos")
    assert video_problems == []
    # the .SRT telemetry sidecars next to the videos are not videos
    assert set(durations) == {video_id_from_path(p) for p in (footage / "videos").glob("*.mp4")}
    assert validate(records, durations, tolerance_s=0.0) == []


def test_synth_takes_align_to_the_ground_truth_shots(footage: Path) -> None:
    shots = json.loads((footage / "shots.json").read_text())
    clips = []
    for vid, v in shots["videos"].items():
        for k, t in enumerate(v["takes"]):
            # The clip ids a shot segmenter would give differ from the takes' ids: alignment must use the times.
            clips.append({"video_id": vid, "clip_id": f"{vid}_shot_{k}", "start_s": t["start_frame"] / v["fps"],
                          "end_s": t["end_frame"] / v["fps"]})
    records = read_annotations(footage / "annotations.jsonl")
    res = align(records, clips)
    assert res.unattached == [] and res.uncaptioned() == []
    assert all(a.method == "overlap" and a.overlap > 0.8 for a in res.attachments)
