"""Progress when standard error is not a terminal: plain lines with counts, percent, elapsed time and ETA."""

from __future__ import annotations

import io
import re

from rich.console import Console

from dvtr_bench.commands import _ui
from dvtr_bench.progress import Progress


def _capture(monkeypatch) -> io.StringIO:
    buf = io.StringIO()
    monkeypatch.setattr(_ui, "err_console", Console(file=buf, force_terminal=False, width=80))
    return buf


def test_plain_lines_when_not_a_terminal(monkeypatch):
    buf = _capture(monkeypatch)
    clock = iter([0.0, 1.0, 2.0, 30.0, 31.0, 40.0])
    monkeypatch.setattr(_ui.time, "monotonic", lambda: next(clock))
    with _ui.progress_bars(interval_s=10) as report:
        report(Progress("train", completed=0, total=40, info={"epoch": 1}))     # t=0: first line
        report(Progress("train", completed=5, total=40))                        # t=1: too soon
        report(Progress("train", advance=5))                                    # t=2: too soon
        report(Progress("train", completed=20, total=40, info={"loss": 0.5321}))  # t=30: due
        report(Progress("train", completed=39, total=40))                       # t=31: too soon
        report(Progress("train", completed=40, total=40))                       # t=40: the last, always
    lines = buf.getvalue().splitlines()
    assert lines == ["train: 0/40 (0%) elapsed 0:00:00 epoch 1",
                     "train: 20/40 (50%) elapsed 0:00:30 eta 0:00:30 loss 0.532",
                     "train: 40/40 (100%) elapsed 0:00:40"]


def test_a_task_without_total_counts_up(monkeypatch):
    buf = _capture(monkeypatch)
    with _ui.progress_bars(interval_s=0) as report:
        report(Progress("videos", advance=1))
        report(Progress("videos", advance=2, info={"name": "[flight] 1"}))
    assert re.findall(r"^videos: (\d+) elapsed", buf.getvalue(), re.M) == ["1", "3"]
    assert "[flight] 1" in buf.getvalue()        # library text is printed as is, never as markup


def test_the_interval_comes_from_the_environment(monkeypatch):
    buf = _capture(monkeypatch)
    monkeypatch.setenv("DVTR_PROGRESS_INTERVAL", "1000")
    with _ui.progress_bars() as report:
        for i in range(1, 50):
            report(Progress("clips", completed=i, total=100))
    assert len(buf.getvalue().splitlines()) == 1
