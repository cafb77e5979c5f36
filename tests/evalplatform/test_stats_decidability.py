"""Planning numbers of evalplatform.stats checked against independent computations: brute-force enumeration of
every outcome with the gates' own functions, published tables, and seeded Monte Carlo where nothing else will do."""

from __future__ import annotations

import itertools
import math
from statistics import NormalDist

import numpy as np
import pytest
from scipy import stats as sps

from evalplatform import stats


def _gate_by_enumeration(looks, confs, threshold, rate, method="wilson"):
    """P(PASS), P(FAIL) over looks by enumerating every stage count and calling pass_rate_gate itself."""
    bound = f"{method}_one_sided"
    stages = [looks[0]] + [b - a for a, b in zip(looks, looks[1:])]
    passed = failed = 0.0
    for counts in itertools.product(*[range(m + 1) for m in stages]):
        p = math.prod(sps.binom.pmf(k, m, rate) for k, m in zip(counts, stages))
        k = 0
        for j, (n, conf) in enumerate(zip(looks, confs)):
            k += counts[j]
            verdict = stats.pass_rate_gate(k, n, threshold, conf, bound)
            if verdict == "PASS":
                passed += p
                break
            if verdict == "FAIL":
                failed += p
                break
    return passed, failed


@pytest.mark.parametrize("looks, confs, threshold, rate, method", [
    ([12], [0.95], 0.75, 0.88, "wilson"),
    ([20], [0.95], 0.85, 0.97, "clopper_pearson"),
    ([8, 12, 16], [0.97, 0.98, 0.98], 0.7, 0.85, "wilson"),
    ([6, 10], [0.96, 0.99], 0.6, 0.8, "clopper_pearson"),
])
def test_absolute_gate_probabilities_equal_enumeration_with_the_gate_itself(looks, confs, threshold, rate, method):
    got = stats.absolute_gate_probabilities(looks, confs, threshold, rate, method=method)
    passed, failed = _gate_by_enumeration(looks, confs, threshold, rate, method)
    assert got.passed == pytest.approx(passed, abs=1e-12) and got.failed == pytest.approx(failed, abs=1e-12)
    assert got.passed + got.failed + got.inconclusive == pytest.approx(1.0)


def test_the_issues_dates_floor_passes_only_when_all_twelve_pass():
    # "12 dates cases can reach a lower bound of 0.75 only if all 12 pass (probability 0.22 at the true rate 0.88)"
    passes, _ = stats.absolute_outcomes(12, 0.75, 0.95)
    assert passes.tolist() == [False] * 12 + [True]
    assert stats.absolute_gate_probabilities([12], [0.95], 0.75, 0.88).passed == pytest.approx(0.88 ** 12)


def test_best_bound_and_cases_needed_for_a_perfect_result():
    assert stats.best_bound(20, 0.95, "clopper_pearson") == pytest.approx(0.05 ** (1 / 20))
    assert stats.best_bound(11, 0.95) == pytest.approx(11 / (11 + NormalDist().inv_cdf(0.95) ** 2))
    # Clopper-Pearson all-pass is the rule of three: n_all_pass_needed.
    for floor in (0.9, 0.95, 0.99):
        assert stats.n_for_perfect_pass(floor, 0.95, "clopper_pearson") == stats.n_all_pass_needed(1 - floor)
    # Wilson at k = n: n / (n + z^2) >= T  <=>  n >= z^2 T / (1 - T).
    z2 = NormalDist().inv_cdf(0.95) ** 2
    for floor in (0.75, 0.9, 0.95):
        assert stats.n_for_perfect_pass(floor, 0.95) == math.ceil(z2 * floor / (1 - floor))
    assert stats.n_for_perfect_pass(1.0, 0.95) is None
    # A ceiling: none bad must bring the upper bound to the ceiling.
    n = stats.n_for_perfect_pass(0.05, 0.95, kind="max")
    assert stats.best_bound(n, 0.95, kind="max") <= 0.05 < stats.best_bound(n - 1, 0.95, kind="max")


def test_paired_gate_probabilities_equal_enumeration_with_the_gate_itself():
    n, margin, q_b, q_c = 30, 0.1, 0.04, 0.07
    expected = {"PASS": 0.0, "FAIL_CONFIRMED_REGRESSION": 0.0, "INCONCLUSIVE": 0.0}
    for b in range(n + 1):
        for c in range(n + 1 - b):
            p = sps.multinomial.pmf([b, c, n - b - c], n, [q_b, q_c, 1 - q_b - q_c])
            expected[stats.regression_gate_paired(b, c, n, margin, 0.05)["verdict"]] += p
    got = stats.paired_gate_probabilities([n], [0.95], margin, q_b, q_c)
    assert got.passed == pytest.approx(expected["PASS"], abs=1e-9)
    assert got.failed == pytest.approx(expected["FAIL_CONFIRMED_REGRESSION"], abs=1e-9)


def test_paired_gate_probabilities_over_looks_equal_enumeration_with_the_gate_itself():
    looks, confs, margin, q = [8, 12], [0.9, 0.95], 0.3, (0.1, 0.2)

    def trinomial(m):
        return [((b, c), sps.multinomial.pmf([b, c, m - b - c], m, [q[0], q[1], 1 - sum(q)]))
                for b in range(m + 1) for c in range(m + 1 - b)]

    passed = 0.0
    for (b1, c1), p1 in trinomial(8):
        first = stats.regression_gate_paired(b1, c1, 8, margin, 1 - confs[0])["verdict"]
        if first == "PASS":
            passed += p1
        elif first == "INCONCLUSIVE":
            for (b2, c2), p2 in trinomial(4):
                if stats.regression_gate_paired(b1 + b2, c1 + c2, 12, margin, 1 - confs[1])["verdict"] == "PASS":
                    passed += p1 * p2
    assert stats.paired_gate_probabilities(looks, confs, margin, *q).passed == pytest.approx(passed, abs=1e-9)


def test_the_vectorized_tango_statistic_and_lower_bound_are_the_gates_own():
    from evalplatform.stats.paired import _tango_statistic

    for b, c, n, d in [(0, 0, 59, -0.05), (3, 7, 100, -0.1), (9, 12, 300, -0.05), (0, 5, 20, 0.02), (4, 0, 10, -0.3)]:
        assert stats.tango_statistic_grid(np.array([b]), np.array([c]), n, d)[0] == pytest.approx(
            _tango_statistic(b, c, n, d))
        assert stats.tango_lower_bound(b, c, n, 0.95) == pytest.approx(stats.paired_diff_ci_tango(b, c, n, 0.9)[0],
                                                                       abs=1e-9)


def test_rerun_distribution_is_binomial_at_most_flips_and_keeps_what_was_seen_without_flips():
    assert np.allclose(stats.rerun_distribution(30, 0.9), sps.binom.pmf(np.arange(31), 30, 0.9))
    assert np.allclose(stats.rerun_distribution(30, 0.9, 2 * 0.9 * 0.1, [1.0] * 27 + [0.0] * 3),
                       sps.binom.pmf(np.arange(31), 30, 0.9))
    still = stats.rerun_distribution(30, 0.9, 1e-12, [1.0] * 27 + [0.0] * 3)
    assert still[27] == pytest.approx(1.0)
    flaky = stats.rerun_distribution(3, 0.9, 0.02, [0.5, 1.0, 1.0])
    # the case seen at 1/2 passes about half the time; the two seen passing nearly always
    assert (flaky * np.arange(4)).sum() == pytest.approx(0.5 * (1 - 0.02 / 1.8) + 0.5 * 0.02 / 0.2
                                                         + 2 * (1 - 0.02 / 1.8))


def test_poisson_binomial_equals_enumeration():
    p = [0.2, 0.9, 0.5, 0.99]
    expected = np.zeros(5)
    for outcome in itertools.product([0, 1], repeat=4):
        expected[sum(outcome)] += math.prod(q if o else 1 - q for q, o in zip(p, outcome))
    assert np.allclose(stats.poisson_binomial(p), expected)


def test_pooled_discordance_is_the_flip_probability_with_a_half_pair_prior():
    assert stats.pooled_discordance([5], [3]) == pytest.approx((3 * 2 + 0.5) / (10 + 1))
    one = stats.case_flip_probability(5, 3)  # 2c(n-c)/(n(n-1)) = disagreeing pairs / pairs
    assert (3 * 2) / 10 == pytest.approx(one)
    assert stats.pooled_discordance([1, 1], [1, 0]) is None  # no case run twice
    assert stats.pooled_discordance([3] * 100, [3] * 100) == pytest.approx(0.5 / 301)
    shrunk = stats.pooled_discordance([2] * 10, [2] * 10, prior=0.04, prior_pairs=20)
    assert shrunk == pytest.approx(20 * 0.04 / 30)


def test_group_sequential_levels_match_the_published_obrien_fleming_boundary_and_control_the_error():
    # Two equally spaced looks, one-sided alpha 0.025, O'Brien-Fleming-type spending: c = 2.963, 1.969
    # (Jennison & Turnbull, table of Lan-DeMets boundaries).
    levels = stats.group_sequential_levels([0.5, 1.0], 0.025, "obrien_fleming")
    assert [NormalDist().inv_cdf(1 - a) for a in levels] == pytest.approx([2.963, 1.969], abs=2e-3)
    times = np.array([0.6, 0.8, 1.0])
    levels = stats.group_sequential_levels(times, 0.05, "pocock")
    bounds = np.array([NormalDist().inv_cdf(1 - a) for a in levels])
    rng = np.random.default_rng(1)
    paths = np.cumsum(rng.standard_normal((400_000, 3)) * np.sqrt(np.diff(np.r_[0.0, times])), axis=1)
    error = np.mean((paths / np.sqrt(times) >= bounds).any(axis=1))
    assert error == pytest.approx(0.05, abs=0.0015)
    # Later looks keep far more of their level than the union bound leaves them.
    assert all(g > b for g, b in zip(levels[1:], stats.alpha_per_look(times, 0.05, "pocock")[1:]))


def test_alpha_per_look_spends_exactly_alpha_by_the_last_look():
    for spending in ("pocock", "obrien_fleming"):
        per_look = stats.alpha_per_look([0.3, 0.7, 1.0], 0.05, spending)
        assert sum(per_look) == pytest.approx(0.05) and all(a > 0 for a in per_look)
    with pytest.raises(stats.StatsInputError):
        stats.alpha_per_look([0.5, 0.9], 0.05)


def test_a_sequential_absolute_gate_does_not_pass_a_rate_at_its_threshold_more_than_alpha():
    # The extension's error: at a true rate equal to the floor, P(PASS at any look) stays near alpha.
    looks = [59, 79, 99]
    confs = [1 - a for a in stats.group_sequential_levels([n / 99 for n in looks], 0.05)]
    assert stats.absolute_gate_probabilities(looks, confs, 0.8, 0.8).passed <= 0.06
    bonferroni = [1 - a for a in stats.alpha_per_look([n / 99 for n in looks], 0.05)]
    assert stats.absolute_gate_probabilities(looks, bonferroni, 0.8, 0.8, method="clopper_pearson").passed <= 0.05


def test_detectable_changes_are_where_the_gate_blocks_with_the_given_power():
    d = stats.absolute_detectable_change([60], [0.95], 0.8, 0.95, power=0.8)
    assert stats.absolute_gate_probabilities([60], [0.95], 0.8, 0.95 - d).blocked() == pytest.approx(0.8, abs=1e-4)
    drop = stats.paired_detectable_drop([150], [0.95], 0.1, 0.06)
    assert stats.paired_gate_probabilities([150], [0.95], 0.1, 0.03, 0.03 + drop).blocked() == pytest.approx(
        0.8, abs=1e-4)


def test_bad_planning_input_is_a_stats_error():
    with pytest.raises(stats.StatsInputError):
        stats.absolute_gate_probabilities([10, 5], [0.95, 0.95], 0.8, 0.9)
    with pytest.raises(stats.StatsInputError):
        stats.paired_gate_probabilities([10], [0.95], 0.1, 0.7, 0.6)
    with pytest.raises(stats.StatsInputError):
        stats.rerun_distribution(10, float("nan"))
