"""Relative rules against a baseline: alignment by id and content hash, paired non-inferiority, bootstrap, ratios."""

from __future__ import annotations

import polars as pl
import pytest

from evalplatform import stats
from evalplatform.policy import evaluate_policy, evaluate_rule
from tests.evalplatform.policy.builders import frame, one_rule, policy, rows

DROP = one_rule("metric: pass_rate\nbound: {max_drop: 0.05}")


def _pattern(n: int, pass_every: list[bool]) -> list[dict]:
    out = []
    for i in range(n):
        out += rows(1, 0, start=i) if pass_every[i] else rows(0, 1, start=i)
    return out


def test_identical_runs_never_block():
    df = frame(rows(360, 40))
    r = evaluate_rule(DROP.rules[0], df, df)
    assert r.outcome == "PASS" and not r.blocks
    assert (r.numbers["n_paired"], r.numbers["b_improved"], r.numbers["c_regressed"]) == (400, 0, 0)
    assert r.numbers["mcnemar_midp"] == 1.0


def test_a_ten_point_regression_over_400_cases_is_detected():
    base = frame(rows(360, 40))  # 90%
    cand_pass = [True] * 400
    for i in range(400):
        cand_pass[i] = i < 320  # 80%: the first 320 pass, 40 former passes now fail
    cand = frame(_pattern(400, cand_pass))
    r = evaluate_rule(DROP.rules[0], cand, base)
    assert r.outcome == "FAIL" and r.blocks
    assert (r.numbers["b_improved"], r.numbers["c_regressed"]) == (0, 40)
    assert r.numbers["estimate"] == pytest.approx(-0.10)
    assert r.numbers["upper"] < -0.05
    assert r.numbers["mcnemar_midp"] < 1e-6
    gate = stats.regression_gate_paired(0, 40, 400, 0.05, 0.05)
    assert [r.numbers["lower"], r.numbers["upper"]] == pytest.approx(gate["ci"])


def test_renamed_cases_align_by_hash_and_changed_content_is_left_out():
    base = frame(rows(100, 0))
    cand_rows = rows(100, 0)
    for row in cand_rows[:10]:  # renamed: new id, same content
        row["case_id"] = "renamed-" + row["case_id"]
    for row in cand_rows[10:15]:  # same id, changed content, now failing
        row["case_hash"] = "edited"
        row["outcome"], row["score"] = "fail", 0.0
    cand_rows += rows(7, 0, prefix="new")  # added
    cand = frame(cand_rows[:-7 - 3] + cand_rows[-7:])  # and 3 removed (the last three of the originals)
    r = evaluate_rule(DROP.rules[0], cand, base)
    n = r.numbers
    assert (n["n_renamed"], n["n_content_changed"], n["n_added"], n["n_removed"]) == (10, 5, 7, 3)
    assert n["n_paired"] == 100 - 5 - 3
    assert n["c_regressed"] == 0  # the edited cases failing is not a regression: they are different cases
    assert "10 renamed" in r.reason and "5 changed" in r.reason


def test_files_without_hashes_align_by_id_only():
    base = frame(rows(50, 0)).with_columns(pl.lit(None, dtype=pl.Utf8).alias("case_hash"))
    cand = frame(rows(50, 0)).with_columns(pl.lit(None, dtype=pl.Utf8).alias("case_hash"))
    r = evaluate_rule(DROP.rules[0], cand, base)
    assert r.numbers["n_paired"] == 50 and r.numbers["n_without_hash"] == 50


def test_repeats_use_the_paired_bootstrap_on_per_case_means():
    base = frame(*[rows(90, 10, repeat=k) for k in range(3)])
    cand = frame(*[rows(60, 40, repeat=k) for k in range(3)])
    r = evaluate_rule(DROP.rules[0], cand, base)
    assert r.numbers["method"].startswith("paired bootstrap")
    assert r.outcome == "FAIL" and r.numbers["estimate"] == pytest.approx(-0.30)
    same = evaluate_rule(DROP.rules[0], base, base)
    assert same.outcome == "PASS"


def test_mean_score_drop_uses_the_bootstrap():
    rule = one_rule("select: {scorer: s}\nmetric: mean_score\nbound: {max_drop: 0.02}").rules[0]
    base = frame(rows(300, 0))
    cand = frame(rows(300, 0)).with_columns(pl.col("score") * 0.9)
    r = evaluate_rule(rule, cand, base)
    assert r.outcome == "FAIL" and r.numbers["estimate"] == pytest.approx(-0.1)


def test_error_rate_increase_is_paired_too():
    rule = one_rule("metric: error_rate\nbound: {max_increase: 0.02}").rules[0]
    base = frame(rows(400, 0))
    assert evaluate_rule(rule, base, base).outcome == "PASS"
    worse = frame(rows(340, 0), rows(0, 0, 60, start=340))
    r = evaluate_rule(rule, worse, base)
    assert r.outcome == "FAIL" and r.numbers["c_regressed"] == 60


def test_relative_bound_on_a_zero_baseline_is_an_error_not_a_division():
    rule = one_rule("metric: cost_per_case\nbound: {max_increase: 0.2}").rules[0]
    base = frame(rows(50, 0)).with_columns(pl.lit(0.0).alias("cost_usd"))
    r = evaluate_rule(rule, frame(rows(50, 0)), base)
    assert r.outcome == "ERROR" and r.blocks and "zero baseline" in r.reason


def test_latency_increase_relative_to_baseline():
    rule = one_rule("metric: p95_latency_ms\nbound: {max_increase: 0.2}").rules[0]
    base = frame(rows(100, 0))
    slow = frame(rows(100, 0)).with_columns(pl.col("latency_ms") * 1.5)
    assert evaluate_rule(rule, base, base).outcome == "PASS"
    assert evaluate_rule(rule, slow, base).outcome == "FAIL"


def test_missing_baseline_follows_on_missing():
    assert evaluate_rule(DROP.rules[0], frame(rows(10, 0)), None).outcome == "ERROR"
    lenient = one_rule("metric: pass_rate\nbound: {max_drop: 0.05}\non_missing: no_data\nno_data: pass").rules[0]
    r = evaluate_rule(lenient, frame(rows(10, 0)), None)
    assert r.outcome == "NO_DATA" and not r.blocks


def test_corrupt_baseline_rows_are_an_error():
    base = frame(rows(20, 0))
    corrupt = pl.concat([base, base.head(2)])
    r = evaluate_rule(DROP.rules[0], frame(rows(20, 0)), corrupt)
    assert r.outcome == "ERROR" and r.reason.startswith("baseline:") and "duplicate" in r.reason
    nocol = base.drop("case_id")
    assert "missing column" in evaluate_rule(DROP.rules[0], frame(rows(20, 0)), nocol).reason


def test_a_baseline_with_nothing_in_common_is_an_error_even_with_on_missing_no_data():
    lenient = one_rule("metric: pass_rate\nbound: {max_drop: 0.05}\non_missing: no_data\nno_data: pass").rules[0]
    r = evaluate_rule(lenient, frame(rows(20, 0, prefix="x")), frame(rows(20, 0, prefix="y")))
    assert r.outcome == "ERROR" and "rerun the baseline" in r.reason


def test_renamed_tests_without_hashes_do_not_silently_pass():
    # A JUnit-style import renames every test: nothing aligns, so the rule cannot pass.
    base = frame(rows(30, 0)).with_columns(pl.lit(None, dtype=pl.Utf8).alias("case_hash"))
    cand = base.with_columns(("test_" + pl.col("case_id")).alias("case_id"))
    p = policy("rules:\n  - {id: reg, metric: pass_rate, bound: {max_drop: 0.05}}\n")
    d = evaluate_policy(p, cand, base)
    assert d.overall == "BLOCK" and d.rules[0].outcome == "ERROR"


def test_a_slice_of_a_larger_baseline_is_not_told_to_rerun_the_baseline():
    # A PR tier runs a slice of the cases a nightly (or pooled) baseline ran: the cases it did not run were
    # not removed from the suite, so they are no reason to rerun the baseline.
    base = frame(rows(300, 0))
    cand = frame(rows(60, 0))
    r = evaluate_rule(DROP.rules[0], cand, base)
    assert r.numbers["n_removed"] == 240 and not r.numbers["rerun_baseline_advised"]
    assert "rerun the baseline" not in r.reason
    # Changed content among the cases both ran still is.
    edited = rows(60, 0)
    for row in edited[:10]:
        row["case_hash"] = "edited"
    r = evaluate_rule(DROP.rules[0], frame(edited), base)
    assert r.numbers["rerun_baseline_advised"] and "rerun the baseline" in r.reason


def test_a_baseline_covering_fewer_cases_is_said_and_the_comparison_uses_the_shared_ones():
    base = frame(rows(100, 0))
    cand = frame(rows(100, 0), rows(40, 0, prefix="new"))
    r = evaluate_rule(DROP.rules[0], cand, base)
    assert r.outcome == "PASS" and r.numbers["n_paired"] == 100 and r.numbers["n_without_baseline"] == 40
    assert "the baseline ran 100 of the candidate's 140 cases: compared on those only (40 left out)" in r.reason


def test_partial_baseline_refuse_makes_the_rule_error():
    rule = one_rule("metric: pass_rate\nbound: {max_drop: 0.05}\npartial_baseline: refuse").rules[0]
    base = frame(rows(100, 0))
    r = evaluate_rule(rule, frame(rows(100, 0), rows(40, 0, prefix="new")), base)
    assert r.outcome == "ERROR" and r.blocks
    assert "the baseline ran 100 of the candidate's 140 cases (partial_baseline: refuse)" in r.reason
    assert evaluate_rule(rule, frame(rows(100, 0)), base).outcome == "PASS"  # full coverage: compared as usual


def test_partial_baseline_on_a_ratio_rule_compares_the_shared_cases():
    slow = [dict(r, latency_ms=5000.0) for r in rows(40, 0, prefix="new")]
    base, cand = frame(rows(100, 0)), frame(rows(100, 0), slow)
    shared = one_rule("metric: p95_latency_ms\nbound: {max_increase: 0.2}").rules[0]
    r = evaluate_rule(shared, cand, base)
    assert r.outcome == "PASS" and r.numbers["n_without_baseline"] == 40 and "40 left out" in r.reason
    refuse = one_rule("metric: p95_latency_ms\nbound: {max_increase: 0.2}\npartial_baseline: refuse").rules[0]
    assert evaluate_rule(refuse, cand, base).outcome == "ERROR"


def test_partial_baseline_on_an_absolute_rule_is_refused_at_load():
    from evalplatform.errors import InputError

    with pytest.raises(InputError, match="partial_baseline applies to bounds relative to a baseline"):
        one_rule("metric: pass_rate\nbound: {min: 0.8}\npartial_baseline: refuse")
