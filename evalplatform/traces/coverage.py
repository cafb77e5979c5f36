"""Failure taxonomy coverage: reviewed production failures per category against regression cases per category.

A category seen in production with no regression case is a gap (WARN); one with fewer cases than the
policy's `coverage.min_cases_per_category` is thin (its severity is configurable).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from evalplatform.history import HistoryStore
from evalplatform.history.monitoring import MonitoringStore
from evalplatform.traces.pipeline import TraceSetup


def regression_categories(setup: TraceSetup) -> Counter:
    """Regression cases per failure category (`failure_category`, else a `failure:NAME` tag)."""
    from evalplatform.case_sets import select
    from evalplatform.runner import load_dataset

    cases = select(load_dataset(setup.suite).cases, "regression")
    counts: Counter = Counter()
    has_field = "failure_category" in cases.columns
    for row in cases.iter_rows(named=True):
        cat = row.get("failure_category") if has_field else None
        if not cat:
            cat = next((t.split(":", 1)[1] for t in row.get("tags") or [] if t.startswith("failure:")), None)
        if cat:
            counts[cat] += 1
    return counts


def coverage_audit(setup: TraceSetup, store: HistoryStore) -> dict[str, Any]:
    """Per category: reviewed failures, regression cases, status (ok / no_cases / below_minimum)."""
    mstore = MonitoringStore(store)
    seen = {r["category"] or "(uncategorised)": int(r["n"]) for r in mstore.reviewed_failures(setup.name)}
    cases = regression_categories(setup)
    minimum = setup.monitors.coverage.min_cases_per_category
    rows = []
    for cat in sorted(set(seen) | set(cases)):
        n_cases = cases.get(cat, 0)
        n_seen = seen.get(cat, 0)
        status = "ok"
        if n_seen and n_cases == 0:
            status = "no_cases"
        elif n_seen and n_cases < minimum:
            status = "below_minimum"
        rows.append({"category": cat, "reviewed_failures": n_seen, "regression_cases": n_cases, "status": status})
    gaps = [r for r in rows if r["status"] == "no_cases"]
    thin = [r for r in rows if r["status"] == "below_minimum"]
    severity = "ERROR" if thin and setup.monitors.coverage.severity == "error" else "WARN"
    parts = []
    if gaps:
        parts.append("no regression case for " + ", ".join(f"{r['category']} ({r['reviewed_failures']} reviewed "
                                                            "failure(s))" for r in gaps))
    if thin:
        parts.append(f"fewer than {minimum} case(s) for " + ", ".join(
            f"{r['category']} ({r['regression_cases']})" for r in thin))
    return {"rows": rows, "passed": not gaps and not thin, "severity": severity,
            "description": "; ".join(parts) or (f"every category seen in review has at least {minimum} regression "
                                                "case(s)" if seen else "no reviewed failures yet")}
