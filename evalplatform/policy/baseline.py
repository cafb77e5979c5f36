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
    """Numbers and a PASS/FAIL/INCONCLUSIVE verdict for "did not regress by more than the bound".

    The baseline is a sample too. One run per side, binary: Tango's score interval on the discordant pairs
    (b improvements, c regressions) carries both runs' noise. When the baseline had repeats, or several
    promoted runs of the same target were pooled into it (decide.baseline_runs), each case's baseline value
    is its mean over all of them, d_i = candidate_i - mean(baseline_i), so one lucky run does not set the
    bar; the interval is then the wider of a paired bootstrap of the d_i and Tango's at the discordance
    b = sum(d_i > 0), c = sum(-d_i > 0): never narrower than binary pairs with that discordance.
    """
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
    counts["n_candidate"] = cand.height
    counts["n_without_baseline"] = cand.height - pairs.height
    if counts["n_without_baseline"] and rule.partial_baseline == "refuse":
        raise RuleFailure(f"the baseline ran {pairs.height} of the candidate's {cand.height} cases "
                          f"(partial_baseline: refuse): rerun the baseline on the current suite")
    if pairs.height == 0:
        # A baseline exists but shares no comparable case: not "no data", a baseline that must be rerun.
        raise RuleFailure(f"no case aligns between candidate and baseline ({counts['n_added']} added, "
                          f"{counts['n_removed']} removed, {counts['n_content_changed']} changed): rerun the "
                          "baseline on the current suite")
    joined = (pairs.join(cand.select(pl.col("case_id").alias("cand_id"), pl.col("value").alias("cv"),
                                     pl.col("n").alias("cn")), on="cand_id")
              .join(base.select(pl.col("case_id").alias("base_id"), pl.col("value").alias("bv"),
                                pl.col("n").alias("bn")), on="base_id"))
    # Many cases whose content changed under the same id bias the comparison by case selection (stats.md
    # section 3.5). Baseline cases the candidate did not run are no such sign: a PR slice of a nightly or
    # pooled baseline leaves most of them out, and the comparison is on the shared ones anyway.
    both = counts["n_common"] + counts["n_content_changed"]
    counts["rerun_baseline_advised"] = counts["n_content_changed"] > 0.1 * max(1, both)
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
    base_ids = set(base_rows.rows["case_id"].unique().to_list())
    cand_ids = set(cand_rows.rows["case_id"].unique().to_list())
    missing = len(cand_ids - base_ids)
    if missing and rule.partial_baseline == "refuse":
        raise RuleFailure(f"the baseline ran {len(cand_ids & base_ids)} of the candidate's {len(cand_ids)} cases "
                          f"(partial_baseline: refuse): rerun the baseline on the current suite")
    if missing:
        # Whole-run values on different cases compare the cases as much as the change: only the shared ones.
        cand_rows = Selected(cand_rows.rows.filter(pl.col("case_id").is_in(list(base_ids))))
        if cand_rows.height == 0:
            raise RuleFailure("no case of the candidate was run by the baseline: rerun the baseline on the "
                              "current suite")
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
    return {"n": cand["n"], "n_baseline": base["n"], "n_without_baseline": missing,
            "n_candidate": len(cand_ids), "estimate": cand_value, "baseline_estimate": base_value,
            "lower": None, "upper": None, "threshold": limit, "margin": margin, "confidence": rule.confidence,
            "method": "point estimate vs baseline x (1 + max_increase)",
            "verdict": "PASS" if cand_value <= limit else "FAIL"}
