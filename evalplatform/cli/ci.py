"""`evalplatform ci`: launch the suite's tier job on a Dagster server and wait (in-process without --url)."""

from __future__ import annotations

import os
from typing import Any

import click

from evalplatform.cli import output
from evalplatform.cli.options import run_options, run_request
from evalplatform.cli.reports import report_options, write_reports
from evalplatform.errors import EXIT_BLOCKED, EXIT_PASS, InfraError


@click.command("ci")
@run_options
@click.option("--url", default=lambda: os.environ.get("EVALPLATFORM_DAGSTER_URL"),
              help="Dagster webserver (e.g. http://127.0.0.1:3000; default $EVALPLATFORM_DAGSTER_URL); without it "
                   "the job runs in-process")
@click.option("--timeout", type=float, default=1800, show_default=True, help="seconds to wait for the run")
@report_options
def command(**opts: Any) -> int:
    """CI entry point: run the suite's tier job on a Dagster server (or in-process) and exit with the decision.

    Exit 0 when the decision is PASS, 1 when it is anything else, 2 on bad input, 3 on an infrastructure failure.
    """
    if not opts["url"]:
        from evalplatform.cli.run import run_suite

        return run_suite(opts)
    from evalplatform.ci import submit_and_wait, user_error

    url = opts["url"]
    request = run_request(opts)
    res = submit_and_wait(url, request, timeout_s=opts["timeout"], tags={"evalplatform/cli": "ci"})
    err = user_error(res.failures)
    if err is not None:
        raise err
    output.echo(f"dagster run {res.run_id}: {res.status} in {res.elapsed_s:.1f} s  ({url}/runs/{res.run_id})")
    for g in res.gates:
        m = g.metadata
        nums = ", ".join(f"{k}={m[k]:.3f}" if isinstance(m.get(k), float) else f"{k}={m[k]}"
                         for k in ("outcome", "estimate", "lower", "threshold", "n") if k in m)
        output.echo(f"  {'PASS' if g.passed else 'FAIL'} {g.name} [{g.severity}] {nums}")
    write_reports(decision_from_gates(res), markdown=opts["markdown"], junit=opts["junit"],
                  json_out=opts["json_out"], extra={"dagster_run_id": res.run_id, "url": url})
    if res.blocking_failed:
        output.echo("decision: BLOCKED")
        return EXIT_BLOCKED
    if res.status != "SUCCESS":
        steps = ", ".join(f["step"] for f in res.failures) or "unknown step"
        raise InfraError(f"dagster run {res.run_id} ended {res.status} (failed: {steps})")
    release = next((g for g in res.gates if g.name == "release_decision_passed"), None)
    if release is None or not release.passed:
        raise InfraError(f"dagster run {res.run_id} produced no release decision: refusing to pass")
    output.echo("decision: PASS")
    return EXIT_PASS


def decision_from_gates(res: Any):
    """The asset checks of a Dagster run, as a policy decision (for the Markdown/JUnit/JSON reports)."""
    from evalplatform.policy import Decision, RuleResult

    rules = []
    for g in res.gates:
        m = dict(g.metadata)
        blocking = g.severity == "ERROR"
        rules.append(RuleResult(
            rule_id=g.name, metric=str(m.get("metric", "")), severity="blocking" if blocking else "advisory",
            outcome=str(m.get("outcome", "PASS" if g.passed else "FAIL")), blocks=blocking and not g.passed,
            reason=str(m.get("reason", "")), numbers=m))
    release = next((g for g in res.gates if g.name == "release_decision_passed"), None)
    recorded = str((release.metadata if release else {}).get("decision") or "")
    if any(r.blocks for r in rules) or res.status != "SUCCESS":
        overall = recorded if recorded in ("BLOCK", "NO_DATA") else "BLOCK"
    else:
        overall = "PASS" if release is not None and release.passed else "NO_DATA"
    return Decision(overall, rules, policy_name=f"dagster run {res.run_id}", inputs={"dagster_run_id": res.run_id})
