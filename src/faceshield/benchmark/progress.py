"""Progress of a benchmark run: :class:`BenchProgress` (silent, the library default) and
:class:`RichProgress` (a bar per table on the terminal, what ``faceshield bench`` shows)."""
from __future__ import annotations

import logging

log = logging.getLogger(__name__)


class BenchProgress:
    """Receives a run's progress; this base class only logs notes."""

    def start(self, table: str, total: int) -> None:
        """A table begins; it has ``total`` work units (one protected image each)."""

    def advance(self, n: int = 1) -> None:
        """``n`` work units of the current table are done."""

    def finish(self, table: str, seconds: float) -> None:
        """The current table is written."""

    def note(self, text: str) -> None:
        """Something was skipped (missing data, weights, no face)."""
        log.info("%s", text)

    def close(self) -> None:
        """The run is over."""


class RichProgress(BenchProgress):
    """One rich progress bar per table on ``console`` (default: stderr)."""

    def __init__(self, console=None) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.console = console or Console(stderr=True)
        self.bar = Progress(TextColumn("[bold]{task.description:<9}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            TimeRemainingColumn(), console=self.console, transient=False)
        self.started = False
        self.task = None

    def start(self, table: str, total: int) -> None:
        if not self.started:  # lazily: a run refused before its first table leaves the terminal alone
            self.bar.start()
            self.started = True
        self.task = self.bar.add_task(table, total=max(total, 1))

    def advance(self, n: int = 1) -> None:
        if self.task is not None:
            self.bar.advance(self.task, n)

    def finish(self, table: str, seconds: float) -> None:
        if self.task is not None:
            total = next(t.total for t in self.bar.tasks if t.id == self.task)
            self.bar.update(self.task, completed=total)
        self.task = None

    def note(self, text: str) -> None:
        from rich.markup import escape

        super().note(text)
        self.console.print(f"[yellow]note[/]  {escape(text)}", soft_wrap=True)

    def close(self) -> None:
        if self.started:
            self.bar.stop()
            self.started = False
