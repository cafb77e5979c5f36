"""Small result files shaped like the peers' real output, written into a test's tmp dir."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "peer-results"


def promptfoo_row(desc: str, vars_: dict, *, passed: bool | None, test_idx: int, score: float | None = None,
                  error: str | None = None, asserts: list[dict] | None = None) -> dict:
    """One `results.results[i]` entry. passed=None means an errored call (failureReason 2)."""
    asserts = asserts if asserts is not None else [{"type": "contains", "value": "{{expected}}", "metric": "kw"}]
    test = {"description": desc, "vars": vars_, "assert": asserts, "metadata": {"topic": "t"}}
    row = {"id": f"uuid-{test_idx}", "testIdx": test_idx, "promptIdx": 0, "promptId": "p0",
           "provider": {"id": "openai:chat:mock", "label": "mock"}, "testCase": test, "vars": vars_}
    if passed is None:
        row.update(success=False, score=0, failureReason=2, latencyMs=0, gradingResult=None,
                   error=error or "API error: 500 Internal Server Error\n    at OpenAiChatCompletionProvider.callApi (x.js:1:2)",
                   tokenUsage={"prompt": 0, "completion": 0, "total": 0})
        return row
    s = (1.0 if passed else 0.0) if score is None else score
    comps = [{"pass": passed, "score": s, "reason": "ok" if passed else "Expected output to contain",
              "assertion": a} for a in asserts]
    row.update(success=passed, score=s, failureReason=0 if passed else 1, latencyMs=120,
               error=None if passed else "Expected output to contain",
               gradingResult={"pass": passed, "score": s, "reason": "r", "componentResults": comps},
               response={"output": "out", "cached": False, "latencyMs": 120},
               tokenUsage={"prompt": 14, "completion": 9, "total": 23}, cost=0.001)
    return row


def promptfoo_doc(rows: list[dict], description: str = "demo suite") -> dict:
    # As promptfoo counts: an error is failureReason 2, a failure any other row without success.
    errors = sum(1 for r in rows if r.get("failureReason") == 2)
    successes = sum(1 for r in rows if r.get("success") is True and r.get("failureReason") != 2)
    stats = {"successes": successes, "failures": len(rows) - successes - errors, "errors": errors}
    return {"evalId": "eval-test", "results": {"version": 3, "results": rows, "stats": stats},
            "config": {"description": description}, "metadata": {"promptfooVersion": "0.121.20"}}


def write_json(path: Path, doc) -> Path:
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def inspect_sample(sid: str, epoch: int, value=None, error: str | None = None) -> dict:
    s = {"id": sid, "epoch": epoch, "input": f"q {sid}", "target": "x", "metadata": {"tags": ["geo"]},
         "output": {"completion": "" if error else "answer", "usage": {"input_tokens": 5, "output_tokens": 2},
                    "time": 0.25},
         "scores": {} if error else {"includes": {"value": value, "explanation": "e"}}}
    if error:
        s["error"] = {"message": error, "traceback": "Traceback (most recent call last):\n  ..."}
    return s


def inspect_log(samples: list[dict], *, status: str = "success", ids: list[str] | None = None,
                epochs: int = 1, error: str | None = None) -> dict:
    ids = ids if ids is not None else sorted({s["id"] for s in samples})
    doc = {"version": 2, "status": status,
           "eval": {"task": "demo_task", "dataset": {"name": "d", "samples": len(ids), "sample_ids": ids},
                    "config": {"epochs": epochs}, "scorers": [{"name": "includes"}],
                    "packages": {"inspect_ai": "0.3.285"}},
           "results": None if status == "error" else {"scores": [{"name": "includes"}]},
           "samples": samples}
    if error:
        doc["error"] = {"message": error, "traceback": "..."}
    return doc


def write_eval_archive(path: Path, log: dict) -> Path:
    """An Inspect `.eval` zip: header.json (the log without samples) plus one member per sample-epoch."""
    header = {k: v for k, v in log.items() if k != "samples"}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("_journal/start.json", json.dumps({"version": 2, "eval": log["eval"]}))
        for s in log["samples"]:
            zf.writestr(f"samples/{s['id']}_epoch_{s['epoch']}.json", json.dumps(s))
        zf.writestr("summaries.json", json.dumps([]))
        zf.writestr("header.json", json.dumps(header))
    return path


def deepeval_case(name: str, metrics: list[dict], *, trace: dict | None = None) -> dict:
    case = {"name": name, "input": f"in {name}", "actualOutput": "out", "expectedOutput": "x",
            "tags": ["geo"], "success": all(m.get("success") for m in metrics), "metricsData": metrics,
            "runDuration": 0.0, "order": 0}
    if trace is not None:
        case["trace"] = trace
    return case
