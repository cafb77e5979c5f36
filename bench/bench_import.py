"""Benchmark: import a ~100 MB synthetic Promptfoo results JSON; wall time and peak RSS, median of 3.

Run: .venv/bin/python bench/bench_import.py [--mb 100] [--runs 3]
Each measured import runs in a fresh subprocess so its peak RSS is its own.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, resource, sys, time
from evalplatform.importers import import_results
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
df = import_results([sys.argv[1]])
wall = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"wall_s": wall, "peak_rss_mb": peak / 1024, "baseline_rss_mb": base / 1024,
                  "rows": df.height, "cases": df["case_id"].n_unique()}))
"""


def synthetic_row(i: int, repeat: int, n_cases: int) -> dict:
    """A results.results[] entry shaped like promptfoo 0.121's (fields, nesting and sizes of a real row)."""
    case = f"q{i % n_cases:06d}"
    word = f"word{i % n_cases:06d}"
    passed = (i * 7919) % 10 < 7
    q = f"Case {i % n_cases} (topic). Reply with the code word that follows the marker. echo: {word}"
    assertion = {"type": "contains", "value": "{{expected}}", "metric": "keyword_match"}
    usage = {"prompt": 14, "completion": 10, "cached": 0, "total": 24, "numRequests": 1,
             "completionDetails": {"reasoning": 0, "acceptedPrediction": 0, "rejectedPrediction": 0}}
    return {
        "cost": 0, "id": f"{i:08d}-df79-4fa9-861a-9fb65309780e", "latencyMs": 300 + i % 400,
        "gradingResult": {"pass": passed, "score": 1 if passed else 0, "reason": "All assertions passed",
                          "namedScores": {"keyword_match": 1 if passed else 0},
                          "tokensUsed": {"total": 0, "prompt": 0, "completion": 0, "cached": 0},
                          "componentResults": [{"pass": passed, "score": 1 if passed else 0,
                                                "reason": "Assertion passed" if passed else f'Expected output to contain "{word}"',
                                                "assertion": assertion,
                                                "metadata": {"renderedAssertionValue": word}}]},
        "namedScores": {"keyword_match": 1 if passed else 0},
        "prompt": {"raw": q, "label": "{{question}}", "config": {}},
        "promptId": "d3bcaf71c11c2678899be04d872718325f0916b3b0705e805ee29930663a42e2", "promptIdx": 0,
        "provider": {"id": "openai:chat:mock-model", "label": "mock"},
        "response": {"output": f"I believe it is {word if passed else 'unknown'}, but I am not certain.",
                     "tokenUsage": usage, "cached": False, "latencyMs": 300 + i % 400, "finishReason": "stop",
                     "metadata": {"http": {"status": 200, "statusText": "OK",
                                           "headers": {"content-type": "application/json", "server": "mock-llm/1.0"}}}},
        "score": 1 if passed else 0, "success": passed,
        "testCase": {"description": case, "vars": {"question": q, "expected": word},
                     "metadata": {"topic": "topic", "tier": "tier:pr"}, "assert": [assertion], "options": {}},
        "testIdx": i, "tokenUsage": usage, "vars": {"question": q, "expected": word},
        "metadata": {"topic": "topic", "tier": "tier:pr", "_promptfooFileMetadata": {}},
        "failureReason": 0 if passed else 1, "error": None if passed else f'Expected output to contain "{word}"',
    }


def write_file(path: Path, target_mb: int, repeats: int = 3) -> int:
    """Writes rows until the file reaches target_mb; returns the row count."""
    row_bytes = len(json.dumps(synthetic_row(0, 0, 1), indent=2)) + 2
    n_rows = max(repeats, target_mb * 1024 * 1024 // row_bytes)
    n_cases = max(1, n_rows // repeats)
    with path.open("w", encoding="utf-8") as fh:
        fh.write('{\n  "evalId": "eval-bench",\n  "results": {\n    "version": 3,\n    "results": [\n')
        for i in range(n_rows):
            if i:
                fh.write(",\n")
            fh.write(json.dumps(synthetic_row(i, i // n_cases, n_cases), indent=2))
        fh.write('\n    ],\n    "stats": {}\n  },\n  "config": {"description": "bench"},\n'
                 '  "metadata": {"promptfooVersion": "0.121.20"}\n}\n')
    return n_rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=100)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    env = dict(os.environ, LITELLM_LOCAL_MODEL_COST_MAP="True", PYTHONPATH=str(ROOT))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.results.json"
        n = write_file(path, a.mb)
        size_mb = path.stat().st_size / 1024 / 1024
        runs = []
        for _ in range(a.runs):
            out = subprocess.run([sys.executable, "-c", CHILD, str(path)], env=env, cwd=ROOT,
                                 capture_output=True, text=True, check=True)
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    wall = statistics.median(r["wall_s"] for r in runs)
    rss = statistics.median(r["peak_rss_mb"] for r in runs)
    base = statistics.median(r["baseline_rss_mb"] for r in runs)
    print(f"file: {size_mb:.1f} MB, {n} result rows, {runs[0]['cases']} cases x 3 repeats, {runs[0]['rows']} table rows")
    each = ", ".join(f"{r['wall_s']:.2f}" for r in runs)
    print(f"import_results wall: median {wall:.2f} s  (runs: {each})")
    print(f"peak RSS: median {rss:.0f} MB (process baseline after imports {base:.0f} MB)")


if __name__ == "__main__":
    main()
