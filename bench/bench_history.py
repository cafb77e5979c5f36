"""Benchmark: storing a 100,000-row run in the DuckDB history, and reading runs back.

Run: .venv/bin/python bench/bench_history.py [--rows 100000] [--runs 3]
Prints medians of --runs: complete_run (one transaction: results + outputs + totals), get_results,
list_runs over the runs stored, and the process's peak RSS.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import polars as pl  # noqa: E402

from evalplatform import results as R  # noqa: E402
from evalplatform.history import HistoryStore, new_run_id  # noqa: E402


def frame(run_id: str, rows: int) -> pl.DataFrame:
    cases = rows // 4
    return R.conform(pl.DataFrame({
        "run_id": [run_id] * rows,
        "suite": ["bench"] * rows,
        "case_id": [f"c{i // 4:07d}" for i in range(rows)],
        "repeat": [0] * rows,
        "scorer": [f"s{i % 4}" for i in range(rows)],
        "criterion": ["correctness"] * rows,
        "tier_cost": ["deterministic"] * rows,
        "outcome": ["pass" if i % 7 else "fail" for i in range(rows)],
        "score": [float(i % 7 != 0) for i in range(rows)],
        "tags": [["category:bench", "source:golden"]] * rows,
        "output_hash": [f"{i // 4:064x}" for i in range(rows)],
        "latency_ms": [100.0] * rows, "tokens_in": [20] * rows, "tokens_out": [10] * rows,
        "cost_usd": [0.0] * rows, "cache_hit": [False] * rows, "attempts": [1] * rows,
    })), {f"{i:064x}": f"output {i}" for i in range(cases)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = HistoryStore(Path(tmp) / "history.duckdb")
        writes, reads, lists = [], [], []
        for _ in range(args.runs):
            run_id = new_run_id()
            df, outputs = frame(run_id, args.rows)
            store.begin_run({"run_id": run_id, "suite": "bench", "tier": "pr"})
            t0 = time.perf_counter()
            store.complete_run(run_id, df, outputs, {"wall_s": 1.0})
            writes.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            back = store.get_results(run_id)
            reads.append(time.perf_counter() - t0)
            assert back.height == args.rows
            t0 = time.perf_counter()
            store.list_runs(limit=50)
            lists.append(time.perf_counter() - t0)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    fmt = lambda xs: f"median {statistics.median(xs):.3f} s (runs: {', '.join(f'{x:.3f}' for x in xs)})"  # noqa: E731
    print(f"rows per run: {args.rows:,}")
    print(f"complete_run: {fmt(writes)}")
    print(f"get_results:  {fmt(reads)}")
    print(f"list_runs:    {fmt(lists)}")
    print(f"peak RSS: {rss_mb:.0f} MB")


if __name__ == "__main__":
    main()
