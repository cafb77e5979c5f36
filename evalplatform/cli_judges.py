"""CLI verbs for judges: `calibrate` (run and store a calibration) and `judges` (who may gate, and why not)."""

from __future__ import annotations

import argparse

from evalplatform.cli import EXIT_BLOCKED, EXIT_PASS, command
from evalplatform.errors import InputError


def _fmt(x, digits: int = 3) -> str:
    # round(...) + 0.0 turns a -0.000 (kappa of an always-PASS judge) into 0.000.
    return "-" if x is None else f"{round(x, digits) + 0.0:.{digits}f}"


def _ci(pair) -> str:
    return "-" if not pair else f"[{pair[0]:.2f}, {pair[1]:.2f}]"


def render_calibration(report) -> str:
    """The calibration table of one judge, as printed by `evalplatform calibrate`."""
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
            f"  FAIL recall (TNR)   {_fmt(m['fail_recall'])} {_ci(m['fail_recall_ci'])}  one-sided LB {_fmt(m['fail_recall_lb'])}",
            f"  PASS recall (TPR)   {_fmt(m['tpr'])} {_ci(m['tpr_ci'])}",
            f"  FAIL precision      {_fmt(m['fail_precision'])} {_ci(m['fail_precision_ci'])}   F1 {_fmt(m['fail_f1'])}",
            f"  Cohen's kappa       {_fmt(m['kappa'])} {_ci(m['kappa_ci'])}  one-sided LB {_fmt(m['kappa_lb'])}",
            f"  raw agreement       {_fmt(m['agreement'])} {_ci(m['agreement_ci'])}  (not a gate criterion on its own)",
        ]
    lines.append(f"  self-consistency    {_fmt(report.self_consistency)}  {report.self_consistency_note}")
    verdict = "ALLOWED to gate" if report.allowed else "REFUSED: " + "; ".join(report.reasons)
    lines.append(f"  -> {verdict}")
    return "\n".join(lines)


def _configure_calibrate(p: argparse.ArgumentParser) -> None:
    p.add_argument("--suite", required=True, help="suite whose judges to calibrate")
    p.add_argument("--judge", help="only this judge: scorer id or judge name")
    p.add_argument("--k", type=int, default=3, help="repeated judgments per sampled item for self-consistency")
    p.add_argument("--no-cache", action="store_true", help="do not reuse cached judge replies")


def _select(judges, wanted: str | None, suite: str):
    if wanted is None:
        return judges
    picked = [(s, j) for s, j in judges if wanted in (j.id, j.judge_name)]
    if not picked:
        known = ", ".join(sorted({j.id for _, j in judges})) or "none"
        raise InputError(None, "--judge", f"suite {suite!r} has no judge {wanted!r} (judges: {known})")
    return picked


@command("calibrate", "run a suite's judges on their calibration sets and store the agreement")(_configure_calibrate)
def cmd_calibrate(args: argparse.Namespace) -> int:
    from evalplatform.history import HistoryStore
    from evalplatform.judges.calibrate import calibrate_judge, store_report
    from evalplatform.judges.suites import project_judges
    from evalplatform.project import find_project

    if not 1 <= args.k <= 20:
        raise InputError(None, "--k", "must be between 1 and 20")
    project = find_project()
    judges = _select(project_judges(project, args.suite), args.judge, args.suite)
    if not judges:
        raise InputError(None, "--suite", f"suite {args.suite!r} uses no judge scorer",
                         "add a scorer of type llm_judge or trained_judge")
    store = HistoryStore(project.history_path)
    refused = 0
    for _, judge in judges:
        report = calibrate_judge(judge, cache_dir=None if args.no_cache else project.cache_dir,
                                 self_consistency_k=args.k)
        store_report(store, report)
        refused += not report.allowed
        print(render_calibration(report))
        print()
    print(f"stored in {project.history_path}")
    return EXIT_BLOCKED if refused else EXIT_PASS


def _configure_judges(p: argparse.ArgumentParser) -> None:
    p.add_argument("--suite", help="only the judges of this suite")


@command("judges", "list judges with their last calibration and whether they may gate")(_configure_judges)
def cmd_judges(args: argparse.Namespace) -> int:
    from evalplatform.history import HistoryStore
    from evalplatform.judges.calibrate import gate_status
    from evalplatform.judges.suites import project_judges
    from evalplatform.project import find_project

    project = find_project()
    store = HistoryStore(project.history_path)
    judges = project_judges(project, args.suite)
    if not judges:
        print("no judge scorers in the project's suites")
        return EXIT_PASS
    print(f"{'suite':<10}{'scorer':<20}{'judge':<44}{'calibrated':<18}{'recall LB':>10}{'kappa LB':>10}  gate")
    for suite, judge in judges:
        st = gate_status(store, judge)
        cal = st.calibration or {}
        when = f"{cal['created_at']:%Y-%m-%d %H:%M}" if cal else "never"
        gate = "allowed" if st.allowed else f"{st.status.upper()}: {'; '.join(st.reasons)}"
        print(f"{suite:<10}{judge.id:<20}{judge.judge_name[:43]:<44}{when:<18}"
              f"{_fmt(cal.get('fail_recall_lb')):>10}{_fmt(cal.get('kappa_lb')):>10}  {gate}")
    return EXIT_PASS
