"""`evalplatform plan`: before anything runs, can each rule of the suite's policy decide at the tier's size?"""

from __future__ import annotations

import click

from evalplatform.cli import output
from evalplatform.cli.audit import check_tier
from evalplatform.errors import EXIT_PASS


@click.command("plan")
@click.option("--suite", required=True, help="suite name (datasets/NAME/suite.yaml) or a path to a suite.yaml")
@click.option("--tier", metavar="TIER", help="pr or nightly (default: both)")
def command(suite: str, tier: str | None) -> int:
    """Per rule and tier: the cases it selects, the best bound a perfect result reaches, the chance that a
    no-change re-run is blocked (at the baseline's own rate) and the smallest change it detects 80% of the time.
    A blocking rule that cannot pass even with a perfect result is refused (exit 2, with the cases it needs)."""
    from evalplatform.history import HistoryStore
    from evalplatform.pipeline import resolve_suite
    from evalplatform.planning import plan_table, plans_for_suite
    from evalplatform.project import find_project

    check_tier(tier)
    project = find_project()
    loaded = resolve_suite(project, suite)
    store = HistoryStore(project.history_path)
    plans = plans_for_suite(loaded, [tier] if tier else None, store=store)
    output.echo(plan_table(plans))
    output.echo(_estimates(project, loaded, [p.tier for p in plans], store))
    for plan in plans:
        plan.check()  # InputError (exit 2) naming the policy file, the rule and the cases it needs
    return EXIT_PASS


def _estimates(project, suite, tiers: list[str], store) -> str:
    """Per tier: the scorers it runs (and why the others not) and what a run would call and spend."""
    from evalplatform.budget import estimate_run
    from evalplatform.pipeline import planned_run
    from evalplatform.request import RunRequest

    lines = []
    for tier in tiers:
        request = RunRequest(suite=str(suite.path), tier=tier)
        plan = planned_run(store, suite, request)
        lines.append(f"{tier} tier runs {', '.join(plan.scope.run_ids)}"
                     + (f"; not {', '.join(plan.scope.not_run)}" if plan.scope.not_run else ""))
        cache = project.cache_dir if request.use_cache() else None
        lines.append(f"  {estimate_run(plan, store, cache).line()}")
    return "\n".join(lines)
