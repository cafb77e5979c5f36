"""Options shared by several verbs: the run options of `run` and `ci` (one RunRequest), and the importers' options."""

from __future__ import annotations

import os
from typing import Any, Callable

import click

from evalplatform.errors import InputError

MAX_BYTES_ENV = "EVALPLATFORM_IMPORT_MAX_BYTES"


def _apply(f: Callable, options: list) -> Callable:
    for option in reversed(options):
        f = option(f)
    return f


def run_options(f: Callable) -> Callable:
    """The options of a scored run; the values are checked once, by RunRequest."""
    return _apply(f, [
        click.option("--suite", required=True, help="suite name (datasets/NAME/suite.yaml) or path to a suite.yaml"),
        click.option("--tier", default="pr", show_default=True, metavar="TIER",
                     help="pr (cheap, on every change) or nightly (full datasets, repeats)"),
        click.option("--model", help="override the suite's target model (a litellm model string,"
                                      " or the release a Python target runs)"),
        click.option("--repeats", type=int, help="override the number of repeats"),
        # The history stores a seed as a 64-bit integer: a larger one is refused here, before anything runs.
        click.option("--seed", type=click.IntRange(-(2 ** 63), 2 ** 63 - 1), metavar="INTEGER",
                     help="override the target's seed (recorded with the run)"),
        click.option("--no-cache", is_flag=True, help="neither read nor write the response cache (target and judges)"),
        click.option("--budget-usd", type=float, metavar="USD",
                     help="most the run may spend on model calls (target and judges): refused when estimated above, "
                          "stopped and failed when reached"),
        click.option("--max-calls", type=int, metavar="N", help="most model calls the run may make (target and judges)"),
        click.option("--concurrency", type=int, help="maximum model calls in flight"),
        click.option("--engine", type=click.Choice(["dagster", "direct"]), default=None,
                     help="dagster: materialize the code location's assets in-process (default when the project "
                          "has definitions.py); direct: the library pipeline alone"),
    ])


def run_request(opts: dict[str, Any]):
    """The run options of `run` and `ci`, as the one RunRequest every engine takes."""
    from pydantic import ValidationError

    from evalplatform.request import RunRequest

    try:
        return RunRequest(suite=opts["suite"], tier=opts["tier"], model=opts.get("model"),
                          repeats=opts.get("repeats"), no_cache=True if opts.get("no_cache") else None,
                          concurrency=opts.get("concurrency"), seed=opts.get("seed"),
                          budget_usd=opts.get("budget_usd"), max_calls=opts.get("max_calls"))
    except ValidationError as exc:
        first = exc.errors()[0]
        raise InputError(None, f"--{str(first['loc'][0]).replace('_', '-')}", first["msg"]) from None


def import_options(f: Callable) -> Callable:
    """--format and --max-bytes; the format names come from the importer registry when the command runs."""
    return _apply(f, [
        click.option("--format", "fmt", default="auto", show_default=True, metavar="FORMAT",
                     help="auto (detect per file) or one of the importers' formats (an unknown name lists them)"),
        click.option("--max-bytes", default=None, metavar="BYTES",
                     help=f"refuse result files above this size (default: ${MAX_BYTES_ENV} or 2 GiB)"),
    ])


def check_format(fmt: str) -> str:
    """`auto` or a name in the importer registry; anything else is bad input naming the known formats."""
    from evalplatform.importers import FORMATS

    if fmt != "auto" and fmt not in FORMATS:
        raise InputError(None, "--format", f"unknown format {fmt!r}",
                         f"use auto or one of {', '.join(sorted(FORMATS))}")
    return fmt


def byte_limit(given: str | None) -> int:
    from evalplatform.importers import DEFAULT_MAX_BYTES

    raw = given if given is not None else os.environ.get(MAX_BYTES_ENV)
    if raw is None:
        return DEFAULT_MAX_BYTES
    try:
        value = int(raw)
    except ValueError:
        raise InputError(None, "--max-bytes" if given is not None else MAX_BYTES_ENV,
                         f"expected a number of bytes, got {raw!r}") from None
    if value < 1:
        raise InputError(None, "--max-bytes", "must be at least 1")
    return value
