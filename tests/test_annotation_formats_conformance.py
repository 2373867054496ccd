"""Every registered annotation format against the same contract, so a new format is tested by registering it.

The tests are parametrised over the registry (:data:`dvtr_bench.annotations.FORMATS`), not over a list kept here.
What a format cannot hold it declares itself (``holds``, ``reshape``, combined in ``AnnotationFormat.hold``).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pytest

from dvtr_bench.annotations import (FORMATS, WRITE_FORMATS, AnnotationFormat, CaptionRecord, get_format,
                                    output_format, read_annotations, register_format, sniff_format,
                                    write_annotations)
from dvtr_bench.annotations.formats import formats_for_extension, output_extensions, unregister_format
from dvtr_bench.annotations.formats.base import output_choice
from dvtr_bench.annotations.record import FIELDS
from dvtr_bench.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "annotations"
NOT_EXAMPLES = {"README.md", "schema.json"}
DOCS = ROOT / "docs" / "annotations.md"

NAMES = list(FORMATS)
WRITABLE = list(WRITE_FORMATS)
EXTENSIONS = sorted({ext for f in FORMATS.values() for ext in f.extensions})
FOLDER = "<folder>"
# Every way each writable format can be written: each of its extensions, and a folder for folder layouts.
WRITE_TARGETS = [(f.name, t) for f in WRITE_FORMATS.values()
                 for t in (*f.extensions, *([FOLDER] if f.folder_marker else []))]


def _varied() -> list[CaptionRecord]:
    """Records that differ in every way a format might get wrong; ids are distinct under every keying."""
    records = [CaptionRecord.from_dict(d) for d in [
        {"video_id": "flight_000", "clip_id": "flight_000_take_00", "start_s": 0.0, "end_s": 8.4, "label": "farmland",
         "split": "train", "captions": ["A drone glides over green fields.", "Plots seen from high above."],
         "meta": {"camera_motion": "forward", "gps": [47.25, 8.5], "stable": True, "note": None}},
        {"video_id": "flight_000", "clip_id": "flight_000_take_01", "start_s": 8.4, "end_s": 19.25,
         "split": "validation", "captions": ["Un café au bord de la rivière — 無人機の映像 🚁"],
         "meta": {"lieu": "rivière"}},
        {"video_id": "flight 001", "label": "town", "split": "test",
         "captions": ['Commas, "quotes"; a | pipe and a\ttab.', "", "two lines\nin one caption",
                      "  spaced   out  "]},
        {"video_id": "flight_002", "start_s": 1.5, "end_s": 2.0, "split": "holdout", "captions": ["A forest."]},
        {"video_id": "flight_003", "captions": []},
    ]]
    # Readers normalise ids, so an untrimmed id with a video extension must come back trimmed in every format.
    records.append(CaptionRecord(video_id=" flight_004.MP4 ", clip_id="take 4 ", captions=["Untrimmed ids."],
                                 split="train"))
    return records


def _normalised(r: CaptionRecord) -> CaptionRecord:
    return CaptionRecord.from_dict(r.to_dict())


def _target(tmp_path: Path, target: str) -> Path:
    return tmp_path / ("out" if target == FOLDER else f"out{target}")


# ------------------------------------------------------------------------------------------ the registry itself

@pytest.mark.parametrize("name", NAMES)
def test_format_is_described_and_consistent(name: str) -> None:
    fmt = FORMATS[name]
    assert fmt.name == name and get_format(name) is fmt
    assert fmt.description.strip() and "\n" not in fmt.description
    assert fmt.extensions, "a format needs at least one extension"
    assert all(e.startswith(".") and e == e.lower() for e in fmt.extensions)
    assert {"video_id", "captions"} <= fmt.holds <= set(FIELDS)
    # The options a format advertises are keywords its reader really takes.
    params = inspect.signature(fmt.read).parameters
    assert "problems" in params and all(o in params for o in fmt.options)
    assert (name in WRITE_FORMATS) == (fmt.write is not None)


def test_every_format_module_is_imported_by_the_package() -> None:
    # A format module that formats/__init__.py forgets to import would be invisible to the CLI and to these tests.
    from dvtr_bench.annotations import formats

    before = list(FORMATS)
    modules = [m.name for m in pkgutil.iter_modules(formats.__path__) if m.name not in ("base", "dispatch")
               and not m.name.startswith("_")]
    registered_by = {}
    for name in modules:
        module = importlib.import_module(f"{formats.__name__}.{name}")
        registered_by[name] = [v.name for v in vars(module).values() if isinstance(v, AnnotationFormat)]
        assert registered_by[name], f"formats/{name}.py defines no AnnotationFormat"
    assert list(FORMATS) == before
    assert sorted(n for names in registered_by.values() for n in names) == sorted(NAMES)


def test_unknown_format_name() -> None:
    with pytest.raises(InputError, match="unknown annotation format 'xml'"):
        get_format("xml")


@pytest.mark.parametrize("ext", EXTENSIONS)
def test_every_written_extension_has_one_output_format(ext: str) -> None:
    chosen, writers = output_choice(ext)
    if writers:
        assert chosen is not None, f"{ext} is written by {[f.name for f in writers]} and none is the default"
        assert output_extensions()[ext] == chosen.name
    assert [f.name for f in formats_for_extension(ext.upper())] == [f.name for f in formats_for_extension(ext)]


def test_at_most_one_fallback() -> None:
    assert sum(f.fallback for f in FORMATS.values()) <= 1


# ------------------------------------------------------------------------------------------ round trips

@pytest.mark.parametrize("name,target", WRITE_TARGETS)
def test_round_trip(tmp_path: Path, name: str, target: str) -> None:
    fmt = FORMATS[name]
    records = _varied()
    path = _target(tmp_path, target)
    assert write_annotations(records, path, name) == name
    assert sniff_format(path) == name
    got = read_annotations(path)
    assert got == [fmt.hold(_normalised(r)) for r in records]
    assert all(r.source is not None and r.source.record for r in got)
    # What a format holds is stable: writing what was read gives it back unchanged.
    again = _target(tmp_path / "again", target)
    again.parent.mkdir()
    write_annotations(got, again, name)
    assert read_annotations(again, name) == got


@pytest.mark.parametrize("ext", [e for e in EXTENSIONS if output_choice(e)[1]])
def test_output_format_agrees_with_sniff_format(tmp_path: Path, ext: str) -> None:
    for stem in ("out", "OUT"):
        path = tmp_path / f"{stem}{ext if stem == 'out' else ext.upper()}"
        fmt = output_format(path)
        assert ext in FORMATS[fmt].extensions
        assert write_annotations(_varied(), path) == fmt
        assert sniff_format(path) == fmt


def test_output_format_of_a_folder_agrees_with_sniff_format(tmp_path: Path) -> None:
    folders = [f for f in WRITE_FORMATS.values() if f.folder_marker]
    if not folders:
        pytest.skip("no registered format is a folder layout")
    path = tmp_path / "out"
    fmt = output_format(path)
    assert fmt == folders[0].name
    write_annotations(_varied(), path)
    assert sniff_format(path) == fmt


# ------------------------------------------------------------------------------------------ shipped examples

def _implied_format(path: Path) -> str:
    """The format an example's name implies: a format name among its words, else the one its extension means."""
    words = set(re.split(r"[_.\-]", path.name if path.is_dir() else path.stem))
    named = [n for n in NAMES if n in words]
    if named:
        assert len(named) == 1, f"{path.name} names several formats: {named}"
        return named[0]
    by_ext = formats_for_extension(path.suffix)
    assert len(by_ext) == 1, f"{path.name}: its extension does not imply one format ({[f.name for f in by_ext]})"
    return by_ext[0].name


@pytest.mark.parametrize("entry", sorted(p.name for p in EXAMPLES.iterdir() if p.name not in NOT_EXAMPLES))
def test_example_is_read_by_the_format_its_name_implies(entry: str) -> None:
    path = EXAMPLES / entry
    fmt = _implied_format(path)
    assert sniff_format(path) == fmt
    expected = read_annotations(EXAMPLES / "example.jsonl")
    assert read_annotations(path) == [FORMATS[fmt].hold(r) for r in expected]


# ------------------------------------------------------------------------------------------ docs

def _docs_format_table() -> dict[str, str]:
    """Format name -> its row in the docs' format table (rows whose first cell is a `name`)."""
    text = DOCS.read_text(encoding="utf-8")
    section = text.split("\n## Formats\n", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        m = re.match(r"\|\s*`([a-z0-9_]+)`\s*\|", line)
        if m:
            rows[m.group(1)] = line
    return rows


def test_docs_format_table_lists_the_registry() -> None:
    rows = _docs_format_table()
    assert list(rows) == NAMES
    for name, row in rows.items():
        for ext in FORMATS[name].extensions:
            assert f"`{ext}`" in row, f"docs/annotations.md: the row of {name} does not list {ext}"


@pytest.mark.parametrize("name", NAMES)
def test_every_format_appears_in_the_docs(name: str) -> None:
    assert f"`{name}`" in DOCS.read_text(encoding="utf-8")


# ------------------------------------------------------------------------------------------ a new format

def _read_lines(path: str | Path, *, problems: list | None = None) -> list[CaptionRecord]:
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [CaptionRecord.from_dict({"video_id": v, "captions": [c]}, path, f"line {i}")
            for i, (v, c) in enumerate((ln.split("\t", 1) for ln in lines), start=1)]


def _write_lines(records: list[CaptionRecord], path: Path) -> None:
    path.write_text("".join(f"{r.video_id}\t{c}\n" for r in records for c in r.captions), encoding="utf-8")


def test_a_registered_format_is_used_everywhere(tmp_path: Path) -> None:
    toy = AnnotationFormat(name="toylines", description="video id, a tab, one caption per line",
                           extensions=(".toylines",), read=_read_lines, write=_write_lines,
                           holds=frozenset({"video_id", "captions"}))
    register_format(toy)
    try:
        assert "toylines" in FORMATS and "toylines" in WRITE_FORMATS  # the views are live
        with pytest.raises(ValueError, match="already registered"):
            register_format(toy)
        path = tmp_path / "a.toylines"
        assert output_format(path) == "toylines"
        assert write_annotations([CaptionRecord("v1", ["a"], split="train")], path) == "toylines"
        assert sniff_format(path) == "toylines"
        assert read_annotations(path) == [CaptionRecord("v1", ["a"])]
        assert toy.hold(CaptionRecord("v1", ["a"], split="train", meta={"k": 1})) == CaptionRecord("v1", ["a"])
    finally:
        unregister_format("toylines")
    assert "toylines" not in FORMATS and "toylines" not in WRITE_FORMATS


def test_a_second_fallback_is_refused() -> None:
    if not any(f.fallback for f in FORMATS.values()):
        pytest.skip("no registered format is the fallback")
    try:
        with pytest.raises(ValueError, match="fallback"):
            register_format(AnnotationFormat(name="toyfallback", description="x", extensions=(".toyfallback",),
                                             read=_read_lines, fallback=True))
    finally:
        unregister_format("toyfallback")


@pytest.mark.parametrize("bad", [dict(name="Bad Name"), dict(description=""), dict(description="two\nlines"),
                                 dict(extensions=()), dict(extensions=("csv",)), dict(extensions=(".CSV",)),
                                 dict(holds=frozenset({"captions"})), dict(default_output_for=(".other",))])
def test_malformed_formats_are_refused(bad: dict) -> None:
    fields = dict(name="toy", description="a toy", extensions=(".toy",), read=_read_lines)
    with pytest.raises(ValueError):
        AnnotationFormat(**{**fields, **bad})
