"""`evalplatform promote`: make a complete run its tier's baseline; a run that did not PASS only with --force."""

from __future__ import annotations

import click

from evalplatform.cli import output
from evalplatform.cli.audit import actor, history_store, reason_given
from evalplatform.errors import EXIT_PASS, InputError


@click.command("promote")
@click.argument("run_id", metavar="RUN")
@click.option("--reason", required=True, help="why this run becomes the baseline (kept in its history)")
@click.option("--force", is_flag=True,
              help="promote a run whose decision of record is not PASS (the reason is recorded as forced)")
def command(run_id: str, reason: str, force: bool) -> int:
    """Make a complete run (RUN or a unique prefix) the baseline of its suite's tier.

    Only a run whose decision of record is PASS, unless --force; who (user@host), when and why are recorded,
    with the run it replaced (`evalplatform baseline` lists them; `evalplatform rollback` undoes one).
    """
    why = reason_given(reason)
    store = history_store()
    record = store.get_run(run_id)
    if record is None:
        raise InputError(store.path, "RUN", f"no run {run_id!r}", "see `evalplatform history list`")
    run_id = record["run_id"]
    if record["status"] != "complete":
        raise InputError(store.path, "RUN", f"run {run_id!r} is {record['status']}; only a complete run can be a "
                         "baseline", "promote a complete run (see `evalplatform history list`)")
    made = store.decision_of_record(run_id)
    overall = made["overall"] if made else None
    forced = overall != "PASS"
    if forced and not force:
        raise InputError(store.path, "RUN", f"run {run_id!r} decided {overall or 'nothing (no decision of record)'}; "
                         "only a run whose decision of record is PASS becomes a baseline",
                         "give --force to promote it anyway; the reason is then recorded as forced")
    # The store checks the decision again inside its transaction unless this is a forced promotion.
    replaced = store.promote(record["suite"], run_id, f"forced: {why}" if forced else why, actor=actor(),
                             require_pass=not forced)
    tier = record.get("tier") or "(no tier)"
    if replaced == run_id:
        output.echo(f"run {run_id} is already the {tier} baseline of suite {record['suite']}: nothing changed")
        return EXIT_PASS
    output.echo(f"promoted run {run_id} (model {record.get('target_model')}, decision {overall or 'none recorded'}"
                f"{', forced' if forced else ''}) to the {tier} baseline of suite {record['suite']}; "
                + (f"it replaces run {replaced}" if replaced else f"the suite's first {tier} baseline"))
    return EXIT_PASS
