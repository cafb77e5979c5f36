"""`evalplatform import`: convert other tools' result files into the canonical result table."""

from __future__ import annotations

from pathlib import Path

import click

from evalplatform.cli import output
from evalplatform.cli.options import byte_limit, check_format, import_options
from evalplatform.errors import EXIT_PASS, InputError


@click.command("import")
@click.argument("files", nargs=-1, required=True, metavar="FILE...")
@click.option("--out", metavar="FILE", help="write the canonical table (.parquet or .jsonl)")
@click.option("--run", metavar="RUN_ID", help="run id for the imported results")
@click.option("--suite", help="suite name (default: what the file names, else its stem)")
@import_options
def command(files: tuple[str, ...], out: str | None, run: str | None, suite: str | None, fmt: str,
            max_bytes: str | None) -> int:
    """Convert result files of other tools (Promptfoo, DeepEval, Inspect, JUnit, CSV/JSONL/Parquet tables) into
    the canonical result table, and say what they hold."""
    return import_files(list(files), out=out, run=run, suite=suite, fmt=fmt, limit=max_bytes)


def import_files(files: list[str], *, out: str | None, run: str | None, suite: str | None, fmt: str,
                 limit: str | None) -> int:
    import polars as pl

    from evalplatform.importers import load_results

    check_format(fmt)
    target = Path(out) if out else None
    if target is not None and target.suffix.lower() not in (".parquet", ".jsonl"):
        raise InputError(target, "--out", "unknown output type", "end the name in .parquet or .jsonl")
    loaded = load_results(files, fmt, run_id=run, suite=suite, max_bytes=byte_limit(limit))
    df = loaded.frame
    for path, kind in loaded.formats.items():
        output.echo(f"{path}: {kind}")
    for note in loaded.warnings:
        output.echo(f"warning: {note}", err=True)
    counts = dict(df.group_by("outcome").len().iter_rows())
    output.echo(f"{df.height} rows, {df['case_id'].n_unique()} cases, {df['scorer'].n_unique()} scorer(s), "
                f"repeats {df['repeat'].n_unique()}: " + ", ".join(f"{k} {counts.get(k, 0)}"
                                                                   for k in ("pass", "fail", "error", "skipped")))
    if target is not None:
        try:
            if target.suffix.lower() == ".parquet":
                df.write_parquet(target)
            else:
                df.with_columns(pl.col("tags")).write_ndjson(target)
        except OSError as exc:
            raise InputError(target, "--out", f"cannot write: {exc.strerror}") from None
        output.echo(f"wrote {target}")
    return EXIT_PASS
