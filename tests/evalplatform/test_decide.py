"""Run decisions: the suite's policy (or its floor), stored judge calibrations, and the corrected pass rate."""

from __future__ import annotations

import polars as pl

from evalplatform import results as R
from evalplatform.decide import FLOOR_RULE, effective_policy, floor_policy
from evalplatform import stats
from evalplatform.policy import Policy, evaluate_policy
from evalplatform.suite import Gate, load_suite
from tests.suite_helpers import MINI


def _frame(n_pass: int, n_fail: int, n_error: int = 0) -> pl.DataFrame:
    outcomes = ["pass"] * n_pass + ["fail"] * n_fail + ["error"] * n_error
    return R.from_rows([{"run_id": "r", "case_id": f"c{i}", "repeat": 0, "scorer": "s", "outcome": o,
                         "score": None if o == "error" else float(o == "pass")} for i, o in enumerate(outcomes)])


def test_floor_policy_is_the_wilson_floor_with_errors_left_out():
    pol = floor_policy("x", Gate(pass_rate_floor=0.8, confidence=0.95))
    for n_pass, n_fail, n_error in [(95, 5, 0), (80, 20, 0), (9, 1, 0), (90, 5, 3), (50, 10, 20), (0, 0, 0)]:
        rule = evaluate_policy(pol, _frame(n_pass, n_fail, n_error)).rules[0]
        n, units = n_pass + n_fail, n_pass + n_fail + n_error
        passes = n > 0 and n_error / units <= 0.05 and stats.wilson_lower_bound(n_pass, n, 0.95) >= 0.8
        assert rule.rule_id == FLOOR_RULE
        assert rule.blocks == (not passes), (n_pass, n_fail, n_error, rule.outcome, rule.reason)


def test_suite_without_policy_file_uses_its_gate():
    eff = effective_policy(load_suite(MINI / "suite.yaml"))
    assert eff.source == "suite gate" and [r.id for r in eff.policy.rules] == [FLOOR_RULE]


def test_corrected_pass_rate_interval_is_not_a_point_at_the_boundary():
    pol = Policy.model_validate({"rules": [{
        "id": "corrected", "metric": "judge_corrected_pass_rate", "select": {"scorer": "s"},
        "judge": {"counts": {"judge_pass_on_human_pass": 96, "m_human_pass": 96,
                             "judge_fail_on_human_fail": 56, "m_human_fail": 64}},
        "bound": {"min": 0.9}}]})
    rule = evaluate_policy(pol, _frame(59, 0)).rules[0]
    lo, hi = rule.numbers["lower"], rule.numbers["upper"]
    assert lo < 0.95 and hi == 1.0  # calibration uncertainty keeps the bound honest
    assert rule.outcome != "PASS" or lo >= 0.9


def test_advisory_scorers_never_gate_unless_a_rule_names_them():
    rows = [{"run_id": "r", "case_id": f"c{i}", "repeat": 0, "scorer": s, "outcome": o}
            for i in range(100) for s, o in (("det", "pass"), ("weak_judge", "fail" if i % 2 else "pass"))]
    df = R.from_rows(rows)
    base = {"rules": [{"id": "floor", "metric": "pass_rate", "bound": {"min": 0.9}},
                      {"id": "judge_only", "metric": "pass_rate", "select": {"scorer": "weak_judge"},
                       "bound": {"min": 0.9}, "severity": "advisory"}]}
    strict = evaluate_policy(Policy.model_validate(base), df)
    assert strict.rules[0].outcome == "FAIL"  # the weak judge's fails count by default
    relaxed = evaluate_policy(Policy.model_validate({**base, "advisory_scorers": ["weak_judge"]}), df)
    assert relaxed.rules[0].outcome == "PASS"
    assert relaxed.rules[1].outcome == "FAIL"  # still reported where a rule asks for it


def test_suite_advisory_scorers_join_the_effective_policy():
    from pathlib import Path

    demo = load_suite(Path(__file__).resolve().parents[2] / "datasets" / "demo" / "suite.yaml")
    eff = effective_policy(demo)
    assert {"tone_judge_lenient", "grounded_judge"} <= set(eff.policy.advisory_scorers)
    floor = next(r for r in eff.policy.rules if r.id == FLOOR_RULE)
    assert "grounded_judge" in floor.select.excluded()
