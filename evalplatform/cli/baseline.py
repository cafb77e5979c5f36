"""`evalplatform baseline`: a suite's current baseline per tier and every change of it (who, when, why, what it
replaced), with each run's model and decision of record."""

from __future__ import annotations


import click

from evalplatform.cli import output
from evalplatform.cli.audit import check_tier, history_store
from evalplatform.errors import EXIT_PASS

HISTORY_COLUMNS = ["when (UTC)", "tier", "action", "run", "replaced", "model", "decision", "who", "why"]


@click.command("baseline")
@click.option("--suite", required=True, help="the suite whose baselines to show")
@click.option("--tier", metavar="TIER", help="only this tier: pr or nightly (default: every tier)")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True,
              help="at most this many changes, newest first")
def command(suite: str, tier: str | None, limit: int) -> int:
    """Show the suite's current baseline per tier and its history: promotions and rollbacks, who made them,
    when, why, the run each replaced, and each run's model and decision of record."""
    from evalplatform.request import TIERS

    check_tier(tier)
    store = history_store()
    changes = store.baseline_history(suite, tier, limit=limit)
    if not changes and store.latest_baseline(suite, tier) is None:
        output.echo(f"suite {suite!r} has no {tier + ' ' if tier else ''}baseline in {store.path} "
                    "(promote a run: evalplatform promote RUN --reason TEXT)")
        return EXIT_PASS
    tiers = [tier] if tier else [*TIERS, *sorted({c["tier"] for c in changes if c["tier"] not in TIERS},
                                                 key=lambda t: t or "")]
    current = [_current(store, suite, t, changes) for t in tiers]
    history = [(output.timestamp(c["promoted_at"]), c["tier"] or "(none)", c["action"] or "promote", c["run_id"],
                c["replaced_run_id"] or "-", c["target_model"] or "", c["decision"] or "none recorded",
                c["actor"] or "unknown", c["reason"] or "") for c in changes]

    def plain() -> str:
        lines = [f"suite {suite}"]
        for t, run in current:
            lines.append(f"{t or '(no tier)'} baseline: " + (_describe(run) if run else "none"))
        lines += ["", "changes, newest first:", output.plain_table(HISTORY_COLUMNS, history)]
        return "\n".join(lines)

    def rich() -> list:
        now = output.table(["tier", "run", "model", "decision", "since (UTC)", "by", "why"],
                           [(t or "(no tier)", *(_cells(run) if run else ("none", "", "", "", "", "")))
                            for t, run in current], title=f"suite {suite}: current baselines", wrap=["model", "why"])
        return [now, output.table(HISTORY_COLUMNS, history, title="changes, newest first", wrap=["model", "why"])]

    output.show(plain, rich)
    return EXIT_PASS


def _current(store, suite: str, tier: str | None, changes: list[dict]) -> tuple[str | None, dict | None]:
    """(tier, the current baseline with its run and the change that made it current) or (tier, None)."""
    if tier is None:  # baselines of runs without a tier: the newest such change names the current one
        change = next((c for c in changes if c["tier"] is None), {})
        run_id = change.get("run_id")
    else:
        run_id = store.latest_baseline(suite, tier)
        # The newest change of the tier is the one that made it current (the listing may be cut by --limit).
        change = next(iter(store.baseline_history(suite, tier, limit=1)), {})
    if run_id is None:
        return tier, None
    run = store.get_run(run_id) or {}
    return tier, {"run_id": run_id, "model": run.get("target_model"), "decision": run.get("decision"),
                  "since": change.get("promoted_at"), "actor": change.get("actor"), "reason": change.get("reason")}


def _cells(run: dict) -> tuple:
    return (run["run_id"], run["model"] or "", run["decision"] or "none recorded", output.timestamp(run["since"]),
            run["actor"] or "unknown", run["reason"] or "")


def _describe(run: dict) -> str:
    run_id, model, decision, since, by, why = _cells(run)
    return f"run {run_id}  model {model}  decision {decision}  (since {since} by {by}: {why})"
