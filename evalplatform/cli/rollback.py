"""`evalplatform rollback`: restore the baseline that the current one of a suite's tier replaced."""

from __future__ import annotations

import click

from evalplatform.cli import output
from evalplatform.cli.audit import actor, check_tier, history_store, reason_given
from evalplatform.errors import EXIT_PASS


@click.command("rollback")
@click.option("--suite", required=True, help="the suite whose baseline to roll back")
@click.option("--tier", required=True, metavar="TIER", help="pr or nightly")
@click.option("--reason", required=True, help="why (kept in the baseline's history)")
def command(suite: str, tier: str, reason: str) -> int:
    """Restore the baseline that the current baseline of the suite's tier replaced; recorded like a promotion
    (who, when, why, the run taken out)."""
    why = reason_given(reason)
    check_tier(tier)
    store = history_store()
    restored, removed = store.rollback(suite, tier, why, actor=actor())
    run = store.get_run(restored) or {}
    output.echo(f"rolled back the {tier} baseline of suite {suite}: run {restored} (model {run.get('target_model')}, "
                f"decision {run.get('decision') or 'none recorded'}) is the baseline again; run {removed} is taken out")
    return EXIT_PASS
