"""Repeats (epochs) per case and grouped cases: pass@k, pass^k, flakiness and case-level standard errors."""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

from . import _checks as chk


def _n_c_k(n, c, k) -> tuple[int, int, int]:
    c, n = chk.k_of_n(c, n, k_name="c", n_name="n")
    k = chk.count("k", k, minimum=1)
    if k > n:
        raise chk.StatsInputError(f"k: the estimator needs at least k runs per case (k={k} > n={n})")
    return n, c, k


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for one case with c passes in n runs: 1 - C(n-c, k)/C(n, k) (Chen et al. 2021).

    Use when a verifier picks the best of k attempts. Product form for numerical stability;
    raises ValueError when k > n. The plug-in 1-(1-c/n)^k is biased.
    """
    n, c, k = _n_c_k(n, c, k)
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def pass_hat_k(n: int, c: int, k: int) -> float:
    """Unbiased pass^k (all k attempts succeed) for one case: C(c, k)/C(n, k) (Yao et al. 2024).

    Use when every user interaction must succeed (agents). Raises ValueError when k > n.
    """
    n, c, k = _n_c_k(n, c, k)
    if c < k:
        return 0.0
    j = np.arange(k)
    return float(np.prod((c - j) / (n - j)))


def case_flip_probability(n: int, c: int) -> float:
    """Unbiased estimate 2c(n-c)/(n(n-1)) of the chance two runs of a case disagree.

    Ranks flaky cases, and estimates the discordance rate psi for planning a paired gate.
    """
    c, n = chk.k_of_n(c, n, k_name="c", n_name="n")
    if n < 2:
        raise chk.StatsInputError(f"n: a flip probability needs at least 2 runs of the case, got {n}")
    return 2.0 * c * (n - c) / (n * (n - 1))


def resampling_variance_ratio(K: int, var_x: float, mean_sigma2: float) -> float:
    """Variance of the suite mean with K runs per case relative to K = 1 (Miller 2024 sec. 3.1).

    (Var(x) + E[sigma^2]/K) / (Var(x) + E[sigma^2]): only the within-case part shrinks, so once
    it is small relative to Var(x) more repeats buy nothing; spend the budget on more cases.
    """
    K = chk.count("K", K, minimum=1)
    var_x = chk.real("var_x", var_x)
    mean_sigma2 = chk.real("mean_sigma2", mean_sigma2)
    if var_x < 0 or mean_sigma2 < 0 or var_x + mean_sigma2 == 0:
        raise chk.StatsInputError("var_x, mean_sigma2: variances must be >= 0 and not both 0")
    return (var_x + mean_sigma2 / K) / (var_x + mean_sigma2)


def _as_binary_runs(case: str, runs) -> np.ndarray:
    arr = chk.array(f"results[{case}]", runs, allow_empty=False)
    if not np.all((arr == 0) | (arr == 1)):
        raise chk.StatsInputError(f"results[{case}]: runs must be pass (1/True) or fail (0/False)")
    return arr


def suite_repeat_summary(results: Mapping[str, Sequence], k: int | None = None) -> dict:
    """Summarize a suite run K times per case: pass@1, pass@k, pass^k, flaky cases, case-level SE.

    results maps case_id -> list of per-run verdicts (1/True = pass). k defaults to the smallest
    number of runs of any case; keys pass_at_k_{k} and pass_hat_k_{k} hold the suite means.
    Report pass@1, pass^k and pass@k side by side: their gap is the reliability story.
    """
    if not isinstance(results, Mapping) or not results:
        raise chk.StatsInputError("results: must map at least one case_id to its list of run verdicts")
    runs = {case: _as_binary_runs(case, r) for case, r in results.items()}
    n_runs = np.array([r.size for r in runs.values()])
    passes = np.array([int(r.sum()) for r in runs.values()])
    k = int(n_runs.min()) if k is None else chk.count("k", k, minimum=1)
    per_case_rate = passes / n_runs
    flaky = [case for case, r in runs.items() if 0 < r.sum() < r.size]
    n_cases = len(runs)
    return {
        "n_cases": n_cases,
        "k": k,
        "flaky_cases": flaky,
        "flaky_rate": len(flaky) / n_cases,
        "mean_pass_prob": float(per_case_rate.mean()),
        # The case is the unit: SE over per-case rates (ddof=1), never over the n x K runs.
        "se_pass_prob": float(per_case_rate.std(ddof=1) / math.sqrt(n_cases)) if n_cases > 1 else None,
        f"pass_at_k_{k}": float(np.mean([pass_at_k(int(n), int(c), k) for n, c in zip(n_runs, passes)])),
        f"pass_hat_k_{k}": float(np.mean([pass_hat_k(int(n), int(c), k) for n, c in zip(n_runs, passes)])),
    }


def clustered_pass_rate(
    k_per_cluster: Sequence[int],
    n_per_cluster: Sequence[int],
    conf: float = 0.95,
    alternative: str = "two-sided",
) -> dict:
    """Pass rate over repeated runs with a cluster-robust (CR0) SE, clusters = cases, observations = repeats.

    estimate = sum(k)/sum(n); se = sqrt(sum_c (k_c - estimate*n_c)^2) / sum(n), which is the
    Bernoulli SE sqrt(p(1-p)/n) when each case runs once. Bounds are estimate -/+ z*se clipped to
    [0, 1]; alternative="greater" gives a one-sided lower bound (upper = 1) for "at least T" gates.
    The normal bound degenerates when every run agrees (se = 0), so a gate should also require a
    minimum number of cases or use wilson_interval on the case count. No clusters -> ValueError.
    """
    k_arr = chk.array("k_per_cluster", k_per_cluster, allow_empty=False)
    n_arr = chk.array("n_per_cluster", n_per_cluster, allow_empty=False)
    if k_arr.shape != n_arr.shape:
        raise chk.StatsInputError(f"k_per_cluster, n_per_cluster: lengths differ ({k_arr.size} vs {n_arr.size})")
    if np.any(k_arr != np.round(k_arr)) or np.any(n_arr != np.round(n_arr)):
        raise chk.StatsInputError("k_per_cluster, n_per_cluster: counts must be integers")
    if np.any(n_arr < 1) or np.any(k_arr < 0) or np.any(k_arr > n_arr):
        raise chk.StatsInputError("k_per_cluster: need 0 <= k <= n and n >= 1 for every cluster")
    conf = chk.level("conf", conf)
    alternative = chk.one_of("alternative", alternative, {"two-sided", "greater"})
    n_obs = float(n_arr.sum())
    estimate = float(k_arr.sum()) / n_obs
    se = math.sqrt(float(np.sum((k_arr - estimate * n_arr) ** 2))) / n_obs
    if alternative == "greater":
        lower, upper = chk.clip01(estimate - chk.z_one_sided(conf) * se), 1.0
    else:
        z = chk.z_two_sided(conf)
        lower, upper = chk.clip01(estimate - z * se), chk.clip01(estimate + z * se)
    return {"estimate": estimate, "se": se, "lower": lower, "upper": upper,
            "n_clusters": int(k_arr.size), "n_obs": int(n_obs)}
