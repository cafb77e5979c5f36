"""Monitors over the scored production sample: weighted pass rates with intervals and always-valid bounds vs SLOs.

Per segment (app release, by default) and scope (every trace, each criterion, each tag):
- estimate and interval: Horvitz-Thompson (Hajek) over the sampled traces, weighted by 1/inclusion
  probability, so oversampled flagged traces do not drag the rate down (`naive` shows the unweighted rate);
  the interval is Wilson's at the Kish effective sample size (the linearized HT standard error collapses to
  zero width when every sampled trace passes, which would claim a certainty the sample does not have);
- always-valid bound, safe to re-check after every batch: a beta-binomial confidence sequence per
  sampling stratum (flagged / unflagged) at level alpha/H, combined with the strata's known traffic shares
  N_h/N (Bonferroni over strata, so the combination holds at every look);
- status: ALERT when the always-valid upper bound is below the SLO (confidently below target),
  WATCH when only the fixed-sample interval is below it, OK otherwise, NO_DATA without a scored trace.
A trace passes a criterion when every scorer of that criterion that applied passed; an error is not a pass.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from evalplatform.history import HistoryStore
from evalplatform.history.monitoring import MonitoringStore
from evalplatform.history.records import utcnow
from evalplatform.stats import confidence_sequence_bernoulli, horvitz_thompson_rate

STATUSES = ("ALERT", "WATCH", "OK", "NO_DATA", "NO_SLO")


def _trace_outcomes(scored: pl.DataFrame) -> pl.DataFrame:
    """(trace, scope, name) -> passed, for the overall scope, each criterion and each tag."""
    design = ["trace_id", "segment", "stratum", "inclusion_prob"]
    ok = pl.col("outcome") == "pass"
    overall = scored.group_by(design).agg(ok.all().alias("passed"), pl.col("tags").first())
    by_criterion = (scored.group_by([*design, "criterion"]).agg(ok.all().alias("passed"))
                    .rename({"criterion": "name"}).with_columns(pl.lit("criterion").alias("scope")))
    by_tag = (overall.with_columns(pl.col("tags").list.unique()).explode("tags").drop_nulls("tags")
              .rename({"tags": "name"}).with_columns(pl.lit("tag").alias("scope")).drop([]))
    parts = [
        overall.drop("tags").with_columns(pl.lit("overall").alias("scope"), pl.lit("all").alias("name")),
        by_criterion,
        by_tag,
    ]
    cols = [*design, "scope", "name", "passed"]
    return pl.concat([p.select(cols) for p in parts])


def _always_valid(groups: pl.DataFrame, population: dict[str, int], alpha: float) -> tuple[float, float]:
    """Stratified confidence sequence: each stratum's CS at alpha/H, weighted by its known share of traffic."""
    strata = {r["stratum"]: (int(r["k"]), int(r["n"]), float(r["pi"])) for r in groups.iter_rows(named=True)}
    names = sorted(set(strata) | {s for s, n in population.items() if n > 0})
    sizes = {}
    for s in names:
        k, n, pi = strata.get(s, (0, 0, 1.0))
        # Known traffic share when the batch counted it; otherwise the sample's own estimate n/pi.
        sizes[s] = population.get(s) or (n / pi if n else 0.0)
    total = sum(sizes.values())
    if total <= 0:
        return 0.0, 1.0
    h = len([s for s in names if sizes[s] > 0])
    lower = upper = 0.0
    for s in names:
        if sizes[s] <= 0:
            continue
        k, n, _ = strata.get(s, (0, 0, 1.0))
        lo, hi = confidence_sequence_bernoulli(k, n, alpha=alpha / h)
        lower += sizes[s] / total * lo
        upper += sizes[s] / total * hi
    return min(max(lower, 0.0), 1.0), min(max(upper, 0.0), 1.0)


def _kish_wilson(estimate: float | None, n_eff: float, confidence: float) -> tuple[float, float]:
    if estimate is None or n_eff <= 0:
        return 0.0, 1.0
    from statsmodels.stats.proportion import proportion_confint

    lo, hi = proportion_confint(estimate * n_eff, n_eff, alpha=1 - confidence, method="wilson")
    return float(max(lo, 0.0)), float(min(hi, 1.0))


@dataclass
class MonitorRow:
    segment: str
    scope: str
    name: str
    n_sampled: int
    n_population: int | None
    estimate: float | None
    lower: float
    upper: float
    av_lower: float
    av_upper: float
    naive: float | None
    kish_n: float
    slo_id: str | None = None
    slo: float | None = None
    severity: str | None = None
    status: str = "NO_SLO"


def compute(scored: pl.DataFrame, population: pl.DataFrame, confidence: float) -> list[MonitorRow]:
    """Every (segment, scope, name) with its HT estimate, interval and always-valid bound (no SLOs applied)."""
    if scored.height == 0:
        return []
    outcomes = _trace_outcomes(scored)
    pop: dict[tuple, dict[str, int]] = {}
    for r in (population.iter_rows(named=True) if population.height else ()):
        pop.setdefault((r["segment"], r["scope"], r["name"]), {})[r["stratum"]] = int(r["n"])
    alpha = 1 - confidence
    rows = []
    for (segment, scope, name), part in outcomes.group_by(["segment", "scope", "name"], maintain_order=True):
        passed = part["passed"].cast(pl.Int8).to_numpy()
        pi = part["inclusion_prob"].to_numpy()
        ht = horvitz_thompson_rate(passed, pi, conf=confidence)
        lower, upper = _kish_wilson(ht["estimate"], ht["kish_effective_n"], confidence)
        strata = part.group_by("stratum").agg(pl.col("passed").sum().alias("k"), pl.len().alias("n"),
                                              pl.col("inclusion_prob").first().alias("pi"))
        counts = pop.get((segment, scope, name), {})
        av_lo, av_hi = _always_valid(strata, counts, alpha)
        rows.append(MonitorRow(segment, scope, name, int(part.height), sum(counts.values()) if counts else None,
                               ht["estimate"], lower, upper, av_lo, av_hi,
                               float(passed.mean()) if passed.size else None, float(ht["kish_effective_n"])))
    return sorted(rows, key=lambda r: (r.segment, ("overall", "criterion", "tag").index(r.scope), r.name))


def apply_slos(rows: list[MonitorRow], slos) -> list[MonitorRow]:
    """One row per SLO match (an SLO's scope in every segment), plus the rows no SLO names."""
    out = []
    for row in rows:
        matched = [s for s in slos if (s.criterion is None and s.tag is None and row.scope == "overall")
                   or (s.criterion is not None and row.scope == "criterion" and row.name == s.criterion)
                   or (s.tag is not None and row.scope == "tag" and row.name == s.tag)]
        if not matched:
            out.append(row)
        for s in matched:
            status = ("NO_DATA" if row.n_sampled == 0 else "ALERT" if row.av_upper < s.min_pass_rate
                      else "WATCH" if row.upper < s.min_pass_rate else "OK")
            out.append(MonitorRow(**{**row.__dict__, "slo_id": s.id, "slo": s.min_pass_rate,
                                     "severity": s.severity, "status": status}))
    return out


def current_segment(mstore: MonitoringStore, suite: str) -> str | None:
    """The segment of the newest traffic (the release in production now)."""
    rows = mstore.store._rows("SELECT s.segment FROM sampled_traces s JOIN trace_batches b ON b.batch_id = s.batch_id "
                              "AND b.status = 'accepted' WHERE s.suite = ? ORDER BY s.\"timestamp\" DESC LIMIT 1",
                              [suite])
    return rows[0]["segment"] if rows else None


def update_monitors(setup, store: HistoryStore, batch_id: str | None = None,
                    now: dt.datetime | None = None) -> dict[str, Any]:
    """Recompute every monitor of the suite from its scored sample and append the values to the history."""
    mstore = MonitoringStore(store)
    rows = apply_slos(compute(mstore.scored(setup.name), mstore.population(setup.name), setup.monitors.confidence),
                      setup.monitors.slos)
    computed_at = (now.astimezone(dt.timezone.utc).replace(tzinfo=None) if now else utcnow())
    mstore.put_monitor_values([{**r.__dict__, "suite": setup.name, "computed_at": computed_at, "batch_id": batch_id,
                                "confidence": setup.monitors.confidence} for r in rows])
    return summarize(setup, rows, current_segment(mstore, setup.name))


def summarize(setup, rows: list[MonitorRow], segment: str | None) -> dict[str, Any]:
    """The check's view: the SLOs of the current segment, alerts first."""
    current = [r for r in rows if r.segment == segment and r.slo_id is not None]
    seen = {r.slo_id for r in current}
    missing = [s for s in setup.monitors.slos if s.id not in seen]
    alerts = [r for r in current if r.status == "ALERT"]
    return {"segment": segment, "slos": [r.__dict__ for r in current], "alerts": [r.__dict__ for r in alerts],
            "no_data": [s.id for s in missing], "blocking_alert": any(r.severity == "blocking" for r in alerts)}


def _pct(x: float | None) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}%"


def freshness(mstore: MonitoringStore, suite: str) -> dict[str, Any]:
    """Flag-to-case time of every promoted failure, and its P95 (seconds)."""
    rows = mstore.promotions(suite)
    secs = [float(r["freshness_s"]) for r in rows if r.get("freshness_s") is not None]
    p95 = float(np.percentile(secs, 95, method="higher")) if secs else None
    return {"cases": rows, "p95_s": p95, "n": len(secs)}


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86400 * 2:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def monitor_report(project, suite: str, *, all_scopes: bool = False, history: int = 0) -> str:
    """`evalplatform monitor --suite S`: the latest monitors (SLOs first), batches, review queue and freshness."""
    from evalplatform.traces.pipeline import setup_for

    setup = setup_for(project, suite)
    store = HistoryStore(project.history_path)
    mstore = MonitoringStore(store)
    latest = mstore.monitor_values(setup.name, latest_only=True)
    lines = [f"Monitors of suite {setup.name} (traces from {setup.folder}; {int(100 * setup.monitors.confidence)}% "
             "bounds; ALERT = always-valid upper bound below the SLO)"]
    if latest.height == 0:
        lines.append("  no monitor values yet: drop trace files into the folder (the sensor picks them up)")
    else:
        segment = current_segment(mstore, setup.name)
        lines.append(f"  computed {latest['computed_at'][0]:%Y-%m-%d %H:%M:%S}Z; current release: {segment}")
        head = f"  {'status':<8}{'release':<16}{'monitor':<28}{'SLO':>7}{'estimate':>10}{'interval':>17}" \
               f"{'always-valid':>17}{'naive':>8}{'n':>8}"
        lines.append(head)
        shown = latest.filter(pl.col("slo_id").is_not_null() | pl.lit(all_scopes))
        order = {s: i for i, s in enumerate(STATUSES)}
        for r in sorted(shown.iter_rows(named=True), key=lambda r: (r["segment"] != segment, order[r["status"]],
                                                                    r["segment"], r["scope"], r["name"])):
            label = r["slo_id"] or f"{r['scope']}:{r['name']}"
            lines.append(f"  {r['status']:<8}{str(r['segment'])[:15]:<16}{label[:27]:<28}{_pct(r['slo']):>7}"
                         f"{_pct(r['estimate']):>10}{'[' + _pct(r['lower']) + ', ' + _pct(r['upper']) + ']':>17}"
                         f"{'[' + _pct(r['av_lower']) + ', ' + _pct(r['av_upper']) + ']':>17}{_pct(r['naive']):>8}"
                         f"{r['n_sampled']:>8}")
    if history:
        past = mstore.monitor_values(setup.name).filter(pl.col("slo_id").is_not_null())
        lines.append(f"  history (last {history} values per SLO):")
        for (slo_id,), part in past.group_by(["slo_id"], maintain_order=True):
            for r in part.tail(history).iter_rows(named=True):
                lines.append(f"    {r['computed_at']:%Y-%m-%d %H:%M:%S}  {slo_id:<24} {r['segment']:<14} "
                             f"{r['status']:<8} upper(av) {_pct(r['av_upper'])}  n={r['n_sampled']}")
    batches = mstore.batches(setup.name, limit=5)
    if batches:
        lines.append("Recent trace batches:")
        for b in batches:
            extra = f" -> quarantined: {b['quarantine_path']}" if b["status"] == "quarantined" else \
                f" ({b['n_traces']} traces, {b['n_flagged']} flagged, {b['n_sampled'] or 0} sampled)"
            lines.append(f"  {b['received_at']:%Y-%m-%d %H:%M:%S}  {b['file']}  {b['status']}{extra}")
    counts = mstore.queue_counts(setup.name)
    lines.append(f"Review queue: {counts.get('open', 0)} open, {counts.get('labelled', 0)} labelled "
                 f"(`evalplatform review --suite {setup.name}`)")
    fresh = freshness(mstore, setup.name)
    if fresh["n"]:
        lines.append(f"Freshness (flagged -> in the regression set): P95 {_duration(fresh['p95_s'])} over "
                     f"{fresh['n']} case(s)")
        for c in fresh["cases"][-10:]:
            lines.append(f"  {c['case_id']}  {c['category'] or '-'}  {_duration(c['freshness_s'])}  "
                         f"(reviewer {c['reviewer']})")
    else:
        lines.append("Freshness: no failure promoted into the regression set yet")
    return "\n".join(lines)


__all__ = ["MonitorRow", "apply_slos", "compute", "freshness", "monitor_report", "summarize", "update_monitors"]
