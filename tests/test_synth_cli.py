"""`dvtr synth` command line: help, a tiny run, bad options."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from dvtr_bench.cli import cli


def test_help() -> None:
    result = CliRunner().invoke(cli, ["synth", "--help"])
    assert result.exit_code == 0
    for opt in ("--out", "--flights", "--seed", "--resolution", "--fps", "--min-take", "--max-take"):
        assert opt in result.output


def test_tiny_run(tmp_path: Path) -> None:
    out = tmp_path / "footage"
    result = CliRunner().invoke(cli, ["synth", "--out", str(out), "--flights", "1", "--seed", "3", "--takes", "2",
                                      "--resolution", "128x72", "--min-take", "1", "--max-take", "1.5"])
    assert result.exit_code == 0, result.output
    assert (out / "videos" / "flight_000.mp4").stat().st_size > 0
    shots = json.loads((out / "shots.json").read_text())
    assert len(shots["videos"]["flight_000"]["takes"]) == 2
    assert len((out / "annotations.jsonl").read_text().splitlines()) == 2
    assert "x realtime" in result.output


def test_bad_options_exit_2(tmp_path: Path) -> None:
    runner = CliRunner()
    for args in (["--resolution", "7x3"], ["--resolution", "big"], ["--flights", "0"],
                 ["--min-take", "5", "--max-take", "2"], ["--fps", "0"], ["--min-take", "0.01"]):
        result = runner.invoke(cli, ["synth", "--out", str(tmp_path / "x"), *args])
        assert result.exit_code == 2, (args, result.output)
    result = runner.invoke(cli, ["synth"])
    assert result.exit_code == 2  # --out is required
