"""The metrics a rule can bound, as a registry: how each is computed absolutely and per case for a baseline."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping

import polars as pl

from evalplatform import results as rt
from evalplatform import stats
from evalplatform.policy.units import (
    Missing,
    RuleFailure,
    Selected,
    binomial_bounds,
    binomial_envelope,
    clustered_mean,
    cluster_expr,
    per_case_runs,
)

if TYPE_CHECKING:
    from evalplatform.policy.model import JudgeCalibration, Rule

Calibrations = Mapping[str, "JudgeCalibration"]


@dataclass(frozen=True)
class MetricSpec:
    name: str
    higher_is_better: bool
    # absolute(selected, rule, calibrations) -> numbers with estimate, lower, upper (None for a point metric).
    absolute: Callable[..., dict[str, Any]]
    # per_case(selected, rule) -> case_id, case_hash, _cluster, value, n: the paired unit for baseline comparisons.
    per_case: Callable[..., pl.DataFrame] | None = None
    # "paired": per-case values compared case by case; "ratio": whole-run values, bound as a fraction.
    relative: str | None = "paired"
    probability: bool = True
    needs_k: bool = False
    needs_scorer: bool = False
    # Whether a rule's `errors` and `max_error_share` change this metric; where they cannot, the
    # policy loader refuses them rather than let a reader believe they apply.
    honours_errors: bool = True

    @property
    def bounds(self) -> tuple[str, ...]:
        absolute = ("min",) if self.higher_is_better else ("max",)
        if self.name == "mean_score":
            absolute = ("min", "max")
        if self.relative is None:
            return absolute
        return absolute + (("max_drop",) if self.higher_is_better else ("max_increase",))


METRICS: dict[str, MetricSpec] = {}


def metric(name: str, **kw):
    def register(fn):
        METRICS[name] = MetricSpec(name=name, absolute=fn, **kw)
        return fn
    return register


def _with_per_case(name: str):
    def register(fn):
        spec = METRICS[name]
        METRICS[name] = MetricSpec(**{**spec.__dict__, "per_case": fn})
        return fn
    return register


# -- pass rates ------------------------------------------------------------------------------------


def _decided_units(sel: Selected, rule: "Rule") -> tuple[pl.DataFrame, dict]:
    """(case, repeat) outcomes with a 0/1 `_ok`; errors count as not passing, or leave under `errors: exclude`."""
    units = sel.case_outcomes(rule.cluster)
    if units.height == 0:
        raise Missing("every selected row is skipped")
    n_error = int((units["outcome"] == "error").sum())
    extra = {"n_error": n_error}
    if rule.errors == "exclude":
        share = n_error / units.height
        if share > rule.max_error_share:
            raise RuleFailure(f"{n_error} of {units.height} case runs errored ({share:.1%}, above max_error_share "
                              f"{rule.max_error_share:.0%}); errors never count as passes")
        units = units.filter(pl.col("outcome") != "error")
        if units.height == 0:
            raise RuleFailure("every selected case errored")
    return units.with_columns((pl.col("outcome") == "pass").cast(pl.Int64).alias("_ok")), extra


@metric("pass_rate", higher_is_better=True)
def pass_rate(sel: Selected, rule: "Rule", calibrations=None) -> dict:
    """Case-level pass rate: a case run passes when every selected scorer row of it passes."""
    units, extra = _decided_units(sel, rule)
    return {**binomial_bounds(units, "_ok", rule.confidence, rule.method), **extra}


@_with_per_case("pass_rate")
def pass_rate_per_case(sel: Selected, rule: "Rule") -> pl.DataFrame:
    units, _ = _decided_units(sel, rule)
    return per_case_runs(units, "_ok").with_columns((pl.col("c") / pl.col("n")).alias("value"))


def _scorer_units(sel: Selected, rule: "Rule") -> tuple[pl.DataFrame, dict]:
    units = sel.rows.filter(pl.col("outcome") != "skipped").with_columns(cluster_expr(rule.cluster).alias("_cluster"))
    if units.height == 0:
        raise Missing("every selected row is skipped")
    n_error = int((units["outcome"] == "error").sum())
    if rule.errors == "exclude":
        share = n_error / units.height
        if share > rule.max_error_share:
            raise RuleFailure(f"{n_error} of {units.height} scorer rows errored ({share:.1%}, above "
                              f"max_error_share {rule.max_error_share:.0%})")
        units = units.filter(pl.col("outcome") != "error")
    return units.with_columns((pl.col("outcome") == "pass").cast(pl.Int64).alias("_ok")), {"n_error": n_error}


@metric("scorer_pass_rate", higher_is_better=True, needs_scorer=True)
def scorer_pass_rate(sel: Selected, rule: "Rule", calibrations=None) -> dict:
    """Share of the selected scorer's rows that pass (clustered by case across repeats)."""
    units, extra = _scorer_units(sel, rule)
    if units.height == 0:
        raise RuleFailure("every selected scorer row errored")
    return {**binomial_bounds(units, "_ok", rule.confidence, rule.method), **extra}


@_with_per_case("scorer_pass_rate")
def scorer_pass_rate_per_case(sel: Selected, rule: "Rule") -> pl.DataFrame:
    units, _ = _scorer_units(sel, rule)
    return per_case_runs(units, "_ok").with_columns((pl.col("c") / pl.col("n")).alias("value"))


@metric("error_rate", higher_is_better=False, honours_errors=False)
def error_rate(sel: Selected, rule: "Rule", calibrations=None) -> dict:
    """Share of case runs with an errored scorer row (an error is neither a pass nor a fail)."""
    units = sel.case_outcomes(rule.cluster)
    if units.height == 0:
        raise Missing("every selected row is skipped")
    units = units.with_columns((pl.col("outcome") == "error").cast(pl.Int64).alias("_bad"))
    return binomial_bounds(units, "_bad", rule.confidence, rule.method)


@_with_per_case("error_rate")
def error_rate_per_case(sel: Selected, rule: "Rule") -> pl.DataFrame:
    # Paired comparisons treat higher as better, so the per-case value is the share of runs without error.
    units = sel.case_outcomes(rule.cluster)
    units = units.with_columns((pl.col("outcome") != "error").cast(pl.Int64).alias("_ok"))
    return per_case_runs(units, "_ok").with_columns((pl.col("c") / pl.col("n")).alias("value"))


# -- scores ----------------------------------------------------------------------------------------


def _scored(sel: Selected, rule: "Rule") -> pl.DataFrame:
    """One value per case: its rows' mean score. An errored row is a score of 0 (`errors: fail`), or
    leaves (`errors: exclude`, then the rule is ERROR above max_error_share): never silently dropped."""
    rows = sel.rows.filter(pl.col("outcome") != "skipped")
    errored = pl.col("outcome") == "error"
    if rule.errors == "exclude":
        n_error, n_all = int(rows.select(errored.sum()).item()), rows.height
        if n_all and n_error / n_all > rule.max_error_share:
            raise RuleFailure(f"{n_error} of {n_all} scorer rows errored ({n_error / n_all:.1%}, above "
                              f"max_error_share {rule.max_error_share:.0%}); errors never count as scores")
        scored = rows.filter(~errored & pl.col("score").is_not_null())
    else:
        scored = (rows.with_columns(pl.when(errored).then(pl.lit(0.0)).otherwise(pl.col("score")).alias("score"))
                  .filter(pl.col("score").is_not_null()))
    if scored.height == 0:
        if rows.height and rule.errors == "exclude" and rows.select(errored.all()).item():
            raise RuleFailure("every selected scorer row errored")
        raise Missing("no selected row has a score")
    # Repeats are averaged within their case first: the case (or group) is the unit.
    return (scored.with_columns(cluster_expr(rule.cluster).alias("_cluster"))
            .group_by("case_id").agg(pl.col("score").mean().alias("value"), pl.len().alias("n"),
                                     pl.col("_cluster").first(), pl.col("case_hash").max())
            .sort("case_id"))


@metric("mean_score", higher_is_better=True, needs_scorer=True)
def mean_score(sel: Selected, rule: "Rule", calibrations=None) -> dict:
    """Mean score of a scorer over cases (repeats averaged per case first)."""
    per = _scored(sel, rule)
    out = clustered_mean(per, "value", rule.confidence, rule.method)
    out["n_rows"] = int(per["n"].sum())
    out["n_error"] = int((sel.rows["outcome"] == "error").sum())
    return out


@_with_per_case("mean_score")
def mean_score_per_case(sel: Selected, rule: "Rule") -> pl.DataFrame:
    return _scored(sel, rule)


def _attempts(sel: Selected, rule: "Rule", estimator: Callable[[int, int, int], float]) -> pl.DataFrame:
    units, _ = _decided_units(sel, rule)
    per = per_case_runs(units, "_ok")
    short = per.filter(pl.col("n") < rule.k).sort("case_id")
    if short.height:
        first = short.row(0, named=True)
        raise RuleFailure(f"case {first['case_id']!r} has {first['n']} run(s) but k={rule.k} "
                          f"({short.height} case(s) short: mixed repeat shapes); rerun with at least k repeats")
    # The estimator depends only on (n, c): evaluate it once per distinct pair, not once per case.
    combos = per.select("n", "c").unique()
    table = combos.with_columns(pl.Series("value", [estimator(int(n), int(c), rule.k)
                                                    for n, c in combos.iter_rows()], dtype=pl.Float64))
    return per.join(table, on=["n", "c"], how="left", maintain_order="left")


@metric("pass_at_k", higher_is_better=True, needs_k=True)
def pass_at_k(sel: Selected, rule: "Rule", calibrations=None) -> dict:
    """Unbiased pass@k per case (Chen et al. 2021), averaged over cases."""
    return clustered_mean(_attempts(sel, rule, stats.pass_at_k), "value", rule.confidence,
                          rule.method) | {"k_attempts": rule.k}


@metric("pass_hat_k", higher_is_better=True, needs_k=True)
def pass_hat_k(sel: Selected, rule: "Rule", calibrations=None) -> dict:
    """Unbiased pass^k per case (all k attempts succeed; Yao et al. 2024), averaged over cases."""
    return clustered_mean(_attempts(sel, rule, stats.pass_hat_k), "value", rule.confidence,
                          rule.method) | {"k_attempts": rule.k}


@_with_per_case("pass_at_k")
def pass_at_k_per_case(sel: Selected, rule: "Rule") -> pl.DataFrame:
    return _attempts(sel, rule, stats.pass_at_k)


@_with_per_case("pass_hat_k")
def pass_hat_k_per_case(sel: Selected, rule: "Rule") -> pl.DataFrame:
    return _attempts(sel, rule, stats.pass_hat_k)


# -- calls: latency and cost ------------------------------------------------------------------------


def call_values(sel: Selected, column: str) -> pl.Series:
    values = rt.call_rows(sel.rows)[column].drop_nulls()
    if values.len() == 0:
        raise Missing(f"no selected model call records {column}")
    return values


@metric("p95_latency_ms", higher_is_better=False, relative="ratio", probability=False, honours_errors=False)
def p95_latency_ms(sel: Selected, rule: "Rule", calibrations=None) -> dict:
    """95th percentile of per-call latency (one value per case run, not per scorer row); a point estimate."""
    values = call_values(sel, "latency_ms")
    return {"n": values.len(), "estimate": float(values.quantile(0.95, interpolation="linear")),
            "lower": None, "upper": None, "method": "point estimate"}


@metric("cost_per_case", higher_is_better=False, relative="ratio", probability=False, honours_errors=False)
def cost_per_case(sel: Selected, rule: "Rule", calibrations=None) -> dict:
    """Mean cost in USD of one case run (one model call), from the calls that record a cost."""
    values = call_values(sel, "cost_usd")
    return {"n": values.len(), "estimate": float(values.mean()), "total_usd": float(values.sum()),
            "lower": None, "upper": None, "method": "point estimate"}


# -- judge-corrected pass rate ----------------------------------------------------------------------


def resolve_calibration(rule: "Rule", calibrations: Calibrations | None) -> "JudgeCalibration":
    if rule.judge.counts is not None:
        return rule.judge.counts
    found = (calibrations or {}).get(rule.judge.calibration)
    if found is None:
        raise Missing(f"no calibration record {rule.judge.calibration!r} was supplied")
    return found


def judge_corrected_bounds(k: int, n: int, cal: "JudgeCalibration", conf: float, method: str) -> dict:
    """Rogan-Gladen corrected rate of k judge PASS verdicts out of n, with one-sided bounds at conf.

    The interval carries the calibration set's uncertainty (m_human_pass, m_human_fail), which usually
    dominates. The delta method collapses to a point when the observed rate and Se (or Sp) sit at 0 or 1
    (plug-in variances are zero); the Lee et al. (2025) smoothed interval does not; nor may a corrected
    rate on n cases be surer than an exactly observed one (tiny n, perfect judge): the bounds are the
    widest of the three. Shared by the rule and by planning (which enumerates k).
    """
    counts = (k, n, cal.judge_pass_on_human_pass, cal.m_human_pass, cal.judge_fail_on_human_fail, cal.m_human_fail)
    rg = stats.rogan_gladen_ci_delta(*counts, conf=2 * conf - 1)
    lee = stats.judge_corrected_ci_lee2025(*counts, conf=2 * conf - 1)
    floor = binomial_envelope(rg["theta"], n, conf, method)
    return {"estimate": rg["theta"], "lower": min(rg["ci"][0], lee[0], floor[0]),
            "upper": max(rg["ci"][1], lee[1], floor[1]), "delta_ci": rg["ci"], "lee2025_ci": lee, "se": rg["se"],
            "se_ignoring_calibration": rg["se_ignoring_calibration"]}


def judge_youden(cal: "JudgeCalibration") -> tuple[float, float, float]:
    sens = cal.judge_pass_on_human_pass / cal.m_human_pass
    spec = cal.judge_fail_on_human_fail / cal.m_human_fail
    return sens, spec, sens + spec - 1


def first_verdicts(units: pl.DataFrame) -> pl.DataFrame:
    """One judge verdict per case: its lowest repeat. Repeated verdicts of a case are not independent
    trials, and which repeat counts is fixed before any verdict is seen, so the choice cannot favour one."""
    if units.select(pl.col("case_id").n_unique()).item() == units.height:
        return units
    return units.sort("case_id", "repeat").unique("case_id", keep="first", maintain_order=True)


@metric("judge_corrected_pass_rate", higher_is_better=True, relative=None, needs_scorer=True)
def judge_corrected_pass_rate(sel: Selected, rule: "Rule", calibrations=None) -> dict:
    """The judge's observed pass rate corrected by Rogan-Gladen, with a delta-method interval.

    One verdict per case (its first repeat when the run has repeats): repeated verdicts are not
    independent trials.
    """
    cal = resolve_calibration(rule, calibrations)
    units, extra = _scorer_units(sel, rule)
    if units.height == 0:
        raise RuleFailure("every selected judge row errored")
    n_rows = units.height
    units = first_verdicts(units)
    sens, spec, youden = judge_youden(cal)
    if youden < rule.judge.min_youden:
        raise RuleFailure(f"judge too weak to correct: Se + Sp - 1 = {youden:.3f} < {rule.judge.min_youden} "
                          "(recalibrate the judge or gate on scorer_pass_rate)")
    k, n = int(units["_ok"].sum()), units.height
    bounds = judge_corrected_bounds(k, n, cal, rule.confidence, rule.method)
    out = {"n": n, "k": k, "observed": k / n, **bounds,
           "sensitivity": sens, "specificity": spec, "m_human_pass": cal.m_human_pass,
           "m_human_fail": cal.m_human_fail,
           "method": f"rogan-gladen, widest of delta method, lee2025 and {rule.method} on n",
           "confidence": rule.confidence, **extra}
    if n_rows > n:
        out["verdicts_ignored"] = n_rows - n
        out["method"] += " (first repeat of each case)"
    return out
