"""Progress of a run's model calls: a live bar on a terminal (rich), silent otherwise (CI logs stay clean)."""

from __future__ import annotations

import sys
from typing import TextIO


class Progress:
    """Called once per finished call with its CallResult; shows done/total, cache hits and errors.

    `terminal` says whether `stream` is read by a person (default: the stream is a tty); off a terminal the
    bar draws nothing at all.
    """

    def __init__(self, total: int, stream: TextIO | None = None, *, terminal: bool | None = None):
        self.total, self.done, self.errors, self.hits = total, 0, 0, 0
        stream = stream or sys.stderr
        if terminal is None:
            terminal = stream.isatty()
        self._bar = None
        if total > 0 and terminal:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(TextColumn("calls"), BarColumn(), MofNCompleteColumn(),
                                     TextColumn("{task.fields[hits]} cached, {task.fields[errors]} errors"),
                                     TimeElapsedColumn(), console=Console(file=stream, force_terminal=True),
                                     transient=False)
            self._task = self._bar.add_task("calls", total=total, hits=0, errors=0)
            self._bar.start()

    def __call__(self, result) -> None:
        self.done += 1
        self.errors += result.error is not None
        self.hits += bool(result.cache_hit)
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done, hits=self.hits, errors=self.errors)
            if self.done >= self.total:
                self.close()

    def close(self) -> None:
        """Stop the bar (and give the terminal its cursor back); a run that stopped early calls this too."""
        if self._bar is not None:
            bar, self._bar = self._bar, None
            bar.stop()
