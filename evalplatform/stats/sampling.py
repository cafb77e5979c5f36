"""Pass and failure rates from sampled production traces, reweighted by how each trace was sampled."""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

from . import _checks as chk


def stratified_failure_rate(strata: Sequence[Mapping[str, int]], conf: float = 0.95) -> dict:
    """Failure rate over all traces from a stratified sample (Horvitz-Thompson / stratified SRSWOR).

    Each stratum is {N: traces in the stratum, n: traces sampled, fails: failures among them};
    strata must be fixed before judging (flagged, errored, thumbs-down, other). estimate =
    sum_h W_h p_h with W_h = N_h/N; se from Cochran's stratified variance with the finite-population
    correction. naive_unweighted (sum fails / sum n) is returned only to show the bias of ignoring
    the oversampling. A stratum with 0 failures contributes 0 variance: keep n_h reasonably large.
    """
    if not strata:
        raise chk.StatsInputError("strata: need at least one stratum")
    conf = chk.level("conf", conf)
    rows = []
    for i, stratum in enumerate(strata):
        if not isinstance(stratum, Mapping) or not {"N", "n", "fails"} <= set(stratum):
            raise chk.StatsInputError(f"strata[{i}]: must have keys N, n and fails")
        fails, n_h = chk.k_of_n(stratum["fails"], stratum["n"], f"strata[{i}].fails", f"strata[{i}].n")
        big_n = chk.count(f"strata[{i}].N", stratum["N"], minimum=1)
        if n_h == 0 or n_h > big_n:
            raise chk.StatsInputError(f"strata[{i}].n: must be between 1 and N={big_n}, got {n_h}")
        rows.append((big_n, n_h, fails))
    big_n, n_h, fails = (np.array(col, dtype=float) for col in zip(*rows))
    weight = big_n / big_n.sum()
    p_h = fails / n_h
    s2 = np.where(n_h > 1, n_h * p_h * (1 - p_h) / np.maximum(n_h - 1, 1), 0.0)
    variance = float(np.sum(weight**2 * (1 - n_h / big_n) * s2 / n_h))
    estimate = float(np.sum(weight * p_h))
    se = math.sqrt(variance)
    z = chk.z_two_sided(conf)
    design_weights = np.repeat(big_n / n_h, n_h.astype(int))
    return {
        "estimate": estimate,
        "se": se,
        "ci": [chk.clip01(estimate - z * se), chk.clip01(estimate + z * se)],
        "naive_unweighted": float(fails.sum() / n_h.sum()),
        "n": int(n_h.sum()),
        "kish_effective_n": float(design_weights.sum() ** 2 / np.sum(design_weights**2)),
    }


def horvitz_thompson_rate(passed: Sequence[bool], inclusion_prob: Sequence[float], conf: float = 0.95) -> dict:
    """Pass rate of the whole trace population from traces sampled with known inclusion probabilities.

    For hash-based (Poisson) sampling where failure signals were oversampled: each sampled trace
    carries the probability pi_i with which it was kept. estimate is the Hajek form of the
    Horvitz-Thompson estimator, sum(y/pi)/sum(1/pi) (the population size is itself estimated);
    se is its linearized Poisson-sampling SE, sqrt(sum((1-pi)/pi^2 (y-estimate)^2))/sum(1/pi).
    Bounds are estimate +/- z*se clipped to [0, 1]. Traces kept with pi = 1 add no sampling error.
    Also returns kish_effective_n: heavy weights shrink it. n = 0 returns estimate None, [0, 1].
    """
    y = chk.array("passed", passed)
    pi = chk.array("inclusion_prob", inclusion_prob)
    conf = chk.level("conf", conf)
    if y.shape != pi.shape:
        raise chk.StatsInputError(f"passed, inclusion_prob: need one probability per trace ({y.size} vs {pi.size})")
    if not np.all((y == 0) | (y == 1)):
        raise chk.StatsInputError("passed: values must be booleans (or 0/1)")
    if np.any(pi <= 0) or np.any(pi > 1):
        raise chk.StatsInputError("inclusion_prob: every probability must be in (0, 1]")
    if y.size == 0:
        return {"estimate": None, "se": None, "lower": 0.0, "upper": 1.0, "n": 0, "kish_effective_n": 0.0}
    w = 1.0 / pi
    population = w.sum()
    estimate = float(w @ y / population)
    se = math.sqrt(float(np.sum((1 - pi) * w * w * (y - estimate) ** 2))) / population
    z = chk.z_two_sided(conf)
    return {
        "estimate": estimate,
        "se": se,
        "lower": chk.clip01(estimate - z * se),
        "upper": chk.clip01(estimate + z * se),
        "n": int(y.size),
        "estimated_population": float(population),
        "kish_effective_n": float(population**2 / np.sum(w * w)),
    }
