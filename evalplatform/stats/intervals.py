"""Confidence intervals and one-sided bounds for a pass rate k/n, and their exact coverage."""

from __future__ import annotations

from typing import Callable

import numpy as np

from . import _checks as chk

NO_DATA_INTERVAL = [0.0, 1.0]


def _wilson(k_arr: np.ndarray, n: int, conf: float) -> tuple[np.ndarray, np.ndarray]:
    """The Wilson score interval in closed form (what statsmodels computes; tested against it)."""
    z = chk.z_two_sided(conf)
    p = k_arr / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return centre - half, centre + half


def _clopper_pearson(k_arr: np.ndarray, n, conf: float) -> tuple[np.ndarray, np.ndarray]:
    """Clopper-Pearson from the inverse regularized beta (what statsmodels' "beta" method computes, without
    its seconds of import): lower = I^-1(alpha/2; k, n-k+1), upper = I^-1(1-alpha/2; k+1, n-k)."""
    from scipy import special

    half = (1.0 - conf) / 2.0
    with np.errstate(invalid="ignore", divide="ignore"):
        lo = special.betaincinv(np.maximum(k_arr, 1e-300), n - k_arr + 1, half)
        hi = special.betaincinv(k_arr + 1, np.maximum(n - k_arr, 1e-300), 1.0 - half)
    return np.nan_to_num(lo, nan=0.0), np.nan_to_num(hi, nan=1.0)


def _confint(k, n, conf: float, method: str) -> tuple[np.ndarray, np.ndarray]:
    """Two-sided interval, vectorized over k, with exact 0/1 at the extremes.

    Wilson is computed here (the run path needs only it, and statsmodels costs ~0.4 s to import);
    the other methods come from statsmodels.
    """
    k_arr = np.asarray(k, dtype=float)
    if method == "wilson":
        lo, hi = _wilson(k_arr, n, conf)
    elif method == "beta":
        lo, hi = _clopper_pearson(k_arr, n, conf)
    else:
        from statsmodels.stats.proportion import proportion_confint  # lazy: keeps `import evalplatform` fast

        lo, hi = proportion_confint(k_arr, n, alpha=1.0 - conf, method=method)
    lo = np.where(k_arr == 0, 0.0, np.clip(lo, 0.0, 1.0))
    hi = np.where(k_arr == n, 1.0, np.clip(hi, 0.0, 1.0))
    return lo, hi


def wilson_interval(k: int, n: int, conf: float = 0.95) -> list[float]:
    """Two-sided Wilson score interval [lower, upper] for k passes out of n cases.

    The default interval for reporting a pass rate: near-nominal coverage even close to 0 or 1,
    where Wald collapses. n = 0 gives the vacuous [0, 1] (the gate reports NO_DATA).
    """
    k, n = chk.k_of_n(k, n)
    conf = chk.level("conf", conf)
    if n == 0:
        return list(NO_DATA_INTERVAL)
    lo, hi = _confint(k, n, conf, "wilson")
    return [float(lo), float(hi)]


def wilson_lower_bound(k: int, n: int, conf: float = 0.95) -> float:
    """One-sided Wilson lower bound at level conf (lower end of the two-sided 2*conf-1 interval).

    What an absolute pass-rate gate compares with its threshold. 0.0 when n = 0.
    """
    k, n = chk.k_of_n(k, n)
    conf = chk.one_sided_level("conf", conf)
    if n == 0:
        return 0.0
    return float(_confint(k, n, 2 * conf - 1, "wilson")[0])


def wilson_upper_bound(k: int, n: int, conf: float = 0.95) -> float:
    """One-sided Wilson upper bound at level conf; a monitor alerts when it falls below the SLO."""
    k, n = chk.k_of_n(k, n)
    conf = chk.one_sided_level("conf", conf)
    if n == 0:
        return 1.0
    return float(_confint(k, n, 2 * conf - 1, "wilson")[1])


def clopper_pearson_interval(k: int, n: int, conf: float = 0.95) -> list[float]:
    """Two-sided Clopper-Pearson ("exact") interval from beta quantiles.

    Coverage is at least nominal for every true rate, so it is wider than Wilson; use it for
    safety or compliance suites where under-coverage is unacceptable.
    """
    k, n = chk.k_of_n(k, n)
    conf = chk.level("conf", conf)
    if n == 0:
        return list(NO_DATA_INTERVAL)
    lo, hi = _confint(k, n, conf, "beta")
    return [float(lo), float(hi)]


def clopper_pearson_lower_bound(k: int, n: int, conf: float = 0.95) -> float:
    """One-sided Clopper-Pearson lower bound Beta^-1(1-conf; k, n-k+1); alpha^(1/n) when all pass.

    Use for zero-failure claims ("failure rate <= f with 95% confidence").
    """
    k, n = chk.k_of_n(k, n)
    conf = chk.level("conf", conf)
    if n == 0 or k == 0:
        return 0.0
    from scipy import stats

    return float(stats.beta.ppf(1 - conf, k, n - k + 1))


def clopper_pearson_upper_bound(k: int, n: int, conf: float = 0.95) -> float:
    """One-sided Clopper-Pearson upper bound Beta^-1(conf; k+1, n-k); 1 when all pass."""
    k, n = chk.k_of_n(k, n)
    conf = chk.level("conf", conf)
    if n == 0 or k == n:
        return 1.0
    from scipy import stats

    return float(stats.beta.ppf(conf, k + 1, n - k))


def agresti_coull_interval(k: int, n: int, conf: float = 0.95) -> list[float]:
    """Agresti-Coull interval (add z^2/2 passes and failures, then Wald), clipped to [0, 1].

    Simple and acceptable; slightly wider than Wilson at the extremes.
    """
    k, n = chk.k_of_n(k, n)
    conf = chk.level("conf", conf)
    if n == 0:
        return list(NO_DATA_INTERVAL)
    from statsmodels.stats.proportion import proportion_confint

    lo, hi = proportion_confint(k, n, alpha=1.0 - conf, method="agresti_coull")
    return [chk.clip01(lo), chk.clip01(hi)]


def _sm_vec(method: str) -> Callable:
    def interval(k, n, conf):
        from statsmodels.stats.proportion import proportion_confint

        lo, hi = proportion_confint(np.asarray(k, dtype=float), n, alpha=1.0 - conf, method=method)
        return np.clip(lo, 0.0, 1.0), np.clip(hi, 0.0, 1.0)

    return interval


# Vectorized two-sided intervals by name: (k array, n, conf) -> (lower array, upper array).
INTERVAL_METHODS: dict[str, Callable] = {
    "wilson": lambda k, n, conf: _confint(k, n, conf, "wilson"),
    "clopper_pearson": lambda k, n, conf: _confint(k, n, conf, "beta"),
    "agresti_coull": _sm_vec("agresti_coull"),
    "wald": _sm_vec("normal"),
}


def interval_exact_coverage(method: str, n: int, p: float, conf: float = 0.95) -> float:
    """Exact coverage probability of a two-sided interval method at true rate p, by enumerating k.

    Shows how far a method's real coverage is from nominal at the n and pass rate of a suite
    (e.g. Wald covers 64% at n=20, p=0.95).
    """
    method = chk.one_of("method", method, INTERVAL_METHODS)
    n = chk.count("n", n, minimum=1)
    p = chk.probability("p", p)
    conf = chk.level("conf", conf)
    ks = np.arange(n + 1)
    lo, hi = INTERVAL_METHODS[method](ks, n, conf)
    covered = (lo <= p) & (p <= hi)
    from scipy import stats

    return float(np.sum(stats.binom.pmf(ks, n, p)[covered]))


# One-sided bounds a gate may use: name -> (lower_bound_fn, upper_bound_fn).
GATE_BOUNDS: dict[str, tuple[Callable, Callable]] = {
    "wilson_one_sided": (wilson_lower_bound, wilson_upper_bound),
    "clopper_pearson_one_sided": (clopper_pearson_lower_bound, clopper_pearson_upper_bound),
}


def pass_rate_gate(k: int, n: int, threshold: float, conf: float = 0.95, bound: str = "wilson_one_sided") -> str:
    """Three-state absolute gate "the true pass rate is at least threshold".

    PASS iff the one-sided lower bound >= threshold, FAIL iff the one-sided upper bound < threshold,
    INCONCLUSIVE otherwise, NO_DATA when n = 0 (never a pass). Use `clopper_pearson_one_sided`
    for zero-tolerance/safety suites.
    """
    k, n = chk.k_of_n(k, n)
    threshold = chk.probability("threshold", threshold)
    conf = chk.level("conf", conf)
    lower_fn, upper_fn = GATE_BOUNDS[chk.one_of("bound", bound, GATE_BOUNDS)]
    if n == 0:
        return "NO_DATA"
    if lower_fn(k, n, conf) >= threshold:
        return "PASS"
    if upper_fn(k, n, conf) < threshold:
        return "FAIL"
    return "INCONCLUSIVE"
