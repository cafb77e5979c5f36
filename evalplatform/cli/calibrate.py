"""`evalplatform calibrate`: run a suite's judges on their calibration sets and store how well they agree."""

from __future__ import annotations

import click

from evalplatform.cli import output
from evalplatform.cli.output import number
from evalplatform.errors import EXIT_BLOCKED, EXIT_PASS, InputError


def _ci(pair) -> str:
    return "-" if not pair else f"[{pair[0]:.2f}, {pair[1]:.2f}]"


def _verdict(report) -> str:
    return "ALLOWED to gate" if report.allowed else "REFUSED: " + "; ".join(report.reasons)


def render_calibration(report) -> str:
    """The calibration table of one judge, as printed off a terminal."""
    m = report.metrics
    (tp, fp), (fn, tn) = m["table"]
    lines = [
        f"judge {report.judge_name}  ({report.identity_key})",
        f"  {report.method}; calibration set {report.set_version[:12]}; {m['n']} valid, {m['n_error']} errors",
        "                      human FAIL  human PASS",
        f"    judge FAIL        {tp:>10}  {fp:>10}",
        f"    judge PASS        {fn:>10}  {tn:>10}",
    ]
    if m["n"]:
        lines += [
            f"  FAIL recall (TNR)   {number(m['fail_recall'])} {_ci(m['fail_recall_ci'])}  one-sided LB "
            f"{number(m['fail_recall_lb'])}",
            f"  PASS recall (TPR)   {number(m['tpr'])} {_ci(m['tpr_ci'])}",
            f"  FAIL precision      {number(m['fail_precision'])} {_ci(m['fail_precision_ci'])}   F1 "
            f"{number(m['fail_f1'])}",
            f"  Cohen's kappa       {number(m['kappa'])} {_ci(m['kappa_ci'])}  one-sided LB {number(m['kappa_lb'])}",
            f"  raw agreement       {number(m['agreement'])} {_ci(m['agreement_ci'])}  "
            "(not a gate criterion on its own)",
        ]
    lines.append(f"  self-consistency    {number(report.self_consistency)}  {report.self_consistency_note}")
    lines.append(f"  -> {_verdict(report)}")
    return "\n".join(lines)


def calibration_rich(report) -> list:
    """The same numbers as rich tables: the confusion table, then each agreement measure with its interval."""
    m = report.metrics
    (tp, fp), (fn, tn) = m["table"]
    head = output.text(f"judge {report.judge_name}  ({report.identity_key})\n  {report.method}; calibration set "
                       f"{report.set_version[:12]}; {m['n']} valid, {m['n_error']} errors")
    confusion = output.table(["", ("human FAIL", "right"), ("human PASS", "right")],
                             [("judge FAIL", tp, fp), ("judge PASS", fn, tn)])
    rows = []
    if m["n"]:
        rows = [("FAIL recall (TNR)", number(m["fail_recall"]), _ci(m["fail_recall_ci"]), number(m["fail_recall_lb"])),
                ("PASS recall (TPR)", number(m["tpr"]), _ci(m["tpr_ci"]), ""),
                ("FAIL precision", number(m["fail_precision"]), _ci(m["fail_precision_ci"]),
                 f"F1 {number(m['fail_f1'])}"),
                ("Cohen's kappa", number(m["kappa"]), _ci(m["kappa_ci"]), number(m["kappa_lb"])),
                ("raw agreement", number(m["agreement"]), _ci(m["agreement_ci"]), "not a gate criterion on its own")]
    rows.append(("self-consistency", number(report.self_consistency), "", report.self_consistency_note))
    measures = output.table(["measure", ("value", "right"), ("95% CI", "right"), "one-sided LB / note"], rows)
    return [head, confusion, measures, output.text(f"-> {_verdict(report)}"), output.text("")]


def _select(judges, wanted: str | None, suite: str):
    if wanted is None:
        return judges
    picked = [(s, j) for s, j in judges if wanted in (j.id, j.judge_name)]
    if not picked:
        known = ", ".join(sorted({j.id for _, j in judges})) or "none"
        raise InputError(None, "--judge", f"suite {suite!r} has no judge {wanted!r} (judges: {known})")
    return picked


@click.command("calibrate")
@click.option("--suite", required=True, help="suite whose judges to calibrate")
@click.option("--judge", help="only this judge: scorer id or judge name")
@click.option("--k", type=int, default=3, show_default=True,
              help="repeated judgments per sampled item for self-consistency (1-20)")
@click.option("--no-cache", is_flag=True, help="do not reuse cached judge replies")
def command(suite: str, judge: str | None, k: int, no_cache: bool) -> int:
    """Run a suite's judges on their calibration sets and store the agreement with the human labels.

    Exit 0 when every judge may gate, 1 when one is refused.
    """
    from evalplatform.history import HistoryStore
    from evalplatform.judges.calibrate import calibrate_judge, store_report
    from evalplatform.judges.suites import project_judges
    from evalplatform.project import find_project

    if not 1 <= k <= 20:
        raise InputError(None, "--k", "must be between 1 and 20")
    project = find_project()
    judges = _select(project_judges(project, suite), judge, suite)
    if not judges:
        raise InputError(None, "--suite", f"suite {suite!r} uses no judge scorer",
                         "add a scorer of type llm_judge or trained_judge")
    store = HistoryStore(project.history_path)
    refused = 0
    for _, one in judges:
        report = calibrate_judge(one, cache_dir=None if no_cache else project.cache_dir, self_consistency_k=k)
        store_report(store, report)
        refused += not report.allowed
        output.show(lambda: render_calibration(report) + "\n", lambda: calibration_rich(report))
    output.echo(f"stored in {project.history_path}")
    return EXIT_BLOCKED if refused else EXIT_PASS
