"""The plan of a policy on a tier: numbers from evalplatform.stats, refusals, warnings, the table, and the adaptive
loop that follows the plan's schedule (with a synthetic evidence source)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from evalplatform import results as rt
from evalplatform import stats
from evalplatform.adaptive import Evidence, decide_adaptively
from evalplatform.errors import InputError
from evalplatform.planning import plan_rules, plan_table
from evalplatform.policy import parse_policy
from evalplatform.suite import Adaptive


def _skeleton(n: int, prefix: str = "c", category: str = "x") -> pl.DataFrame:
    return rt.from_rows([{"run_id": "plan", "suite": "s", "case_id": f"{prefix}{i:03d}", "repeat": 0, "scorer": "s",
                          "outcome": "pass", "tags": [f"category:{category}"], "case_hash": f"h-{prefix}{i:03d}"}
                         for i in range(n)])


def _run(outcomes: dict[tuple[str, int], bool], run_id: str = "r", cost: float = 0.0) -> pl.DataFrame:
    return rt.from_rows([{"run_id": run_id, "suite": "s", "case_id": c, "repeat": r, "scorer": "s",
                          "outcome": "pass" if ok else "fail", "score": float(ok), "tags": ["category:x"],
                          "case_hash": f"h-{c}", "latency_ms": 10.0, "cost_usd": cost, "cache_hit": False}
                         for (c, r), ok in outcomes.items()])


def _policy(rules: str, file: str = "p.yaml"):
    return parse_policy(("rules:\n" + rules).encode(), file).policy


FLOOR = "  - {id: floor, metric: pass_rate, bound: {min: 0.8}}\n"


def _plan(policy, n=50, pool=0, evidence=None, adaptive=None, repeats=1, baseline_cases=None):
    planned, rest = _skeleton(n), _skeleton(pool, prefix="p") if pool else rt.empty()
    order = rest["case_id"].to_list() if pool else []
    return plan_rules(policy, suite="s", tier="pr", planned=planned, pool=rest, order=order, repeats=repeats,
                      adaptive=adaptive or Adaptive(enabled=False), evidence=evidence, baseline_cases=baseline_cases,
                      policy_file="p.yaml")


def test_absolute_numbers_are_the_stats_numbers_at_the_baselines_rate():
    evidence = _run({(f"c{i:03d}", 0): i < 45 for i in range(50)})
    rule = _plan(_policy(FLOOR), evidence=evidence).rule("floor")
    rate = stats.smoothed_rate(45, 50)  # no repeats: every case may flip, Binomial(50, rate)
    expected = stats.absolute_gate_probabilities([50], [0.95], 0.8, rate)
    assert rule.rate == pytest.approx(0.9) and rule.discordance is None
    assert rule.p_pass == pytest.approx(expected.passed) and rule.false_block_risk == pytest.approx(1 - expected.passed)
    assert rule.best_bound == pytest.approx(stats.best_bound(50, 0.95)) and rule.n_needed == 11
    assert rule.detectable == pytest.approx(stats.absolute_detectable_change([50], [0.95], 0.8, 0.9))


def test_repeats_that_always_agree_make_a_rerun_keep_what_the_baseline_saw():
    # 47 of 50 cases pass in both of two runs: the target does not flake, so a re-run is 47/50 again.
    evidence = _run({(f"c{i:03d}", r): i < 47 for i in range(50) for r in range(2)})
    rule = _plan(_policy(FLOOR), evidence=evidence, repeats=2).rule("floor")
    # The suite's flakiness (half a prior disagreement over 50 pairs) is the prior of the rule's own 50 pairs.
    suite = 0.5 / 51
    assert rule.discordance == pytest.approx(20 * suite / 70) and rule.discordance_source == "baseline repeats"
    assert rule.false_block_risk < 0.01


def test_paired_numbers_use_the_measured_discordance():
    evidence = _run({(f"c{i:03d}", r): not (i < 6 and r == 1) and i < 47 for i in range(50) for r in range(2)})
    rule = _plan(_policy("  - {id: drop, metric: pass_rate, bound: {max_drop: 0.1}}\n"), evidence=evidence,
                 repeats=2, baseline_cases={f"c{i:03d}": f"h-c{i:03d}" for i in range(50)}).rule("drop")
    runs, passes = [2] * 50, [1] * 6 + [2] * 41 + [0] * 3
    suite = stats.pooled_discordance(runs, passes)  # the suite's flips are the prior of the rule's own
    psi = stats.pooled_discordance(runs, passes, prior=suite, prior_pairs=20)
    assert rule.discordance == pytest.approx(psi)
    expected = stats.paired_gate_probabilities([50], [0.95], 0.1, psi / 2, psi / 2)
    assert rule.false_block_risk == pytest.approx(1 - expected.passed)
    assert rule.best_bound == pytest.approx(stats.paired_diff_ci_tango(0, 0, 50, 0.9)[0])


def test_a_blocking_rule_that_cannot_pass_even_when_every_case_passes_is_refused_with_the_count_it_needs():
    plan = _plan(_policy("  - {id: strict, metric: pass_rate, bound: {min: 0.95}}\n"), n=20)
    rule = plan.rule("strict")
    assert rule.refused and rule.can_pass is False and rule.n_needed == 52
    with pytest.raises(InputError) as err:
        plan.check()
    line = str(err.value)
    assert "p.yaml" in line and "strict" in line and "20 cases" in line and "at least 52 cases" in line
    assert "\n" not in line


def test_a_rule_that_cannot_pass_but_does_not_block_on_inconclusive_is_only_warned_about():
    plan = _plan(_policy("  - {id: strict, metric: pass_rate, bound: {min: 0.95}, inconclusive: pass}\n"
                         + FLOOR), n=20)
    plan.check()  # not refused
    assert plan.warnings()[0].startswith("rule strict: cannot PASS on the pr tier (20 cases) even if every case "
                                         "passes")


def test_risk_over_five_percent_is_a_warning_with_the_cases_that_would_do():
    evidence = _run({(f"c{i:03d}", 0): i < 17 for i in range(20)})
    plan = _plan(_policy(FLOOR), n=20, evidence=evidence)
    rule = plan.rule("floor")
    assert rule.false_block_risk > 0.05 and rule.n_for_low_risk > 20
    assert plan.warnings() == [f"rule floor: blocks a no-change re-run {rule.false_block_risk:.0%} of the time on "
                               f"the pr tier (20 cases), at rate 0.850 (baseline, 20 cases); about "
                               f"{rule.n_for_low_risk} cases would bring it under 5%"]


def test_unknown_rates_still_give_decidability_and_the_rate_the_rule_needs():
    plan = _plan(_policy(FLOOR), n=50)
    rule = plan.rule("floor")
    assert rule.rate is None and rule.false_block_risk is None and rule.can_pass
    assert rule.safe_rate is not None and 0.8 < rule.safe_rate < 1
    assert stats.absolute_gate_probabilities([50], [0.95], 0.8, rule.safe_rate).blocked() <= 0.05 + 1e-6
    table = plan_table(plan)
    assert "floor" in table and "unknown" in table and "risk <= 5% at rate >=" in table


def test_the_extension_schedule_spends_the_error_and_draws_the_rules_own_cases():
    plan = _plan(_policy(FLOOR), n=40, pool=30, adaptive=Adaptive(max_extra_cases=20, max_looks=3))
    sched = plan.rule("floor").schedule
    assert sched.extension == "cases" and sched.looks == [40, 50, 60] and sched.extra_cases == [0, 10, 20]
    assert sched.case_order == [f"p{i:03d}" for i in range(20)]
    expected = [1 - a for a in stats.group_sequential_levels([40 / 60, 50 / 60, 1.0], 0.05, "pocock")]
    assert sched.confs == pytest.approx(expected)


def test_an_extension_that_would_decide_less_than_one_look_is_not_planned():
    # Clopper-Pearson keeps its exactness with the union bound: at 20 cases its first look then cannot pass 0.85
    # even with every case passing, and the cases it would add fail more often: one look blocks less.
    policy = _policy("  - {id: cp, metric: pass_rate, bound: {min: 0.85}, method: clopper_pearson}\n")
    evidence = _run({(f"c{i:03d}", r): True for i in range(20) for r in range(2)}
                    | {(f"p{i:03d}", r): i >= 5 for i in range(20) for r in range(2)})
    rule = _plan(policy, n=20, pool=20, evidence=evidence, repeats=2, adaptive=Adaptive(max_extra_cases=20)).rule("cp")
    assert rule.schedule.extension is None and rule.can_pass and "not extended" in rule.notes[0]
    assert rule.false_block_risk < 0.05


def _source(outcome_of, calls):
    def source(request):
        calls.append(request)
        return Evidence(_run({run: outcome_of(run) for run in request.runs}, cost=0.001))
    return source


def test_an_undecided_rule_buys_its_scheduled_cases_and_decides_on_them():
    policy = _policy(FLOOR)
    plan = _plan(policy, n=10, pool=30, adaptive=Adaptive(max_extra_cases=30, max_looks=3))
    results = _run({(f"c{i:03d}", 0): i < 9 for i in range(10)})  # 9/10: cannot show 80% yet
    calls = []
    out = decide_adaptively(policy, results, None, {r.rule_id: r.schedule for r in plan.rules},
                            _source(lambda run: True, calls), adaptive=Adaptive(max_extra_cases=30), repeats=1)
    rule = out.decision.rules[0]
    assert out.decision.overall == "PASS" and rule.numbers["look"] >= 2
    assert rule.numbers["looks"][0]["outcome"] == "INCONCLUSIVE" and rule.numbers["looks"][-1]["outcome"] == "PASS"
    assert calls[0].runs == tuple((f"p{i:03d}", 0) for i in range(15))  # the first stage of its own order
    assert [c["confidence"] for c in rule.numbers["looks"]] == pytest.approx(
        plan.rule("floor").schedule.confs[:len(rule.numbers["looks"])])
    assert out.results.height == 10 + sum(len(c.runs) for c in calls) and out.looks[0]["cases_added"]


def test_no_extension_once_another_rule_blocks_or_over_the_cost_budget():
    policy = _policy(FLOOR + "  - {id: broken, metric: pass_rate, bound: {min: 0.9}, select: {tags: {any: "
                     "[category:y]}}}\n")
    plan = _plan(policy, n=10, pool=30, adaptive=Adaptive(max_extra_cases=30))
    schedules = {r.rule_id: r.schedule for r in plan.rules}
    # floor: 9/10 cannot show 80% yet (INCONCLUSIVE); broken: its one case of category y fails (FAIL).
    results = _run({(f"c{i:03d}", 0): i < 9 for i in range(10)}, cost=0.01).with_columns(
        pl.when(pl.col("case_id") == "c009").then(pl.lit(["category:y"])).otherwise(pl.col("tags")).alias("tags"))
    calls = []
    out = decide_adaptively(policy, results, None, schedules, _source(lambda run: True, calls),
                            adaptive=Adaptive(), repeats=1)
    assert {r.rule_id: r.outcome for r in out.decision.rules} == {"floor": "INCONCLUSIVE", "broken": "FAIL"}
    assert not calls and out.looks[-1]["stopped"] == "not extended: rule broken blocks already (FAIL)"
    floor_only = _policy(FLOOR)
    out = decide_adaptively(floor_only, results, None, schedules, _source(lambda run: True, calls),
                            adaptive=Adaptive(max_extra_cases=30, max_cost_usd=0.05), repeats=1)
    assert not calls and "over the budget of $0.05" in out.looks[-1]["stopped"]
    assert out.decision.overall == "BLOCK"  # INCONCLUSIVE blocks once no more evidence can be bought


def test_a_relative_rule_extends_only_with_cases_the_baseline_ran():
    policy = _policy("  - {id: drop, metric: pass_rate, bound: {max_drop: 0.1}}\n")
    covered = {f"c{i:03d}": f"h-c{i:03d}" for i in range(20)} | {"p003": "h-p003", "p007": "other-content"}
    rule = _plan(policy, n=20, pool=10, baseline_cases=covered, adaptive=Adaptive()).rule("drop")
    assert rule.schedule.case_order == ["p003"]  # p007's content changed since the baseline ran it


def test_the_first_look_of_an_extendable_rule_is_judged_at_its_scheduled_confidence():
    policy = _policy(FLOOR)
    plan = _plan(policy, n=60, pool=40, adaptive=Adaptive(max_extra_cases=40))
    results = _run({(f"c{i:03d}", 0): True for i in range(60)})
    out = decide_adaptively(policy, results, None, {r.rule_id: r.schedule for r in plan.rules}, None,
                            adaptive=Adaptive(), repeats=1)
    rule = out.decision.rules[0]
    conf = plan.rule("floor").schedule.confs[0]
    assert rule.numbers["confidence"] == pytest.approx(conf) and conf > 0.95
    assert rule.numbers["lower"] == pytest.approx(stats.wilson_lower_bound(60, 60, conf))
    assert "look 1 of 3" in rule.reason


def test_plan_table_lists_every_rule_of_every_tier():
    evidence = _run({(f"c{i:03d}", 0): i < 45 for i in range(50)})
    a = _plan(_policy(FLOOR), evidence=evidence)
    text = plan_table([a, a])
    assert text.count("floor ") >= 2 and "P(PASS)" in text and "false block" in text and "detects (80%)" in text
    assert np.isfinite(a.rule("floor").p_pass)


@pytest.mark.parametrize("n, p", [(0, 0.3), (1, 0.0), (1, 1.0), (7, 0.5), (50, 0.93), (400, 0.02), (3000, 0.999)])
def test_the_binomial_planning_uses_matches_scipys_without_importing_it(n, p):
    from scipy import stats as sps

    from evalplatform.stats import decidability

    got = decidability._binom_pmf(n, p)
    want = sps.binom.pmf(np.arange(n + 1), n, p)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-300)
    # Counts outside 0..n have probability 0; n given per element works as for scipy.
    k, ns = np.array([-1, 0, 3, 9]), np.array([5, 5, 5, 8])
    np.testing.assert_allclose(decidability._binom_terms(k, ns, 0.4), sps.binom.pmf(k, ns, 0.4), rtol=1e-9)
