"""Annotation readers and writers: every format, good and bad input, id normalisation, the shipped examples."""

from __future__ import annotations

import dataclasses
import json
import pickle
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dvtr_bench.annotations import (CaptionRecord, normalize_id, read_annotations, sniff_format,
                                    video_id_from_path, write_annotations)
from dvtr_bench.errors import InputError

EXAMPLES = Path(__file__).resolve().parents[1] / "annotations"


def _expected() -> list[CaptionRecord]:
    return read_annotations(EXAMPLES / "example.jsonl")


def _clip4clip_view(records: list[CaptionRecord]) -> list[CaptionRecord]:
    # The CLIP4Clip layout has one entry per clip file and keeps only ids, captions and splits.
    return [CaptionRecord(video_id=r.clip_id or r.video_id, captions=r.captions, split=r.split) for r in records]


# ------------------------------------------------------------------------------------------ shipped examples

def test_examples_cover_every_format_and_agree() -> None:
    expected = _expected()
    assert len(expected) == 4 and sum(len(r.captions) for r in expected) == 11
    assert {r.split for r in expected} == {"train", "validation", "test"}
    for name, fmt in [("example.csv", "csv"), ("example.parquet", "parquet"), ("example_msrvtt.json", "msrvtt")]:
        assert sniff_format(EXAMPLES / name) == fmt
        got = read_annotations(EXAMPLES / name)
        assert got == expected, name
    assert sniff_format(EXAMPLES / "clip4clip") == "clip4clip"
    assert read_annotations(EXAMPLES / "clip4clip") == _clip4clip_view(expected)
    assert read_annotations(EXAMPLES / "clip4clip" / "raw-captions.pkl") == _clip4clip_view(expected)


def test_examples_match_the_json_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((EXAMPLES / "schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for line in (EXAMPLES / "example.jsonl").read_text().splitlines():
        assert not list(validator.iter_errors(json.loads(line)))
    assert list(validator.iter_errors({"captions": ["x"]}))                      # no video_id
    assert list(validator.iter_errors({"video_id": "a", "captions": "x", "start_s": 1}))  # captions not a list
    assert list(validator.iter_errors({"video_id": "a", "captions": [], "colour": 1}))  # unknown field


@pytest.mark.parametrize("fmt,suffix", [("jsonl", ".jsonl"), ("json", ".json"), ("csv", ".csv"),
                                        ("parquet", ".parquet"), ("msrvtt", ".json")])
def test_round_trip_every_writer(tmp_path: Path, fmt: str, suffix: str) -> None:
    records = _expected()
    out = tmp_path / f"out{suffix}"
    assert write_annotations(records, out, fmt) == fmt
    assert read_annotations(out, fmt) == records
    assert read_annotations(out) == records or fmt == "json"  # .json sniffs as a JSON array or MSR-VTT
    # Every record knows where it came from.
    assert all(r.source is not None and r.source.file == str(out) and r.source.record for r in read_annotations(out, fmt))


def test_round_trip_clip4clip(tmp_path: Path) -> None:
    view = _clip4clip_view(_expected())
    write_annotations(view, tmp_path / "c4c", "clip4clip")
    assert sorted(p.name for p in (tmp_path / "c4c").iterdir()) == [
        "raw-captions.pkl", "test_list.txt", "train_list.txt", "val_list.txt"]
    assert read_annotations(tmp_path / "c4c") == view


# ------------------------------------------------------------------------------------------ id normalisation

@pytest.mark.parametrize("raw,expected", [
    ("flight_000", "flight_000"), ("  flight_000\t", "flight_000"), ("flight_000.mp4", "flight_000"),
    ("flight_000.MP4", "flight_000"), ("flight_000.Mov", "flight_000"), ("flight_000.mkv ", "flight_000"),
    ("flight_000.avi", "flight_000"), ("flight_000.webm", "flight_000"), ("videos/flight_000.mp4", "flight_000"),
    ("C:\\footage\\flight_000.MP4", "flight_000"), ("flight.000", "flight.000"), ("clip.txt", "clip.txt"),
    (123, "123"),
])
def test_normalize_id(raw: object, expected: str) -> None:
    assert normalize_id(raw) == expected


def test_ids_normalised_consistently_in_every_reader(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text('{"video_id": " flight_000.MP4 ", "clip_id": "c0.mp4", "captions": ["x"]}\n')
    (tmp_path / "a.csv").write_text("video_id,clip_id,caption\n flight_000.MP4 ,c0.mp4,x\n")
    pq.write_table(pa.table({"video_id": [" flight_000.MP4 "], "clip_id": ["c0.mp4"], "captions": [["x"]]}),
                   tmp_path / "a.parquet")
    (tmp_path / "a.json").write_text(json.dumps({
        "videos": [{"video_id": " flight_000.MP4 ", "clip_id": "c0.mp4"}],
        "sentences": [{"video_id": "flight_000.mp4", "clip_id": "c0", "caption": "x", "sen_id": 0}]}))
    (tmp_path / "c4c").mkdir()
    (tmp_path / "c4c" / "raw-captions.pkl").write_bytes(pickle.dumps({" flight_000.MP4 ": [["x"]]}))
    (tmp_path / "c4c" / "test_list.txt").write_text("flight_000.mp4\n")
    for name in ("a.jsonl", "a.csv", "a.parquet", "a.json"):
        (r,) = read_annotations(tmp_path / name)
        assert (r.video_id, r.clip_id, r.captions) == ("flight_000", "c0", ["x"]), name
    (r,) = read_annotations(tmp_path / "c4c")
    assert (r.video_id, r.split) == ("flight_000", "test")
    assert video_id_from_path(tmp_path / "flight_000.MP4") == "flight_000"


# ------------------------------------------------------------------------------------------ CSV

def test_csv_groups_rows_and_keeps_line_numbers(tmp_path: Path) -> None:
    p = tmp_path / "a.csv"
    p.write_text("video_id,clip_id,start,end,sentence,split\n"
                 "v1,c1,0,5,first,val\n"
                 "v2,c2,0,4,other,train\n"
                 "v1,c1,0,5,second,\n", encoding="utf-8")
    recs = read_annotations(p)
    assert [r.captions for r in recs] == [["first", "second"], ["other"]]
    assert recs[0].split == "validation" and recs[0].start_s == 0.0 and recs[0].end_s == 5.0
    assert str(recs[0].source) == f"{p}: lines 2, 4"
    assert recs[1].source.record == "line 3"


def test_csv_captions_column_with_separator_or_json_list(tmp_path: Path) -> None:
    p = tmp_path / "a.tsv"
    p.write_text('video_id\tcaptions\nv1\tone | two|three\nv2\t["a | b", "c"]\n', encoding="utf-8")
    recs = read_annotations(p)
    assert [r.captions for r in recs] == [["one", "two", "three"], ["a | b", "c"]]
    p2 = tmp_path / "b.csv"
    p2.write_text("video_id,captions\nv1,one;two\n")
    assert read_annotations(p2, caption_sep=";")[0].captions == ["one", "two"]


def test_csv_bad_input_names_file_and_line(tmp_path: Path) -> None:
    p = tmp_path / "bad.csv"
    p.write_text("video_id,caption,start_s,end_s\nv1,ok,0,1\nv2,bad time,zero,1\n,no id,0,1\n")
    with pytest.raises(InputError) as exc:
        read_annotations(p)
    assert exc.value.file == str(p) and exc.value.record == "line 3" and "start_s" in exc.value.reason
    problems: list = []
    recs = read_annotations(p, problems=problems)
    assert [r.video_id for r in recs] == ["v1"]
    assert [(q.record, q.code) for q in problems] == [("line 3", "parse"), ("line 4", "parse")]
    assert "missing video_id" in problems[1].message

    (tmp_path / "nohdr.csv").write_text("foo,bar\n1,2\n")
    with pytest.raises(InputError, match="no video_id column"):
        read_annotations(tmp_path / "nohdr.csv")
    (tmp_path / "both.csv").write_text("video_id,caption,captions\n1,2,3\n")
    with pytest.raises(InputError, match="exactly one of"):
        read_annotations(tmp_path / "both.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(InputError, match="empty file"):
        read_annotations(tmp_path / "empty.csv")


def test_csv_conflicting_rows_of_one_record(tmp_path: Path) -> None:
    p = tmp_path / "c.csv"
    p.write_text("video_id,clip_id,label,caption\nv1,c1,farm,a\nv1,c1,town,b\n")
    with pytest.raises(InputError) as exc:
        read_annotations(p)
    assert exc.value.record == "line 3" and "conflicts" in exc.value.reason and "line 2" in exc.value.reason


def test_csv_keeps_undecodable_bytes_for_validation(tmp_path: Path) -> None:
    p = tmp_path / "latin1.csv"
    p.write_bytes("video_id,caption\nv1,caf\u00e9 by the river\n".encode("latin-1"))
    (r,) = read_annotations(p)
    assert "\udce9" in r.captions[0]  # the lone byte 0xe9 survives as a surrogate for the validator


# ------------------------------------------------------------------------------------------ JSONL / JSON

def test_jsonl_bad_lines(tmp_path: Path) -> None:
    p = tmp_path / "a.jsonl"
    p.write_text('{"video_id": "v1", "captions": ["a"]}\n'
                 '{"video_id": "v2", "captions": ["b"]\n'           # truncated object
                 '\n'
                 '{"video_id": "v3", "captions": "c", "colour": 1}\n'
                 '{"video_id": "v4", "captions": [1]}\n'
                 '[1, 2]\n')
    with pytest.raises(InputError) as exc:
        read_annotations(p)
    assert exc.value.record == "line 2" and "invalid JSON" in exc.value.reason
    problems: list = []
    assert [r.video_id for r in read_annotations(p, problems=problems)] == ["v1"]
    assert [q.record for q in problems] == ["line 2", "line 4", "line 5", "line 6"]
    assert "unknown field" in problems[1].message and "list of strings" in problems[2].message


def test_json_array(tmp_path: Path) -> None:
    p = tmp_path / "a.json"
    p.write_text(json.dumps([{"video_id": "v1", "captions": ["a"]}, {"captions": ["b"]}]))
    assert sniff_format(p) == "json"
    with pytest.raises(InputError) as exc:
        read_annotations(p)
    assert exc.value.record == "records[1]"


# ------------------------------------------------------------------------------------------ Parquet

def test_parquet_caption_per_row_and_nan_times(tmp_path: Path) -> None:
    p = tmp_path / "a.parquet"
    pq.write_table(pa.table({"video_id": ["v1", "v1", "v2"], "caption": ["a", "b", "c"],
                             "start_s": [0.0, 0.0, float("nan")], "end_s": [2.0, 2.0, float("nan")],
                             "meta": ['{"k": 1}', None, None]}), p)
    recs = read_annotations(p)
    assert [(r.video_id, r.captions, r.start_s) for r in recs] == [("v1", ["a", "b"], 0.0), ("v2", ["c"], None)]
    assert recs[0].meta == {"k": 1} and recs[0].source.record == "rows 0, 1"


def test_parquet_bad_input(tmp_path: Path) -> None:
    p = tmp_path / "a.parquet"
    pq.write_table(pa.table({"video_id": ["v1", None], "captions": [["a"], ["b"]]}), p)
    with pytest.raises(InputError) as exc:
        read_annotations(p)
    assert exc.value.file == str(p) and exc.value.record == "row 1"
    (tmp_path / "junk.parquet").write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(InputError, match="not a readable Parquet"):
        read_annotations(tmp_path / "junk.parquet")
    pq.write_table(pa.table({"id": ["v1"], "captions": [["a"]]}), tmp_path / "cols.parquet")
    with pytest.raises(InputError, match="no video_id column"):
        read_annotations(tmp_path / "cols.parquet")


# ------------------------------------------------------------------------------------------ MSR-VTT JSON

def test_msrvtt_original_layout(tmp_path: Path) -> None:
    p = tmp_path / "MSRVTT_data.json"
    p.write_text(json.dumps({
        "info": {}, "videos": [
            {"category": 9, "url": "https://www.youtube.com/watch?v=x", "video_id": "video0", "start time": 137.72,
             "end time": 149.44, "split": "train", "id": 0},
            {"category": 16, "url": "https://www.youtube.com/watch?v=y", "video_id": "video1", "start time": 184.33,
             "end time": 206.89, "split": "validate", "id": 1}],
        "sentences": [{"caption": "a car is shown", "video_id": "video0", "sen_id": 0},
                      {"caption": "a man drives", "video_id": "video1", "sen_id": 1},
                      {"caption": "a red car", "video_id": "video0", "sen_id": 2}]}))
    recs = read_annotations(p)
    assert [(r.video_id, r.captions, r.split, r.label) for r in recs] == [
        ("video0", ["a car is shown", "a red car"], "train", "9"), ("video1", ["a man drives"], "validation", "16")]
    # The times locate the clip in the YouTube video, not in the local file.
    assert recs[0].start_s is None and recs[0].meta["source_start_s"] == 137.72
    assert recs[0].source.record == "videos[0]"


def test_msrvtt_bad_input(tmp_path: Path) -> None:
    p = tmp_path / "m.json"
    p.write_text(json.dumps({"videos": [{"video_id": "v1", "clip_id": "a"}, {"video_id": "v1", "clip_id": "b"},
                                        {"split": "train"}],
                             "sentences": [{"video_id": "v1", "caption": "ambiguous"},
                                           {"video_id": "nope", "caption": "x"},
                                           {"clip_id": "b", "caption": 3},
                                           {"clip_id": "b", "caption": "fine"}]}))
    problems: list = []
    recs = read_annotations(p, problems=problems)
    assert [(r.clip_id, r.captions) for r in recs] == [("a", []), ("b", ["fine"])]
    assert [q.record for q in problems] == ["videos[2]", "sentences[0]", "sentences[1]", "sentences[2]"]
    assert all(q.file == str(p) for q in problems)
    assert "give the sentence a clip_id" in problems[1].message
    (tmp_path / "x.json").write_text('{"videos": []}')
    with pytest.raises(InputError, match="MSR-VTT"):
        read_annotations(tmp_path / "x.json", "msrvtt")
    (tmp_path / "y.json").write_text('{"videos": [}')
    with pytest.raises(InputError, match="invalid JSON"):
        read_annotations(tmp_path / "y.json", "msrvtt")


# ------------------------------------------------------------------------------------------ CLIP4Clip layout

def test_clip4clip_layout(tmp_path: Path) -> None:
    (tmp_path / "raw-captions.pkl").write_bytes(pickle.dumps({
        "vid_a": [["a", "man", "runs"], ["someone", "is", "running"]],
        "vid_b.avi": [["a", "cat"]], b"vid_c": ["already a string", [b"byte", b"tokens"]]}, protocol=4))
    (tmp_path / "train_list.txt").write_text("vid_a\nvid_c\n")
    (tmp_path / "test_list.txt").write_text("vid_b\n")
    recs = read_annotations(tmp_path)
    assert [(r.video_id, r.captions, r.split) for r in recs] == [
        ("vid_a", ["a man runs", "someone is running"], "train"), ("vid_b", ["a cat"], "test"),
        ("vid_c", ["already a string", "byte tokens"], "train")]
    assert recs[0].source.record == "key 'vid_a'"


def test_clip4clip_bad_input(tmp_path: Path) -> None:
    (tmp_path / "raw-captions.pkl").write_bytes(pickle.dumps({"v1": [["ok"]], "v2": "not a list", "v3": [[1, 2]]}))
    (tmp_path / "train_list.txt").write_text("v1\nghost\n")
    (tmp_path / "val_list.txt").write_text("v1\n")
    problems: list = []
    recs = read_annotations(tmp_path, problems=problems)
    assert [r.video_id for r in recs] == ["v1"]
    got = [(Path(q.file).name, q.record) for q in problems]
    assert got == [("raw-captions.pkl", "key 'v2'"), ("raw-captions.pkl", "key 'v3'"),
                   ("train_list.txt", "line 2"), ("val_list.txt", "line 1")]
    assert "ghost" in problems[2].message and "listed for validation and for train" in problems[3].message
    (tmp_path / "raw-captions.pkl").write_bytes(pickle.dumps(["not", "a", "dict"]))
    with pytest.raises(InputError, match="expected a dict"):
        read_annotations(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no raw-captions.pkl"):
        read_annotations(tmp_path / "empty")


def test_clip4clip_explicit_split_files(tmp_path: Path) -> None:
    (tmp_path / "caps.pkl").write_bytes(pickle.dumps({"v1": [["a"]], "v2": [["b"]]}))
    (tmp_path / "mine.txt").write_text("v2\n")
    recs = read_annotations(tmp_path / "caps.pkl", split_files={"val": tmp_path / "mine.txt"})
    assert [(r.video_id, r.split) for r in recs] == [("v1", None), ("v2", "validation")]
    with pytest.raises(InputError, match="split list not found"):
        read_annotations(tmp_path / "caps.pkl", split_files={"test": tmp_path / "missing.txt"})


# ------------------------------------------------------------------------------------------ dispatch

def test_unknown_format_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        read_annotations(tmp_path / "missing.jsonl")
    (tmp_path / "a.jsonl").write_text("")
    with pytest.raises(InputError, match="unknown annotation format"):
        read_annotations(tmp_path / "a.jsonl", "xml")
    assert read_annotations(tmp_path / "a.jsonl") == []


def test_sniff_by_content(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text('{"video_id": "v", "captions": ["x"]}\n')
    (tmp_path / "b.txt").write_text('{\n "videos": [], "sentences": []\n}\n')
    (tmp_path / "c.txt").write_text("video_id,caption\nv,x\n")
    (tmp_path / "d.bin").write_bytes(pickle.dumps({"v": [["x"]]}))
    pq.write_table(pa.table({"video_id": ["v"], "caption": ["x"]}), tmp_path / "e.bin")
    assert [sniff_format(tmp_path / n) for n in ("a.txt", "b.txt", "c.txt", "d.bin", "e.bin")] == [
        "jsonl", "msrvtt", "csv", "clip4clip", "parquet"]


def test_writer_refuses_clashing_clip4clip_ids(tmp_path: Path) -> None:
    recs = [CaptionRecord("v1", ["a"]), CaptionRecord("v1", ["b"], start_s=0, end_s=1)]
    with pytest.raises(InputError, match="share the id"):
        write_annotations(recs, tmp_path / "out", "clip4clip")


def test_record_equality_ignores_source() -> None:
    a = CaptionRecord.from_dict({"video_id": "v", "captions": ["x"]}, "f1", "line 1")
    b = dataclasses.replace(a, source=None)
    assert a == b and "source" not in a.to_dict()


def test_csv_with_excel_bom_and_crlf(tmp_path: Path) -> None:
    p = tmp_path / "excel.csv"
    p.write_bytes("\ufeffvideo_id,caption\r\nv1,\"a caption, with a comma\"\r\nv1,second\r\n".encode("utf-8"))
    (r,) = read_annotations(p)
    assert r.video_id == "v1" and r.captions == ["a caption, with a comma", "second"]


def test_writers_refuse_undecodable_text_naming_the_record(tmp_path: Path) -> None:
    p = tmp_path / "latin1.csv"
    p.write_bytes("video_id,caption\nv1,fine\nv2,caf\u00e9\n".encode("latin-1"))
    recs = read_annotations(p)
    for fmt, name in (("jsonl", "o.jsonl"), ("parquet", "o.parquet"), ("csv", "o.csv")):
        with pytest.raises(InputError) as exc:
            write_annotations(recs, tmp_path / name, fmt)
        assert exc.value.file == str(p) and exc.value.record == "line 3" and "caption 1" in exc.value.reason
        assert not (tmp_path / name).exists()


@pytest.mark.parametrize("raw,seconds", [("12.5", 12.5), (" 7 ", 7.0), ("01:23", 83.0), ("1:02:03.5", 3723.5),
                                         ("00:00:04,250", 4.25), (3, 3.0)])
def test_times_accept_seconds_and_timestamps(raw: object, seconds: float) -> None:
    r = CaptionRecord.from_dict({"video_id": "v", "captions": ["x"], "start_s": raw, "end_s": 99999})
    assert r.start_s == pytest.approx(seconds)


@pytest.mark.parametrize("raw", ["1:75", "abc", "1:2:3:4", "nan", "inf", True])
def test_bad_times_are_refused(raw: object) -> None:
    with pytest.raises(InputError, match="start_s"):
        CaptionRecord.from_dict({"video_id": "v", "captions": ["x"], "start_s": raw}, "f.csv", "line 2")


# ------------------------------------------------------------------------------------------ write = read extensions

def test_tsv_is_written_tab_separated_and_reads_back(tmp_path: Path) -> None:
    # The writer used to put commas in a .tsv, which the reader (tab for .tsv) could not read back.
    records = _expected()
    out = tmp_path / "out.tsv"
    assert write_annotations(records, out) == "csv"
    assert out.read_text(encoding="utf-8").splitlines()[0].split("\t")[:2] == ["video_id", "clip_id"]
    assert read_annotations(out) == records


def test_pickle_extension_is_written_as_the_clip4clip_pickle(tmp_path: Path) -> None:
    # .pickle was read as CLIP4Clip but not accepted as an output extension; .pkl and .pickle now act alike.
    view = _clip4clip_view(_expected())
    out = tmp_path / "caps.pickle"
    assert write_annotations(view, out) == "clip4clip"
    assert out.is_file() and (tmp_path / "train_list.txt").is_file()
    assert sniff_format(out) == "clip4clip"
    assert read_annotations(out) == view


# ------------------------------------------------------------------------------------------ the public caption sets

def _usrd_like(folder: Path) -> Path:
    """A CLIP4Clip folder shaped like the MSAM authors' USRD: ids that end in a space ('Party_042 ') or hold one
    ('Baseball_008 1'), as their raw-captions.pkl and split lists do."""
    folder.mkdir(parents=True, exist_ok=True)
    data = {"Party_042 ": [["people", "dance", "in", "a", "square"]], "Baseball_008 1": [["a", "pitch", "seen"]],
            "Harvest_001": [["a", "combine", "in", "a", "field"]]}
    with open(folder / "raw-captions.pkl", "wb") as f:
        pickle.dump(data, f, protocol=4)
    (folder / "train_list.txt").write_text("Party_042 \nHarvest_001\n", encoding="utf-8")
    (folder / "test_list.txt").write_text("Baseball_008 1\n", encoding="utf-8")
    return folder


def test_every_writer_keeps_ids_as_given(tmp_path: Path) -> None:
    """Ids are matched normalised, but written back byte for byte: the authors' CLIP4Clip loader opens
    '<id>.mp4', so a dropped trailing space loses the video."""
    records = read_annotations(_usrd_like(tmp_path / "usrd"))
    assert {r.video_id for r in records} == {"Party_042", "Baseball_008 1", "Harvest_001"}
    write_annotations(records, tmp_path / "out", "clip4clip")
    with open(tmp_path / "out" / "raw-captions.pkl", "rb") as f:
        assert set(pickle.load(f)) == {"Party_042 ", "Baseball_008 1", "Harvest_001"}
    assert (tmp_path / "out" / "train_list.txt").read_text(encoding="utf-8") == "Party_042 \nHarvest_001\n"
    for ext in (".jsonl", ".json", ".csv", ".tsv", ".parquet"):
        out = tmp_path / f"again{ext}"
        write_annotations(records, out)
        back = read_annotations(out)
        assert [r.video_id_as_given for r in back] == [r.video_id_as_given for r in records], ext
        assert "Party_042 " in [r.video_id_as_given for r in back]


def test_semicolon_csv_is_sniffed_and_delimiter_can_be_given(tmp_path: Path) -> None:
    # the MSR-VTT CSV columns of CLIP4Clip's MSRVTT_JSFUSION_test.csv, written by a spreadsheet in a
    # decimal-comma locale
    p = tmp_path / "msrvtt.csv"
    p.write_text("key;vid_key;video_id;sentence\nret0;msr7579;video7579;a girl wearing red top and black trousers"
                 " is putting a sweater on a dog\nret1;msr7725;video7725;young people sit around the edges of a "
                 "room clapping and raising their arms\n", encoding="utf-8")
    records = read_annotations(p)
    assert [(r.video_id, len(r.captions)) for r in records] == [("video7579", 1), ("video7725", 1)]
    assert read_annotations(p, delimiter=";") == records
    with pytest.raises(InputError, match="delimiter ','"):
        read_annotations(p, delimiter=",")


def test_csv_round_trip_keeps_records_without_captions(tmp_path: Path) -> None:
    records = [CaptionRecord("flight_000", [], clip_id="a", split="test"),
               CaptionRecord("flight_000", ["one", "two"], clip_id="b")]
    write_annotations(records, tmp_path / "r.csv")
    assert read_annotations(tmp_path / "r.csv") == records


def test_split_aware_ambiguity_and_recall_ceiling() -> None:
    from dvtr_bench.annotations.audit import audit_captions

    captions = {"a": ["a red car", "a road"], "b": ["a red car", "a bridge"], "c": ["A red car"],
                "d": ["a red car"], "e": ["a field", "a field"]}
    splits = {"a": "test", "b": "test", "c": "test", "d": "train", "e": "test"}
    amb = audit_captions(captions, splits).split_ambiguity
    t = amb["test"]
    # "a red car" is a caption of a and b in test (d is in train; "A red car" is another text)
    assert (t.clips, t.captions, t.shared_captions) == (4, 7, 2)
    # text->video: of the 2 identical queries only one can rank its clip first -> 6 of 7
    assert t.t2v_r1_ceiling == pytest.approx(100 * 6 / 7, abs=0.01)
    # video->text: every test clip has a caption of its own
    assert (t.clips_without_unique_caption, t.v2t_r1_ceiling) == (0, 100.0)
    amb = audit_captions({"a": ["x"], "b": ["x"]}, {"a": "test", "b": "test"}).split_ambiguity["test"]
    assert (amb.t2v_r1_ceiling, amb.v2t_r1_ceiling, amb.clips_without_unique_caption) == (50.0, 0.0, 2)
