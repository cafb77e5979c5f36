"""`evalplatform report`: a self-contained offline HTML report of a run, or of a suite's trend, with plots."""

from __future__ import annotations

from pathlib import Path

import click

from evalplatform.cli import output
from evalplatform.errors import EXIT_PASS


@click.command("report")
@click.option("--suite", required=True, help="suite name (datasets/NAME/suite.yaml) or a path to a suite.yaml")
@click.option("--run", "run_id", metavar="RUN_ID", help="the run to report (a unique prefix is enough); without it, "
                                                       "the suite's trend over its latest runs")
@click.option("--out", metavar="FILE", help="where to write the HTML (default: .evalplatform/reports/SUITE/RUN.html "
                                            "or trend.html)")
@click.option("--plots", "plots_dir", metavar="DIR", help="also save each plot as a PNG file in DIR "
                                                         "(report_pass_rate.png, report_cost_latency.png, and for a "
                                                         "run report_categories.png, report_judges.png)")
def command(suite: str, run_id: str | None, out: str | None, plots_dir: str | None) -> int:
    """Write a run's report (decision, rates per category against the baseline, judge confusion matrices, calls and
    cost against the estimate, flaky cases, the suite's trend) or the suite's trend report (pass rate with interval
    bands, cost and latency over runs). One HTML file, plots embedded: it opens offline."""
    # matplotlib is imported by the report only, so `evalplatform --help` and the other verbs stay quick.
    from evalplatform.errors import InputError
    from evalplatform.html_report import write_report
    from evalplatform.project import find_project

    if run_id is not None and not run_id.strip():  # an unset CI variable: never the trend in the run's place
        raise InputError(None, "--run", "is empty", "give a run id (evalplatform history list), or leave --run out "
                                                    "for the suite's trend")

    path = write_report(find_project(), suite, run_id, Path(out) if out else None,
                        plots_dir=Path(plots_dir) if plots_dir else None)
    output.echo(f"report: {path}")
    if plots_dir:
        output.echo(f"plots: {plots_dir}")
    return EXIT_PASS
