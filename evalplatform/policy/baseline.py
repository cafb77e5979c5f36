"""Relative rules: the candidate against the baseline on aligned cases (paired non-inferiority, bootstrap, ratios)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from evalplatform import stats
from evalplatform.policy import ratio
from evalplatform.policy.metrics import METRICS
from evalplatform.policy.units import Missing, RuleFailure, Selected

if TYPE_CHECKING:
    from evalplatform.policy.model import Rule


def _hashes(per_case: pl.DataFrame) -> dict[str, str | None]:
    return dict(zip(per_case["case_id"].to_list(), per_case["case_hash"].to_list()))


def align(base: pl.DataFrame, cand: pl.DataFrame) -> tuple[pl.DataFrame, dict]:
    """Pairs (base_id, cand_id) by case id, then by content hash for renames; changed content is left out.

    A case without a recorded hash (most imported files) cannot be checked for changed content
    or renames: it pairs by id only, and the count of such pairs is reported.
    """
    b, c = _hashes(base), _hashes(cand)
    unknown = {cid for cid in b.keys() & c.keys() if b[cid] is None or c[cid] is None}
    # Ids on one side only with no hash get a private token so they can never be taken for a rename.
    def keyed(side: dict[str, str | None], tag: str) -> dict[str, str]:
        return {cid: "?" if cid in unknown else (h if h is not None else f"?{cid}#{tag}") for cid, h in side.items()}

    b_keyed, c_keyed = keyed(b, "b"), keyed(c, "c")
    aligned = stats.align_cases(b_keyed, c_keyed)
    pairs = aligned["pairs"]
    counts = {
        "n_paired": len(pairs), "n_common": len(aligned["common"]) - len(aligned["content_changed"]),
        "n_renamed": len(aligned["renamed"]), "n_added": len(aligned["added"]),
        "n_removed": len(aligned["removed"]), "n_content_changed": len(aligned["content_changed"]),
        "n_without_hash": len(unknown),
    }
    frame = pl.DataFrame({"base_id": [p[0] for p in pairs], "cand_id": [p[1] for p in pairs]},
                         schema={"base_id": pl.Utf8, "cand_id": pl.Utf8})
    return frame, counts


def compare(rule: "Rule", cand_rows: Selected, base_rows: Selected) -> dict:
    """Numbers and a PASS/FAIL/INCONCLUSIVE verdict for "did not regress by more than the bound"."""
    spec = METRICS[rule.metric]
    margin = rule.bound.value
    if spec.relative == "ratio":
        # A whole-run statistic of a few noisy cases moves a lot between runs: decide on its bootstrap interval.
        return ratio.with_interval(rule, cand_rows, base_rows, _ratio(rule, cand_rows, base_rows, margin))
    try:
        cand = spec.per_case(cand_rows, rule)
    except Missing as exc:
        raise Missing(f"candidate: {exc}") from None
    try:
        base = spec.per_case(base_rows, rule)
    except Missing as exc:
        raise Missing(f"baseline: {exc}") from None
    except RuleFailure as exc:
        raise RuleFailure(f"baseline: {exc}") from None
    pairs, counts = align(base, cand)
    if pairs.height == 0:
        # A baseline exists but shares no comparable case: not "no data", a baseline that must be rerun.
        raise RuleFailure(f"no case aligns between candidate and baseline ({counts['n_added']} added, "
                          f"{counts['n_removed']} removed, {counts['n_content_changed']} changed): rerun the "
                          "baseline on the current suite")
    joined = (pairs.join(cand.select(pl.col("case_id").alias("cand_id"), pl.col("value").alias("cv"),
                                     pl.col("n").alias("cn")), on="cand_id")
              .join(base.select(pl.col("case_id").alias("base_id"), pl.col("value").alias("bv"),
                                pl.col("n").alias("bn")), on="base_id"))
    # Many changed or removed cases bias the comparison by case selection (stats.md section 3.5).
    counts["rerun_baseline_advised"] = (counts["n_content_changed"] + counts["n_removed"]) > 0.1 * max(1, base.height)
    out = {**counts, "margin": margin, "threshold": -margin, "confidence": rule.confidence,
           "candidate_estimate": float(joined["cv"].mean()), "baseline_estimate": float(joined["bv"].mean())}
    binary = (joined["cn"].max() == 1 and joined["bn"].max() == 1
              and spec.name in ("pass_rate", "scorer_pass_rate", "error_rate"))
    if binary:
        b = int(((joined["cv"] == 1) & (joined["bv"] == 0)).sum())
        c = int(((joined["cv"] == 0) & (joined["bv"] == 1)).sum())
        n = joined.height
        if margin >= 1:
            raise RuleFailure(f"bound.{rule.bound.kind} must be below 1 for a paired rate comparison")
        gate = stats.regression_gate_paired(b, c, n, margin=margin, alpha=1 - rule.confidence)
        out.update(n=n, b_improved=b, c_regressed=c, estimate=gate["estimate"], lower=gate["ci"][0],
                   upper=gate["ci"][1], mcnemar_midp=gate["p_midp"], method="paired non-inferiority (Tango)")
        verdict = {"PASS": "PASS", "FAIL_CONFIRMED_REGRESSION": "FAIL"}.get(gate["verdict"], "INCONCLUSIVE")
        return {**out, "verdict": verdict}
    cv, bv = joined["cv"].to_numpy(), joined["bv"].to_numpy()
    boot = stats.paired_bootstrap_mean_diff(cv, bv, conf=2 * rule.confidence - 1, n_boot=rule.baseline_n_boot, seed=0)
    # The bootstrap collapses to a point when every case moved alike (all pass on both sides): the
    # bounds are never narrower than Tango's at the same discordance on these n cases.
    envelope = stats.paired_diff_ci_tango_envelope(cv - bv, conf=2 * rule.confidence - 1)
    lower, upper = min(boot["lower"], envelope[0]), max(boot["upper"], envelope[1])
    widened = lower < boot["lower"] or upper > boot["upper"]
    out.update(n=boot["n"], estimate=boot["estimate"], lower=lower, upper=upper, bootstrap_ci=[boot["lower"],
               boot["upper"]], tango_envelope=envelope, n_boot=boot["n_boot"], seed=boot["seed"],
               method="paired bootstrap of per-case means" + (", widened to Tango's at its discordance" if widened
                                                               else ""))
    if lower > -margin:
        verdict = "PASS"
    elif upper < -margin:
        verdict = "FAIL"
    else:
        verdict = "INCONCLUSIVE"
    return {**out, "verdict": verdict}


def _ratio(rule: "Rule", cand_rows: Selected, base_rows: Selected, margin: float) -> dict:
    spec = METRICS[rule.metric]
    cand = spec.absolute(cand_rows, rule)
    try:
        base = spec.absolute(base_rows, rule)
    except Missing as exc:
        raise Missing(f"baseline: {exc}") from None
    base_value, cand_value = base["estimate"], cand["estimate"]
    if not base_value or base_value <= 0:
        raise RuleFailure(f"baseline {rule.metric} is {base_value!r}: a bound relative to a zero baseline means "
                          f"nothing (use an absolute bound: max)")
    limit = base_value * (1 + margin)
    return {"n": cand["n"], "n_baseline": base["n"], "estimate": cand_value, "baseline_estimate": base_value,
            "lower": None, "upper": None, "threshold": limit, "margin": margin, "confidence": rule.confidence,
            "method": "point estimate vs baseline x (1 + max_increase)",
            "verdict": "PASS" if cand_value <= limit else "FAIL"}
