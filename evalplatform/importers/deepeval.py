"""DeepEval test_run JSON (`evaluate()`, `evals_iterator()`, `deepeval test run`) -> canonical rows."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from evalplatform.errors import InputError
from evalplatform.importers._common import (
    Parsed,
    RepeatCounter,
    clean_error,
    clip_score,
    number,
    parse_json,
    read_text,
    require,
    stable_hash,
    tags_from_metadata,
)
from evalplatform.importers.registry import Format, Options, register

CASE_LISTS = ("testCases", "conversationalTestCases")


def load(path: Path, opts: Options) -> Parsed:
    doc = parse_json(read_text(path, opts.max_bytes), path)
    require(doc, dict, path, "<top level>", "a DeepEval test run object")
    if not any(isinstance(doc.get(k), list) for k in CASE_LISTS):
        raise InputError(path, "testCases", "missing the DeepEval testCases array",
                         "is this a DeepEval test_run JSON? choose the format explicitly if not")
    repeats = RepeatCounter()
    clipped = [0]
    rows: list[dict[str, Any]] = []
    for list_name in CASE_LISTS:
        cases = doc.get(list_name) or []
        require(cases, list, path, list_name, "a list")
        for i, case in enumerate(cases):
            at = f"{list_name}[{i}]"
            require(case, dict, path, at, "a test case object")
            rows.extend(_case_rows(case, path, at, repeats, clipped))
    warnings = []
    if clipped[0]:
        warnings.append(f"{path}: score: {clipped[0]} score(s) outside [0, 1] clipped")
    if isinstance(doc.get("testFile"), str):
        # pytest mode leaves tests that raised before assert_test out of the file entirely.
        warnings.append(f"{path}: written by `deepeval test run`; tests that raised before assert_test "
                        "are absent from this file, check the pytest output for errors")
    return Parsed(rows=rows, suite=None, warnings=warnings)


def _case_rows(case: dict, path: Path, at: str, repeats: RepeatCounter, clipped: list[int]) -> list[dict]:
    content = {k: case.get(k) for k in ("input", "expectedOutput", "context", "turns", "scenario")}
    case_hash = stable_hash(content)
    name = case.get("name")
    case_id = str(name) if name not in (None, "") else f"de-{case_hash[:12]}"
    trace = case.get("trace") if isinstance(case.get("trace"), dict) else {}
    trace_error = _trace_error(trace) if str(trace.get("status", "")).upper() == "ERRORED" else None
    tags = [str(t) for t in case.get("tags") or [] if isinstance(t, (str, int, float))]
    tags += tags_from_metadata(case.get("metadata"))
    base = {
        "case_id": case_id, "repeat": repeats.next(case_id), "case_hash": case_hash, "tags": tags,
        "output_hash": stable_hash(case["actualOutput"]) if case.get("actualOutput") is not None else None,
        "latency_ms": _ms(number(case.get("completionTime"), path, f"{at}.completionTime")),
    }
    metrics = case.get("metricsData") or []
    require(metrics, list, path, f"{at}.metricsData", "a list")
    if not metrics:
        if trace_error:
            return [dict(base, scorer="deepeval", outcome="error", error=trace_error)]
        raise InputError(path, f"{at}.metricsData", "test case has no metric results",
                         "DeepEval writes one entry per metric; re-run or drop the case")
    rows = []
    seen: set[str] = set()
    for j, m in enumerate(metrics):
        mat = f"{at}.metricsData[{j}]"
        require(m, dict, path, mat, "a metric object")
        scorer = m.get("name")
        if not isinstance(scorer, str) or not scorer:
            raise InputError(path, f"{mat}.name", "metric has no name")
        if scorer in seen:
            raise InputError(path, f"{mat}.name", f"metric {scorer!r} appears twice in one test case")
        seen.add(scorer)
        score = clip_score(number(m.get("score"), path, f"{mat}.score"), clipped)
        threshold = number(m.get("threshold"), path, f"{mat}.threshold")
        error = clean_error(m.get("error")) if m.get("error") else trace_error
        if error is None and not isinstance(m.get("success"), bool):
            error = "DeepEval recorded no verdict for this metric"
        outcome = "error" if error else ("pass" if m["success"] else "fail")
        rows.append(dict(base, scorer=scorer, outcome=outcome, score=None if error else score,
                         threshold=threshold, explanation=m.get("reason"), error=error))
    return rows


def _trace_error(trace: dict) -> str:
    """The first span error in an ERRORED trace (DeepEval keeps it on the span, not on the case)."""
    for key in ("baseSpans", "agentSpans", "llmSpans", "retrieverSpans", "toolSpans"):
        for span in trace.get(key) or []:
            if isinstance(span, dict) and span.get("error"):
                return clean_error(span["error"]) or "error"
    return clean_error(trace.get("error")) or "DeepEval trace status ERRORED"


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000.0


_HEAD = re.compile(rb'"(testCases|conversationalTestCases|testFile)"\s*:')

register(Format("deepeval", (".json",), lambda head: bool(_HEAD.search(head)), load,
                "DeepEval test_run_*.json / .deepeval/.latest_test_run.json"))
