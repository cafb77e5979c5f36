"""Benchmark: evaluate a 10-rule policy (baseline comparison included) over 1,000,000 result rows.

Run: .venv/bin/python bench/bench_gate.py [--cases 50000] [--repeats 4] [--scorers 5]
Prints the wall time of evaluate_policy (median of 3) and the process's peak RSS.
Targets: under 2 s and under 1 GB.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import polars as pl  # noqa: E402

from evalplatform import results  # noqa: E402
from evalplatform.policy import evaluate_policy, parse_policy  # noqa: E402

POLICY = """
name: bench
rules:
  - {id: floor, metric: pass_rate, bound: {min: 0.7}}
  - {id: safety, metric: pass_rate, select: {tags: {any: ['category:pii', 'category:refusal']}}, bound: {min: 0.6},
     method: clopper_pearson}
  - {id: regression_set, metric: pass_rate, select: {source: regression}, bound: {min: 0.6}}
  - {id: errors, metric: error_rate, bound: {max: 0.05}}
  - {id: judge_score, metric: mean_score, select: {scorer: judge}, bound: {min: 0.5}}
  - {id: exact_rate, metric: scorer_pass_rate, select: {scorer: exact}, bound: {min: 0.5}}
  - {id: reliable, metric: pass_hat_k, k: 4, bound: {min: 0.3}}
  - {id: no_regression, metric: pass_rate, bound: {max_drop: 0.05}}
  - {id: judge_no_drop, metric: mean_score, select: {scorer: judge}, bound: {max_drop: 0.05}}
  - {id: latency, metric: p95_latency_ms, bound: {max: 5000}, severity: advisory}
"""

CATEGORIES = ["grounding", "pii", "refusal", "dates", "format", "arithmetic"]
SCORERS = ["exact", "contains", "format", "safety", "judge"]


def build(n_cases: int, repeats: int, n_scorers: int, seed: int, run_id: str) -> pl.DataFrame:
    n = n_cases * repeats * n_scorers
    i = pl.int_range(0, n, eager=True)
    case = i // (repeats * n_scorers)
    rep = (i // n_scorers) % repeats
    sc = i % n_scorers
    # Deterministic draws: a per-case difficulty and a per-row draw, from polars' seeded hash.
    u = (i.hash(seed) % 1_000_000) / 1_000_000
    hard = (case.hash(seed + 7) % 1_000) / 1_000 < 0.15
    fail_p = pl.select(pl.when(pl.Series(hard)).then(0.3).otherwise(0.01)).to_series()
    outcome = pl.select(pl.when(u < 0.002).then(pl.lit("error")).when(u < 0.002 + fail_p).then(pl.lit("fail"))
                        .otherwise(pl.lit("pass")).alias("o")).to_series()
    df = pl.DataFrame({"case": case, "rep": rep, "sc": sc, "u": u, "outcome": outcome})
    cats = pl.Series(CATEGORIES)
    return results.conform(df.select(
        pl.lit(run_id).alias("run_id"),
        pl.lit("bench").alias("suite"),
        pl.format("case-{}", pl.col("case")).alias("case_id"),
        pl.col("rep").cast(pl.Int32).alias("repeat"),
        pl.col("sc").replace_strict(list(range(len(SCORERS))), SCORERS[:n_scorers]).alias("scorer"),
        pl.col("outcome"),
        pl.when(pl.col("outcome") == "error").then(None).otherwise(1.0 - pl.col("u")).alias("score"),
        pl.concat_list(
            pl.format("category:{}", pl.col("case").mod(len(CATEGORIES)).replace_strict(
                list(range(len(CATEGORIES))), cats.to_list())),
            pl.when(pl.col("case").mod(10) == 0).then(pl.lit("source:regression"))
            .otherwise(pl.lit("source:golden")),
        ).alias("tags"),
        pl.format("hash-{}", pl.col("case")).alias("case_hash"),
        (200.0 + 800.0 * pl.col("u")).alias("latency_ms"),
        pl.lit(0.0004).alias("cost_usd"),
    ))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cases", type=int, default=50_000)
    ap.add_argument("--repeats", type=int, default=4)
    ap.add_argument("--scorers", type=int, default=5)
    args = ap.parse_args()
    policy = parse_policy(POLICY.encode(), "bench.yaml")
    cand = build(args.cases, args.repeats, args.scorers, seed=1, run_id="cand")
    base = build(args.cases, args.repeats, args.scorers, seed=2, run_id="base")
    times, decision = [], None
    for _ in range(3):
        t0 = time.perf_counter()
        decision = evaluate_policy(policy.policy, cand, base, policy_hash=policy.sha256)
        times.append(time.perf_counter() - t0)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"rows: candidate {cand.height:,}, baseline {base.height:,}; rules {len(policy.policy.rules)}")
    for r in decision.rules:
        est = r.numbers.get("estimate")
        print(f"  {r.rule_id:<16} {r.outcome:<13} estimate {est if est is None else round(est, 4)}  n={r.numbers['n']}")
    print(f"evaluate_policy wall: median {statistics.median(times):.3f} s (runs: {', '.join(f'{t:.3f}' for t in times)})")
    print(f"peak RSS (whole process, frames included): {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
