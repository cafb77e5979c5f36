"""Candidate-vs-baseline comparisons on the same cases with binary verdicts: McNemar, Tango, non-inferiority."""

from __future__ import annotations

import math

from scipy import optimize, special, stats

from . import _checks as chk


def _discordant(b, c, n=None) -> tuple[int, int, int | None]:
    b = chk.count("b", b)
    c = chk.count("c", c)
    if n is None:
        return b, c, None
    n = chk.count("n", n)
    if b + c > n:
        raise chk.StatsInputError(f"b + c: discordant pairs ({b} + {c}) cannot exceed the {n} paired cases")
    return b, c, n


def mcnemar_test(b: int, c: int) -> dict:
    """McNemar test on discordant pairs: exact conditional and mid-p two-sided p-values.

    b = improvements (candidate PASS, baseline FAIL), c = regressions. Mid-p is the recommended
    "did anything change" diagnostic (Fagerland et al. 2013); it is not a release gate (no margin).
    With b = c the mid-p is 1 - P(X=b)/2; with no discordant pairs both p-values are 1.
    """
    b, c, _ = _discordant(b, c)
    m = b + c
    if m == 0:
        return {"p_exact": 1.0, "p_midp": 1.0, "b": b, "c": c}
    low = min(b, c)
    p_exact = stats.binomtest(low, m, 0.5).pvalue
    point = stats.binom.pmf(low, m, 0.5)
    p_midp = 1.0 - 0.5 * point if b == c else 2.0 * stats.binom.cdf(low, m, 0.5) - point
    return {"p_exact": float(min(1.0, p_exact)), "p_midp": float(min(1.0, p_midp)), "b": b, "c": c}


def _tango_statistic(b: int, c: int, n: int, delta0: float) -> float:
    """Tango's score statistic T(delta0) with the closed-form restricted MLE of the regression cell."""
    numerator = b - c - n * delta0
    if numerator == 0:
        return 0.0
    a_coef = 2.0 * n
    b_coef = -b - c + (2.0 * n - b + c) * delta0
    c_coef = -c * delta0 * (1.0 - delta0)
    q21 = (math.sqrt(max(0.0, b_coef * b_coef - 4 * a_coef * c_coef)) - b_coef) / (2 * a_coef)
    variance = n * (2.0 * q21 + delta0 * (1.0 - delta0))
    if variance <= 0:
        return math.copysign(math.inf, numerator)
    return numerator / math.sqrt(variance)


def _tango_bounds(b: int, c: int, n: int, z: float) -> list[float]:
    # T is decreasing in delta0; each end is where T crosses +z (lower) or -z (upper).
    estimate = (b - c) / n
    eps = 1e-12

    def root(target: float, lo: float, hi: float) -> float:
        f = lambda d: _tango_statistic(b, c, n, d) - target  # noqa: E731
        outer = lo if target > 0 else hi
        never_crosses = f(outer) <= 0 if target > 0 else f(outer) >= 0
        if never_crosses:
            return -1.0 if target > 0 else 1.0
        return optimize.brentq(f, lo, hi, xtol=1e-14, rtol=1e-14)

    lower = root(z, -1.0 + eps, estimate)
    upper = root(-z, estimate, 1.0 - eps)
    return [max(-1.0, float(lower)), min(1.0, float(upper))]


def paired_diff_ci_tango(b: int, c: int, n: int, conf: float = 0.95) -> list[float]:
    """Tango score interval for the paired difference delta = p_cand - p_base.

    Recommended interval for a regression gate on aligned binary verdicts (Fagerland et al. 2014):
    behaves well with few discordant pairs and even with b = c = 0. n = 0 gives [-1, 1].
    """
    b, c, n = _discordant(b, c, n)
    conf = chk.level("conf", conf)
    if n == 0:
        return [-1.0, 1.0]
    return _tango_bounds(b, c, n, chk.z_two_sided(conf))


def paired_diff_ci_tango_envelope(diffs, conf: float = 0.95) -> list[float]:
    """The Tango interval at the discordance of per-case differences d_i in [-1, 1] (scores, epoch means):
    b = sum of positive d_i, c = sum of negative |d_i|, as if each case were a binary pair.

    Var(d) <= E|d| - (E d)^2, with equality only for d in {-1, 0, 1}: binary pairs are the most variable
    data with this discordance, so no interval on these n cases should be narrower. A percentile
    bootstrap is: when every case moved by the same amount it collapses to a point.
    """
    import numpy as np

    d = np.asarray(diffs, dtype=float)
    conf = chk.level("conf", conf)
    if d.size == 0:
        return [-1.0, 1.0]
    if not np.all(np.isfinite(d)) or np.any(np.abs(d) > 1):
        raise chk.StatsInputError("diffs: per-case differences must be finite and within [-1, 1]")
    b, c = float(np.clip(d, 0, None).sum()), float(np.clip(-d, 0, None).sum())
    return _tango_bounds(b, c, int(d.size), chk.z_two_sided(conf))


def paired_diff_ci_wald(b: int, c: int, n: int, conf: float = 0.95) -> list[float]:
    """Wald interval for the paired difference (Miller Eq. 7 with ddof=0).

    Shown for comparison only: poor when b + c is small; gates should use the Tango interval.
    """
    b, c, n = _discordant(b, c, n)
    conf = chk.level("conf", conf)
    if n == 0:
        return [-1.0, 1.0]
    delta = (b - c) / n
    half = chk.z_two_sided(conf) * math.sqrt(max(0.0, (b + c) / n - delta * delta) / n)
    return [max(-1.0, delta - half), min(1.0, delta + half)]


def noninferiority_test_paired(b: int, c: int, n: int, margin: float, alpha: float = 0.05) -> dict:
    """One-sided Tango test of H0: delta <= -margin ("regressed by at least margin").

    Returns the score z = T(-margin), its one-sided p-value, the lower end of the two-sided
    (1-2*alpha) Tango interval, and non_inferior (lower bound > -margin).
    """
    b, c, n = _discordant(b, c, n)
    margin = chk.probability("margin", margin, open_low=True, open_high=True)
    alpha = chk.level("alpha", alpha)
    if n == 0:
        return {"z": 0.0, "p_value": 1.0, "lower_bound": -1.0, "non_inferior": False, "n": 0}
    z = _tango_statistic(b, c, n, -margin)
    lower = _tango_bounds(b, c, n, chk.z_one_sided(1 - alpha))[0]
    return {"z": z, "p_value": float(special.ndtr(-z)), "lower_bound": lower, "non_inferior": lower > -margin, "n": n}


def regression_gate_paired(b: int, c: int, n: int, margin: float, alpha: float = 0.05) -> dict:
    """Regression-vs-baseline gate on aligned cases, from the two-sided (1-2*alpha) Tango interval [L, U].

    PASS iff L > -margin; FAIL_CONFIRMED_REGRESSION iff U < -margin; INCONCLUSIVE otherwise
    (blocks: add cases or epochs); NO_DATA when there are no paired cases.
    """
    b, c, n = _discordant(b, c, n)
    margin = chk.probability("margin", margin, open_low=True, open_high=True)
    alpha = chk.level("alpha", alpha)
    if n == 0:
        return {"verdict": "NO_DATA", "ci": [-1.0, 1.0], "estimate": None, "n": 0, "b": b, "c": c}
    lower, upper = _tango_bounds(b, c, n, chk.z_one_sided(1 - alpha))
    if lower > -margin:
        verdict = "PASS"
    elif upper < -margin:
        verdict = "FAIL_CONFIRMED_REGRESSION"
    else:
        verdict = "INCONCLUSIVE"
    return {"verdict": verdict, "ci": [lower, upper], "estimate": (b - c) / n, "n": n, "b": b, "c": c,
            "p_midp": mcnemar_test(b, c)["p_midp"]}
