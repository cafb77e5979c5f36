"""Judge throughput: LLM judge calls against the mock server at concurrency 16, and trained-judge scoring of 100,000 outputs.

Run: .venv/bin/python bench/bench_judges.py   (skips the LLM part when ../shared/bench is absent)
Figures are medians of 3 runs.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("OPENAI_API_KEY", "sk-mock-not-a-secret")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
# ../shared/bench from the main checkout, ../../shared/bench from a worktree; BENCH_SHARED overrides.
_SHARED = Path(os.environ.get("BENCH_SHARED") or next(
    (p for p in (REPO.parent / "shared" / "bench", REPO.parent.parent / "shared" / "bench") if p.is_dir()),
    REPO.parent / "shared" / "bench"))
MOCK = _SHARED / "mock_llm_server.py"
N_CALLS, CONCURRENCY, LATENCY_MS, N_OUTPUTS = 480, 16, 100, 100_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bench_llm_judge(transport: str = "auto") -> dict | None:
    if not MOCK.is_file():
        print("skip: ../shared/bench/mock_llm_server.py not found")
        return None
    from evalplatform.judges.llm_judge import LLMJudge

    port = _free_port()
    proc = subprocess.Popen([sys.executable, str(MOCK), "--port", str(port), "--latency-ms", str(LATENCY_MS),
                             "--max-seconds", "600"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        with tempfile.TemporaryDirectory() as tmp:
            judge = LLMJudge(id="bench", criterion="tone", concurrency=CONCURRENCY,
                             judge={"model": "openai/mock-model", "api_base": f"http://127.0.0.1:{port}/v1",
                                    "transport": transport},
                             rubric=str(REPO / "datasets" / "calibration" / "rubrics" / "tone.md"))
            judge.check_files(REPO, REPO / "suite.yaml", "scorers[0]")  # the rubric lives in this project
            judge.judge_texts(["warm-up"], ["warm-up"])  # litellm import and client set-up are not throughput
            rates = []
            for run in range(3):
                inputs = [f"question {run}-{i}" for i in range(N_CALLS)]
                t0 = time.perf_counter()
                out = judge.judge_texts(inputs, [f"answer {i}" for i in range(N_CALLS)], cache_dir=None)
                rates.append(N_CALLS / (time.perf_counter() - t0))
            failed_calls = sum(1 for j in out if j.error and j.error.startswith("judge call failed"))
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    limit = CONCURRENCY * 1000 / LATENCY_MS
    return {"transport": transport, "calls": N_CALLS, "concurrency": CONCURRENCY, "median_calls_per_s": statistics.median(rates),
            "runs": rates, "physical_limit": limit, "failed_calls": failed_calls}


def bench_trained_judge() -> dict:
    import polars as pl

    from evalplatform.judges.trained import TrainedJudge

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["EVALPLATFORM_HOME"] = tmp
        judge = TrainedJudge(id="bench", criterion="tone",
                             calibration=str(REPO / "datasets" / "calibration" / "tone.jsonl"))
        t0 = time.perf_counter()
        judge.model()
        fit_s = time.perf_counter() - t0
        items = judge.calibration_set().items
        frame = pl.DataFrame({"question": [items[i % len(items)].input for i in range(N_OUTPUTS)],
                              "output": [f"{items[i % len(items)].output} (#{i})" for i in range(N_OUTPUTS)]})
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            scored = judge.score(frame)
            times.append(time.perf_counter() - t0)
        assert scored.height == N_OUTPUTS and scored["score"].null_count() == 0
    med = statistics.median(times)
    return {"outputs": N_OUTPUTS, "fit_s": fit_s, "median_s": med, "runs_s": times,
            "outputs_per_s": N_OUTPUTS / med}


def main() -> None:
    # Both transports side by side: the lean OpenAI path (what `auto` picks here) and litellm.
    for transport in ("openai", "litellm"):
        _report_llm(bench_llm_judge(transport))
    if "--llm-only" not in sys.argv:
        _report_trained()


def _report_llm(llm: dict | None) -> None:
    if llm:
        print(f"LLM judge ({llm['transport']} transport): {llm['calls']} calls at concurrency {llm['concurrency']}, "
              f"mock latency {LATENCY_MS} ms: "
              f"median {llm['median_calls_per_s']:.1f} calls/s (runs {', '.join(f'{r:.1f}' for r in llm['runs'])}) "
              f"vs physical limit {llm['physical_limit']:.0f}/s = {llm['median_calls_per_s'] / llm['physical_limit']:.0%}; "
              f"failed calls {llm['failed_calls']} (mock replies are not verdict JSON, so every judgment is an "
              f"`error` outcome: this measures the call path)")


def _report_trained() -> None:
    tr = bench_trained_judge()
    print(f"trained judge: fit {tr['fit_s']:.2f} s; scoring {tr['outputs']:,} outputs median {tr['median_s']:.2f} s "
          f"({tr['outputs_per_s']:,.0f} outputs/s; runs {', '.join(f'{r:.2f}' for r in tr['runs_s'])} s)")


if __name__ == "__main__":
    main()
