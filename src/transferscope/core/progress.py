"""The one progress bar: every long loop in the project draws it the same way, on stderr."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

_STDERR = Console(stderr=True)


def progress_bar(*, transient: bool = False, remaining: bool = False, spinner: bool = False,
                 console: Console | None = None, disable: bool = False) -> Progress:
    """A ``rich`` progress display: [spinner] description, bar, done/total, elapsed (or
    remaining) time. Stderr by default, so a command's printed result stays clean on stdout;
    nothing is drawn when ``disable`` is set or the console is not a terminal (a log or a pipe
    gets the result, not a frozen bar)."""
    columns: list[ProgressColumn] = [SpinnerColumn()] if spinner else []
    columns += [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                TimeRemainingColumn() if remaining else TimeElapsedColumn()]
    console = console or _STDERR
    return Progress(*columns, transient=transient, console=console,
                    disable=disable or not console.is_terminal)


@contextmanager
def step_progress(label: str, total: int, enabled: bool = True
                  ) -> Iterator[Callable[..., None]]:
    """Yield ``advance(n=1)``; draws a transient bar only when ``enabled`` (libraries pass their
    ``progress`` flag, so a quiet call costs nothing)."""
    if not enabled:
        yield lambda n=1: None
        return
    with progress_bar(transient=True, remaining=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n=1: bar.advance(task, n)
