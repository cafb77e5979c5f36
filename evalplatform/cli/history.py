"""`evalplatform history`: list recorded runs, show one with the decision it made, or list its failing cases."""

from __future__ import annotations

import json

import click

from evalplatform.cli import output
from evalplatform.errors import EXIT_PASS, InfraError, InputError

RUN_COLUMNS = ["run_id", "suite", "tier", "status", "model", ("pass", "right"), ("fail", "right"), ("error", "right"),
               "decision"]


def _store():
    from evalplatform.history import HistoryStore
    from evalplatform.project import find_project

    project = find_project()
    return project, HistoryStore(project.history_path)


def _mark_abandoned(store) -> None:
    """The cheap check: runs whose process is gone are marked abandoned before they are listed."""
    try:
        gone = store.mark_abandoned()
    except InfraError as exc:  # a read-only history still lists; it just cannot mark them
        output.echo(f"warning: cannot mark abandoned runs: {exc}", err=True)
        return
    if gone:
        output.echo(f"marked {len(gone)} run(s) abandoned (their process is gone): {', '.join(gone)}", err=True)


@click.group("history", invoke_without_command=True)
@click.pass_context
def command(ctx: click.Context) -> int | None:
    """List recorded runs (the default), show one, or list a run's failing cases."""
    if ctx.invoked_subcommand is None:
        return list_runs(suite=None, limit=20, include_running=False)
    return None


@command.command("list")
@click.option("--suite", help="only this suite's runs")
@click.option("--limit", type=int, default=20, show_default=True, help="at most this many runs, newest first")
@click.option("--all", "include_running", is_flag=True, help="include runs still running")
def list_command(suite: str | None, limit: int, include_running: bool) -> int:
    """Recent runs, newest first, with their model, outcome counts and decision (or why they stopped)."""
    return list_runs(suite=suite, limit=limit, include_running=include_running)


def list_runs(*, suite: str | None, limit: int, include_running: bool) -> int:
    project, store = _store()
    _mark_abandoned(store)
    # Runs that ended without completing (failed, abandoned) are listed too, with their reason.
    runs = store.list_runs(suite=suite, limit=limit,
                           status=None if include_running else ("complete", "failed", "abandoned"))
    if runs.height == 0:
        output.echo(f"no runs in {project.history_path}")
        return EXIT_PASS
    rows = []
    for r in runs.iter_rows(named=True):
        # A run that did not complete has no decision: say why it stopped instead.
        last = r["decision"] if r["status"] == "complete" else (r["failure"] or "")
        rows.append((r["run_id"], r["suite"], r["tier"] or "", r["status"], r["target_model"] or "", r["n_pass"] or 0,
                     r["n_fail"] or 0, r["n_error"] or 0, last or ""))

    def plain() -> str:
        # The model column is as wide as the longest model: two runs of similar models stay told apart.
        model_w = max([22] + [len(output.clean(row[4])) + 1 for row in rows])
        lines = [f"{'run_id':<28}{'suite':<10}{'tier':<9}{'status':<10}{'model':<{model_w}}{'pass':>6}{'fail':>6}"
                 f"{'error':>6}  decision"]
        lines += [f"{run_id:<28}{s:<10}{tier:<9}{status:<10}{model:<{model_w}}{n_pass:>6}{n_fail:>6}{n_error:>6}  "
                  f"{last}" for run_id, s, tier, status, model, n_pass, n_fail, n_error, last in rows]
        return "\n".join(lines)

    output.show(plain, lambda: output.table(RUN_COLUMNS, rows, title=f"runs in {project.history_path}",
                                            wrap=["model", "decision"]))
    return EXIT_PASS


@command.command("show")
@click.argument("run_id")
@click.option("--failures", is_flag=True, help="list every failing or errored case of the run, with why")
def show_command(run_id: str, failures: bool) -> int:
    """One run with its provenance, summary and the decision it made when it ran (RUN_ID or a unique prefix)."""
    from evalplatform.cli.summary import print_summary

    project, store = _store()
    _mark_abandoned(store)
    record = store.get_run(run_id)
    if record is None:
        raise InputError(project.history_path, "run_id", f"no run {run_id!r}", "see `evalplatform history list`")
    if failures:
        return show_failures(store, record)
    if record["status"] == "complete" and store.decision_of_record(record["run_id"]) is not None:
        print_summary(project, record["run_id"], None)
    else:
        output.echo(json.dumps(record, indent=2, default=str))
        if record["status"] == "complete":
            output.echo("no decision was recorded when this run ran")
    # Later gates are listed for the record, each labelled, and never as what the run decided.
    for d in store.re_decisions(record["run_id"]):
        output.echo(f"re-decision {d['decision_id']}: {d['overall']}  {d['label'] or 'a later gate'}  "
                    "(not this run's decision)")
    return EXIT_PASS


def show_failures(store, record: dict) -> int:
    """Every failing or errored (case, repeat, scorer) row of the run, with why: nothing is cut off."""
    from evalplatform.cli.summary import run_header
    from evalplatform.run_view import FAILURE_COLUMNS, failing_cases

    made = store.decision_of_record(record["run_id"])
    header = f"{run_header(record)}  decision {made['overall'] if made else 'none recorded'}"
    if record["status"] != "complete":
        output.echo(header)
        output.echo(f"no results: the run is {record['status']}" +
                    (f" ({record['failure']})" if record.get("failure") else ""))
        return EXIT_PASS
    results = store.get_results(record["run_id"])
    rows = failing_cases(results)
    if rows.height == 0:
        output.echo(header)
        output.echo(f"no case failed or errored ({results.height} results)")
        return EXIT_PASS
    cells = [[r[c] for c in FAILURE_COLUMNS] for r in rows.iter_rows(named=True)]
    columns = [("repeat", "right") if c == "repeat" else c for c in FAILURE_COLUMNS]
    footer = f"{rows.height} failing or errored rows of {results.height} results"
    output.show(lambda: "\n".join([header, output.plain_table(columns, cells), footer]),
                lambda: [output.text(header), output.table(columns, cells, wrap=["category", "reason"]),
                         output.text(footer)])
    return EXIT_PASS
