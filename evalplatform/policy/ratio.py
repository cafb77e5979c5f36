"""Relative latency and cost rules: a bootstrap interval over cases for candidate / baseline, not a point ratio.

p95_latency_ms and cost_per_case are whole-run statistics of per-call values. Each run is resampled by
case (a case's repeats stay together: they are not independent), the statistic is recomputed, and the
interval of the ratio of the two decides: PASS when its upper end is within 1 + max_increase, FAIL
when its lower end is above it, INCONCLUSIVE between.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from evalplatform import results as rt
from evalplatform.policy.units import Missing, Selected

COLUMNS = {"p95_latency_ms": "latency_ms", "cost_per_case": "cost_usd"}
MIN_CASES = 2
_CHUNK_CELLS = 2_000_000


def _values(sel: Selected, column: str) -> tuple[np.ndarray, np.ndarray, int]:
    """Per-call values sorted ascending, the case index of each, and the number of cases."""
    calls = rt.call_rows(sel.rows).select("case_id", column).drop_nulls()
    if calls.height == 0:
        raise Missing(f"no selected model call records {column}")
    calls = calls.with_columns(pl.col("case_id").rank("dense").cast(pl.Int64).alias("_case") - 1).sort(column)
    return calls[column].to_numpy().astype(float), calls["_case"].to_numpy(), int(calls["_case"].max()) + 1


def _statistic(values: np.ndarray, weights: np.ndarray, metric: str) -> np.ndarray:
    """Per replicate (row of `weights`: how often each value was drawn): the p95 (linear) or the mean."""
    total = weights.sum(axis=1)
    if metric == "cost_per_case":
        return weights @ values / total
    # The linear-interpolated 95th percentile of the resampled multiset, as polars computes the estimate.
    h = (total - 1) * 0.95
    lo, hi = np.floor(h), np.ceil(h)
    cum = weights.cumsum(axis=1)
    at_lo = values[(cum <= lo[:, None]).sum(axis=1)]
    at_hi = values[(cum <= hi[:, None]).sum(axis=1)]
    return at_lo + (h - lo) * (at_hi - at_lo)


def _replicates(values: np.ndarray, cases: np.ndarray, n_cases: int, metric: str, n_boot: int,
                rng: np.random.Generator) -> np.ndarray:
    out = np.empty(n_boot)
    rows = max(1, _CHUNK_CELLS // max(values.size, n_cases))
    for start in range(0, n_boot, rows):
        stop = min(n_boot, start + rows)
        draws = rng.integers(0, n_cases, size=(stop - start, n_cases))
        counts = np.zeros((stop - start, n_cases))
        np.add.at(counts, (np.arange(stop - start)[:, None], draws), 1.0)
        out[start:stop] = _statistic(values, counts[:, cases], metric)
    return out


def ratio_interval(metric: str, cand: Selected, base: Selected, *, conf: float, n_boot: int,
                   seed: int = 0) -> dict:
    """Bootstrap percentile interval (two-sided at `conf`) of metric(candidate) / metric(baseline)."""
    column = COLUMNS[metric]
    cv, cc, cn = _values(cand, column)
    try:
        bv, bc, bn = _values(base, column)
    except Missing as exc:
        raise Missing(f"baseline: {exc}") from None
    rng = np.random.default_rng(seed)
    c_rep = _replicates(cv, cc, cn, metric, n_boot, rng)
    b_rep = _replicates(bv, bc, bn, metric, n_boot, rng)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.where(b_rep > 0, c_rep / np.where(b_rep > 0, b_rep, 1.0), np.inf)
    tail = (1 - conf) / 2
    lower, upper = np.quantile(ratios, [tail, 1 - tail])
    return {"ratio_lower": float(lower), "ratio_upper": float(upper), "n_cases": cn, "n_cases_baseline": bn,
            "n_boot": n_boot, "seed": seed}


def with_interval(rule: Any, cand: Selected, base: Selected, numbers: dict) -> dict:
    """A ratio rule's point comparison (baseline._ratio) decided on the interval instead: bounds in the
    metric's unit (the ratio's bounds times the baseline's value) next to the limit, and the verdict."""
    if numbers.get("n_without_baseline"):
        # The interval on the cases the point comparison used: those the baseline ran (partial_baseline: shared).
        cand = Selected(cand.rows.filter(pl.col("case_id").is_in(base.rows["case_id"].unique().to_list())))
    ci = ratio_interval(rule.metric, cand, base, conf=2 * rule.confidence - 1, n_boot=rule.baseline_n_boot, seed=0)
    base_value = numbers["baseline_estimate"]
    return {**numbers, **ci, "ratio": numbers["estimate"] / base_value,
            "lower": ci["ratio_lower"] * base_value, "upper": ci["ratio_upper"] * base_value,
            "method": "bootstrap over cases of candidate / baseline vs 1 + max_increase",
            "verdict": verdict(ci, 1 + numbers["margin"])}


def verdict(ci: dict, limit_ratio: float) -> str:
    if min(ci["n_cases"], ci["n_cases_baseline"]) < MIN_CASES:
        return "INCONCLUSIVE"
    if ci["ratio_upper"] <= limit_ratio:
        return "PASS"
    if ci["ratio_lower"] > limit_ratio:
        return "FAIL"
    return "INCONCLUSIVE"


def reason(numbers: dict) -> str:
    """The rule's one-line reason: the ratio, its interval, and the limit."""
    limit = 1 + numbers["margin"]
    text = (f"candidate / baseline {numbers['ratio']:.3f} [{numbers['ratio_lower']:.3f}, {numbers['ratio_upper']:.3f}] "
            f"({numbers['estimate']:.4g} vs {numbers['baseline_estimate']:.4g}), limit {limit:.3g}")
    if min(numbers["n_cases"], numbers["n_cases_baseline"]) < MIN_CASES:
        return text + f": fewer than {MIN_CASES} cases on a side, no interval to decide on"
    if verdict(numbers, limit) == "INCONCLUSIVE":
        return text + ": the interval straddles the limit, more cases needed"
    return text
