"""The committed tables are what `dvtr leaderboard` makes of the committed records, byte for byte, and the
docs' commands write them where they are."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from dvtr_bench.cli import cli

ROOT = Path(__file__).resolve().parents[1]
TABLES = ROOT / "leaderboard" / "tables"
COMMAND = "dvtr leaderboard leaderboard/results --out leaderboard/tables --verify"
PLOTS = (".png", ".svg", ".pdf")


def test_committed_tables_regenerate_byte_for_byte(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import matplotlib

    monkeypatch.chdir(ROOT)                 # record paths in the tables are relative to the checkout
    out = tmp_path / "tables"
    r = CliRunner().invoke(cli, ["leaderboard", "leaderboard/results", "--out", str(out), "--verify"])
    assert r.exit_code == 0, r.output
    committed = {p.relative_to(TABLES): p.read_bytes() for p in TABLES.rglob("*") if p.is_file()}
    fresh = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert sorted(committed) == sorted(fresh)
    # Plots are byte-identical under the matplotlib that drew them; under another one, everything else is.
    made_with = json.loads(committed[Path("summary.json")])["generated_with"]["matplotlib"]
    same_plots = made_with == matplotlib.__version__
    differ = []
    for rel, data in committed.items():
        new = fresh[rel]
        if not same_plots:
            if rel.suffix in PLOTS:
                continue
            if rel.suffix == ".html":
                data, new = (re.sub(rb"data:image/png;base64,[A-Za-z0-9+/=]+", b"", x) for x in (data, new))
            if rel.name == "summary.json":
                new = new.replace(f'"matplotlib": "{matplotlib.__version__}"'.encode(),
                                  f'"matplotlib": "{made_with}"'.encode())
        if data != new:
            differ.append(str(rel))
    assert differ == [], f"regenerate with `{COMMAND}`: {differ}"


def test_docs_write_the_committed_layout() -> None:
    for doc in (ROOT / "docs" / "leaderboard.md", ROOT / "leaderboard" / "README.md"):
        text = doc.read_text()
        assert COMMAND in text, doc
        assert not re.search(r"--out leaderboard/?(\s|$)", text), doc      # not into leaderboard/ itself
