"""DJI telemetry sidecars: the variants of public samples, damaged files, clip summaries, the telemetry segmenter,
and the whole path through dvtr synth and build-dataset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dvtr_bench.video.telemetry import clip_telemetry, find_sidecar, motion_series, read_srt

# One or two subtitles of each variant, in the layouts of public DJI samples (values invented).
OLD_LONLAT = """1
00:00:01,000 --> 00:00:02,000
HOME(131.1660,-25.2088) 2017.07.29 15:18:50
GPS(131.1660,-25.2088,14) BAROMETER:0.0
ISO:100 Shutter:60 EV: Fnum:2.2

2
00:00:02,000 --> 00:00:03,000
HOME(131.1660,-25.2088) 2017.07.29 15:18:51
GPS(131.1661,-25.2088,14) BAROMETER:0.5
ISO:100 Shutter:60 EV: Fnum:2.2
"""
MATRICE = """1
00:00:00,000 --> 00:00:01,000
2022.06.21 16:06:17
GPS(36.6146,-6.1120,0.0M) BAROMETER:0.3M

2
00:01:59,000 --> 00:01:60,000
2022.06.21 16:08:16
GPS(36.6172,-6.1151,0.0M) BAROMETER:85.7M
"""
MAVIC_MINI = """1
00:00:00,000 --> 00:00:01,000
F/2.8, SS 206.14, ISO 150, EV 0, GPS (-82.6669, 27.7716, 10), D 2.80m, H 3.50m, H.S 0.00m/s, V.S 0.00m/s
"""
AIR_2S = """1
00:00:00,000 --> 00:00:00,033
<font size="36">SrtCnt : 1, DiffTime : 33ms
2022-08-07 13:40:40,774,808
[iso : 100] [shutter : 1/80.0] [fnum : 280] [ev : 0] [ct : 5744] [color_md : default] [focal_len : 240] [latitude: 41.424724] [longitude: 2.234156] [altitude: 117.000000] </font>
"""
MINI_3 = """1
00:00:00,000 --> 00:00:00,033
<font size="28">FrameCnt: 1, DiffTime: 33ms
2026-04-27 15:22:26.853
[iso: 100] [shutter: 1/1000.0] [fnum: 1.7] [ev: -0.7] [color_md: default] [focal_len: 24.00] [latitude: 32.102624] [longitude: 35.209724] [rel_alt: 19.600 abs_alt: 729.642] [ct: 5660] </font>
"""


def _srt(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_the_variants_of_public_samples(tmp_path):
    s = read_srt(_srt(tmp_path, "p4.SRT", OLD_LONLAT)).samples[0]
    # central Australia: longitude first, as Phantom 4 / Mavic Pro firmware writes it
    assert (s.t, s.lat, s.lon, s.rel_alt, s.abs_alt) == (1.0, -25.2088, 131.166, 0.0, 14.0)
    assert (s.iso, round(s.shutter_s, 5), s.fnumber) == (100.0, round(1 / 60, 5), 2.2)
    tr = read_srt(_srt(tmp_path, "m300.SRT", MATRICE))
    # Cadiz: latitude first with metre suffixes (Matrice 300); a "00:01:60,000" end time is read, not fatal
    assert tr.gps_order == "latlon" and (tr.samples[0].lat, tr.samples[0].lon) == (36.6146, -6.112)
    assert tr.samples[1].t == 119.0 and tr.samples[1].rel_alt == 85.7 and not tr.warnings
    s = read_srt(_srt(tmp_path, "mini.SRT", MAVIC_MINI)).samples[0]
    assert (s.lat, s.lon, s.rel_alt, s.iso, s.fnumber) == (27.7716, -82.6669, 3.5, 150.0, 2.8)
    s = read_srt(_srt(tmp_path, "air2s.SRT", AIR_2S)).samples[0]
    assert (s.lat, s.lon, s.abs_alt, s.rel_alt) == (41.424724, 2.234156, 117.0, None)
    assert (s.fnumber, s.focal_len_mm, s.color_temp_k, s.shutter_s) == (2.8, 24.0, 5744.0, 1 / 80)
    s = read_srt(_srt(tmp_path, "mini3.SRT", MINI_3)).samples[0]
    assert (s.rel_alt, s.abs_alt, s.fnumber, s.ev, s.focal_len_mm) == (19.6, 729.642, 1.7, -0.7, 24.0)
    assert read_srt(_srt(tmp_path, "x.SRT", MATRICE), gps_order="lonlat").samples[0].lat == -6.112


def test_a_damaged_sidecar_is_warnings_with_file_and_line(tmp_path):
    text = MINI_3 + "\n2\n00:00:00,033 -> 00:00:00,066\nthe card was pulled out here\n\n" + MINI_3.replace(
        "00:00:00,000 --> 00:00:00,033", "00:00:00,066 --> 00:00:00,100").replace("1\n", "3\n", 1)
    p = _srt(tmp_path, "DJI_0001.SRT", text)
    tr = read_srt(p)
    assert len(tr.samples) == 2
    assert tr.warnings == [f"{p}: line 7: not a subtitle block (SRTParseError; it starts '2'); skipped"]
    garbage = tmp_path / "bin.SRT"
    garbage.write_bytes(b"\xff\xfe\x00garbage")
    assert read_srt(garbage).samples == [] and "cannot read" in read_srt(garbage).warnings[0]


def test_sidecar_next_to_its_video(tmp_path):
    (tmp_path / "DJI_0001.MP4").write_bytes(b"")
    assert find_sidecar(tmp_path / "DJI_0001.MP4") is None
    _srt(tmp_path, "DJI_0001.SRT", MINI_3)
    assert find_sidecar(tmp_path / "DJI_0001.MP4") == tmp_path / "DJI_0001.SRT"


@pytest.fixture(scope="module")
def flights():
    from dvtr_bench.testing.footage import synth_footage

    return synth_footage(flights=3, seed=21, takes=6, min_take=3.0, max_take=6.0)


def test_synth_sidecars_follow_the_camera(flights):
    """dvtr synth writes an .SRT per flight; the clip summary of each take says what its camera did."""
    checked = set()
    for line in (flights / "annotations.jsonl").read_text().splitlines():
        r = json.loads(line)
        cam = r["meta"]["scene_graph"]["camera"]
        tr = read_srt(flights / "videos" / f"{r['video_id']}.SRT")
        assert not tr.warnings
        c = clip_telemetry(tr, r["start_s"], r["end_s"])
        motion = cam["motion"]
        if motion in ("forward", "pan_left", "pan_right"):
            assert c["ground_speed_mps"] == pytest.approx(cam["speed_mps"], rel=0.15), r["clip_id"]
            assert c["heading_deg"] is not None
        elif motion in ("hover", "rotate"):
            assert c["ground_speed_mps"] < 0.5, r["clip_id"]
        elif motion in ("ascend", "descend"):
            assert (c["climb_rate_mps"] > 0) == (motion == "ascend"), r["clip_id"]
        assert c["start_rel_alt_m"] == pytest.approx(cam["view_height_m"] * 1.072, rel=0.35)
        checked.add(motion)
    assert {"hover", "rotate"} & checked and len(checked) >= 3


def test_telemetry_segmenter_finds_the_flight_phases(flights):
    from dvtr_bench.video.process import process_video
    from dvtr_bench.video.segmenters import make_segmenter

    expect = {"forward": "transit", "pan_left": "transit", "pan_right": "transit", "hover": "hover",
              "rotate": "turn", "ascend": "climb", "descend": "descend"}
    agree = total = 0
    for vid in ("flight_000", "flight_001", "flight_002"):
        r = process_video(flights / "videos" / f"{vid}.mp4", make_segmenter("telemetry"))
        assert r.clips and all(c.span.label in expect.values() for c in r.clips)
        takes = [json.loads(line) for line in (flights / "annotations.jsonl").read_text().splitlines()
                 if json.loads(line)["video_id"] == vid]
        for c in r.clips:
            mid = (c.span.start_s + c.span.end_s) / 2
            take = next((t for t in takes if t["start_s"] <= mid < t["end_s"]), None)
            if take is None:
                continue
            want = expect[take["meta"]["camera_motion"]]
            rate = abs(take["meta"]["scene_graph"]["camera"].get("yaw_rate_dps", 10.0))
            if want == "turn" and rate < 3.0:
                continue                               # slower than the segmenter's turn_rate: a hover
            total += 1
            agree += c.span.label == want
    assert total >= 6 and agree / total >= 0.8, (agree, total)


def test_motion_series_ignores_jumps_between_places(flights):
    tr = read_srt(flights / "videos" / "flight_000.SRT")
    m = motion_series(tr)
    assert m["speed"].max() < 15.0 and abs(m["climb"]).max() < 5.0     # takes 300 m apart, no 300 m/s flight


def test_build_has_typed_telemetry_and_a_broken_sidecar_is_a_warning(flights, tmp_path):
    import shutil

    import pyarrow.parquet as pq
    from click.testing import CliRunner

    from dvtr_bench.cli import cli

    vids = tmp_path / "in"
    vids.mkdir()
    shutil.copy(flights / "videos" / "flight_000.mp4", vids)
    text = (flights / "videos" / "flight_000.SRT").read_text()
    blocks = text.split("\n\n")
    blocks[10] = "11\nthis line was damaged"
    (vids / "flight_000.SRT").write_text("\n\n".join(blocks))
    line = "\n\n".join(blocks[:10]).count("\n") + 3
    res = CliRunner().invoke(cli, ["build-dataset", str(vids), "-a", str(flights / "annotations.jsonl"),
                                   "--out", str(tmp_path / "ds"), "-j", "1", "--splits", "train=1"])
    assert res.exit_code == 0, res.output
    assert f"telemetry: {vids / 'flight_000.SRT'}: line {line}: not a subtitle block" in res.output
    table = pq.read_table(next((tmp_path / "ds" / "data").glob("*.parquet")))
    assert str(table.schema.field("telemetry").type.field("ground_speed_mps").type) == "double"
    rows = table.to_pylist()
    assert rows and all(r["telemetry"]["source"] == "flight_000.SRT" for r in rows)
    card = (tmp_path / "ds" / "README.md").read_text()
    assert "## Telemetry" in card and f"{len(rows)} of {len(rows)} clips carry flight telemetry" in card
    man = pq.read_table(tmp_path / "ds" / "build" / "manifest.parquet").to_pylist()[0]
    assert man["telemetry_source"] == "flight_000.SRT" and man["telemetry_samples"] > 100
    assert f"line {line}" in man["telemetry_warnings"]
