"""Terminal rendering shared by the commands: one console, progress bars fed by library callbacks."""

from __future__ import annotations

import contextlib
import sys
from typing import Callable, Iterator, TypeVar

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import (BarColumn, MofNCompleteColumn, Progress as RichProgress, SpinnerColumn, TaskID,
                           TextColumn, TimeElapsedColumn, TimeRemainingColumn)

from dvtr_bench.errors import ConfigError, DvtrError, InputError
from dvtr_bench.progress import Progress, ProgressFn

console = Console(stderr=False, highlight=False)
err_console = Console(stderr=True, highlight=False)

T = TypeVar("T")


@contextlib.contextmanager
def progress_bars(transient: bool = False) -> Iterator[ProgressFn]:
    """Yield a :data:`ProgressFn` that draws one rich bar per task name, with ETA and extra figures."""
    bars = RichProgress(
        SpinnerColumn(), TextColumn("[bold]{task.description:<10}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), TextColumn("{task.fields[info]}"),
        # Bars in CI logs and pipes are noise: draw them only on a terminal.
        console=err_console, transient=transient, disable=not err_console.is_terminal,
    )
    tasks: dict[str, TaskID] = {}

    def report(ev: Progress) -> None:
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
