"""A recorded run as the CLI shows it: the run summary with its decision of record, and the decision table."""

from __future__ import annotations

from typing import Any

from evalplatform.cli import output
from evalplatform.errors import EXIT_BLOCKED, EXIT_PASS, InfraError


def decision_rich(decision: Any) -> list:
    """The decision as a rich table (the plain `render_table`'s cells) and its verdict line."""
    from evalplatform.policy.report import _bounds, _mark, _num, _threshold, _verdict

    rows = [(r.rule_id, r.severity, _mark(r), _num(r.numbers.get("estimate")), _bounds(r), _threshold(r),
             _num(r.numbers.get("n")), r.reason) for r in decision.rules]
    table = output.table(["rule", "severity", "outcome", ("estimate", "right"), ("bounds", "right"),
                          ("threshold", "right"), ("n", "right"), "reason"], rows, wrap=["rule", "reason"])
    verdict = (f"decision: {_verdict(decision)}  (policy {decision.policy_name}, "
               f"sha256 {(decision.policy_hash or '?')[:12]})")
    notes = [w for w in decision.warnings if w.startswith("decision: ")]
    notes += [f"warning: {w}" for w in decision.warnings if w.startswith("plan: ")]
    return [table, output.text(verdict), *(output.text(n) for n in notes)]


def show_decision(decision: Any) -> None:
    from evalplatform.policy.report import render_table

    output.show(lambda: render_table(decision), lambda: decision_rich(decision))


def run_header(run: dict) -> str:
    """What tells two runs apart: id, suite, tier, model, repeats, when, status."""
    return (f"evalplatform run {run['run_id']}  suite={run['suite']} tier={run.get('tier')} "
            f"model={run.get('target_model')} repeats={run.get('repeats', 1)}  "
            f"started {output.timestamp(run.get('started_at'))}  {run.get('status')}")


def _summary_rich(run: dict, results: Any, decision: Any, history_path: str, ui_hint: str | None) -> list:
    from evalplatform.report import category_table, criterion_table, usage_lines

    def pct(x: float | None) -> str:
        return "-" if x is None else f"{100 * x:.1f}%"

    parts: list = [output.text(run_header(run)), output.text(
        f"dataset {(run.get('dataset_hash') or '')[:12]}  prompt {(run.get('prompt_hash') or '')[:12]}  "
        f"cases {run.get('n_cases')}  results {results.height}")]
    parts.append(output.table(
        ["criterion", ("pass rate", "right"), ("95% Wilson CI", "right"), ("n", "right"), ("errors", "right")],
        [(r["criterion"] or "(none)", pct(r["rate"]), f"[{pct(r['lower'])}, {pct(r['upper'])}]" if r["n"] else "-",
          r["n"], r["errors"]) for r in criterion_table(results)]))
    cats = category_table(results)
    if cats:
        parts.append(output.table(["category", ("pass", "right"), ("decided", "right"), ("errors", "right")],
                                  [(c["category"], c["k"], c["n"], c["errors"]) for c in cats]))
    parts += [output.text(line) for line in usage_lines(run, results, decision)]
    base = (decision.inputs or {}).get("baseline_run_id")
    parts.append(output.text(f"release policy ({decision.inputs.get('policy', decision.policy_name)}; "
                             f"baseline {base or 'none promoted yet'}):"))
    parts += decision_rich(decision)
    # Only an explicit PASS passes: a verdict this code does not know (e.g. NO_DATA) is not a pass.
    if decision.overall == "PASS":
        parts.append(output.text("RELEASE GATE PASSED"))
    elif decision.overall == "BLOCK":
        parts.append(output.text("RELEASE GATE BLOCKS this change"))
    else:
        parts.append(output.text(f"RELEASE GATE DID NOT PASS ({decision.overall})"))
    parts.append(output.text(f"history: {history_path}  (evalplatform history show {run['run_id']})"))
    if ui_hint:
        parts.append(output.text(ui_hint))
    return parts


def print_summary(project: Any, run_id: str, ui_hint: str | None, reports: dict | None = None) -> int:
    """Show the run with the decision it made when it ran; write the asked-for reports; exit 0 only on PASS."""
    from evalplatform.cli.reports import write_reports
    from evalplatform.history import HistoryStore
    from evalplatform.report import decision_from_record, render_summary

    store = HistoryStore(project.history_path)
    with store.shared_reads():
        record = store.get_run(run_id)
        # The decision the run made when it ran; a later `gate --run` never stands in for it.
        stored = store.decision_of_record(run_id) if record else None
        if record is None or stored is None:
            raise InfraError(f"{project.history_path}: run {run_id} or its decision is missing from the history")
        decision = decision_from_record(stored)
        results = store.get_results(run_id)
    output.show(lambda: render_summary(run=record, results=results, decision=decision,
                                       history_path=str(project.history_path), ui_hint=ui_hint),
                lambda: _summary_rich(record, results, decision, str(project.history_path), ui_hint))
    if reports is not None:
        write_reports(decision, markdown=reports.get("markdown"), junit=reports.get("junit"),
                      json_out=reports.get("json"), extra={"run_id": run_id, "decision_id": stored["decision_id"]})
    # Only an exact PASS exits 0: a new overall value (NO_DATA) must not slip through as success.
    return EXIT_PASS if decision.overall == "PASS" else EXIT_BLOCKED
