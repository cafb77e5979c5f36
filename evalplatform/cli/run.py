"""`evalplatform run`: run a suite's tier (through the Dagster code location or the library pipeline) and gate it."""

from __future__ import annotations

import os
from typing import Any

import click

from evalplatform.cli.options import run_options, run_request
from evalplatform.cli.reports import report_options


class ProgressBars:
    """Makes the run's progress bar (stderr: rich on a terminal, nothing in CI logs) and stops it however the run
    ends: a live bar hides the cursor until it is stopped."""

    def __init__(self) -> None:
        self.bars: list = []

    def __call__(self, total: int):
        import sys

        from evalplatform.cli.output import on_terminal
        from evalplatform.progress import Progress

        self.bars.append(Progress(total, stream=sys.stderr, terminal=on_terminal(sys.stderr)))
        return self.bars[-1]

    def __enter__(self) -> "ProgressBars":
        return self

    def __exit__(self, *exc: object) -> None:
        for bar in self.bars:
            bar.close()


def run_suite(opts: dict[str, Any]) -> int:
    """Run the request the options spell; print the run summary; exit 0 only on PASS. Shared with `ci`."""
    from evalplatform.cli.output import echo
    from evalplatform.cli.summary import print_summary
    from evalplatform.history import HistoryStore
    from evalplatform.pipeline import estimate_and_check, planned_run, resolve_suite
    from evalplatform.project import find_project

    project = find_project()
    request = run_request(opts)
    # Fail fast on a bad suite or dataset, before any engine starts or anything is written; then say what the
    # run will call and spend, and refuse it here (exit 2) when that is over its budget.
    suite = resolve_suite(project, request.suite)
    store = HistoryStore(project.history_path)

    def announce(estimate: Any, plan: Any) -> None:
        echo(f"{suite.name} {plan.tier} tier: {plan.cases.height} cases x {plan.repeats} repeat(s), scorers "
             f"{', '.join(plan.scope.run_ids) if plan.scope else 'all'}")
        echo(estimate.line())

    if would_use_dagster(opts, project):
        from evalplatform.engine import run_with_dagster

        with store.shared_reads():
            plan = planned_run(store, suite, request)
            estimate, _ = estimate_and_check(plan, store, request,
                                             project.cache_dir if request.use_cache() else None)
        announce(estimate, plan)

        outcome = run_with_dagster(project, request.model_copy(update={"suite": suite.name}))
        run_id = outcome.run_id
        ui_hint = (f"dagster run {outcome.dagster_run_id}: see it with `make ui` (dagster dev, DAGSTER_HOME="
                   f"{os.environ.get('DAGSTER_HOME', '<unset: ephemeral instance>')})")
    else:
        from evalplatform.pipeline import scored_run

        with ProgressBars() as bars:
            # The pipeline plans, estimates and refuses over-budget runs (exit 2) before any call or write.
            run, _ = scored_run(project, request, progress=bars, store=store, on_estimate=announce)
        run_id, ui_hint = run.run_id, None
    reports = {"markdown": opts.get("markdown"), "junit": opts.get("junit"), "json": opts.get("json_out")}
    return print_summary(project, run_id, ui_hint, reports)


def would_use_dagster(opts: dict[str, Any], project: Any) -> bool:
    """The engine: `--engine`, else Dagster for a suite of the project (datasets/NAME/suite.yaml, served by its
    code location) and direct for a suite file elsewhere. From the options and the files alone."""
    from pathlib import Path

    engine = opts.get("engine")
    if engine in ("dagster", "direct"):
        return engine == "dagster"
    if not project.definitions_file.is_file():
        return False
    arg = Path(opts["suite"])
    path = arg if arg.suffix in (".yaml", ".yml") else project.datasets_dir / opts["suite"] / "suite.yaml"
    return path.is_file() and path.resolve().parent.parent == project.datasets_dir.resolve()


def forwarded(opts: dict[str, Any]) -> int | None:
    """A Dagster-engine command of the `evalplatform` program, run by the warm launcher; None to run it here.

    Only the program's own command line is handed over (a caller of `main(argv)` runs in its process)."""
    from evalplatform import cli
    from evalplatform import launcher_client as launcher

    if cli.ENTRY_ARGV is None or not launcher.enabled():
        return None
    from evalplatform.engine import run_timeout_s
    from evalplatform.project import code_location_root, find_project

    project = find_project()
    location = code_location_root(project)
    if location is None or not would_use_dagster(opts, project):
        return None
    try:
        return launcher.run_in_server(cli.ENTRY_ARGV, location, project.root, run_timeout_s())
    except launcher.Unavailable:
        return None  # nothing was handed over: the cold launcher runs it, as without the server


@click.command("run")
@run_options
@report_options
def command(**opts: Any) -> int:
    """Run a suite's tier and gate it by the suite's policy.

    Exit 0 when the decision is PASS, 1 when it is anything else, 2 on bad input, 3 on an infrastructure failure.
    """
    rc = forwarded(opts)
    return run_suite(opts) if rc is None else rc
