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
    """The target's calls (one per case and repeat) and the judges' (their verdicts), each with tokens and cost,
    and both together; the judges per scorer and per cost tier."""
    calls = R.call_rows(results)
    lat = calls["latency_ms"].drop_nulls()
    judged = results.filter(pl.col("scorer_calls").is_not_null())
    per = lambda frame: {  # noqa: E731
        "verdicts": frame.height,
        "calls": int(frame["scorer_calls"].fill_null(0).sum()),
        "tokens_in": int(frame["scorer_tokens_in"].fill_null(0).sum()),
        "tokens_out": int(frame["scorer_tokens_out"].fill_null(0).sum()),
        "cost_usd": float(frame["scorer_cost_usd"].fill_null(0).sum()),
    }
    judges = per(judged)
    target_cost = float(calls["cost_usd"].fill_null(0).sum())
    return {
        "calls": calls.height,
        "cache_hits": int(calls["cache_hit"].fill_null(False).sum()),
        "tokens_in": int(calls["tokens_in"].fill_null(0).sum()),
        "tokens_out": int(calls["tokens_out"].fill_null(0).sum()),
        "cost_usd": target_cost,
        "latency_p50_ms": float(lat.quantile(0.5, "nearest")) if lat.len() else None,
        "latency_p95_ms": float(lat.quantile(0.95, "nearest")) if lat.len() else None,
        "attempts_total": int(calls["attempts"].fill_null(0).sum()),
        "judge_verdicts": judges["verdicts"],
        "judge_calls": judges["calls"],
        "judge_cache_hits": judges["verdicts"] - judges["calls"],
        "judge_tokens_in": judges["tokens_in"],
        "judge_tokens_out": judges["tokens_out"],
        "judge_cost_usd": judges["cost_usd"],
        "total_cost_usd": target_cost + judges["cost_usd"],
        "by_scorer": {k[0]: per(g) for k, g in judged.group_by("scorer", maintain_order=True)},
        "by_cost_tier": {k[0]: per(g) for k, g in judged.group_by("tier_cost", maintain_order=True)},
    }


def usage_lines(run: dict, results: pl.DataFrame, decision: Decision | None = None) -> list[str]:
    """What the run called and spent (target, judges, both; against the estimate it printed before it started),
    the scorers its tier did not run and the cases whose verdict changed between repeats."""
    u = usage(results)
    p50 = "-" if u["latency_p50_ms"] is None else f"{u['latency_p50_ms']:.0f}"
    p95 = "-" if u["latency_p95_ms"] is None else f"{u['latency_p95_ms']:.0f}"
    lines = [f"calls {u['calls']} (cache hits {u['cache_hits']}, attempts {u['attempts_total']})  "
             f"tokens in/out {u['tokens_in']}/{u['tokens_out']}  cost ${u['cost_usd']:.4f}  "
             f"latency p50/p95 {p50}/{p95} ms  wall {run.get('wall_s') or 0:.2f} s"]
    by = "  ".join(f"{k} {v['calls']}" for k, v in u["by_scorer"].items())
    lines.append(f"judge calls {u['judge_calls']} (verdicts {u['judge_verdicts']}, cache hits {u['judge_cache_hits']})"
                 f"  tokens in/out {u['judge_tokens_in']}/{u['judge_tokens_out']}  cost ${u['judge_cost_usd']:.4f}"
                 + (f"  [{by}]" if by else ""))
    inputs = (decision.inputs if decision is not None else None) or {}
    est = inputs.get("estimate") or ((run.get("provenance") or {}).get("estimate") or {})
    made = (u["calls"] - u["cache_hits"]) + u["judge_calls"]
    line = f"cost ${u['total_cost_usd']:.4f} in all (target ${u['cost_usd']:.4f} + judges ${u['judge_cost_usd']:.4f})" \
           f" for {made} model calls"
    if est:
        cost = "unknown" if est.get("cost_usd") is None else f"${est['cost_usd']:.4f}"
        line += f"; estimated {cost} for {est.get('calls')} before the run"
    lines.append(line)
    from evalplatform.tiers import not_run

    scorers = inputs.get("scorers") or ((run.get("provenance") or {}).get("scorers") or {})
    skipped = not_run(scorers)
    if skipped:
        lines.append(f"scorers not run on the {scorers.get('tier') or run.get('tier')} tier: "
                     + "; ".join(f"{k} ({v})" for k, v in skipped.items()))
    from evalplatform.flakiness import flaky_cases, summary

    flaky = summary(flaky_cases(results))
    if flaky["n_flaky_cases"]:
        parts = ", ".join(f"{k} {v['cases']}" + (f" ({v['judge_only']} with the same output)" if v["judge_only"] else "")
                          for k, v in flaky["by_scorer"].items())
        lines.append(f"flaky: {flaky['n_flaky_cases']} case(s) changed verdict between repeats ({parts})")
    return lines


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
    lines.append("")
    lines += usage_lines(run, results, decision)
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
