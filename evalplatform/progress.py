"""Progress of a run's model calls: a live bar on a terminal (rich), silent otherwise (CI logs stay clean)."""

from __future__ import annotations

import sys
from typing import TextIO


class Progress:
    """Called once per finished call with its CallResult; shows done/total, cache hits and errors."""

    def __init__(self, total: int, stream: TextIO | None = None):
        self.total, self.done, self.errors, self.hits = total, 0, 0, 0
        stream = stream or sys.stderr
        self._bar = None
        if total > 0 and stream.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn, TimeElapsedColumn

            self._bar = RichProgress(TextColumn("calls"), BarColumn(), MofNCompleteColumn(),
                                     TextColumn("{task.fields[hits]} cached, {task.fields[errors]} errors"),
                                     TimeElapsedColumn(), console=Console(file=stream), transient=False)
            self._task = self._bar.add_task("calls", total=total, hits=0, errors=0)
            self._bar.start()

    def __call__(self, result) -> None:
        self.done += 1
        self.errors += result.error is not None
        self.hits += bool(result.cache_hit)
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done, hits=self.hits, errors=self.errors)
            if self.done >= self.total:
                self._bar.stop()
                self._bar = None
