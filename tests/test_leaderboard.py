"""`dvtr leaderboard`: collection rules, renderers, --verify and the CLI."""

from __future__ import annotations

import copy
import csv
import io
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from dvtr_bench.cli import cli
from dvtr_bench.leaderboard import build_leaderboard, collect
from dvtr_bench.leaderboard.collect import Entry, _group, rank_key
from dvtr_bench.leaderboard.example import make_example_records
from dvtr_bench.leaderboard.render import latex_escape, to_csv, to_html, to_latex, to_markdown


@pytest.fixture(scope="module")
def example_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("records")
    make_example_records(d, n_clips=40, with_problems=True)
    return d


@pytest.fixture()
def records(example_dir: Path, tmp_path: Path) -> Path:
    """A private copy that a test may edit."""
    d = tmp_path / "records"
    shutil.copytree(example_dir, d)
    return d


def _good(d: Path) -> list[Path]:
    return sorted(d.glob("0*/record.json"))


# --------------------------------------------------------------------------------------------- collect
def test_collect_groups_ranks_and_explains(records: Path) -> None:
    col = collect([records])
    assert col.n_files == 12
    by_name = {g.dataset_name: g for g in col.groups}
    assert set(by_name) == {"example-random", "example-other"}
    main = by_name["example-random"]
    # The edited record, the replaced score file and the record claiming the wrong split are schema-valid
    # and self-consistent: only --verify can catch them.
    assert len(main.entries) == 9
    rsums = [e.mean["rsum"] for e in main.entries]
    assert rsums == sorted(rsums, reverse=True)
    assert len(by_name["example-other"].entries) == 1        # never mixed with the other dataset
    bad, cut = sorted(col.exclusions, key=lambda x: x.path)
    assert bad.kind == "invalid" and "93-invalid" in bad.path
    assert "'cost' is a required property" in bad.reason and "v2t_r10" in bad.reason
    assert cut.kind == "unreadable" and "95-truncated" in cut.path and "not valid JSON" in cut.reason


def test_verify_leaves_out_edited_and_replaced(records: Path) -> None:
    col = collect([records], verify=True)
    failures = {Path(x.path).parent.name: x for x in col.verify_failures}
    assert set(failures) == {"91-edited", "92-replaced", "94-other-split"}
    assert "t2v_r1: recorded" in failures["91-edited"].reason and "recomputed" in failures["91-edited"].reason
    assert "sha256 mismatch" in failures["92-replaced"].reason
    assert failures["94-other-split"].kind == "binding" and "fingerprint" in failures["94-other-split"].reason
    assert all(e.verified and e.bound for g in col.groups for e in g.entries)


def test_mismatched_size_and_duplicates_are_left_out(records: Path) -> None:
    # Same fingerprint but a different split size: an edited record or a collision.
    src = records / "01-meanP"
    odd = records / "50-odd"
    shutil.copytree(src, odd)
    rec = json.loads((odd / "record.json").read_text())
    rec["dataset"]["n_clips"] = 41
    (odd / "record.json").write_text(json.dumps(rec))
    dup = records / "51-dup"
    shutil.copytree(src, dup)
    col = collect(_good(records) + [odd / "record.json", dup / "record.json"])
    kinds = {Path(x.path).parent.name: (x.kind, x.reason) for x in col.exclusions}
    assert kinds["50-odd"][0] == "mismatch" and "41" in kinds["50-odd"][1]
    dup_kind, dup_reason = kinds.get("51-dup") or kinds["01-meanP"]
    assert dup_kind == "duplicate" and "duplicate of" in dup_reason
    assert col.n_accepted == 6


def test_non_records_in_folders_are_skipped_but_named_files_are_not(records: Path) -> None:
    (records / "01-meanP" / "train_log.json").write_text(json.dumps({"loss": [1.0, 0.5]}))
    (records / "01-meanP" / "broken.json").write_text("{")
    col = collect([records])
    assert any(p.endswith("train_log.json") for p in col.skipped)
    assert any(p.endswith("broken.json") for p in col.skipped)
    col = collect([records / "01-meanP" / "train_log.json", records / "01-meanP" / "broken.json",
                   records / "nope.json"])
    kinds = sorted(x.kind for x in col.exclusions)
    assert kinds == ["invalid", "missing", "unreadable"]
    assert col.n_accepted == 0


def test_groups_split_by_protocol_version(records: Path) -> None:
    entries = [Entry(path=p, record=json.loads(p.read_text())) for p in _good(records)]
    older = copy.deepcopy(entries[0].record)
    older["protocol_version"] = "1"     # the same run as a protocol 1 record: never in the same table
    older["v2t_convention"] = "rank_captions"
    entries.append(Entry(path=records / "older.json", record=older))
    groups = _group(entries, [])
    assert sorted((g.protocol_version, len(g.entries)) for g in groups) == [("1", 1), ("2", 6)]


def test_rank_key_tie_breaks(records: Path) -> None:
    base = json.loads(_good(records)[1].read_text())
    a, b = copy.deepcopy(base), copy.deepcopy(base)
    b["summary"]["mean"]["t2v_r1"] += 1          # same RSum, better T2V R@1 ranks first
    ea, eb = Entry(Path("a"), a), Entry(Path("b"), b)
    assert sorted([ea, eb], key=rank_key) == [eb, ea]


# ------------------------------------------------------------------------------------------- renderers
def test_build_writes_every_format(records: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "tables"
    res = build_leaderboard([records], out, verify=True)
    assert capsys.readouterr() == ("", "")                 # the library never prints
    assert len(res.outputs) == 2
    for slug, files in res.outputs.items():
        assert set(files) == {"md", "csv", "tex", "tex-t2v", "tex-v2t", "html", "png", "svg", "pdf"}
        for p in files.values():
            assert p.is_file() and p.stat().st_size > 0 and p.parent.name == slug
        assert files["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert files["pdf"].read_bytes()[:5] == b"%PDF-" and b"<svg" in files["svg"].read_bytes()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["verified"]
    assert {x["kind"] for x in summary["exclusions"]} == {"invalid", "unreadable", "verify", "binding"}
    index = (out / "index.md").read_text()
    assert "## Left out" in index and "93-invalid" in index and "example-other" in index
    assert "index.html" in {p.name for p in out.iterdir()}


def test_markdown_csv_latex_html_content(records: Path) -> None:
    col = collect(_good(records))
    (g,) = col.groups
    md = to_markdown(g)
    assert "| 1 | MSAM† |" in md                          # transductive mark
    assert "| MSAM + dual_softmax†‡ |" in md                # re-ranked: its own, flagged row
    assert "CLIP zero-shot" in md and " ± " in md
    assert md.count("\n| ") == len(g.entries) + 1           # header + one line per record
    assert "**" in md                                       # best compliant values are bold

    rows = list(csv.DictReader(io.StringIO(to_csv(g))))
    assert [int(r["rank"]) for r in rows] == list(range(1, 7))
    assert [r["method"] for r in rows] == [e.record["method"] for e in g.entries]
    zs = next(r for r in rows if r["method"] == "CLIP zero-shot")
    assert zs["t2v_r1_std"] == "" and zs["n_seeds"] == "1" and zs["zero_shot"] == "True"
    assert float(rows[0]["rsum"]) == g.entries[0].mean["rsum"]

    tex = to_latex(g)
    for cmd in (r"\toprule", r"\midrule", r"\bottomrule", r"\begin{tabular}", r"\cmidrule"):
        assert cmd in tex
    assert r"MSAM + dual\_softmax$^{\dagger\ddagger}$" in tex and r"MSAM$^{\dagger}$" in tex and r"$\pm$" in tex
    body = tex.split(r"\midrule")[1].split(r"\bottomrule")[0]
    assert len([line for line in body.strip().splitlines() if line.endswith(r" \\")]) == len(g.entries)
    assert latex_escape("a_b&c%d") == r"a\_b\&c\%d"

    page = to_html(g, png=b"\x89PNG fake")
    assert page.startswith("<!DOCTYPE html>") and "<script>" in page and "addEventListener" in page
    assert "http://" not in page.replace("http://www.w3.org", "") and "https://" not in page
    assert page.count('<tr class="flagged"') == 2          # MSAM and MSAM + dual softmax
    assert "data:image/png;base64," in page
    assert page.count("<tr") == len(g.entries) + 2          # two header rows: column groups and columns


def test_html_escapes_names(records: Path) -> None:
    p = _good(records)[1]
    rec = json.loads(p.read_text())
    rec["method"] = "<script>alert(1)</script>"
    p.write_text(json.dumps(rec))
    col = collect([p])
    page = to_html(col.groups[0])
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page


def test_few_seeds_are_marked(records: Path, tmp_path: Path) -> None:
    from dvtr_bench.protocol.record import build_record, collect_cost, write_record
    from dvtr_bench.protocol.scores import save_scores

    src = json.loads(_good(records)[1].read_text())
    run_dir = tmp_path / "one-seed"
    from dvtr_bench.protocol.scores import load_scores

    sf = load_scores(records / "01-meanP" / "scores_seed0.npz")
    save_scores(run_dir / "s.npz", sf.scores, sf.caption_to_clip, sf.clip_ids)
    rec = build_record(method="seqLSTM", config={}, dataset=src["dataset"], backbone=src["backbone"],
                       score_files={0: run_dir / "s.npz"}, record_path=run_dir / "record.json",
                       transductive=False, zero_shot=False, checkpoint_selection="validation",
                       cost=collect_cost(None, None, None, None, None))
    write_record(rec, run_dir / "record.json")
    col = collect([run_dir / "record.json"])
    md = to_markdown(col.groups[0])
    assert "seqLSTM*" in md
    assert "| – | – | – | – |" in md                     # unknown cost figures


def test_reconstructions_are_named_so(records: Path, tmp_path: Path) -> None:
    from dvtr_bench.protocol.record import build_record, collect_cost, write_record
    from dvtr_bench.protocol.scores import load_scores, save_scores

    src = json.loads(_good(records)[1].read_text())
    sf = load_scores(records / "01-meanP" / "scores_seed0.npz")
    paths = []
    for name, recipe in (("mcsan", {"method": "mcsan", "reconstruction": True}), ("xpool", {"method": "xpool"})):
        run_dir = tmp_path / name
        save_scores(run_dir / "s.npz", sf.scores, sf.caption_to_clip, sf.clip_ids)
        rec = build_record(method=name, config={"recipe": recipe, "train": {}}, dataset=src["dataset"],
                           backbone=src["backbone"], score_files={0: run_dir / "s.npz"},
                           record_path=run_dir / "record.json", transductive=False, zero_shot=False,
                           checkpoint_selection="validation", cost=collect_cost(None, None, None, None, None))
        paths.append(write_record(rec, run_dir / "record.json"))
    group = collect(paths).groups[0]
    md, tex, html = to_markdown(group), to_latex(group), to_html(group)
    assert "mcsan (reconstruction)*" in md and "xpool*" in md and "xpool (reconstruction)" not in md
    assert "mcsan (reconstruction)" in tex and "mcsan (reconstruction)" in html
    # and in the terminal table of `dvtr leaderboard`
    r = CliRunner().invoke(cli, ["leaderboard", *map(str, paths), "--out", str(tmp_path / "out"), "--format", "md"],
                           env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    assert "mcsan (reconstruction)*" in r.output


# ------------------------------------------------------------------------------------------------- CLI
def test_cli_exit_codes(records: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    monkeypatch.chdir(tmp_path)                            # paths in the output are shown relative to here
    good = [str(p) for p in _good(records)]
    r = runner.invoke(cli, ["leaderboard", *good, "--out", str(tmp_path / "a")])
    assert r.exit_code == 0, r.output
    assert "MSAM" in r.output and "6 record(s) in 1 group(s), 0 rejected" in r.output

    r = runner.invoke(cli, ["leaderboard", *good, "--out", str(tmp_path / "b"), "--verify", "--format", "md"])
    assert r.exit_code == 0, r.output
    assert "verified" in r.output

    r = runner.invoke(cli, ["leaderboard", str(records), "--out", str(tmp_path / "c"), "--format", "md"])
    assert r.exit_code == 4, r.output                      # the invalid and the truncated record are rejected
    assert "Left out (2)" in r.output and "93-invalid" in r.output and "95-truncated" in r.output

    r = runner.invoke(cli, ["leaderboard", str(records), "--out", str(tmp_path / "d"), "--verify", "--format", "md"])
    assert r.exit_code == 1, r.output                      # edited number caught
    assert "91-edited" in r.output and "recomputed" in r.output
    assert (tmp_path / "d" / "index.md").is_file()        # the honest rows are still written

    empty = tmp_path / "empty"
    empty.mkdir()
    r = runner.invoke(cli, ["leaderboard", str(empty), "--out", str(tmp_path / "e")])
    assert r.exit_code == 2

    r = runner.invoke(cli, ["leaderboard", *good, "--out", str(tmp_path / "f"), "--format", "md,pdf"])
    assert r.exit_code == 2 and "pdf" in r.output


def test_cli_format_subset_and_default_input(records: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    monkeypatch.chdir(tmp_path)
    r = runner.invoke(cli, ["leaderboard", "--out", "x"])
    assert r.exit_code == 2 and "leaderboard/results" in r.output
    dest = tmp_path / "leaderboard" / "results"
    dest.mkdir(parents=True)
    for p in _good(records)[:2]:
        shutil.copytree(p.parent, dest / p.parent.name)
    r = runner.invoke(cli, ["leaderboard", "--out", "x", "--format", "md,csv"])
    assert r.exit_code == 0, r.output
    (group_dir,) = (tmp_path / "x").glob("example-random-*")
    assert sorted(p.name for p in group_dir.iterdir()) == ["leaderboard.csv", "leaderboard.md"]


_DOM_STUB = """
const js = require('fs').readFileSync(process.argv[2], 'utf8');
function cell(v) { return {dataset: {v: String(v)}}; }
const rows = [[1, 'b', 5, 9], [2, 'a', 7, 3], [3, 'c', '', 4]].map(r => ({cells: r.map(cell), id: r[0]}));
const body = {rows: rows.slice(), appendChild(r) { this.rows.splice(this.rows.indexOf(r), 1); this.rows.push(r); }};
function th(col, type, better) {
  const attrs = {};
  return {dataset: {col: String(col), type, better}, addEventListener(e, f) { this.f = f; },
          getAttribute(a) { return a in attrs ? attrs[a] : null; }, setAttribute(a, v) { attrs[a] = v; },
          removeAttribute(a) { delete attrs[a]; }};
}
const heads = [th(0, 'num', 'lower'), th(1, 'txt'), th(2, 'num', 'higher'), th(3, 'num', 'lower')];
global.document = {querySelectorAll() { return [{querySelectorAll() { return heads; }, tBodies: [body]}]; }};
eval(js);
const order = () => body.rows.map(r => r.id).join(',');
const click = i => { heads[i].f(); return order(); };
console.log([click(2), click(2), click(1), click(3), click(3)].join(' '));
"""


def test_html_sort_script_runs(records: Path, tmp_path: Path) -> None:
    import subprocess

    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    page = to_html(collect(_good(records)).groups[0])
    script = page[page.rindex("<script>") + len("<script>"):page.rindex("</script>")]
    (tmp_path / "sort.js").write_text(script)
    (tmp_path / "stub.js").write_text(_DOM_STUB)
    out = subprocess.run([node, str(tmp_path / "stub.js"), str(tmp_path / "sort.js")], capture_output=True,
                         text=True, check=True).stdout.split()
    # Higher-is-better: best (highest) first, then reversed; blanks last both times. Text: A to Z.
    # Lower-is-better: best (lowest) first, then reversed.
    assert out == ["2,1,3", "1,2,3", "2,1,3", "2,3,1", "1,3,2"]
