"""`evalplatform review`: walk the review queue of flagged or failed production traces, or label one by id."""

from __future__ import annotations

import sys

import click

from evalplatform.cli import output
from evalplatform.errors import EXIT_PASS, InputError


@click.command("review")
@click.option("--suite", required=True, help="the suite whose review queue to work on")
@click.option("--list", "list_only", is_flag=True, help="list the queue instead of walking it")
@click.option("--status", type=click.Choice(["open", "labelled", "all"]), default="open", show_default=True,
              help="with --list: which items")
@click.option("--limit", type=click.IntRange(min=1, max=10000), default=20, show_default=True,
              help="at most this many items")
@click.option("--id", "item_id", help="label this item without prompting (scripts)")
@click.option("--label", type=click.Choice(["pass", "fail"]), help="with --id: the human verdict")
@click.option("--category", help="with --label fail: the failure category (new ones are added to the taxonomy)")
@click.option("--note", help="why, in words (kept with the label and in the regression case)")
@click.option("--reviewer", help="who labels (default: $USER)")
@click.option("--field", "fields", multiple=True, metavar="NAME=JSON",
              help="a field of the regression case the failure becomes, e.g. must_contain='[\"2026-03-24\"]'")
@click.option("--severity", help="severity of the regression case (low, medium, high, critical)")
@click.option("--no-promote", is_flag=True, help="label a failure without appending it to the regression set")
def command(suite: str, list_only: bool, status: str, limit: int, item_id: str | None, label: str | None,
            category: str | None, note: str | None, reviewer: str | None, fields: tuple[str, ...],
            severity: str | None, no_promote: bool) -> int:
    """Walk the open queue in the terminal (show the trace, label pass/fail, pick or add a failure category, write a
    note); a labelled failure is appended to the suite's regression set with the trace id, category, date, note and
    reviewer. With --id and --label it labels one item without prompting."""
    from evalplatform.project import find_project
    from evalplatform.review import apply_label, format_list, parse_fields, review_list, walk

    project = find_project()
    if list_only:
        output.echo(format_list(review_list(project, suite, status=None if status == "all" else status, limit=limit)))
        return EXIT_PASS
    if item_id is not None or label is not None:
        if item_id is None or label is None:
            raise InputError(None, "--id" if item_id is None else "--label", "is needed with the other",
                             "give both --id ID and --label pass|fail")
        result = apply_label(project, suite, item_id, label, category=category, note=note, reviewer=reviewer,
                             fields=parse_fields(list(fields)), severity=severity, promote=not no_promote)
        output.echo(result.line())
        return EXIT_PASS
    if not sys.stdin.isatty():
        raise InputError(None, "--id", "the interactive walk needs a terminal",
                         "label by id: --id ID --label pass|fail [--category C --note N]")
    results = walk(project, suite, stdin=sys.stdin, stdout=sys.stdout, reviewer=reviewer, limit=limit,
                   promote=not no_promote)
    output.echo(f"{len(results)} item(s) labelled")
    return EXIT_PASS
