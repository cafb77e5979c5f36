"""Standard errors of mean scores (Miller 2024): Bernoulli, cluster-robust, and paired differences."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from . import _checks as chk


def se_bernoulli(k: int, n: int) -> float:
    """Standard error sqrt(p(1-p)/n) of a pass rate k/n (Miller 2024 Eq. 2, ddof=0 convention)."""
    k, n = chk.k_of_n(k, n)
    if n == 0:
        raise chk.StatsInputError("n: a standard error needs at least one case")
    p = k / n
    return math.sqrt(p * (1 - p) / n)


def _cluster_codes(clusters: Sequence, size: int) -> np.ndarray:
    if len(clusters) != size:
        raise chk.StatsInputError(f"clusters: need one cluster label per score ({len(clusters)} labels, {size} scores)")
    try:
        return np.unique(np.asarray(clusters, dtype=object).astype(str), return_inverse=True)[1]
    except TypeError as exc:
        raise chk.StatsInputError(f"clusters: labels must be hashable ({exc})") from None


def se_clustered(scores: Sequence[float], clusters: Sequence, finite_cluster_correction: bool = False) -> float:
    """Cluster-robust SE of a mean score (Miller 2024 Eq. 4): sqrt(sum_c (sum_{i in c}(s_i - mean))^2) / n.

    Use when cases share a source (one document, templated variants, one case's repeats).
    finite_cluster_correction=True multiplies the variance by C/(C-1) (CR1, as inspect_ai does);
    the default is CR0, which equals the ddof=0 iid SE when every cluster is a single case.
    """
    s = chk.array("scores", scores, allow_empty=False)
    codes = _cluster_codes(clusters, s.size)
    residual_sums = np.bincount(codes, weights=s - s.mean())
    variance = float(np.sum(residual_sums**2)) / s.size**2
    n_clusters = residual_sums.size
    if finite_cluster_correction:
        if n_clusters < 2:
            raise chk.StatsInputError("clusters: the finite-cluster correction needs at least 2 clusters")
        variance *= n_clusters / (n_clusters - 1)
    return math.sqrt(variance)


def se_paired(scores_a: Sequence[float], scores_b: Sequence[float]) -> dict:
    """Paired SE of mean(a - b) over the same cases (Miller 2024 Eq. 7, ddof=1), next to the unpaired SE.

    Use for every A/B comparison on a shared suite: pairing removes case difficulty both runs
    share. se_unpaired (Eq. 5) is shown for contrast; correlation is corr(a, b) (None if constant).
    """
    a = chk.array("scores_a", scores_a, allow_empty=False)
    b = chk.array("scores_b", scores_b, allow_empty=False)
    if a.shape != b.shape:
        raise chk.StatsInputError(f"scores_a, scores_b: must be aligned per case ({a.size} vs {b.size} scores)")
    if a.size < 2:
        raise chk.StatsInputError("scores_a: a paired SE needs at least 2 cases")
    n = a.size
    d = a - b
    sd_a, sd_b = a.std(ddof=1), b.std(ddof=1)
    return {
        "mean_diff": float(d.mean()),
        "se_paired": float(d.std(ddof=1) / math.sqrt(n)),
        "se_unpaired": float(math.sqrt((sd_a**2 + sd_b**2) / n)),
        "correlation": float(np.corrcoef(a, b)[0, 1]) if sd_a > 0 and sd_b > 0 else None,
        "n": n,
    }
