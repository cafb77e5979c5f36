"""The evaluator's numbers and outcomes: bounds not point estimates, clustering, and fail-closed handling."""

from __future__ import annotations

import time

import polars as pl
import pytest

from evalplatform import stats
from evalplatform.policy import JudgeCalibration, evaluate_policy, evaluate_rule, load_policy
from tests.evalplatform.policy.builders import REPO, frame, one_rule, policy, rows


def _only(p, results, baseline=None, **kw):
    return evaluate_rule(p.rules[0], results, baseline, **kw)


def test_pass_rate_gates_on_the_wilson_lower_bound_with_three_states():
    rule = "metric: pass_rate\nbound: {min: 0.9}"
    # stats.md section 1 worked example: T = 0.90, n = 200.
    for k, expected in ((190, "PASS"), (183, "INCONCLUSIVE"), (170, "FAIL")):
        r = _only(one_rule(rule), frame(rows(k, 200 - k)))
        assert r.outcome == expected, (k, r.reason)
        assert r.numbers["n"] == 200 and r.numbers["k"] == k
        assert r.numbers["lower"] == pytest.approx(stats.wilson_lower_bound(k, 200, 0.95))
        assert r.blocks == (expected != "PASS")


def test_clopper_pearson_is_selectable_and_stricter():
    df = frame(rows(59, 0))
    wilson = _only(one_rule("metric: pass_rate\nbound: {min: 0.95}"), df)
    cp = _only(one_rule("metric: pass_rate\nbound: {min: 0.95}\nmethod: clopper_pearson"), df)
    assert cp.numbers["lower"] == pytest.approx(0.05 ** (1 / 59))
    assert cp.numbers["lower"] < wilson.numbers["lower"]
    assert cp.numbers["method"] == "clopper_pearson"


def test_case_level_pass_needs_every_selected_scorer_to_pass():
    df = frame(rows(10, 0, scorer="a"), rows(5, 5, scorer="b"))
    r = _only(one_rule("metric: pass_rate\nbound: {min: 0.1}"), df)
    assert (r.numbers["n"], r.numbers["k"]) == (10, 5)
    only_a = _only(one_rule("select: {scorer: a}\nmetric: pass_rate\nbound: {min: 0.1}"), df)
    assert only_a.numbers["k"] == 10


def test_repeats_cluster_by_case_not_n_times_repeats():
    # 100 cases x 5 identical repeats: the evidence is 100 cases, not 500 runs.
    once = frame(rows(90, 10))
    five = frame(*[rows(90, 10, repeat=r) for r in range(5)])
    r1 = _only(one_rule("metric: pass_rate\nbound: {min: 0.8}"), once)
    r5 = _only(one_rule("metric: pass_rate\nbound: {min: 0.8}"), five)
    assert r5.numbers["n"] == 500 and r5.numbers["n_clusters"] == 100
    assert r5.numbers["n_eff"] == pytest.approx(100, rel=0.01)
    assert r5.numbers["lower"] == pytest.approx(r1.numbers["lower"], abs=1e-3)
    naive = stats.wilson_lower_bound(450, 500, 0.95)
    assert r5.numbers["lower"] < naive


def test_grouped_cases_cluster_by_tag():
    # 10 documents x 10 questions each, whole documents pass or fail together.
    parts = [rows(10, 0, prefix=f"d{d}q", tags=[f"doc:{d}"]) for d in range(8)]
    parts += [rows(0, 10, prefix=f"d{d}q", tags=[f"doc:{d}"]) for d in range(8, 10)]
    df = frame(*parts)
    by_case = _only(one_rule("metric: pass_rate\nbound: {min: 0.5}"), df)
    by_doc = _only(one_rule("metric: pass_rate\nbound: {min: 0.5}\ncluster: 'tag:doc'"), df)
    assert by_doc.numbers["n_clusters"] == 10
    assert by_doc.numbers["lower"] < by_case.numbers["lower"] - 0.1


def test_errors_count_as_not_passing_by_default_and_exclude_matches_the_floor_gate():
    df = frame(rows(180, 17, 3))
    default = _only(one_rule("metric: pass_rate\nbound: {min: 0.8}"), df)
    assert (default.numbers["n"], default.numbers["k"], default.numbers["n_error"]) == (200, 180, 3)
    excl = _only(one_rule("metric: pass_rate\nbound: {min: 0.8}\nerrors: exclude"), df)
    # Errors leave the denominator: 180 of 197 decided, judged on the one-sided Wilson bound.
    assert (excl.numbers["n"], excl.numbers["k"]) == (197, 180)
    assert excl.numbers["lower"] == pytest.approx(stats.wilson_lower_bound(180, 197, 0.95))
    assert excl.outcome == ("PASS" if stats.wilson_lower_bound(180, 197, 0.95) >= 0.8 else "INCONCLUSIVE")
    too_many = frame(rows(180, 5, 15))
    r = _only(one_rule("metric: pass_rate\nbound: {min: 0.8}\nerrors: exclude"), too_many)
    assert r.outcome == "ERROR"
    assert "never count as passes" in r.reason


def test_demo_policy_floor_rule_equals_the_suite_gate():
    from evalplatform.decide import floor_policy
    from evalplatform.suite import Gate

    demo = load_policy(REPO / "datasets" / "demo" / "policy.yaml").policy
    floor_rule = next(r for r in demo.rules if r.id == "pass_rate_at_least_floor")
    gate_rule = floor_policy("demo", Gate(pass_rate_floor=0.80, confidence=0.95)).rules[0]
    for df in (frame(rows(170, 28, 2)), frame(rows(150, 50)), frame(rows(165, 35)), frame(rows(100, 0, 20))):
        ours, spine = evaluate_rule(floor_rule, df), evaluate_rule(gate_rule, df)
        assert (ours.outcome, ours.numbers.get("lower")) == (spine.outcome, spine.numbers.get("lower"))


def test_demo_policy_first_run_does_not_block_on_missing_baseline():
    demo = load_policy(REPO / "datasets" / "demo" / "policy.yaml").policy
    df = frame(rows(190, 0, tags=["category:grounding", "source:golden"]),
               rows(40, 0, tags=["category:pii", "source:golden"], prefix="p"),
               rows(30, 0, tags=["category:dates", "source:regression"], prefix="g"),
               rows(20, 0, tags=["category:arithmetic", "source:golden"], prefix="a"))
    d = evaluate_policy(demo, df, None)
    by_id = {r.rule_id: r for r in d.rules}
    assert by_id["no_regression_vs_baseline"].outcome == "NO_DATA"
    assert not by_id["no_regression_vs_baseline"].blocks
    # These rows carry no judge verdicts: the blocking judge-corrected rule fails closed, nothing else blocks.
    assert {r.rule_id for r in d.rules if r.blocks} == {"tone_trained_corrected_pass_rate"}
    assert by_id["tone_trained_corrected_pass_rate"].outcome in ("ERROR", "NO_DATA")
    without_judges = demo.model_copy(update={"rules": [r for r in demo.rules
                                                       if r.metric != "judge_corrected_pass_rate"]})
    d = evaluate_policy(without_judges, df, None)
    assert d.overall == "PASS", [(r.rule_id, r.outcome, r.reason) for r in d.rules]
    assert {r.rule_id for r in d.rules} >= {"pass_rate_at_least_floor", "safety_pass_rate", "error_rate_at_most_5pct",
                                            "regression_set_pass_rate", "p95_latency_advisory"}


def test_selection_by_tags_source_criterion_and_pattern():
    df = frame(rows(5, 0, tags=["category:pii", "source:golden"], prefix="pii-"),
               rows(0, 5, tags=["category:refusal", "source:regression"], prefix="ref-"),
               rows(3, 0, tags=["category:math", "source:trace"], prefix="m-", criterion="accuracy"))
    n = lambda sel: _only(one_rule(f"select: {sel}\nmetric: pass_rate\nbound: {{min: 0}}"), df).numbers["n"]  # noqa
    assert n("{tags: {any: ['category:pii', 'category:refusal']}}") == 10
    assert n("{tags: {all: ['category:pii', 'source:golden']}}") == 5
    assert n("{source: regression}") == 5
    assert n("{source: [golden, trace]}") == 8
    assert n("{criterion: accuracy}") == 3
    assert n("{case_id_pattern: '^ref-0000[0-2]$'}") == 3


def test_error_rate_gates_on_its_upper_bound():
    assert _only(one_rule("metric: error_rate\nbound: {max: 0.05}"), frame(rows(400, 0, 2))).outcome == "PASS"
    assert _only(one_rule("metric: error_rate\nbound: {max: 0.05}"), frame(rows(300, 0, 100))).outcome == "FAIL"
    r = _only(one_rule("metric: error_rate\nbound: {max: 0.05}"), frame(rows(40, 0, 1)))
    assert r.outcome == "INCONCLUSIVE" and r.blocks
    r = _only(one_rule("metric: error_rate\nbound: {max: 0.05}\ninconclusive: pass"), frame(rows(40, 0, 1)))
    assert r.outcome == "INCONCLUSIVE" and not r.blocks


def test_mean_score_and_scorer_pass_rate():
    df = frame(rows(80, 20, scorer="judge"), rows(100, 0, scorer="det"))
    ms = _only(one_rule("select: {scorer: judge}\nmetric: mean_score\nbound: {min: 0.7}"), df)
    assert ms.numbers["estimate"] == pytest.approx(0.8)
    # Singleton clusters: the CR0 SE is the ddof=0 SE of stats.se_clustered.
    assert ms.numbers["se_clustered"] == pytest.approx(stats.se_clustered([1.0] * 80 + [0.0] * 20, list(range(100))))
    assert ms.outcome == "PASS"
    sp = _only(one_rule("select: {scorer: det}\nmetric: scorer_pass_rate\nbound: {min: 0.95}"), df)
    assert sp.outcome == "PASS" and sp.numbers["k"] == 100


def test_mean_score_counts_errored_calls_instead_of_dropping_them():
    # The run: 48% of the judge's calls errored (no score); the rest scored 1.0.
    df = frame(rows(52, 0, 48, scorer="judge"))
    fail = _only(one_rule("select: {scorer: judge}\nmetric: mean_score\nbound: {min: 0.6}"), df)
    assert fail.numbers["estimate"] == pytest.approx(0.52) and fail.numbers["n_error"] == 48
    assert fail.outcome == "INCONCLUSIVE" and fail.blocks  # upper bound 0.602: 0.6 is not ruled out
    excluded = _only(one_rule("select: {scorer: judge}\nmetric: mean_score\nbound: {min: 0.6}\nerrors: exclude"), df)
    assert excluded.outcome == "ERROR" and excluded.blocks and "48 of 100" in excluded.reason
    # Under max_error_share the errored rows leave the mean.
    few = frame(rows(98, 0, 2, scorer="judge"))
    ok = _only(one_rule("select: {scorer: judge}\nmetric: mean_score\nbound: {min: 0.6}\nerrors: exclude"), few)
    assert ok.numbers["estimate"] == pytest.approx(1.0) and ok.numbers["n"] == 98
    # Against a baseline the errored rows count the same way (per-case values).
    rel = _only(one_rule("select: {scorer: judge}\nmetric: mean_score\nbound: {max_drop: 0.05}"), df,
                frame(rows(100, 0, scorer="judge")))
    assert rel.numbers["candidate_estimate"] == pytest.approx(0.52) and rel.outcome == "FAIL"


def test_pass_at_k_and_pass_hat_k_use_the_unbiased_estimators():
    # Every case: 3 of 5 runs pass (40 cases: the upper bound at 0.3 is under 0.5 even on 40 cases alone).
    parts = [rows(40, 0, repeat=r) for r in range(3)] + [rows(0, 40, repeat=r) for r in (3, 4)]
    df = frame(*parts)
    at = _only(one_rule("metric: pass_at_k\nk: 2\nbound: {min: 0.5}"), df)
    hat = _only(one_rule("metric: pass_hat_k\nk: 2\nbound: {min: 0.5}"), df)
    assert at.numbers["estimate"] == pytest.approx(stats.pass_at_k(5, 3, 2))
    assert hat.numbers["estimate"] == pytest.approx(stats.pass_hat_k(5, 3, 2))
    assert hat.outcome == "FAIL"  # 0.3 for every case


def test_pass_hat_k_with_too_few_repeats_is_an_error_naming_the_case():
    df = frame(rows(10, 0, repeat=0), rows(10, 0, repeat=1), rows(1, 0, repeat=2))
    r = _only(one_rule("metric: pass_hat_k\nk: 3\nbound: {min: 0.5}"), df)
    assert r.outcome == "ERROR" and "c00001" in r.reason and "mixed repeat shapes" in r.reason


def test_latency_and_cost_are_per_call_not_per_scorer_row():
    df = frame(rows(100, 0, scorer="a"), rows(100, 0, scorer="b"))
    lat = _only(one_rule("metric: p95_latency_ms\nbound: {max: 1000}"), df)
    assert lat.numbers["n"] == 100
    assert lat.numbers["estimate"] == pytest.approx(pl.Series(range(100, 200)).cast(pl.Float64).quantile(0.95, "linear"))
    cost = _only(one_rule("metric: cost_per_case\nbound: {max: 0.01}"), df)
    assert cost.numbers["estimate"] == pytest.approx(0.001) and cost.outcome == "PASS"


def test_judge_corrected_pass_rate_with_inline_counts_or_a_named_calibration():
    # stats.md 5.4: n = 1000, q = 0.78, Se = 135/150, Sp = 40/50 -> theta 0.8286.
    df = frame(rows(780, 220, scorer="judge"))
    counts = "{judge_pass_on_human_pass: 135, m_human_pass: 150, judge_fail_on_human_fail: 40, m_human_fail: 50}"
    r = _only(one_rule(f"select: {{scorer: judge}}\nmetric: judge_corrected_pass_rate\nbound: {{min: 0.7}}\n"
                       f"judge: {{counts: {counts}}}"), df)
    assert r.numbers["estimate"] == pytest.approx(0.8286, abs=1e-4)
    assert r.outcome == "PASS"
    named = one_rule("select: {scorer: judge}\nmetric: judge_corrected_pass_rate\nbound: {min: 0.7}\n"
                     "judge: {calibration: judge-v1}")
    missing = _only(named, df)
    assert missing.outcome == "ERROR" and "judge-v1" in missing.reason
    cal = {"judge-v1": JudgeCalibration.from_confusion(135, 15, 10, 40)}
    assert _only(named, df, calibrations=cal).numbers["estimate"] == pytest.approx(r.numbers["estimate"])
    weak = {"judge-v1": JudgeCalibration.from_confusion(60, 40, 25, 25)}
    assert "too weak" in _only(named, df, calibrations=weak).reason


def test_judge_corrected_pass_rate_on_a_run_with_repeats_uses_each_cases_first_verdict():
    # A nightly run judges every case 3 times: the rule was ERROR there for good ("select one repeat"),
    # yet a selection cannot pick a repeat. One verdict per case, fixed before any is seen: repeat 0.
    first = rows(780, 220, scorer="judge")
    later = [dict(r, repeat=rep, outcome="fail", score=0.0) for rep in (1, 2) for r in rows(780, 220, scorer="judge")]
    counts = "{judge_pass_on_human_pass: 135, m_human_pass: 150, judge_fail_on_human_fail: 40, m_human_fail: 50}"
    rule = one_rule(f"select: {{scorer: judge}}\nmetric: judge_corrected_pass_rate\nbound: {{min: 0.7}}\n"
                    f"judge: {{counts: {counts}}}")
    single = _only(rule, frame(first))
    repeated = _only(rule, frame(first, later))
    assert repeated.outcome == "PASS" and repeated.numbers["n"] == 1000 and repeated.numbers["k"] == 780
    assert repeated.numbers["estimate"] == pytest.approx(single.numbers["estimate"])
    assert repeated.numbers["verdicts_ignored"] == 2000 and "first repeat" in repeated.numbers["method"]


def test_advisory_rules_warn_but_never_block():
    p = policy("rules:\n  - {id: ok, metric: pass_rate, bound: {min: 0.5}}\n"
               "  - {id: slow, metric: p95_latency_ms, bound: {max: 10}, severity: advisory}\n")
    d = evaluate_policy(p, frame(rows(100, 0)))
    assert d.overall == "PASS"
    assert d.rules[1].outcome == "FAIL" and not d.rules[1].blocks
    assert any("advisory slow" in w for w in d.warnings)


def test_import_warnings_make_selecting_rules_error_unless_the_policy_says_warn():
    df = frame(rows(100, 0))
    strict = policy("rules:\n  - {id: a, metric: pass_rate, bound: {min: 0.5}}\n")
    d = evaluate_policy(strict, df, input_warnings=["f.json: status: the Inspect run ended with status 'error'"])
    assert d.overall == "BLOCK" and "incomplete input" in d.rules[0].reason
    lenient = policy("import_warnings: warn\nrules:\n  - {id: a, metric: pass_rate, bound: {min: 0.5}}\n")
    assert evaluate_policy(lenient, df, input_warnings=["x"]).overall == "PASS"
    override = policy("import_warnings: warn\nrules:\n  - {id: a, metric: pass_rate, bound: {min: 0.5}, "
                      "on_incomplete: error}\n")
    assert evaluate_policy(override, df, input_warnings=["x"]).overall == "BLOCK"


@pytest.mark.parametrize(("mutate", "needle"), [
    (lambda df: pl.concat([df, df.head(1)]), "duplicate"),
    (lambda df: df.with_columns(pl.when(pl.col("case_id") == "c00003").then(float("nan"))
                                .otherwise(pl.col("score")).alias("score")), "NaN"),
    (lambda df: df.with_columns(pl.when(pl.col("case_id") == "c00003").then(float("inf"))
                                .otherwise(pl.col("score")).alias("score")), "NaN or infinite"),
    (lambda df: df.with_columns(pl.when(pl.col("case_id") == "c00003").then(pl.lit("passed"))
                                .otherwise(pl.col("outcome")).alias("outcome")), "outcome"),
    (lambda df: df.with_columns(pl.when(pl.col("case_id") == "c00003").then(None)
                                .otherwise(pl.col("repeat")).alias("repeat")), "missing repeat"),
    (lambda df: df.drop("outcome"), "missing column"),
])
def test_bad_rows_make_every_selecting_rule_error(mutate, needle):
    p = policy("rules:\n  - {id: a, metric: pass_rate, bound: {min: 0.1}}\n"
               "  - {id: b, metric: mean_score, select: {scorer: s}, bound: {min: 0.1}}\n")
    d = evaluate_policy(p, mutate(frame(rows(50, 0))))
    assert d.overall == "BLOCK"
    for r in d.rules:
        assert r.outcome == "ERROR" and needle in r.reason, r.reason


def test_empty_selection_is_error_or_no_data_never_pass():
    df = frame(rows(10, 0))
    r = _only(one_rule("select: {scorer: nope}\nmetric: pass_rate\nbound: {min: 0}"), df)
    assert r.outcome == "ERROR" and r.blocks and "matched no result rows" in r.reason
    r = _only(one_rule("select: {scorer: nope}\nmetric: pass_rate\nbound: {min: 0}\non_missing: no_data"), df)
    assert r.outcome == "NO_DATA" and r.blocks
    r = _only(one_rule("select: {scorer: nope}\nmetric: pass_rate\nbound: {min: 0}\non_missing: no_data\n"
                       "no_data: pass"), df)
    assert r.outcome == "NO_DATA" and not r.blocks


def test_metric_missing_from_the_data_is_not_a_pass():
    df = frame(rows(10, 0)).with_columns(pl.lit(None, dtype=pl.Float64).alias("latency_ms"))
    r = _only(one_rule("metric: p95_latency_ms\nbound: {max: 1000}"), df)
    assert r.outcome == "ERROR" and "latency_ms" in r.reason


def test_backtracking_pattern_runs_in_linear_time():
    # (a+)+$ is exponential for backtracking engines on "aaaa...b"; polars' Rust regex is linear.
    long_id = "a" * 200_000 + "b"
    df = frame([{**rows(1, 0)[0], "case_id": long_id}], rows(5, 0))
    p = one_rule("select: {case_id_pattern: '(a+)+$'}\nmetric: pass_rate\nbound: {min: 0.5}")
    t0 = time.perf_counter()
    r = _only(p, df)
    assert time.perf_counter() - t0 < 2.0
    assert r.outcome == "ERROR" and "matched no result rows" in r.reason


def test_decisions_are_deterministic_and_json_safe():
    import json

    demo = load_policy(REPO / "datasets" / "demo" / "policy.yaml")
    df = frame(rows(150, 40, 10, tags=["category:pii", "source:regression"]))
    base = frame(rows(170, 30, tags=["category:pii", "source:regression"]))
    a = evaluate_policy(demo.policy, df, base, policy_hash=demo.sha256).to_dict()
    b = evaluate_policy(demo.policy, df, base, policy_hash=demo.sha256).to_dict()
    assert a == b
    assert json.loads(json.dumps(a, allow_nan=False)) == a
