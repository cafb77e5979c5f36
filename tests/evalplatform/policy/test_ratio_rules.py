"""Relative latency and cost rules decide on a bootstrap interval over cases, not on a point ratio."""

from __future__ import annotations

import random

import polars as pl
import pytest

from evalplatform.policy.evaluate import evaluate_rule
from tests.evalplatform.policy.builders import frame, one_rule, rows

LATENCY = one_rule("metric: p95_latency_ms\nbound: {max_increase: 0.2}").rules[0]
COST = one_rule("metric: cost_per_case\nbound: {max_increase: 0.2}").rules[0]


def _with(values: list[float], column: str, **kw) -> pl.DataFrame:
    return frame(rows(len(values), 0, **kw)).with_columns(pl.Series(column, values, dtype=pl.Float64))


def _noisy(n: int, scale: float, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [scale * rng.lognormvariate(0, 0.8) for _ in range(n)]


def test_a_point_p95_under_the_limit_on_a_few_noisy_cases_is_inconclusive_not_a_pass():
    values = _noisy(12, 500.0, 1)
    base = _with(values, "latency_ms")
    cand = _with([v * 1.1 for v in values], "latency_ms")  # 10% slower, under the 20% limit as a point
    r = evaluate_rule(LATENCY, cand, base)
    assert r.numbers["estimate"] <= r.numbers["threshold"]  # the point comparison alone would pass it
    assert r.outcome == "INCONCLUSIVE" and r.blocks
    assert r.numbers["ratio_lower"] < 1.2 < r.numbers["ratio_upper"]
    assert "straddles the limit" in r.reason


def test_a_clear_latency_regression_fails_and_no_change_passes_on_enough_cases():
    base = _with([100.0 + (i % 7) for i in range(200)], "latency_ms")
    slower = base.with_columns(pl.col("latency_ms") * 1.6)
    same = base.with_columns(pl.col("latency_ms") * 1.01)
    failed = evaluate_rule(LATENCY, slower, base)
    assert failed.outcome == "FAIL" and failed.numbers["ratio_lower"] > 1.2
    assert evaluate_rule(LATENCY, same, base).outcome == "PASS"


def test_the_interval_keeps_a_cases_repeats_together():
    # Two cases, each repeated 20 times: 40 calls but only two independent units.
    base = frame(*[rows(2, 0, repeat=r) for r in range(20)]).with_columns(pl.lit(0.001).alias("cost_usd"))
    cand = frame(*[rows(2, 0, repeat=r) for r in range(20)]).with_columns(
        pl.when(pl.col("case_id") == "c00000").then(0.002).otherwise(0.0005).alias("cost_usd"))
    r = evaluate_rule(COST, cand, base)
    assert r.numbers["n_cases"] == 2
    # Resampling two cases can draw the costly one twice or not at all: the interval spans [0.5, 2].
    assert r.numbers["ratio_lower"] == pytest.approx(0.5) and r.numbers["ratio_upper"] == pytest.approx(2.0)
    assert r.outcome == "INCONCLUSIVE"


def test_one_case_a_side_gives_no_interval_and_never_passes():
    r = evaluate_rule(COST, _with([0.001], "cost_usd"), _with([0.001], "cost_usd"))
    assert r.outcome == "INCONCLUSIVE" and "fewer than 2 cases" in r.reason


def test_the_interval_is_reproducible():
    base = _with(_noisy(40, 0.01, 3), "cost_usd")
    cand = _with(_noisy(40, 0.01, 4), "cost_usd")
    a, b = evaluate_rule(COST, cand, base), evaluate_rule(COST, cand, base)
    assert (a.numbers["ratio_lower"], a.numbers["ratio_upper"]) == (b.numbers["ratio_lower"], b.numbers["ratio_upper"])
