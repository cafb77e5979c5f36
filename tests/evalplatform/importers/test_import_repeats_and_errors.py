"""Repeats are regrouped by case content, and every errored case imports as an error, never pass or fail."""

from __future__ import annotations

import json

import polars as pl
import pytest

from evalplatform.importers import ImportIncompleteWarning, import_results, load_results
from tests.evalplatform.importers.builders import (
    deepeval_case,
    inspect_log,
    inspect_sample,
    promptfoo_doc,
    promptfoo_row,
    write_eval_archive,
    write_json,
)


def _outcomes(df: pl.DataFrame, case: str) -> list[str]:
    return df.filter(pl.col("case_id") == case).sort("repeat")["outcome"].to_list()


def test_promptfoo_repeat_rows_group_by_case_not_test_index(tmp_path):
    # `--repeat 3` writes each repeat as a new testIdx, interleaved case by case.
    cases = [("q1", {"q": "a"}), ("q2", {"q": "b"})]
    verdicts = {"q1": [True, False, True], "q2": [False, False, True]}
    rows, idx = [], 0
    for k in range(3):
        for desc, vars_ in cases:
            rows.append(promptfoo_row(desc, vars_, passed=verdicts[desc][k], test_idx=idx))
            idx += 1
    df = import_results([write_json(tmp_path / "r.json", promptfoo_doc(rows))])
    assert df.height == 6
    assert sorted(df["repeat"].unique().to_list()) == [0, 1, 2]
    assert _outcomes(df, "q1") == ["pass", "fail", "pass"]
    assert _outcomes(df, "q2") == ["fail", "fail", "pass"]


def test_promptfoo_same_description_different_vars_are_different_cases(tmp_path):
    rows = [promptfoo_row("same", {"q": "a"}, passed=True, test_idx=0),
            promptfoo_row("same", {"q": "b"}, passed=False, test_idx=1)]
    df = import_results([write_json(tmp_path / "r.json", promptfoo_doc(rows))])
    assert df["case_id"].n_unique() == 2
    assert df["repeat"].to_list() == [0, 0]
    assert all(c.startswith("same#") for c in df["case_id"])


def test_promptfoo_each_assertion_is_a_scorer_row(tmp_path):
    asserts = [{"type": "contains", "value": "x"}, {"type": "contains", "value": "y"},
               {"type": "llm-rubric", "value": "polite", "metric": "tone"}]
    # One failed assertion fails the test (promptfoo's rule without a test threshold).
    row = promptfoo_row("q1", {"q": "a"}, passed=False, test_idx=0, asserts=asserts)
    for j in (0, 2):
        row["gradingResult"]["componentResults"][j].update({"pass": True, "score": 1.0})
    df = import_results([write_json(tmp_path / "r.json", promptfoo_doc([row]))])
    assert df.select("scorer", "outcome", "criterion").rows() == [
        ("contains", "pass", None), ("contains#2", "fail", None), ("tone", "pass", "tone")]
    # Per-call columns repeat on every scorer row of the call.
    assert df["tokens_in"].to_list() == [14, 14, 14]


def test_promptfoo_without_components_uses_one_promptfoo_row(tmp_path):
    row = promptfoo_row("q1", {"q": "a"}, passed=False, test_idx=0, score=0.4)
    row["gradingResult"]["componentResults"] = []
    df = import_results([write_json(tmp_path / "r.json", promptfoo_doc([row]))])
    assert df.select("scorer", "outcome", "score").rows() == [("promptfoo", "fail", 0.4)]


def test_promptfoo_errors_are_errors_under_each_declared_scorer(tmp_path):
    rows = [promptfoo_row("q1", {"q": "a"}, passed=True, test_idx=0),
            promptfoo_row("q2", {"q": "b"}, passed=False, test_idx=1),
            promptfoo_row("q3", {"q": "c"}, passed=None, test_idx=2,
                          error="RateLimitExhaustedError: Rate limit exceeded for openai:chat:mock after 4 attempts"
                                " (key sk-abcdefghijklmnop)\n    at retry (a.js:1:1)")]
    path = write_json(tmp_path / "errors.json", promptfoo_doc(rows))
    df = import_results([path])
    err = df.filter(pl.col("case_id") == "q3").row(0, named=True)
    assert (err["outcome"], err["scorer"], err["score"]) == ("error", "kw", None)
    assert err["error"].startswith("RateLimitExhaustedError: Rate limit exceeded")
    assert "at retry" not in err["error"] and "sk-abcdefghijklmnop" not in err["error"]
    assert dict(df.group_by("outcome").len().iter_rows()) == {"pass": 1, "fail": 1, "error": 1}
    # Same rows as JSONL (one result per line) give the same outcomes.
    jsonl = tmp_path / "errors.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert import_results([jsonl])["outcome"].to_list() == df["outcome"].to_list()


def test_deepeval_iterator_errored_trace_and_metric_error(tmp_path):
    ok = {"name": "ContainsKeyword", "threshold": 1.0, "success": True, "score": 1.0, "reason": "found"}
    bad = {"name": "ContainsKeyword", "threshold": 1.0, "success": False, "score": 0.0, "reason": "missing"}
    errored_metric = {"name": "ContainsKeyword", "threshold": 1.0, "success": False, "strictMode": False}
    trace = {"uuid": "t", "status": "ERRORED", "baseSpans": [],
             "llmSpans": [{"name": "app", "status": "ERRORED", "error": "RateLimitError: Error code: 429 - slow down"}]}
    judge_failed = dict(ok, success=False, score=None, error="judge timed out")
    doc = {"testCases": [deepeval_case("q0#0", [ok]), deepeval_case("q1#0", [bad]),
                         deepeval_case("q2#0", [errored_metric], trace=trace),
                         deepeval_case("q3#0", [judge_failed])],
           "conversationalTestCases": [], "metricsScores": [], "testPassed": 1, "testFailed": 3}
    df = import_results([write_json(tmp_path / "test_run_20261122_212108.json", doc)])
    # evals_iterator names every golden `name#0`: the suffix is the repeat, the stem the case id.
    assert df.select("case_id", "repeat", "outcome").rows() == [
        ("q0", 0, "pass"), ("q1", 0, "fail"), ("q2", 0, "error"), ("q3", 0, "error")]
    assert df["error"][2] == "RateLimitError: Error code: 429 - slow down"
    assert df["error"][3] == "judge timed out"
    assert df["threshold"].to_list() == [1.0] * 4


def test_deepeval_repeated_names_become_repeats(tmp_path):
    m = {"name": "M", "threshold": 0.5, "success": True, "score": 0.9}
    doc = {"testCases": [deepeval_case("a", [m]), deepeval_case("a", [dict(m, success=False, score=0.1)])]}
    df = import_results([write_json(tmp_path / "run.json", doc)])
    assert df.select("case_id", "repeat", "outcome").rows() == [("a", 0, "pass"), ("a", 1, "fail")]


def test_inspect_errored_samples_and_epochs(tmp_path):
    samples = [inspect_sample("a", 1, "C"), inspect_sample("a", 2, "I"), inspect_sample("a", 3, "P"),
               inspect_sample("b", 1, error="RetryError(<Future raised RateLimitError>)"),
               inspect_sample("b", 2, 1.0), inspect_sample("b", 3, True)]
    log = inspect_log(samples, epochs=3)
    for path in (write_json(tmp_path / "log.json", log), write_eval_archive(tmp_path / "log.eval", log)):
        df = import_results([path]).sort("case_id", "repeat")
        assert df.select("case_id", "repeat", "outcome", "score").rows() == [
            ("a", 0, "pass", 1.0), ("a", 1, "fail", 0.0), ("a", 2, "fail", 0.5),
            ("b", 0, "error", None), ("b", 1, "pass", 1.0), ("b", 2, "pass", 1.0)]
        assert df["scorer"].unique().to_list() == ["includes"]
        assert df.filter(pl.col("outcome") == "error")["error"][0].startswith("RetryError")
        assert df["suite"][0] == "demo_task"


def test_inspect_stopped_run_reports_missing_samples(tmp_path):
    """fail_on_error: status error, results null, only part of the dataset logged; the rest is not invented."""
    ids = [f"q{i}" for i in range(10)]
    samples = [inspect_sample(f"q{i}", 1, "C") for i in range(6)]
    samples.append(inspect_sample("q6", 1, error="CancelledError"))
    log = inspect_log(samples, status="error", ids=ids, error="RateLimitError: 429")
    for path in (write_json(tmp_path / "stopped.json", log), write_eval_archive(tmp_path / "stopped.eval", log)):
        out = load_results([path])
        assert out.frame.height == 7
        assert dict(out.frame.group_by("outcome").len().iter_rows()) == {"pass": 6, "error": 1}
        assert len(out.warnings) == 1
        assert "3 of 10 sample-epochs are absent" in out.warnings[0] and path.name in out.warnings[0]
        assert "eval-retry" in out.warnings[0]
        with pytest.warns(ImportIncompleteWarning, match="3 of 10"):
            import_results([path])


def test_inspect_dict_scores_become_one_scorer_per_key(tmp_path):
    s = inspect_sample("a", 1, {"accuracy": "C", "grounded": 0.25})
    df = import_results([write_json(tmp_path / "log.json", inspect_log([s]))])
    assert df.select("scorer", "outcome", "score").rows() == [
        ("includes/accuracy", "pass", 1.0), ("includes/grounded", "fail", 0.25)]


def test_junit_failure_error_skipped(tmp_path):
    xml = """<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="promptfoo"><testsuite name="[mock] prompt 1" tests="4">
  <testcase classname="[mock] prompt 1" name="test 1: q000" time="0.5"></testcase>
  <testcase classname="[mock] prompt 1" name="test 2: q001" time="0.4"><failure message="Assertion failed" type="assertion">Score: 0</failure></testcase>
  <testcase classname="[mock] prompt 1" name="test 3: q002" time="0"><error message="Evaluation error" type="error">Reason: Evaluation error</error></testcase>
  <testcase classname="[mock] prompt 1" name="test 4: q003"><skipped/></testcase>
</testsuite></testsuites>"""
    path = tmp_path / "r.junit.xml"
    path.write_text(xml)
    df = import_results([path])
    assert df.select("case_id", "outcome").rows() == [
        ("[mock] prompt 1::test 1: q000", "pass"), ("[mock] prompt 1::test 2: q001", "fail"),
        ("[mock] prompt 1::test 3: q002", "error"), ("[mock] prompt 1::test 4: q003", "skipped")]
    assert df["error"][2] == "Evaluation error Reason: Evaluation error"
    assert df["latency_ms"][0] == 500.0
    assert df["suite"][0] == "[mock] prompt 1"
