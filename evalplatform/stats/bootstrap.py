"""Paired bootstrap of the mean per-case score difference (continuous scores, epoch-averaged cases)."""

from __future__ import annotations

import numpy as np

from . import _checks as chk

# Resampling n cases with replacement is the same as drawing multinomial counts over the distinct
# differences, which costs n_boot x distinct instead of n_boot x n; eval scores usually take a
# handful of values (binary verdicts, epoch means), so this path is both exact and fast.
_MAX_DISTINCT = 256
# Above this many resampled cells, continuous differences are binned (see _binned_means).
_MAX_EXACT_CELLS = 20_000_000
_CHUNK_CELLS = 2_000_000


def _multinomial_means(values: np.ndarray, weights: np.ndarray, n: int, n_boot: int, rng) -> tuple[np.ndarray, np.ndarray]:
    draws = rng.multinomial(n, weights / n, size=n_boot)
    return draws, draws @ values / n


def _index_means(diffs: np.ndarray, n_boot: int, rng) -> np.ndarray:
    n = diffs.size
    means = np.empty(n_boot)
    rows = max(1, _CHUNK_CELLS // n)
    for start in range(0, n_boot, rows):
        stop = min(n_boot, start + rows)
        idx = rng.integers(0, n, size=(stop - start, n), dtype=np.int32)
        means[start:stop] = diffs[idx].mean(axis=1)
    return means


def _binned_means(diffs: np.ndarray, n_boot: int, rng) -> np.ndarray:
    """Large n with continuous differences: multinomial over equal-count quantile bins.

    Between-bin variation is resampled exactly; the within-bin part of each replicate's sum is a
    sum of many independent draws, so it is added as a normal term with its exact variance
    (sum over bins of count x within-bin variance). Only used when n is large, where that CLT step
    is accurate; it keeps 100k continuous pairs well under a second.
    """
    n = diffs.size
    bins = np.array_split(np.sort(diffs), _MAX_DISTINCT)
    sizes = np.array([b.size for b in bins], dtype=float)
    centres = np.array([b.mean() for b in bins])
    spreads = np.array([b.var() for b in bins])
    draws, means = _multinomial_means(centres, sizes, n, n_boot, rng)
    within_sd = np.sqrt(draws @ spreads) / n
    return means + rng.standard_normal(n_boot) * within_sd


def _boot_means(diffs: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    values, counts = np.unique(diffs, return_counts=True)
    if values.size <= _MAX_DISTINCT:
        return _multinomial_means(values, counts.astype(float), diffs.size, n_boot, rng)[1]
    if diffs.size * n_boot <= _MAX_EXACT_CELLS:
        return _index_means(diffs, n_boot, rng)
    return _binned_means(diffs, n_boot, rng)


def paired_bootstrap_mean_diff(
    candidate: np.ndarray, baseline: np.ndarray, conf: float = 0.95, n_boot: int = 2000, seed: int = 0
) -> dict:
    """Percentile bootstrap interval for mean(candidate - baseline) over aligned cases.

    Each element is one case's score (average epochs first), aligned by case. Resamples cases,
    never runs. Use for scores in [0, 1] or epoch-averaged cases; for single-epoch binary verdicts
    prefer the Tango interval. Report n_boot and seed; use n_boot >= 10000 for a blocking gate.
    Returns estimate/lower/upper (None when there are no pairs) plus se (bootstrap SD) and n.
    """
    cand = chk.array("candidate", candidate)
    base = chk.array("baseline", baseline)
    if cand.shape != base.shape:
        raise chk.StatsInputError(f"candidate, baseline: must be aligned per case, got {cand.size} and {base.size} scores")
    conf = chk.level("conf", conf)
    n_boot = chk.count("n_boot", n_boot, minimum=1)
    seed = chk.count("seed", seed)
    if cand.size == 0:
        return {"estimate": None, "lower": None, "upper": None, "se": None, "n": 0, "n_boot": n_boot, "seed": seed}
    diffs = cand - base
    means = _boot_means(diffs, n_boot, np.random.default_rng(seed))
    tail = (1 - conf) / 2
    lower, upper = np.quantile(means, [tail, 1 - tail])
    return {
        "estimate": float(diffs.mean()),
        "lower": float(lower),
        "upper": float(upper),
        "se": float(means.std()),
        "n": int(diffs.size),
        "n_boot": n_boot,
        "seed": seed,
    }
