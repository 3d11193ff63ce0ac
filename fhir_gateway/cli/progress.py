"""Progress for the long commands (rich), on stderr so that stdout stays the command's output.

On a terminal it is a live bar; elsewhere (a pipe, a log file, a test) rich draws nothing live and
only the lines printed through ``Progress.note`` and the command's own summary appear.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

__all__ = ["Steps", "steps"]


class Steps:
    """One task of a rich Progress: ``advance(n)``, ``describe(text)``, ``note(line)``."""

    def __init__(self, progress: Progress, task: int) -> None:
        self._progress = progress
        self._task = task

    def advance(self, n: int = 1) -> None:
        self._progress.advance(self._task, n)  # type: ignore[arg-type]

    def describe(self, text: str) -> None:
        self._progress.update(self._task, description=text)  # type: ignore[arg-type]

    def note(self, line: str) -> None:
        """A line above the bar (a warning, an error): it stays when the bar goes."""
        self._progress.console.print(line, markup=False, highlight=False, soft_wrap=True)


@contextmanager
def steps(label: str, total: int | None = None) -> Iterator[Steps]:
    """A bar of ``total`` steps (a counter with a spinner when the total is unknown)."""
    columns = [
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    ]
    if total is not None:
        columns.append(TimeRemainingColumn())
    console = Console(stderr=True)
    with Progress(*columns, console=console, transient=True) as progress:
        yield Steps(progress, progress.add_task(label, total=total))
