"""What the CLI prints: plain text off a terminal (CI logs, pipes, tests), rich tables on one; data always cleaned."""

from __future__ import annotations

import os
import sys
from typing import Any, Callable, Iterable, Sequence, TextIO

# 1 draws rich tables and progress even when the output is not a terminal (screenshots, tests); 0 never does.
FORCE_TERMINAL_ENV = "EVALPLATFORM_FORCE_TERMINAL"


def on_terminal(stream: TextIO | None = None) -> bool:
    """Whether `stream` (stdout by default) is read by a person at a terminal, or $EVALPLATFORM_FORCE_TERMINAL says."""
    forced = os.environ.get(FORCE_TERMINAL_ENV, "").strip().lower()
    if forced in ("1", "true", "yes"):
        return True
    if forced in ("0", "false", "no"):
        return False
    stream = stream if stream is not None else sys.stdout
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # a replaced or closed stream is no terminal
        return False


def clean(text: Any) -> str:
    """Text safe to print: every line through the reports' terminal filter (colour codes dropped, other control
    characters shown as escapes), so data from result files or the history cannot drive the terminal."""
    from evalplatform.policy.report import _plain

    return "\n".join(_plain(line) for line in str(text).split("\n"))


def number(x: float | None, digits: int = 3) -> str:
    """A measure for a table: `-` when there is none."""
    # round(...) + 0.0 turns a -0.000 (kappa of an always-PASS judge) into 0.000.
    return "-" if x is None else f"{round(x, digits) + 0.0:.{digits}f}"


def timestamp(value: Any) -> str:
    """A stored time to the second (the history keeps naive UTC)."""
    import datetime as dt

    return f"{value:%Y-%m-%d %H:%M:%S}" if isinstance(value, dt.datetime) else str(value or "")


def echo(text: Any = "", *, err: bool = False) -> None:
    print(clean(text), file=sys.stderr if err else sys.stdout)


def console(stream: TextIO | None = None):
    """A rich console on `stream` (stdout by default) that reads no markup or emoji out of data."""
    from rich.console import Console

    return Console(file=stream if stream is not None else sys.stdout, force_terminal=True, markup=False,
                   highlight=False, emoji=False)


def table(columns: Sequence[str | tuple[str, str]], rows: Iterable[Sequence[Any]], *, title: str | None = None,
          wrap: Sequence[str] = ()):
    """A rich table of cleaned cells; a column given as (name, "right") is right-aligned. Only the columns named in
    `wrap` (free text: reasons, models) fold onto more lines when the terminal is narrow; ids and counts stay whole."""
    from rich.table import Table
    from rich.text import Text

    t = Table(title=None if title is None else Text(clean(title)), title_justify="left")
    for col in columns:
        name, justify = (col, "left") if isinstance(col, str) else col
        t.add_column(name, justify=justify, overflow="fold", no_wrap=name not in wrap)
    for row in rows:
        t.add_row(*(Text("" if v is None else clean(v)) for v in row))
    return t


def plain_table(columns: Sequence[str | tuple[str, str]], rows: Iterable[Sequence[Any]]) -> str:
    """The same table as aligned plain text (each column as wide as its widest cell; the last one unpadded)."""
    names = [c if isinstance(c, str) else c[0] for c in columns]
    right = [not isinstance(c, str) and c[1] == "right" for c in columns]
    cells = [names] + [["" if v is None else clean(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(names))]
    lines = []
    for row in cells:
        parts = [v.rjust(w) if r else v.ljust(w) for v, w, r in zip(row, widths, right)]
        parts[-1] = row[-1].rjust(widths[-1]) if right[-1] else row[-1]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def show(plain: Callable[[], str], rich: Callable[[], Any]) -> None:
    """Rich renderables on a terminal, the plain text (what CI logs and tests read) anywhere else."""
    if on_terminal(sys.stdout):
        out = console()
        for part in _parts(rich()):
            out.print(part)
    else:
        echo(plain())


def _parts(renderables: Any) -> list:
    if isinstance(renderables, (list, tuple)):
        return list(renderables)
    return [renderables]


def text(value: Any):
    """A line for a rich console, cleaned like everything else."""
    from rich.text import Text

    return Text(clean(value))
