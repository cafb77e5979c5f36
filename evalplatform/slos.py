"""A suite's pipeline SLOs from its run history: PR-tier wall time P95, success rate, throughput, judge cost, freshness.

Over the suite's latest runs (`pipeline_slos.runs` in suite.yaml): wall time is a run's start to its decision;
a run succeeded when it reached a decision (failed and abandoned runs, including those the run-failure sensor
records for Dagster runs that died, count against it; runs still going do not count yet); throughput is the
cases scored per minute of run wall time; judge cost is the mean per run of the judges' cost; freshness is the
P95 time from a production trace being flagged to its case entering the regression set (evalplatform.monitoring).
Each SLO is OK, BREACH, NO_DATA (nothing to measure yet) or REPORTED (measured, no target set).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import polars as pl

if TYPE_CHECKING:
    from evalplatform.history import HistoryStore
    from evalplatform.suite import LoadedSuite

STATUSES = ("OK", "BREACH", "NO_DATA", "REPORTED")
SLO_IDS = ("pr_wall_time_p95", "success_rate", "throughput", "judge_cost_per_run", "freshness_p95")


@dataclass
class SLOResult:
    slo_id: str
    status: str
    value: float | None
    target: str
    unit: str
    n: int
    description: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _p95(values: list[float]) -> float | None:
    """The P95 as the smallest value at or above 95% of them (no interpolation: an observed run's time)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def _durations(runs: pl.DataFrame) -> list[float]:
    done = runs.filter(pl.col("finished_at").is_not_null() & pl.col("started_at").is_not_null())
    return [max(0.0, (f - s).total_seconds()) for s, f in zip(done["started_at"], done["finished_at"])]


def _status(value: float | None, limit: float | None, higher_is_better: bool) -> str:
    if value is None:
        return "NO_DATA"
    if limit is None:
        return "REPORTED"
    ok = value >= limit if higher_is_better else value <= limit
    return "OK" if ok else "BREACH"


def pipeline_slos(store: "HistoryStore", suite: "LoadedSuite") -> list[SLOResult]:
    """Every pipeline SLO of the suite, measured on its history now."""
    from evalplatform.history.monitoring import MonitoringStore
    from evalplatform.monitoring import freshness

    cfg = suite.spec.pipeline_slos
    last = cfg.runs
    runs = store.list_runs(suite.name, limit=last, status=("complete", "failed", "abandoned"))
    complete = runs.filter(pl.col("status") == "complete")
    pr = store.list_runs(suite.name, limit=10 * last, status="complete").filter(pl.col("tier") == "pr").head(last)
    out = []

    walls = _durations(pr)
    p95 = _p95(walls)
    out.append(SLOResult("pr_wall_time_p95", _status(p95, cfg.pr_wall_p95_s, False), p95,
                         f"<= {cfg.pr_wall_p95_s:g} s", "s", len(walls),
                         f"PR-tier wall time (start to decision), P95 of the latest {len(walls)} PR run(s)"
                         if walls else "no complete PR-tier run yet"))

    decided = complete.filter(pl.col("decision").is_not_null()).height
    rate = decided / runs.height if runs.height else None
    failed = runs.height - decided
    out.append(SLOResult("success_rate", _status(rate, cfg.min_success_rate, True), rate,
                         f">= {cfg.min_success_rate:g}", "share", runs.height,
                         f"{decided} of the latest {runs.height} finished run(s) reached a decision ({failed} failed "
                         "or abandoned)" if runs.height else "no finished run yet"))

    secs = _durations(complete)
    cases = int(complete.filter(pl.col("finished_at").is_not_null())["n_cases"].fill_null(0).sum()) if secs else 0
    throughput = cases / (sum(secs) / 60) if secs and sum(secs) > 0 else None
    out.append(SLOResult("throughput", _status(throughput, cfg.min_cases_per_minute, True), throughput,
                         f">= {cfg.min_cases_per_minute:g}" if cfg.min_cases_per_minute is not None else "none set",
                         "cases/min", len(secs),
                         f"{cases} cases in {sum(secs) / 60:.1f} min of run wall time over {len(secs)} run(s)"
                         if throughput is not None else "no complete run yet"))

    priced = complete.filter(pl.col("judge_cost_usd").is_not_null())
    cost = float(priced["judge_cost_usd"].mean()) if priced.height else None
    out.append(SLOResult("judge_cost_per_run", _status(cost, cfg.max_judge_cost_per_run_usd, False), cost,
                         f"<= {cfg.max_judge_cost_per_run_usd:g}" if cfg.max_judge_cost_per_run_usd is not None
                         else "none set", "USD", priced.height,
                         f"mean judge cost of the latest {priced.height} complete run(s) (latest "
                         f"${float(priced['judge_cost_usd'][0]):.4f}, {int(priced['judge_calls'][0] or 0)} judge "
                         "calls)" if priced.height else "no complete run with judge usage recorded yet"))

    fresh = freshness(MonitoringStore(store), suite.name)
    hours = fresh["p95_s"] / 3600 if fresh["p95_s"] is not None else None
    out.append(SLOResult("freshness_p95", _status(hours, cfg.max_freshness_p95_h, False), hours,
                         f"<= {cfg.max_freshness_p95_h:g} h", "h", fresh["n"],
                         f"flag-to-regression-case time, P95 over {fresh['n']} promoted production failure(s)"
                         if fresh["n"] else "no production failure promoted into the regression set yet"))
    return out
