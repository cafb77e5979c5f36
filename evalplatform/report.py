"""The run summary: per-criterion pass rates with Wilson intervals, errors, usage, the gate, where to look next."""

from __future__ import annotations

import polars as pl

from evalplatform import results as R
from evalplatform import stats
from evalplatform.policy import Decision, RuleResult
from evalplatform.policy.report import render_table


def case_outcomes(results: pl.DataFrame) -> pl.DataFrame:
    """One row per (case_id, repeat): error if any scorer errored, else fail if any failed, else pass.

    Skipped rows do not count; a case whose rows are all skipped is `skipped`.
    """
    return (
        results.group_by(["case_id", "repeat"], maintain_order=True)
        .agg(
            (pl.col("outcome") == "error").any().alias("any_error"),
            (pl.col("outcome") == "fail").any().alias("any_fail"),
            (pl.col("outcome") == "pass").any().alias("any_pass"),
        )
        .with_columns(
            pl.when("any_error").then(pl.lit("error"))
            .when("any_fail").then(pl.lit("fail"))
            .when("any_pass").then(pl.lit("pass"))
            .otherwise(pl.lit("skipped")).alias("outcome")
        )
        .select("case_id", "repeat", "outcome")
    )


def criterion_table(results: pl.DataFrame, conf: float = 0.95) -> list[dict]:
    """Per criterion: decided rows (pass+fail), passes, errors, rate and its two-sided Wilson interval."""
    rows = []
    agg = (
        results.group_by("criterion", maintain_order=True)
        .agg(
            (pl.col("outcome") == "pass").sum().alias("k"),
            pl.col("outcome").is_in(["pass", "fail"]).sum().alias("n"),
            (pl.col("outcome") == "error").sum().alias("errors"),
        )
        .sort("criterion")
    )
    for r in agg.iter_rows(named=True):
        lo, hi = stats.wilson_interval(r["k"], r["n"], conf)
        rows.append({**r, "rate": r["k"] / r["n"] if r["n"] else None, "lower": lo, "upper": hi})
    return rows


def category_table(results: pl.DataFrame) -> list[dict]:
    per = case_outcomes(results)
    cats = results.select("case_id", pl.col("tags").list.eval(
        pl.element().filter(pl.element().str.starts_with("category:")).str.slice(9)).list.first().alias("category")
    ).unique("case_id")
    per = per.join(cats, on="case_id", how="left").with_columns(pl.col("category").fill_null("(none)"))
    agg = per.group_by("category").agg(
        (pl.col("outcome") == "pass").sum().alias("k"),
        pl.col("outcome").is_in(["pass", "fail"]).sum().alias("n"),
        (pl.col("outcome") == "error").sum().alias("errors"),
    ).sort("category")
    return [{**r, "rate": r["k"] / r["n"] if r["n"] else None} for r in agg.iter_rows(named=True)]


def usage(results: pl.DataFrame) -> dict:
    calls = R.call_rows(results)
    lat = calls["latency_ms"].drop_nulls()
    return {
        "calls": calls.height,
        "cache_hits": int(calls["cache_hit"].fill_null(False).sum()),
        "tokens_in": int(calls["tokens_in"].fill_null(0).sum()),
        "tokens_out": int(calls["tokens_out"].fill_null(0).sum()),
        "cost_usd": float(calls["cost_usd"].fill_null(0).sum()),
        "latency_p50_ms": float(lat.quantile(0.5, "nearest")) if lat.len() else None,
        "latency_p95_ms": float(lat.quantile(0.95, "nearest")) if lat.len() else None,
        "attempts_total": int(calls["attempts"].fill_null(0).sum()),
    }


def _pct(x: float | None) -> str:
    return "   -  " if x is None else f"{100 * x:5.1f}%"


def decision_from_record(d: dict) -> Decision:
    """A decision as stored in the history, back as the policy engine's typed record (for rendering)."""
    return Decision.from_record(d)


def render_summary(*, run: dict, results: pl.DataFrame, decision: Decision, history_path: str,
                   ui_hint: str | None = None) -> str:
    lines = []
    lines.append(f"evalplatform run {run['run_id']}  suite={run['suite']} tier={run['tier']} "
                 f"model={run['target_model']} repeats={run.get('repeats', 1)}")
    lines.append(f"dataset {(run.get('dataset_hash') or '')[:12]}  prompt {(run.get('prompt_hash') or '')[:12]}  "
                 f"cases {run.get('n_cases')}  results {results.height}")
    lines.append("")
    lines.append(f"{'criterion':<16}{'pass rate':>10}   {'95% Wilson CI':<17}{'n':>6}{'errors':>8}")
    for r in criterion_table(results):
        ci = f"[{_pct(r['lower']).strip()}, {_pct(r['upper']).strip()}]" if r["n"] else "-"
        lines.append(f"{r['criterion'] or '(none)':<16}{_pct(r['rate']):>10}   {ci:<17}{r['n']:>6}{r['errors']:>8}")
    cats = category_table(results)
    if cats:
        lines.append("")
        lines.append("cases by category: " + "  ".join(
            f"{c['category']} {c['k']}/{c['n']}" + (f" ({c['errors']} err)" if c["errors"] else "") for c in cats))
    u = usage(results)
    lines.append("")
    p50 = "-" if u["latency_p50_ms"] is None else f"{u['latency_p50_ms']:.0f}"
    p95 = "-" if u["latency_p95_ms"] is None else f"{u['latency_p95_ms']:.0f}"
    lines.append(f"calls {u['calls']} (cache hits {u['cache_hits']}, attempts {u['attempts_total']})  "
                 f"tokens in/out {u['tokens_in']}/{u['tokens_out']}  cost ${u['cost_usd']:.4f}  "
                 f"latency p50/p95 {p50}/{p95} ms  wall {run.get('wall_s') or 0:.2f} s")
    lines.append("")
    base = (decision.inputs or {}).get("baseline_run_id")
    lines.append(f"release policy ({decision.inputs.get('policy', decision.policy_name)}; "
                 f"baseline {base or 'none promoted yet'}):")
    lines.append(render_table(decision))
    lines.append("")
    # Only an explicit PASS passes: a verdict this code does not know (e.g. NO_DATA) is not a pass.
    if decision.overall == "PASS":
        lines.append("RELEASE GATE PASSED")
    elif decision.overall == "BLOCK":
        lines.append("RELEASE GATE BLOCKS this change")
    else:
        lines.append(f"RELEASE GATE DID NOT PASS ({decision.overall})")
    lines.append(f"history: {history_path}  (evalplatform history show {run['run_id']})")
    if ui_hint:
        lines.append(ui_hint)
    return "\n".join(lines)
