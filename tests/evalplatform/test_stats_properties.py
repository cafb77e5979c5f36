"""Properties of the stats library beyond the reference vectors, and the functions the policy engine needs."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import evalplatform.stats as stats

counts = st.integers(min_value=1, max_value=2000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n)))
confs = st.sampled_from([0.8, 0.9, 0.95, 0.99])
FAST = settings(max_examples=150, deadline=None)


# --- intervals -------------------------------------------------------------------------------


@FAST
@given(counts, confs)
def test_wilson_interval_inside_unit_range_and_contains_estimate(kn, conf):
    k, n = kn
    lower, upper = stats.wilson_interval(k, n, conf)
    assert 0.0 <= lower <= k / n <= upper <= 1.0


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 1500), confs)
def test_wilson_lower_bound_monotone_in_passes(n, conf):
    ks = range(0, n + 1, max(1, n // 200))
    bounds = [stats.wilson_lower_bound(k, n, conf) for k in ks]
    assert all(b2 > b1 for b1, b2 in zip(bounds, bounds[1:]))


@FAST
@given(st.integers(2, 600).flatmap(lambda n: st.tuples(st.integers(1, n - 1), st.just(n))), st.sampled_from([0.8, 0.9, 0.95]))
def test_clopper_pearson_wider_than_wilson(kn, conf):
    # Not true at k = 0 or k = n once n is large (n >= 46 at 95%: CP upper at k=0 is
    # -ln(alpha/2)/n vs Wilson's z^2/(n+z^2)), nor at 99% for k <= 6; CP's guarantee is coverage.
    k, n = kn
    cp = stats.clopper_pearson_interval(k, n, conf)
    wilson = stats.wilson_interval(k, n, conf)
    assert cp[1] - cp[0] >= wilson[1] - wilson[0]


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 200), st.floats(0.01, 0.99), confs)
def test_clopper_pearson_coverage_never_below_nominal(n, p, conf):
    assert stats.interval_exact_coverage("clopper_pearson", n, p, conf) >= conf - 1e-9


def test_wald_undercovers_at_high_pass_rates():
    # stats.md section 1 table: Wald covers 63.9% at n=20, p=0.95 against a nominal 95%.
    assert stats.interval_exact_coverage("wald", 20, 0.95, 0.95) == pytest.approx(0.639, abs=5e-4)


@FAST
@given(counts, st.sampled_from([0.9, 0.95, 0.99]))
def test_gate_verdict_agrees_with_bounds(kn, conf):
    k, n = kn
    verdict = stats.pass_rate_gate(k, n, threshold=0.9, conf=conf)
    lower, upper = stats.wilson_lower_bound(k, n, conf), stats.wilson_upper_bound(k, n, conf)
    expected = "PASS" if lower >= 0.9 else "FAIL" if upper < 0.9 else "INCONCLUSIVE"
    assert verdict == expected


def test_gate_examples_from_design_and_no_data():
    assert stats.pass_rate_gate(170, 200, 0.9) == "FAIL"
    assert stats.pass_rate_gate(0, 0, 0.0) == "NO_DATA"
    # 30/30 clears 0.90 with Wilson (LB 0.917) but not with the stricter Clopper-Pearson (0.905 vs 0.91).
    assert stats.pass_rate_gate(30, 30, 0.91) == "PASS"
    assert stats.pass_rate_gate(30, 30, 0.91, bound="clopper_pearson_one_sided") == "INCONCLUSIVE"


def test_clopper_pearson_all_pass_is_alpha_to_one_over_n_and_rule_of_299():
    assert stats.clopper_pearson_lower_bound(30, 30, 0.95) == pytest.approx(0.05 ** (1 / 30), abs=1e-12)
    assert stats.n_all_pass_needed(0.01, 0.95) == 299
    assert stats.clopper_pearson_lower_bound(299, 299) >= 0.99 > stats.clopper_pearson_lower_bound(298, 298)


# --- repeats ---------------------------------------------------------------------------------

runs = st.integers(1, 60).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n)))


@FAST
@given(runs)
def test_pass_at_k_in_unit_range_and_monotone_in_k(nc):
    n, c = nc
    values = [stats.pass_at_k(n, c, k) for k in range(1, n + 1)]
    assert all(0.0 <= v <= 1.0 for v in values)
    assert all(b >= a - 1e-12 for a, b in zip(values, values[1:]))
    assert values[0] == pytest.approx(c / n)


@FAST
@given(runs)
def test_pass_hat_k_below_pass_at_1_below_pass_at_k(nc):
    n, c = nc
    for k in range(1, n + 1):
        assert stats.pass_hat_k(n, c, k) <= c / n + 1e-12 <= stats.pass_at_k(n, c, k) + 2e-12


def test_pass_at_k_matches_combinatorial_definition():
    for n, c, k in [(10, 3, 2), (25, 7, 5), (40, 1, 39)]:
        assert stats.pass_at_k(n, c, k) == pytest.approx(1 - math.comb(n - c, k) / math.comb(n, k), abs=1e-12)
        assert stats.pass_hat_k(n, c, k) == pytest.approx(math.comb(c, k) / math.comb(n, k), abs=1e-12)


def test_suite_repeat_summary_unequal_runs_and_bad_verdicts():
    summary = stats.suite_repeat_summary({"a": [True, True, False], "b": [1, 1], "c": [0, 0, 0, 0]}, k=2)
    assert summary["pass_at_k_2"] == pytest.approx((1.0 + 1.0 + 0.0) / 3)
    assert summary["pass_hat_k_2"] == pytest.approx((1 / 3 + 1.0 + 0.0) / 3)
    assert summary["flaky_cases"] == ["a"]
    with pytest.raises(ValueError, match="pass"):
        stats.suite_repeat_summary({"a": [1, 2]})


def test_se_clustered_matches_statsmodels_cluster_robust_ols():
    import statsmodels.api as sm

    rng = np.random.default_rng(3)
    clusters = np.repeat(np.arange(12), rng.integers(1, 6, size=12))
    scores = (rng.random(clusters.size) < 0.3 + 0.05 * (clusters % 5)).astype(float)
    fit = sm.OLS(scores, np.ones_like(scores)).fit(cov_type="cluster", cov_kwds={"groups": clusters, "use_correction": False})
    assert stats.se_clustered(scores, clusters) == pytest.approx(float(fit.bse[0]), rel=1e-9)
    fit1 = sm.OLS(scores, np.ones_like(scores)).fit(cov_type="cluster", cov_kwds={"groups": clusters})
    # statsmodels' CR1 also applies (n-1)/(n-k); with one regressor that factor is 1.
    assert stats.se_clustered(scores, clusters, finite_cluster_correction=True) == pytest.approx(float(fit1.bse[0]), rel=1e-9)


def test_clustered_pass_rate_one_repeat_is_bernoulli_se():
    result = stats.clustered_pass_rate([1] * 45 + [0] * 5, [1] * 50)
    assert result["estimate"] == pytest.approx(0.9)
    assert result["se"] == pytest.approx(stats.se_bernoulli(45, 50), abs=1e-15)
    assert result["lower"] == pytest.approx(0.9 - 1.959963984540054 * result["se"])
    assert (result["n_clusters"], result["n_obs"]) == (50, 50)


def test_clustered_pass_rate_equals_se_clustered_on_expanded_runs():
    k, n = [3, 0, 5, 2, 4, 1], [5, 5, 5, 4, 5, 3]
    scores = np.concatenate([[1] * ki + [0] * (ni - ki) for ki, ni in zip(k, n)])
    clusters = np.repeat(np.arange(len(n)), n)
    result = stats.clustered_pass_rate(k, n, conf=0.9, alternative="greater")
    assert result["estimate"] == pytest.approx(15 / 27)
    assert result["se"] == pytest.approx(stats.se_clustered(scores, clusters), abs=1e-15)
    assert result["upper"] == 1.0
    assert result["lower"] == pytest.approx(15 / 27 - 1.2815515655446004 * result["se"])
    # Correlated repeats: the case-level SE exceeds the naive SE over all runs.
    assert result["se"] > stats.se_bernoulli(15, 27)


def test_clustered_pass_rate_clips_to_unit_range():
    assert stats.clustered_pass_rate([2, 2, 1], [2, 2, 2])["upper"] == 1.0
    assert stats.clustered_pass_rate([0, 0, 1], [2, 2, 2])["lower"] == 0.0


# --- paired comparisons ----------------------------------------------------------------------

paired_counts = st.integers(1, 500).flatmap(
    lambda n: st.integers(0, n).flatmap(lambda b: st.tuples(st.just(b), st.integers(0, n - b), st.just(n)))
)


@FAST
@given(paired_counts)
def test_tango_interval_contains_estimate_and_nests_by_level(bcn):
    b, c, n = bcn
    estimate = (b - c) / n
    wide = stats.paired_diff_ci_tango(b, c, n, 0.95)
    narrow = stats.paired_diff_ci_tango(b, c, n, 0.90)
    assert -1.0 <= wide[0] <= narrow[0] <= estimate + 1e-12
    assert estimate - 1e-12 <= narrow[1] <= wide[1] <= 1.0


@FAST
@given(paired_counts)
def test_noninferiority_agrees_with_regression_gate(bcn):
    b, c, n = bcn
    test = stats.noninferiority_test_paired(b, c, n, margin=0.05, alpha=0.05)
    gate = stats.regression_gate_paired(b, c, n, margin=0.05, alpha=0.05)
    assert test["non_inferior"] == (gate["verdict"] == "PASS")
    assert test["lower_bound"] == pytest.approx(gate["ci"][0], abs=1e-9)


def test_mcnemar_midp_never_above_exact_and_symmetric():
    for b, c in [(0, 4), (3, 9), (12, 4), (7, 7)]:
        result = stats.mcnemar_test(b, c)
        assert result["p_midp"] <= result["p_exact"]
        assert stats.mcnemar_test(c, b)["p_midp"] == pytest.approx(result["p_midp"])
    assert stats.mcnemar_test(0, 0) == {"p_exact": 1.0, "p_midp": 1.0, "b": 0, "c": 0}


def test_min_detectable_flips_and_detection_power_from_research_note():
    assert stats.min_detectable_flips(0.05, "midp_two_sided") == 5
    assert stats.mutant_detection_probability(100, 0.05) == pytest.approx(0.384, abs=1e-3)


def test_align_cases_ambiguous_hash_is_not_a_rename():
    result = stats.align_cases({"a": "h", "b": "h", "c": "x"}, {"a2": "h", "c": "x"})
    assert result["renamed"] == []
    assert result["removed"] == ["a", "b"]
    assert result["added"] == ["a2"]
    assert result["pairs"] == [["c", "c"]]


# --- paired bootstrap ------------------------------------------------------------------------


def test_bootstrap_constant_difference_has_zero_width():
    result = stats.paired_bootstrap_mean_diff(np.full(50, 0.8), np.full(50, 0.6))
    assert result["estimate"] == pytest.approx(0.2)
    assert result["lower"] == pytest.approx(0.2) and result["upper"] == pytest.approx(0.2)


@pytest.mark.parametrize("distinct", ["binary", "continuous_small_n", "continuous_large_n"])
def test_bootstrap_se_matches_ideal_bootstrap(distinct):
    # The B -> infinity bootstrap SE of a mean is sqrt(sum (d - mean)^2) / n (ddof = 0).
    rng = np.random.default_rng(7)
    n = 60_000 if distinct == "continuous_large_n" else 400
    if distinct == "binary":
        cand, base = (rng.random(n) < 0.8).astype(float), (rng.random(n) < 0.7).astype(float)
    else:
        cand, base = rng.beta(2, 1, n), rng.beta(2, 2, n) ** 2
    d = cand - base
    ideal = np.sqrt(np.sum((d - d.mean()) ** 2)) / n
    result = stats.paired_bootstrap_mean_diff(cand, base, conf=0.95, n_boot=8000, seed=1)
    assert result["estimate"] == pytest.approx(d.mean())
    assert result["se"] == pytest.approx(ideal, rel=0.04)
    # The percentile interval of a near-normal mean is close to estimate +/- 1.96 * SE.
    assert result["lower"] == pytest.approx(d.mean() - 1.96 * ideal, abs=0.15 * ideal)
    assert result["upper"] == pytest.approx(d.mean() + 1.96 * ideal, abs=0.15 * ideal)


def test_bootstrap_is_seeded_and_agrees_with_tango_on_binary_verdicts():
    rng = np.random.default_rng(0)
    base = (rng.random(1000) < 0.85).astype(float)
    cand = np.where(rng.random(1000) < 0.05, 1 - base, base)
    first = stats.paired_bootstrap_mean_diff(cand, base, n_boot=4000, seed=11)
    assert first == stats.paired_bootstrap_mean_diff(cand, base, n_boot=4000, seed=11)
    b = int(np.sum((cand == 1) & (base == 0)))
    c = int(np.sum((cand == 0) & (base == 1)))
    tango = stats.paired_diff_ci_tango(b, c, 1000, 0.95)
    assert first["lower"] == pytest.approx(tango[0], abs=0.004)
    assert first["upper"] == pytest.approx(tango[1], abs=0.004)


@pytest.mark.parametrize("kind", ["binary", "continuous"])
def test_bootstrap_100k_pairs_is_fast(kind):
    rng = np.random.default_rng(5)
    n = 100_000
    if kind == "binary":
        cand, base = (rng.random(n) < 0.9).astype(float), (rng.random(n) < 0.88).astype(float)
    else:
        cand, base = rng.random(n), rng.random(n)
    start = time.perf_counter()
    stats.paired_bootstrap_mean_diff(cand, base, n_boot=2000, seed=0)
    # A guard against a quadratic implementation (the measured figure, ~60 ms, is in bench/), with
    # room for a loaded CI machine.
    assert time.perf_counter() - start < 5.0


# --- sampled traces --------------------------------------------------------------------------


def test_stratified_failure_rate_research_example():
    result = stats.stratified_failure_rate([{"N": 1000, "n": 100, "fails": 40}, {"N": 99000, "n": 200, "fails": 4}])
    assert result["estimate"] == pytest.approx(0.0238, abs=1e-12)
    assert result["se"] == pytest.approx(0.0098, abs=1e-4)
    assert result["naive_unweighted"] == pytest.approx(44 / 300)


def test_horvitz_thompson_rate_equals_stratified_weighting():
    # 100 flagged traces kept with pi=0.1 (40 fail), 200 other traces kept with pi=200/99000 (4 fail).
    passed = np.array([False] * 40 + [True] * 60 + [False] * 4 + [True] * 196)
    pi = np.array([0.1] * 100 + [200 / 99000] * 200)
    result = stats.horvitz_thompson_rate(passed, pi)
    assert result["estimate"] == pytest.approx(1 - 0.0238, abs=1e-12)
    assert result["estimated_population"] == pytest.approx(100_000)
    assert result["lower"] < result["estimate"] < result["upper"] <= 1.0
    assert result["n"] == 300


def test_horvitz_thompson_census_has_no_sampling_error():
    result = stats.horvitz_thompson_rate([True, True, False, True], [1.0, 1.0, 1.0, 1.0])
    assert result["estimate"] == 0.75 and result["se"] == 0.0


def test_horvitz_thompson_se_matches_sampling_spread():
    # Poisson (hash) sampling of a fixed population, failures oversampled 20x.
    rng = np.random.default_rng(42)
    population = rng.random(20_000) < 0.95
    pi = np.where(population, 0.01, 0.2)
    estimates, ses = [], []
    for _ in range(400):
        kept = rng.random(population.size) < pi
        result = stats.horvitz_thompson_rate(population[kept], pi[kept])
        estimates.append(result["estimate"])
        ses.append(result["se"])
    assert np.mean(estimates) == pytest.approx(population.mean(), abs=0.002)
    assert np.mean(ses) == pytest.approx(np.std(estimates), rel=0.15)


# --- judges and monitoring -------------------------------------------------------------------


def test_judge_confusion_metrics_research_example():
    m = stats.judge_confusion_metrics([[40, 15], [10, 135]])
    assert m["agreement"] == 0.875 and m["fail_recall"] == 0.8 and m["pass_recall"] == 0.9
    assert m["fail_precision"] == pytest.approx(0.727, abs=1e-3) and m["fail_f1"] == pytest.approx(0.762, abs=1e-3)
    assert m["fail_recall_ci"] == pytest.approx([0.67, 0.89], abs=5e-3)


def test_agreement_order_argument_reorders_table():
    as_given = stats.agreement_statistics([[135, 10], [15, 40]], order=["PASS", "FAIL"])
    assert as_given["kappa"] == pytest.approx(stats.agreement_statistics([[40, 15], [10, 135]])["kappa"])
    assert as_given["kappa_ci"] == pytest.approx([0.5609, 0.7939], abs=1e-4)


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 400).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_confidence_sequence_is_wider_than_wilson(kn):
    k, n = kn
    cs = stats.confidence_sequence_bernoulli(k, n, 0.05)
    wilson = stats.wilson_interval(k, n, 0.95)
    assert cs[0] <= wilson[0] + 1e-9 and wilson[1] <= cs[1] + 1e-9


def test_peeking_grows_with_looks_and_accepts_unequal_times():
    rates = [stats.peeking_type1_error(looks) for looks in (1, 2, 5)]
    assert rates[0] == pytest.approx(0.05) and rates[0] < rates[1] < rates[2]
    assert stats.peeking_type1_error(5) == pytest.approx(0.142, abs=1e-3)
    unequal = stats.peeking_type1_error(2, 0.05, equally_spaced=False, information_fractions=[0.5, 1.0])
    assert unequal == pytest.approx(rates[1], abs=1e-9)


def test_monitor_alert_quiet_near_slo_and_on_no_data():
    assert stats.monitor_alert(186, 200, 0.95)["alert"] is False
    assert stats.monitor_alert(0, 0, 0.95)["status"] == "NO_DATA"


# --- invalid input ---------------------------------------------------------------------------

INVALID = [
    (stats.wilson_interval, {"k": 5, "n": 3}),
    (stats.wilson_interval, {"k": -1, "n": 3}),
    (stats.wilson_interval, {"k": 1, "n": -3}),
    (stats.wilson_interval, {"k": 1.5, "n": 3}),
    (stats.wilson_interval, {"k": 1, "n": 3, "conf": 1.0}),
    (stats.wilson_interval, {"k": 1, "n": 3, "conf": 0.0}),
    (stats.wilson_interval, {"k": 1, "n": 3, "conf": float("nan")}),
    (stats.wilson_lower_bound, {"k": 1, "n": 3, "conf": 0.4}),
    (stats.clopper_pearson_interval, {"k": float("nan"), "n": 3}),
    (stats.pass_rate_gate, {"k": 1, "n": 3, "threshold": 1.2}),
    (stats.pass_rate_gate, {"k": 1, "n": 3, "threshold": 0.9, "bound": "wald"}),
    (stats.interval_exact_coverage, {"method": "bogus", "n": 10, "p": 0.5}),
    (stats.pass_at_k, {"n": 3, "c": 4, "k": 1}),
    (stats.pass_hat_k, {"n": 3, "c": 1, "k": 0}),
    (stats.case_flip_probability, {"n": 1, "c": 1}),
    (stats.mcnemar_test, {"b": -1, "c": 2}),
    (stats.paired_diff_ci_tango, {"b": 5, "c": 6, "n": 10}),
    (stats.regression_gate_paired, {"b": 1, "c": 1, "n": 10, "margin": 0.0}),
    (stats.rogan_gladen, {"q_observed_pass": 0.5, "sensitivity_pass": 0.5, "specificity_pass": 0.5}),
    (stats.rogan_gladen_ci_delta, {"judge_pass": 5, "n_test": 10, "judge_pass_on_human_pass": 1,
                                   "m_human_pass": 0, "judge_fail_on_human_fail": 1, "m_human_fail": 2}),
    (stats.agreement_statistics, {"table_judge_rows_human_cols": [[1, 2, 3], [4, 5, 6]]}),
    (stats.se_clustered, {"scores": [1, 0], "clusters": ["a"]}),
    (stats.se_clustered, {"scores": [1, float("nan")], "clusters": ["a", "b"]}),
    (stats.paired_bootstrap_mean_diff, {"candidate": [1.0, float("nan")], "baseline": [0.0, 1.0]}),
    (stats.paired_bootstrap_mean_diff, {"candidate": [1.0, 0.0], "baseline": [0.0]}),
    (stats.paired_bootstrap_mean_diff, {"candidate": [1.0], "baseline": [0.0], "conf": 1.5}),
    (stats.clustered_pass_rate, {"k_per_cluster": [3], "n_per_cluster": [2]}),
    (stats.clustered_pass_rate, {"k_per_cluster": [1], "n_per_cluster": [0]}),
    (stats.clustered_pass_rate, {"k_per_cluster": [], "n_per_cluster": []}),
    (stats.clustered_pass_rate, {"k_per_cluster": [1], "n_per_cluster": [2], "alternative": "less"}),
    (stats.clustered_pass_rate, {"k_per_cluster": [float("nan")], "n_per_cluster": [2]}),
    (stats.horvitz_thompson_rate, {"passed": [True], "inclusion_prob": [0.0]}),
    (stats.horvitz_thompson_rate, {"passed": [True, False], "inclusion_prob": [0.5]}),
    (stats.horvitz_thompson_rate, {"passed": [True], "inclusion_prob": [float("nan")]}),
    (stats.stratified_failure_rate, {"strata": [{"N": 10, "n": 20, "fails": 1}]}),
    (stats.n_for_absolute_gate, {"p_expected": 0.8, "threshold": 0.9}),
    (stats.sample_size_for_margin, {"moe": 0.0}),
    (stats.implied_pass_rate_for_margin, {"n": 10, "moe": 0.5}),
    (stats.confidence_sequence_bernoulli, {"k": 3, "n": 2}),
    (stats.alpha_spent_pocock, {"t": 1.5}),
    (stats.min_detectable_flips, {"method": "chi2"}),
    (stats.suite_repeat_summary, {"results": {}}),
]


@pytest.mark.parametrize("fn,kwargs", INVALID, ids=lambda x: getattr(x, "__name__", ""))
def test_invalid_input_raises_value_error_with_field_name(fn, kwargs):
    with pytest.raises(ValueError) as info:
        fn(**kwargs)
    message = str(info.value)
    assert any(name in message for name in kwargs) or "n_test" in message or "m_human" in message, message
