"""Properties of the evaluator: more passing cases never hurt, errors never help, decisions are deterministic."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from evalplatform.policy import evaluate_policy, evaluate_rule
from tests.evalplatform.policy.builders import frame, one_rule, policy, rows

RANK = {"FAIL": 0, "INCONCLUSIVE": 1, "PASS": 2}
counts = st.tuples(st.integers(0, 120), st.integers(0, 60), st.integers(0, 20))
threshold = st.sampled_from([0.5, 0.7, 0.8, 0.9, 0.95])
method = st.sampled_from(["wilson", "clopper_pearson"])
FAST = settings(max_examples=40, deadline=None)


def _rule(t: float, m: str, extra: str = ""):
    return one_rule(f"metric: pass_rate\nbound: {{min: {t}}}\nmethod: {m}\n{extra}").rules[0]


@FAST
@given(counts, st.integers(1, 80), threshold, method)
def test_adding_passing_cases_never_turns_pass_into_fail(c, extra, t, m):
    n_pass, n_fail, n_err = c
    if n_pass + n_fail + n_err == 0:
        return
    before = evaluate_rule(_rule(t, m), frame(rows(n_pass, n_fail, n_err)))
    after = evaluate_rule(_rule(t, m), frame(rows(n_pass, n_fail, n_err), rows(extra, prefix="more")))
    assert RANK[after.outcome] >= RANK[before.outcome]
    assert after.numbers["lower"] >= before.numbers["lower"] - 1e-12


@FAST
@given(counts, st.integers(1, 30), threshold, method)
def test_errors_never_raise_a_pass_rate(c, n_new_errors, t, m):
    n_pass, n_fail, n_err = c
    if n_pass + n_fail == 0:
        return
    base = evaluate_rule(_rule(t, m), frame(rows(n_pass, n_fail, n_err)))
    # New errored cases, and failing cases turned into errors.
    more = evaluate_rule(_rule(t, m), frame(rows(n_pass, n_fail, n_err), rows(0, 0, n_new_errors, prefix="e")))
    turned = evaluate_rule(_rule(t, m), frame(rows(n_pass, 0, n_err + n_fail)))
    for other in (more, turned):
        assert other.numbers["estimate"] <= base.numbers["estimate"] + 1e-12
        assert RANK[other.outcome] <= RANK[base.outcome]


@FAST
@given(counts, counts, st.integers(0, 3))
def test_decisions_are_deterministic(cand, base, seed_rows):
    p = policy("rules:\n"
               "  - {id: floor, metric: pass_rate, bound: {min: 0.7}}\n"
               "  - {id: err, metric: error_rate, bound: {max: 0.1}}\n"
               "  - {id: drop, metric: pass_rate, bound: {max_drop: 0.05}, on_missing: no_data}\n"
               "  - {id: score, metric: mean_score, select: {scorer: s}, bound: {max_drop: 0.05}, on_missing: no_data}\n")
    c = frame(*[rows(*cand, repeat=r) for r in range(1 + seed_rows % 2)]) if sum(cand) else frame(rows(1))
    b = frame(rows(*base)) if sum(base) else None
    first = evaluate_policy(p, c, b).to_dict()
    for _ in range(2):
        assert evaluate_policy(p, c, b).to_dict() == first
    assert first["overall"] in ("PASS", "BLOCK")
    if first["overall"] == "PASS":
        assert all(r["outcome"] in ("PASS", "NO_DATA", "INCONCLUSIVE") for r in first["rules"])
