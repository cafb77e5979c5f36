"""Tiers that cost what they should, measured on the demo suite: judge calls and wall time of the PR tier (now,
and with every scorer as before tiers chose them), the nightly sweep's fresh judge samples, estimate against
actual calls and cost, budget refusal, report rendering, the pipeline SLOs; writes the README's plot.

Run: .venv/bin/python bench/bench_tiers.py [--runs 3] [--plots docs/img]
Each PR figure is the median of --runs fresh child processes with --no-cache (one run per nightly figure); the
history is a fresh
temporary folder (EVALPLATFORM_HOME), so the figures do not depend on earlier runs on this machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "evalplatform"]


def _cli(args: list[str], env: dict, cwd: Path) -> tuple[int, float, str, str]:
    t0 = time.perf_counter()
    done = subprocess.run(CLI + args, env=env, cwd=cwd, capture_output=True, text=True, timeout=1800)
    return done.returncode, time.perf_counter() - t0, done.stdout, done.stderr


def _line(out: str, prefix: str) -> str:
    return next((ln for ln in out.splitlines() if ln.startswith(prefix)), "")


def _project(root: Path, pr_scorers: str | None) -> Path:
    """A copy of the demo suite and its calibration labels; `pr_scorers` replaces the PR tier's scorer choice."""
    for part in ("datasets/demo", "datasets/calibration"):
        shutil.copytree(REPO / part, root / part)
    if pr_scorers is not None:
        suite = root / "datasets" / "demo" / "suite.yaml"
        suite.write_text(suite.read_text().replace("scorers: [deterministic, cheap_judge]}", f"scorers: {pr_scorers}}}",
                                                   1))
    return root


def _run_numbers(env: dict, cwd: Path, run_id_hint: str) -> dict:
    from evalplatform.history import HistoryStore

    store = HistoryStore(Path(env["EVALPLATFORM_HOME"]) / "history.duckdb")
    run = store.list_runs("demo", limit=1).row(0, named=True)
    full = store.get_run(run["run_id"])
    return {"run_id": full["run_id"], "model_calls": full["model_calls"], "judge_calls": full.get("judge_calls"),
            "judge_cost_usd": full.get("judge_cost_usd"), "total_cost_usd": full.get("total_cost_usd"),
            "n_flaky_cases": full.get("n_flaky_cases"),
            "estimate": ((full.get("provenance") or {}).get("estimate") or {}),
            "verdicts": store.get_results(full["run_id"]).filter(
                __import__("polars").col("tier_cost").is_in(["llm_judge", "frontier_judge"])).height}


def measure(runs: int, plots: Path | None) -> dict:
    out: dict = {}
    with tempfile.TemporaryDirectory(prefix="bench_tiers_") as tmp:
        for variant, pr_scorers in (("pr_every_scorer", "[deterministic, cheap_judge, llm_judge, frontier_judge]"),
                                    ("pr_tier", None)):
            root = _project(Path(tmp) / variant, pr_scorers)
            env = {**os.environ, "EVALPLATFORM_PROJECT": str(root), "EVALPLATFORM_HOME": str(root / ".state")}
            env.pop("EVALPLATFORM_HISTORY", None)
            code, _, _, _ = _cli(["calibrate", "--suite", "demo"], env, root)
            assert code in (0, 1), f"calibrate exited {code}"
            walls, lines = [], {}
            for i in range(runs):
                code, wall, stdout, stderr = _cli(["run", "--suite", "demo", "--engine", "direct", "--no-cache"], env,
                                                  root)
                assert code in (0, 1), f"{variant} run exited {code}: {stderr.strip()[-300:]}"
                walls.append(wall)
                lines = {k: _line(stdout, k) for k in ("estimate:", "calls ", "judge calls ", "cost $")}
            out[variant] = {"wall_s_median": statistics.median(walls), "walls": walls, "exit": code,
                            **_run_numbers(env, root, ""), "lines": lines}
            if variant != "pr_tier":
                continue
            # The nightly sweep, twice: the second re-samples every judge (no cache hit) rather than reusing.
            for name in ("nightly_1", "nightly_2"):
                code, wall, stdout, stderr = _cli(["run", "--suite", "demo", "--tier", "nightly", "--engine", "direct"],
                                                  env, root)
                assert code in (0, 1), f"nightly exited {code}: {stderr.strip()[-300:]}"
                out[name] = {"wall_s": wall, "exit": code, **_run_numbers(env, root, ""),
                             "lines": {k: _line(stdout, k) for k in ("estimate:", "calls ", "judge calls ", "cost $",
                                                                     "flaky: ")}}
            # The regressed release on the PR tier, then v1 again: the trend shows the dip and the recovery.
            for model in ("local/support-v2", "local/support-v1"):
                code, wall, _, stderr = _cli(["run", "--suite", "demo", "--engine", "direct", "--model", model],
                                             env, root)
                assert code in (0, 1), f"{model} exited {code}: {stderr.strip()[-300:]}"
                out[f"pr_{model.split('/')[-1]}"] = {"exit": code, "wall_s": wall}
            code, wall, _, stderr = _cli(["run", "--suite", "demo", "--tier", "nightly", "--engine", "direct",
                                          "--max-calls", "100"], env, root)
            out["budget_refusal"] = {"exit": code, "wall_s": wall, "line": stderr.strip()}
            code, wall, _, stderr = _cli(["report", "--suite", "demo", "--run", out["nightly_2"]["run_id"]], env, root)
            assert code == 0, stderr
            out["report_run_s"] = wall
            args = ["report", "--suite", "demo"] + (["--plots", str(plots.resolve())] if plots else [])
            code, wall, _, stderr = _cli(args, env, root)
            assert code == 0, stderr
            out["report_trend_s"] = wall
            from evalplatform.history import HistoryStore
            from evalplatform.slos import pipeline_slos
            from evalplatform.suite import load_suite

            store = HistoryStore(root / ".state" / "history.duckdb")
            out["slos"] = [s.to_dict() for s in pipeline_slos(store, load_suite(root / "datasets" / "demo" /
                                                                                "suite.yaml"))]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--plots", type=Path, default=None, help="save the trend report's plots here (docs/img)")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    print(json.dumps(measure(args.runs, args.plots), indent=2, default=str))


if __name__ == "__main__":
    main()
