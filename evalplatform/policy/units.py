"""The units a metric counts: one outcome per (case, repeat), one value per case, and the cluster of each unit."""

from __future__ import annotations

import math

import polars as pl

from evalplatform import stats


class Missing(Exception):
    """The metric cannot be computed from what was selected (NO_DATA or ERROR, as the rule's on_missing says)."""


class RuleFailure(Exception):
    """The data or the rule make the metric meaningless: always ERROR."""


def cluster_expr(cluster: str) -> pl.Expr:
    """The independent unit of a row: its case, or the value of a grouping tag (the case when untagged)."""
    if cluster == "case":
        return pl.col("case_id")
    prefix = cluster[len("tag:"):] + ":"
    tagged = (pl.col("tags").list.eval(pl.element().filter(pl.element().str.starts_with(prefix)))
              .list.first().str.slice(len(prefix)))
    return pl.coalesce(tagged, pl.col("case_id"))


_SEVERITY = {"skipped": 0, "pass": 1, "fail": 2, "error": 3}
_BY_SEVERITY = ["skipped", "pass", "fail", "error"]


def case_repeat_outcomes(rows: pl.DataFrame, cluster: str = "case") -> pl.DataFrame:
    """One outcome per (case, repeat): error if any selected scorer errored, else fail if any failed, else pass.

    Skipped rows do not count; a (case, repeat) whose rows are all skipped is dropped.
    """
    worst = pl.col("outcome").replace_strict(_SEVERITY, default=3, return_dtype=pl.Int8).max()
    return (
        rows.group_by("case_id", "repeat")
        .agg(worst.alias("_sev"), cluster_expr(cluster).first().alias("_cluster"), pl.col("case_hash").max())
        .filter(pl.col("_sev") > 0)
        .with_columns(pl.col("_sev").replace_strict(list(range(4)), _BY_SEVERITY, return_dtype=pl.Utf8)
                      .alias("outcome"))
        .drop("_sev")
        # group_by order varies between runs; a fixed order keeps float sums, hence decisions, reproducible.
        .sort("case_id", "repeat")
    )


class Selected:
    """The rows a rule selected, with their (case, repeat) outcomes computed once for all rules that share them."""

    def __init__(self, rows: pl.DataFrame):
        self.rows = rows
        self._outcomes: dict[str, pl.DataFrame] = {}

    @property
    def height(self) -> int:
        return self.rows.height

    def case_outcomes(self, cluster: str) -> pl.DataFrame:
        if cluster not in self._outcomes:
            self._outcomes[cluster] = case_repeat_outcomes(self.rows, cluster)
        return self._outcomes[cluster]


def binomial_bounds(units: pl.DataFrame, success: str, conf: float, method: str) -> dict:
    """Estimate and one-sided bounds of a rate over units, each unit a 0/1 `success` in cluster `_cluster`.

    Independent units: the rule's one-sided Wilson or Clopper-Pearson bounds. When units share a cluster
    (repeats of one case, grouped cases) the cluster-robust (CR0) SE gives the design effect, and the
    interval is built on the Kish effective sample size (stats.md section 1): never n x repeats as independent.
    """
    n = units.height
    k = int(units[success].sum())
    per = units.group_by("_cluster").agg(pl.col(success).sum().alias("k"), pl.len().alias("n")).sort("_cluster")
    n_clusters = per.height
    lower_fn, upper_fn = stats.GATE_BOUNDS[f"{method}_one_sided"]
    out = {"n": n, "k": k, "estimate": k / n, "n_clusters": n_clusters, "confidence": conf}
    if n_clusters == n:
        out.update(lower=lower_fn(k, n, conf), upper=upper_fn(k, n, conf), method=method)
        return out
    robust = stats.clustered_pass_rate(per["k"].to_list(), per["n"].to_list(), conf=conf)
    p = k / n
    se_iid = math.sqrt(p * (1 - p) / n)
    # All units agreeing gives no within-data estimate of the correlation: assume the worst (one per cluster).
    deff = max(1.0, (robust["se"] / se_iid) ** 2) if se_iid > 0 else n / n_clusters
    n_eff = n / deff
    lo, hi = stats.INTERVAL_METHODS[method]([p * n_eff], n_eff, 2 * conf - 1)
    out.update(lower=float(lo[0]), upper=float(hi[0]), method=f"{method} on clustered n_eff",
               n_eff=round(n_eff, 2), design_effect=round(deff, 3), se_clustered=robust["se"])
    return out


def clustered_mean(values: pl.DataFrame, value: str, conf: float, method: str = "wilson") -> dict:
    """Mean of `value` (in [0, 1]) with one-sided bounds no tighter than the rule's binomial bound.

    The normal bound on the CR0 cluster-robust SE (Miller 2024 Eq. 4) collapses to a point when every
    case agrees (five all-pass cases give [1, 1]). So the bounds are the wider of that and the rule's
    Wilson or Clopper-Pearson bound at the observed mean on the effective number of cases, as for a
    pass rate (binomial_bounds): a mean of n values in [0, 1] is never known better than a rate on n
    cases. Computed with polars group sums (stats.se_clustered labels clusters through Python strings,
    too slow for a million rows). Fewer than two clusters give the vacuous interval: one case proves nothing.
    """
    n = values.height
    mean = float(values[value].mean())
    resid = values.group_by("_cluster").agg((pl.col(value) - mean).sum().alias("r")).sort("_cluster")
    n_clusters = resid.height
    se = math.sqrt(float((resid["r"] ** 2).sum())) / n
    out = {"n": n, "estimate": mean, "n_clusters": n_clusters, "se_clustered": se, "confidence": conf,
           "method": "normal, clustered SE"}
    if n_clusters < 2:
        out.update(lower=0.0, upper=1.0, method="vacuous: fewer than 2 clusters")
        return out
    from scipy.stats import norm

    z = float(norm.ppf(conf))
    lower, upper = max(0.0, mean - z * se), min(1.0, mean + z * se)
    p = min(1.0, max(0.0, mean))
    var_binomial = p * (1 - p) / n
    # All cases agreeing gives no within-data estimate of the correlation: assume the worst (one per cluster).
    deff = max(1.0, se ** 2 / var_binomial) if var_binomial > 0 else n / n_clusters
    n_eff = n / deff
    lo, hi = binomial_envelope(p, n_eff, conf, method)
    if lo < lower or hi > upper:
        out["method"] = f"{method} on n_eff (wider than normal, clustered SE)"
    out.update(lower=min(lower, lo), upper=max(upper, hi), n_eff=round(n_eff, 2), design_effect=round(deff, 3))
    return out


def binomial_envelope(estimate: float, n: float, conf: float, method: str) -> tuple[float, float]:
    """The rule's one-sided Wilson or Clopper-Pearson bounds at a rate `estimate` on n units: what no
    metric's bounds may be tighter than (a statistic of n cases cannot know more than n cases do)."""
    p = min(1.0, max(0.0, estimate))
    lo, hi = stats.INTERVAL_METHODS[method]([p * n], n, 2 * conf - 1)
    return float(lo[0]), float(hi[0])


def per_case_runs(units: pl.DataFrame, success: str) -> pl.DataFrame:
    """Runs n and successes c per case (the unit for pass@k, pass^k and paired comparisons with repeats)."""
    return units.group_by("case_id").agg(
        pl.len().alias("n"), pl.col(success).sum().alias("c"),
        pl.col("_cluster").first(), pl.col("case_hash").max(),
    ).sort("case_id")
