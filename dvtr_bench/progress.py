"""Progress reporting without printing.

Library functions that run for long accept an optional ``progress`` callback and call it with
:class:`Progress` events; the CLI turns those into rich progress bars. The library never prints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional


@dataclass(frozen=True)
class Progress:
    """One progress update.

    ``task`` names a bar ("videos", "clips", "train", ...). ``completed`` and ``total`` are in the
    task's own unit; ``total`` is None when unknown. ``advance`` is an increment instead of an absolute
    value when ``completed`` is None. ``info`` carries extra figures to show (loss, fps, ...).
    ``message`` makes the event a one-off notice (a run resumed from its checkpoint): the CLI prints it as a
    line of its own, and draws no bar for it.
    """

    task: str
    completed: Optional[float] = None
    total: Optional[float] = None
    advance: Optional[float] = None
    info: dict[str, Any] = field(default_factory=dict)
    message: Optional[str] = None


ProgressFn = Callable[[Progress], None]

WARNING_TASK = "warning"


def warning_event(message: str) -> Progress:
    """A warning for the user (the library never prints): a one-off ``message`` event of task :data:`WARNING_TASK`.

    The CLI's progress renderers print it once, as a line of its own prefixed ``warning:``, like any message.
    """
    return Progress(task=WARNING_TASK, message=message)


def no_progress(_: Progress) -> None:
    """The default callback: ignore every event."""
