"""DeepEval test_run JSON (`evaluate()`, `evals_iterator()`, `deepeval test run`) -> canonical rows.

Rules, in the order they apply to a test case:

* Bad input (InputError, exit 2, naming the file and field): a case `success` or metric `success` that is
  present but not true/false; a metric `score`, `threshold` or case `completionTime` that is not a finite
  number. DeepEval never writes these, so the file is damaged or hand-edited.
* A failed model call is an `error`, not a `fail`: when a single-turn case's `actualOutput` is empty (or
  absent) and the file records an error for it (a metric's `error`, or a `metadata` key naming an error or
  exception, such as `provider_error`, `exception` or `errorMessage`, up to four levels deep), every metric row
  of the case is `error` with that text. DeepEval itself scores the empty output and reports a plain failure,
  which would hide the error from an error-rate rule. An ERRORED trace (`evals_iterator`) and a metric `error`
  make rows `error` whatever the output.
* A metric without a recorded verdict (no `success`) is an `error` ("no verdict").
* The case's `success` must agree with its metrics (DeepEval passes a case when every metric passed); when it
  does not, every row of the case is `error` naming the contradiction.
* Repeats: DeepEval has none, so users number them in the name (`q000#0`, `q000#1`; `evals_iterator` runs write
  `#0`). When every case name in the file ends in `#<number>`, each stem's cases share their content (input,
  expected output, context), and no (stem, number) appears twice, the stem is the case id and the number the
  repeat. Otherwise names are kept whole and a name seen again is the next repeat, in file order.
"""

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
    flag,
    number,
    parse_json,
    read_text,
    require,
    stable_hash,
    tags_from_metadata,
)
from evalplatform.importers.registry import Format, Options, register

CASE_LISTS = ("testCases", "conversationalTestCases")
REPEAT_SUFFIX = re.compile(r"^(.+)#(\d{1,6})$")
# Metadata keys under which user code records a failed call (provider_error, exception, errorMessage, ...).
ERROR_KEY = re.compile(r"error|exception", re.IGNORECASE)
METADATA_DEPTH = 4


def load(path: Path, opts: Options) -> Parsed:
    doc = parse_json(read_text(path, opts.max_bytes), path)
    require(doc, dict, path, "<top level>", "a DeepEval test run object")
    if not any(isinstance(doc.get(k), list) for k in CASE_LISTS):
        raise InputError(path, "testCases", "missing the DeepEval testCases array",
                         "is this a DeepEval test_run JSON? choose the format explicitly if not")
    cases: list[tuple[str, dict]] = []
    for list_name in CASE_LISTS:
        entries = doc.get(list_name) or []
        require(entries, list, path, list_name, "a list")
        for i, case in enumerate(entries):
            at = f"{list_name}[{i}]"
            cases.append((at, require(case, dict, path, at, "a test case object")))
    identities = _identities(cases)
    clipped = [0]
    rows: list[dict[str, Any]] = []
    for (at, case), (case_id, repeat) in zip(cases, identities):
        rows.extend(_case_rows(case, case_id, repeat, path, at, clipped))
    warnings = []
    if clipped[0]:
        warnings.append(f"{path}: score: {clipped[0]} score(s) outside [0, 1] clipped")
    if isinstance(doc.get("testFile"), str):
        # pytest mode leaves tests that raised before assert_test out of the file entirely.
        warnings.append(f"{path}: written by `deepeval test run`; tests that raised before assert_test "
                        "are absent from this file, check the pytest output for errors")
    return Parsed(rows=rows, suite=None, warnings=warnings)


def _content_hash(case: dict) -> str:
    return stable_hash({k: case.get(k) for k in ("input", "expectedOutput", "context", "turns", "scenario")})


def _name(case: dict) -> str:
    name = case.get("name")
    return str(name) if name not in (None, "") else f"de-{_content_hash(case)[:12]}"


def _identities(cases: list[tuple[str, dict]]) -> list[tuple[str, int]]:
    """(case_id, repeat) per case: `stem#k` split when the whole file is numbered that way, else file order."""
    names = [_name(c) for _, c in cases]
    matches = [REPEAT_SUFFIX.match(n) for n in names]
    if matches and all(matches):
        keys = [(m.group(1), int(m.group(2))) for m in matches]
        content: dict[str, set[str]] = {}
        for (stem, _), (_, case) in zip(keys, cases):
            content.setdefault(stem, set()).add(_content_hash(case))
        if len(set(keys)) == len(keys) and all(len(h) == 1 for h in content.values()):
            return keys
    repeats = RepeatCounter()
    return [(n, repeats.next(n)) for n in names]


def _case_rows(case: dict, case_id: str, repeat: int, path: Path, at: str, clipped: list[int]) -> list[dict]:
    trace = case.get("trace") if isinstance(case.get("trace"), dict) else {}
    trace_error = _trace_error(trace) if str(trace.get("status", "")).upper() == "ERRORED" else None
    case_success = flag(case.get("success"), path, f"{at}.success")
    tags = [str(t) for t in case.get("tags") or [] if isinstance(t, (str, int, float))]
    tags += tags_from_metadata(case.get("metadata"))
    base = {
        "case_id": case_id, "repeat": repeat, "case_hash": _content_hash(case), "tags": tags,
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
        success = flag(m.get("success"), path, f"{mat}.success")
        error = clean_error(m.get("error")) if m.get("error") else trace_error
        if error is None and success is None:
            error = "DeepEval recorded no verdict for this metric"
        outcome = "error" if error else ("pass" if success else "fail")
        rows.append(dict(base, scorer=scorer, outcome=outcome, score=None if error else score,
                         threshold=threshold, explanation=m.get("reason"), error=error))
    # Multi-turn cases carry turns, not one actualOutput: the empty-output rule is for single-turn cases.
    call_error = _failed_call(case, metrics) if at.startswith("testCases") else None
    if call_error:
        return [dict(r, outcome="error", score=None, error=r["error"] or call_error) for r in rows]
    conflict = _contradiction(case_success, rows)
    if conflict:
        return [dict(r, outcome="error", score=None, error=f"DeepEval result contradicts itself: {conflict}")
                for r in rows]
    return rows


def _failed_call(case: dict, metrics: list[dict]) -> str | None:
    """The recorded error of a case whose model call produced nothing, or None."""
    output = case.get("actualOutput")
    if output not in (None, "") and not (isinstance(output, str) and not output.strip()):
        return None
    for m in metrics:
        if m.get("error"):
            return clean_error(m["error"])
    return _metadata_error(case.get("metadata"), METADATA_DEPTH)


def _metadata_error(meta: Any, depth: int) -> str | None:
    if not isinstance(meta, dict) or depth == 0:
        return None
    for key, value in meta.items():
        if ERROR_KEY.search(str(key)):
            if isinstance(value, str) and value.strip():
                return clean_error(value)
            if isinstance(value, dict) and value:
                return clean_error(value.get("message") if isinstance(value.get("message"), str) else value)
            if isinstance(value, list) and value:
                return clean_error(value[0] if isinstance(value[0], str) else value)
    for value in meta.values():
        if isinstance(value, dict):
            found = _metadata_error(value, depth - 1)
            if found:
                return found
    return None


def _contradiction(case_success: bool | None, rows: list[dict]) -> str | None:
    if case_success is None:
        return None
    all_passed = all(r["outcome"] == "pass" for r in rows)
    if case_success and not all_passed:
        bad = next(r for r in rows if r["outcome"] != "pass")
        return f"the test case passed but metric {bad['scorer']!r} is {bad['outcome']}"
    if not case_success and all_passed:
        return "the test case failed but every metric passed"
    return None


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
