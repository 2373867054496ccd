"""Terminal rendering shared by the commands: one console, progress bars fed by library callbacks."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from dataclasses import dataclass
from typing import Callable, Iterator, TypeVar

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import (BarColumn, MofNCompleteColumn, Progress as RichProgress, SpinnerColumn, TaskID,
                           TextColumn, TimeElapsedColumn, TimeRemainingColumn)

from dvtr_bench.errors import ConfigError, DvtrError, InputError
from dvtr_bench.progress import WARNING_TASK, Progress, ProgressFn

console = Console(stderr=False, highlight=False)
err_console = Console(stderr=True, highlight=False)

T = TypeVar("T")


@contextlib.contextmanager
def progress_bars(transient: bool = False, interval_s: float | None = None) -> Iterator[ProgressFn]:
    """Yield a :data:`ProgressFn` that draws one rich bar per task name, with ETA and extra figures.

    When standard error is not a terminal (a pipe, ``nohup``, a SLURM log) bars would be noise or nothing: plain
    progress lines are written instead, at most one per task every ``interval_s`` seconds (default 10, or
    ``$DVTR_PROGRESS_INTERVAL``), plus the first and the last.
    """
    if not err_console.is_terminal:
        if interval_s is None:
            interval_s = float(os.environ.get("DVTR_PROGRESS_INTERVAL", "10"))
        yield _progress_lines(interval_s)
        return
    bars = RichProgress(
        SpinnerColumn(), TextColumn("[bold]{task.description:<10}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), TextColumn("{task.fields[info]}"),
        # Bars in CI logs and pipes are noise: draw them only on a terminal.
        console=err_console, transient=transient, disable=not err_console.is_terminal,
    )
    tasks: dict[str, TaskID] = {}

    def report(ev: Progress) -> None:
        if ev.message is not None:
            # printed through the live display, so it lands above the bars instead of tearing them
            bars.console.print(_notice(ev), soft_wrap=True, highlight=False)
            return
        if ev.task not in tasks:
            tasks[ev.task] = bars.add_task(ev.task, total=ev.total, info="")
        tid = tasks[ev.task]
        info = "  ".join(f"{k} {_fmt(v)}" for k, v in ev.info.items())
        kwargs = {"info": info}
        if ev.total is not None:
            kwargs["total"] = ev.total
        if ev.completed is not None:
            bars.update(tid, completed=ev.completed, **kwargs)
        else:
            bars.update(tid, advance=ev.advance or 0, **kwargs)

    with bars:
        yield report


def _notice(ev: Progress) -> str:
    """A one-off message event as console markup: warnings are prefixed so they stand out in logs."""
    text = escape(str(ev.message))
    return f"[yellow]warning:[/yellow] {text}" if ev.task == WARNING_TASK else text


@dataclass
class _LineState:
    start: float
    done: float = 0.0
    total: float | None = None
    last: float | None = None       # when the last line of this task was written
    finished: bool = False


def _progress_lines(interval_s: float) -> ProgressFn:
    tasks: dict[str, _LineState] = {}

    def report(ev: Progress) -> None:
        if ev.message is not None:
            err_console.print(_notice(ev), soft_wrap=True, highlight=False)
            return
        now = time.monotonic()
        st = tasks.setdefault(ev.task, _LineState(start=now))
        if ev.total is not None:
            st.total = float(ev.total)
        st.done = float(ev.completed) if ev.completed is not None else st.done + (ev.advance or 0)
        finished = st.total is not None and st.done >= st.total
        due = st.last is None or now - st.last >= interval_s or (finished and not st.finished)
        if not due:
            return
        st.last, st.finished = now, finished
        elapsed = now - st.start
        parts = [f"{ev.task}:", f"{_num(st.done)}/{_num(st.total)}" if st.total else _num(st.done)]
        if st.total:
            parts.append(f"({100.0 * st.done / st.total:.0f}%)")
        parts.append(f"elapsed {_clock(elapsed)}")
        if st.total and st.done > 0 and not finished:
            parts.append(f"eta {_clock(elapsed * (st.total - st.done) / st.done)}")
        parts += [f"{k} {_fmt(v)}" for k, v in ev.info.items()]
        err_console.print(escape(" ".join(parts)), soft_wrap=True, highlight=False)

    return report


def _num(v: float | None) -> str:
    return "?" if v is None else (str(int(v)) if float(v).is_integer() else f"{v:.1f}")


def _clock(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}"


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def run_cli(fn: Callable[[], T]) -> T:
    """Run a library call, turning dvtr's own errors into a red message and a meaningful exit code."""
    try:
        return fn()
    except (InputError, ConfigError) as exc:
        _error_line(exc)
        sys.exit(2)
    except DvtrError as exc:
        _error_line(exc)
        sys.exit(1)


def _error_line(exc: Exception) -> None:
    # One line whatever the console width, so it greps and reads as one message; the text is the library's,
    # not markup (a "[name]" in it must print as is).
    err_console.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)


def exit_with(code: int) -> None:
    """Exit the command with ``code`` (0 ok, 1 failed, 2 bad input, 3 partial)."""
    raise click.exceptions.Exit(code)
