"""Discrimination power of a suite: mutation scores and the smallest regression a paired test can detect."""

from __future__ import annotations

from typing import Callable

from scipy import stats

from . import _checks as chk
from .intervals import wilson_interval
from .paired import mcnemar_test


def _one_sided_exact(improvements: int, regressions: int) -> float:
    return float(stats.binom.cdf(improvements, improvements + regressions, 0.5))


# p-value of "the candidate regressed" from discordant counts, by test name.
FLIP_TESTS: dict[str, Callable[[int, int], float]] = {
    "exact_two_sided": lambda b, c: mcnemar_test(b, c)["p_exact"],
    "midp_two_sided": lambda b, c: mcnemar_test(b, c)["p_midp"],
    "exact_one_sided": _one_sided_exact,
}


def min_detectable_flips(alpha: float = 0.05, method: str = "exact_two_sided", improvements: int = 0) -> int:
    """Fewest PASS->FAIL flips a McNemar-type test can detect at level alpha, whatever the suite size.

    With no offsetting improvements: 6 for the exact two-sided test, 5 for mid-p or exact one-sided.
    A mutant (or regression) breaking fewer cases is undetectable by construction.
    """
    alpha = chk.level("alpha", alpha)
    test = FLIP_TESTS[chk.one_of("method", method, FLIP_TESTS)]
    improvements = chk.count("improvements", improvements)
    flips = improvements + 1
    while test(improvements, flips) > alpha:
        flips += 1
    return flips


def mutation_score(killed: int, total: int, conf: float = 0.95, equivalent: int = 0) -> dict:
    """Share of injected faults the suite or judge catches, killed/(total - equivalent), with a Wilson CI.

    Use to decide whether a suite is trustworthy as a gate before relying on it.
    """
    total = chk.count("total", total)
    equivalent = chk.count("equivalent", equivalent)
    if equivalent > total:
        raise chk.StatsInputError(f"equivalent: cannot exceed total ({equivalent} > {total})")
    killed, effective = chk.k_of_n(killed, total - equivalent, "killed", "total - equivalent")
    return {
        "mutation_score": killed / effective if effective else None,
        "ci": wilson_interval(killed, effective, conf),
        "n": effective,
    }


def mutant_detection_probability(n_pass: int, flip_prob: float, alpha: float = 0.05, method: str = "exact_two_sided") -> float:
    """Power of the paired test against a mutant that breaks each passing case independently with flip_prob.

    P(flips >= min_detectable_flips) with flips ~ Binomial(n_pass, flip_prob) and no improvements.
    """
    n_pass = chk.count("n_pass", n_pass)
    f = chk.probability("flip_prob", flip_prob)
    needed = min_detectable_flips(alpha, method, 0)
    return float(stats.binom.sf(needed - 1, n_pass, f))
