"""`evalplatform monitor`: production monitors of a suite over time, with their bounds, SLOs and freshness."""

from __future__ import annotations

import click

from evalplatform.cli import output
from evalplatform.errors import EXIT_PASS


@click.command("monitor")
@click.option("--suite", required=True, help="the suite whose production monitors to show")
@click.option("--all", "all_scopes", is_flag=True, help="every scope (per tag, per release), not only the criteria")
@click.option("--history", type=click.IntRange(min=0, max=1000), default=0, show_default=True,
              help="also list this many earlier values of each monitor")
def command(suite: str, all_scopes: bool, history: int) -> int:
    """Show the suite's monitors: Horvitz-Thompson weighted pass rates with intervals and the always-valid bound
    per criterion (and per tag), which ones alert against their SLO, the review queue, the failure categories
    against the regression set, and freshness (flag to regression case, per case and P95)."""
    from evalplatform.monitoring import monitor_report
    from evalplatform.project import find_project

    output.echo(monitor_report(find_project(), suite, all_scopes=all_scopes, history=history))
    return EXIT_PASS
