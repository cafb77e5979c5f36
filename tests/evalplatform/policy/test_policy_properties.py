"""Properties of the evaluator: more passing cases never hurt, errors never help, decisions are deterministic."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from evalplatform.policy import METRICS, evaluate_policy, evaluate_rule
from evalplatform.policy.units import Selected
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


# -- no metric is surer than its cases allow ---------------------------------------------------------

BOUNDED = {
    # metric: (rule lines, needs repeats >= k, one row per case)
    "pass_rate": ("metric: pass_rate", False, False),
    "scorer_pass_rate": ("metric: scorer_pass_rate\nselect: {scorer: s}", False, False),
    "error_rate": ("metric: error_rate", False, False),
    "mean_score": ("metric: mean_score\nselect: {scorer: s}", False, False),
    "pass_at_k": ("metric: pass_at_k\nk: 2", True, False),
    "pass_hat_k": ("metric: pass_hat_k\nk: 2", True, False),
    "judge_corrected_pass_rate": ("metric: judge_corrected_pass_rate\nselect: {scorer: s}\njudge: {counts: "
                                  "{judge_pass_on_human_pass: 95, m_human_pass: 100, judge_fail_on_human_fail: 90, "
                                  "m_human_fail: 100}}", False, True),
}


def _reference(method: str, estimate: float, n: int, conf: float) -> tuple[float, float]:
    """The rule's binomial bounds (Clopper-Pearson for clopper_pearson rules) at `estimate` on n units."""
    from evalplatform import stats

    lo, hi = stats.INTERVAL_METHODS[method]([min(1.0, max(0.0, estimate)) * n], n, 2 * conf - 1)
    return float(lo[0]), float(hi[0])


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(sorted(BOUNDED)), method, st.integers(2, 12), st.integers(1, 4),
       st.data(), st.sampled_from([0.9, 0.95, 0.99]))
def test_no_bound_is_tighter_than_the_exact_bound_on_the_cases(metric, m, n_cases, repeats, data, conf):
    lines, needs_k, single = BOUNDED[metric]
    repeats = 1 if single else max(repeats, 2) if needs_k else repeats
    outcomes = data.draw(st.lists(st.sampled_from(["pass", "fail", "error"] if metric == "error_rate"
                                                  else ["pass", "fail"]),
                                  min_size=n_cases * repeats, max_size=n_cases * repeats))
    # Whole cases agreeing is the case the clustered SE cannot see: make it likely.
    if data.draw(st.booleans()):
        outcomes = [outcomes[(i // repeats) * repeats] for i in range(len(outcomes))]
    parts = [{"run_id": "cand", "suite": "demo", "case_id": f"c{i // repeats:03d}", "repeat": i % repeats,
              "scorer": "s", "outcome": o, "score": {"pass": 1.0, "fail": 0.0, "error": None}[o], "tags": [],
              "case_hash": f"h{i // repeats}", "latency_ms": 1.0, "cost_usd": 0.0} for i, o in enumerate(outcomes)]
    kind = "max" if metric == "error_rate" else "min"
    rule = one_rule(f"{lines}\nbound: {{{kind}: 0.5}}\nmethod: {m}\nconfidence: {conf}").rules[0]
    result = evaluate_rule(rule, frame(parts))
    if result.outcome in ("ERROR", "NO_DATA"):
        return
    num = result.numbers
    lo, hi = _reference(m, num["estimate"], num["n"], conf)
    assert num["lower"] <= lo + 1e-9, (metric, num)
    assert num["upper"] >= hi - 1e-9, (metric, num)


def test_five_all_pass_cases_in_three_repeats_do_not_prove_pass_at_3_of_0999():
    """The issue's example: pass_rate says INCONCLUSIVE [0.649, 1.000]; pass@3 said PASS with [1.000, 1.000]."""
    df = frame(*[rows(5, 0, repeat=r) for r in range(3)])
    for metric in ("pass_at_k\nk: 3", "pass_hat_k\nk: 3", "mean_score\nselect: {scorer: s}"):
        r = evaluate_rule(one_rule(f"metric: {metric}\nbound: {{min: 0.999}}").rules[0], df)
        assert r.outcome == "INCONCLUSIVE" and r.numbers["lower"] < 0.7, (metric, r.numbers)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["pass_rate", "mean_score\nselect: {scorer: s}", "pass_at_k\nk: 2", "pass_hat_k\nk: 2"]),
       st.integers(2, 10), st.integers(2, 3), st.data())
def test_no_baseline_comparison_is_tighter_than_tango_on_the_cases(metric, n_cases, repeats, data):
    """Relative bounds on per-case means (repeats, scores) are never narrower than the paired binary
    interval at the same discordance: a paired bootstrap collapses to a point when every case agrees."""
    from evalplatform import stats

    def side(run_id: str) -> list[dict]:
        outcomes = data.draw(st.lists(st.sampled_from(["pass", "fail"]), min_size=n_cases * repeats,
                                      max_size=n_cases * repeats))
        if data.draw(st.booleans()):
            outcomes = ["pass"] * len(outcomes)
        return [{"run_id": run_id, "suite": "demo", "case_id": f"c{i // repeats:03d}", "repeat": i % repeats,
                 "scorer": "s", "outcome": o, "score": float(o == "pass"), "tags": [],
                 "case_hash": f"h{i // repeats}"} for i, o in enumerate(outcomes)]

    rule = one_rule(f"metric: {metric}\nbound: {{max_drop: 0.05}}").rules[0]
    cand, base = frame(side("cand")), frame(side("base"))
    result = evaluate_rule(rule, cand, base)
    if result.outcome == "ERROR":
        return
    per = METRICS[rule.metric].per_case
    diffs = (per(Selected(cand), rule)["value"] - per(Selected(base), rule)["value"]).to_numpy()
    lo, hi = stats.paired_diff_ci_tango_envelope(diffs, conf=2 * rule.confidence - 1)
    assert result.numbers["lower"] <= lo + 1e-9 and result.numbers["upper"] >= hi - 1e-9, result.numbers


def test_five_all_pass_cases_on_both_sides_do_not_prove_no_regression():
    df = frame(*[rows(5, 0, repeat=r) for r in range(3)])
    for metric in ("pass_at_k\nk: 3", "pass_hat_k\nk: 3", "mean_score\nselect: {scorer: s}", "pass_rate"):
        r = evaluate_rule(one_rule(f"metric: {metric}\nbound: {{max_drop: 0.05}}").rules[0], df, df)
        assert r.outcome == "INCONCLUSIVE" and r.numbers["lower"] < -0.3, (metric, r.numbers)


@FAST
@given(st.lists(st.sampled_from([-1.0, 0.0, 1.0]), min_size=1, max_size=60))
def test_the_tango_envelope_of_binary_pairs_is_the_tango_interval(diffs):
    from evalplatform import stats

    b, c = diffs.count(1.0), diffs.count(-1.0)
    assert stats.paired_diff_ci_tango_envelope(diffs, 0.9) == stats.paired_diff_ci_tango(b, c, len(diffs), 0.9)
