"""`dvtr demo` end to end at its smallest: every step runs and hands its artifact to the next."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from dvtr_bench.cli import cli


@pytest.mark.slow
def test_demo_runs_the_whole_chain(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    args = ["demo", "--out", str(out), "--flights", "3", "--methods", "meanP", "--epochs", "1", "--workers", "1"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (out / "footage" / "videos").glob("*.mp4")) == [
        "flight_000.mp4", "flight_001.mp4", "flight_002.mp4"]
    assert (out / "dataset" / "build" / "manifest.parquet").is_file()
    [record_path] = (out / "results").glob("meanP-dvtr-tiny-*/record.json")
    record = json.loads(record_path.read_text())
    assert record["method"] == "meanP" and record["seeds"] == [0]
    assert (out / "leaderboard" / "index.md").is_file()
    assert "demo results" in result.output and "meanP" in result.output
    assert "protocol 2, regime uniform" in result.output   # the table states protocol and regime
    assert record["training"]["regime"] == "uniform" and record["protocol_version"] == "2"

    # A second run reuses the footage, the staged build jobs and the finished training run.
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 0, again.output
    assert "made with these options: reused" in again.output
    assert "3 resumed" in again.output


def test_demo_rejects_an_empty_method_list(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["demo", "--out", str(tmp_path), "--methods", " , "])
    assert result.exit_code == 2
    assert "no method given" in result.output


def test_demo_rejects_an_unknown_method_before_any_work(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["demo", "--out", str(tmp_path / "out"), "--methods", "meanP,xpol"])
    assert result.exit_code == 2
    assert "unknown method or recipe 'xpol'" in result.output
    assert not (tmp_path / "out").exists()


def test_a_partial_step_finishes_the_demo_with_exit_code_3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import click

    import dvtr_bench.commands.build_dataset as build_mod
    import dvtr_bench.commands.leaderboard as lb_mod
    import dvtr_bench.commands.run_baseline as rb_mod
    import dvtr_bench.commands.synth as synth_mod

    calls: list[str] = []

    def fake(name: str, code: int = 0) -> click.Command:
        def callback(**kwargs: object) -> None:
            calls.append(name)
            if code:
                raise click.exceptions.Exit(code)
        return click.Command(name, callback=callback, params=[])

    monkeypatch.setattr(synth_mod, "synth", fake("synth"))
    monkeypatch.setattr(build_mod, "build_dataset", fake("build", code=3))   # some videos failed
    monkeypatch.setattr(rb_mod, "run_baseline", fake("run"))
    monkeypatch.setattr(lb_mod, "leaderboard", fake("leaderboard"))
    result = CliRunner().invoke(cli, ["demo", "--out", str(tmp_path), "--methods", "meanP,msam"])
    assert calls == ["synth", "build", "run", "run", "leaderboard"]
    assert result.exit_code == 3, result.output
    assert "partial: 2/4 build the dataset" in result.output


def test_a_leaderboard_that_rejected_records_is_partial(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import click

    import dvtr_bench.commands.build_dataset as build_mod
    import dvtr_bench.commands.leaderboard as lb_mod
    import dvtr_bench.commands.run_baseline as rb_mod
    import dvtr_bench.commands.synth as synth_mod

    def fake(name: str, code: int = 0) -> click.Command:
        def callback(**kwargs: object) -> None:
            if code:
                raise click.exceptions.Exit(code)
        return click.Command(name, callback=callback, params=[])

    monkeypatch.setattr(synth_mod, "synth", fake("synth"))
    monkeypatch.setattr(build_mod, "build_dataset", fake("build"))
    monkeypatch.setattr(rb_mod, "run_baseline", fake("run"))
    monkeypatch.setattr(lb_mod, "leaderboard", fake("leaderboard", code=4))   # a record file was rejected
    result = CliRunner().invoke(cli, ["demo", "--out", str(tmp_path), "--methods", "meanP"])
    assert result.exit_code == 3, result.output
    assert "partial: 4/4 leaderboard" in result.output
