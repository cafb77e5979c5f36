"""Every outcome or score a result file states is checked: a wrongly typed or non-finite value is bad input
(one line naming file and field), and a file that contradicts itself imports the case as an error, never a pass."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from evalplatform.cli import main
from evalplatform.errors import InputError
from evalplatform.importers import import_results
from tests.evalplatform.importers.builders import (
    deepeval_case,
    inspect_log,
    inspect_sample,
    promptfoo_doc,
    promptfoo_row,
    write_json,
)

FLOOR = "rules:\n  - {id: floor, metric: pass_rate, bound: {min: 0.5}}\n"


def _rows() -> list[dict]:
    return [promptfoo_row("q1", {"q": "a"}, passed=True, test_idx=0),
            promptfoo_row("q2", {"q": "b"}, passed=False, test_idx=1)]


def _write_pf(tmp_path: Path, rows: list[dict], kind: str) -> Path:
    if kind == "json":
        return write_json(tmp_path / "r.results.json", promptfoo_doc(rows))
    path = tmp_path / "r.results.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def _set(path: str, value):
    """A mutation of row 0 (the passing one) at a dotted path."""
    def apply(rows):
        node = rows[0]
        keys = path.split(".")
        for k in keys[:-1]:
            node = node[int(k)] if isinstance(node, list) else node[k]
        last = keys[-1]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return apply


# (mutation, field the one-line error must name)
PROMPTFOO_BAD_FIELDS = [
    (_set("score", float("nan")), "results.results[0].score"),
    (_set("score", float("inf")), "results.results[0].score"),
    (_set("score", "1"), "results.results[0].score"),
    (_set("score", True), "results.results[0].score"),
    (_set("success", "maybe"), "results.results[0].success"),
    (_set("success", 1), "results.results[0].success"),
    (_set("failureReason", "none"), "results.results[0].failureReason"),
    (_set("failureReason", 7), "results.results[0].failureReason"),
    (_set("gradingResult", "passed"), "results.results[0].gradingResult"),
    (_set("gradingResult.pass", "yes"), "results.results[0].gradingResult.pass"),
    (_set("gradingResult.score", float("-inf")), "results.results[0].gradingResult.score"),
    (_set("gradingResult.componentResults", {"pass": True}), "results.results[0].gradingResult.componentResults"),
    (_set("gradingResult.componentResults.0.pass", None), "componentResults[0].pass"),
    (_set("gradingResult.componentResults.0.score", float("nan")), "componentResults[0].score"),
    (_set("tokenUsage.prompt", float("nan")), "results.results[0].tokenUsage.prompt"),
    (_set("tokenUsage.completion", -3), "results.results[0].tokenUsage.completion"),
    (_set("latencyMs", float("inf")), "results.results[0].latencyMs"),
]


@pytest.mark.parametrize(("mutate", "field"), PROMPTFOO_BAD_FIELDS,
                         ids=[f for _, f in PROMPTFOO_BAD_FIELDS])
@pytest.mark.parametrize("kind", ["json", "jsonl"])
def test_promptfoo_wrongly_typed_or_non_finite_field_is_bad_input(tmp_path, mutate, field, kind):
    rows = _rows()
    mutate(rows)
    path = _write_pf(tmp_path, rows, kind)
    with pytest.raises(InputError) as err:
        import_results([path])
    line = str(err.value)
    expected = field if kind == "json" else field.replace("results.results[0]", "line 1")
    assert path.name in line and expected in line, line
    assert "\n" not in line


def _contradictions():
    def fail_but_components_pass(rows):
        rows[1]["gradingResult"]["componentResults"][0].update({"pass": True, "score": 1.0})

    def pass_but_component_fails(rows):
        rows[0]["gradingResult"]["componentResults"][0].update({"pass": False, "score": 0.0})

    def success_vs_grading(rows):
        rows[1]["success"] = True
        rows[1]["failureReason"] = 0

    def success_vs_failure_reason(rows):
        rows[1]["success"] = True
        rows[1]["gradingResult"]["pass"] = True

    def score_vs_grading_score(rows):
        rows[1]["score"] = 1.0

    return {
        "failed test, every assertion passed": (fail_but_components_pass, "q2"),
        "passed test, an assertion failed": (pass_but_component_fails, "q1"),
        "success vs gradingResult.pass": (success_vs_grading, "q2"),
        "success vs failureReason": (success_vs_failure_reason, "q2"),
        "score vs gradingResult.score": (score_vs_grading_score, "q2"),
    }


@pytest.mark.parametrize("name", list(_contradictions()))
@pytest.mark.parametrize("kind", ["json", "jsonl"])
def test_promptfoo_row_that_contradicts_itself_is_an_error_with_the_reason(tmp_path, name, kind):
    mutate, case = _contradictions()[name]
    rows = _rows()
    mutate(rows)
    df = import_results([_write_pf(tmp_path, rows, kind)])
    row = df.filter(pl.col("case_id") == case).row(0, named=True)
    assert row["outcome"] == "error" and row["score"] is None
    assert "contradicts" in row["error"], row["error"]
    other = "q1" if case == "q2" else "q2"
    assert df.filter(pl.col("case_id") == other)["outcome"].to_list() == [{"q1": "pass", "q2": "fail"}[other]]


def test_promptfoo_contradiction_never_gates_pass(tmp_path, monkeypatch, capsys):
    """The issue's case: the test failed but its componentResults all say pass; it used to gate PASS."""
    monkeypatch.chdir(tmp_path)
    rows = [promptfoo_row(f"q{i}", {"q": str(i)}, passed=False, test_idx=i) for i in range(4)]
    for r in rows:
        r["gradingResult"]["componentResults"][0].update({"pass": True, "score": 1.0})
    results = write_json(tmp_path / "r.results.json", promptfoo_doc(rows))
    (tmp_path / "policy.yaml").write_text(FLOOR)
    rc = main(["gate", "--no-record", "--results", str(results), "--policy", str(tmp_path / "policy.yaml")])
    assert rc == 1, capsys.readouterr()


def test_promptfoo_nan_score_gates_as_bad_input(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    text = json.dumps(promptfoo_doc(_rows())).replace('"score": 1.0', '"score": NaN', 1)
    results = tmp_path / "r.results.json"
    results.write_text(text)
    (tmp_path / "policy.yaml").write_text(FLOOR)
    rc = main(["gate", "--no-record", "--results", str(results), "--policy", str(tmp_path / "policy.yaml")])
    err = capsys.readouterr().err
    assert rc == 2
    assert [line for line in err.splitlines() if line.startswith("error:")] == [
        next(line for line in err.splitlines() if "r.results.json: results.results[0].score" in line)]


def test_promptfoo_threshold_explains_a_failed_assertion_in_a_passed_test(tmp_path):
    rows = _rows()
    rows[0]["testCase"]["threshold"] = 0.5
    rows[0]["testCase"]["assert"].append({"type": "contains", "value": "y"})
    comps = rows[0]["gradingResult"]["componentResults"]
    comps.append({"pass": False, "score": 0.0, "reason": "missing y", "assertion": {"type": "contains", "value": "y"}})
    rows[0]["gradingResult"]["score"] = rows[0]["score"] = 0.5
    df = import_results([_write_pf(tmp_path, rows, "json")]).filter(pl.col("case_id") == "q1")
    assert df.select("scorer", "outcome").rows() == [("kw", "pass"), ("contains", "fail")]


def test_promptfoo_assert_set_children_do_not_contradict_their_passing_set(tmp_path):
    rows = _rows()
    child_ok = {"pass": True, "score": 1.0, "reason": "ok", "assertion": {"type": "contains", "value": "a"}}
    child_bad = {"pass": False, "score": 0.0, "reason": "no b", "assertion": {"type": "contains", "value": "b"}}
    parent = {"pass": True, "score": 0.5, "reason": "set passed", "componentResults": [child_ok, child_bad],
              "assertion": {"type": "assert-set", "threshold": 0.5}}
    rows[0]["gradingResult"]["componentResults"] = [parent, child_ok, child_bad]
    rows[0]["gradingResult"]["score"] = rows[0]["score"] = 0.5
    df = import_results([_write_pf(tmp_path, rows, "json")]).filter(pl.col("case_id") == "q1")
    assert df["outcome"].to_list() == ["pass", "pass", "fail"]


def test_promptfoo_no_output_row_stays_a_failure(tmp_path):
    """promptfoo writes success false, failureReason 0 and error "No output" (no grading) when a provider
    returns nothing: that is stated consistently, so it is a fail, not a contradiction."""
    rows = _rows()
    rows[1].update(success=False, failureReason=0, error="No output", score=0, gradingResult=None)
    df = import_results([_write_pf(tmp_path, rows, "json")]).filter(pl.col("case_id") == "q2")
    assert df["outcome"].to_list() == ["fail"]


# ---- Promptfoo CSV ----

CSV_HEAD = "Description,question,[mock] {{question}},Status,Score,Named Scores,Metric: kw,Grader Reason,Comment\n"


@pytest.mark.parametrize(("line", "field"), [
    ('q1,a,out,PASS,NaN,"{""kw"":1}",1.00,ok,\n', "Score"),
    ('q1,a,out,PASS,inf,"{""kw"":1}",1.00,ok,\n', "Score"),
    ('q1,a,out,maybe,1.00,"{""kw"":1}",1.00,ok,\n', "Status"),
    ('q1,a,out,true,1.00,"{""kw"":1}",1.00,ok,\n', "Status"),
    ('q1,a,out,PASS,1.00,"{""kw"":1}",NaN,ok,\n', "Metric: kw"),
    ('q1,a,out,PASS,1.00,"{""kw"":NaN}",1.00,ok,\n', "Named Scores"),
    ('q1,a,out,PASS,1.00,"not json",1.00,ok,\n', "Named Scores"),
])
def test_promptfoo_csv_stated_fields_are_checked(tmp_path, line, field):
    path = tmp_path / "r.results.csv"
    path.write_text(CSV_HEAD + line)
    with pytest.raises(InputError) as err:
        import_results([path])
    assert path.name in str(err.value) and field in str(err.value), str(err.value)


def test_promptfoo_csv_good_rows_import(tmp_path):
    path = tmp_path / "r.results.csv"
    path.write_text(CSV_HEAD + 'q1,a,out,PASS,1.00,"{""kw"":1}",1.00,ok,\nq2,b,,ERROR,0.00,{},,,\n'
                    'q3,c,out,FAIL,0.00,"{""kw"":0}",0.00,no,\n')
    df = import_results([path])
    assert df.select("case_id", "outcome").rows() == [("q1", "pass"), ("q2", "error"), ("q3", "fail")]


# ---- DeepEval ----

OK_METRIC = {"name": "M", "threshold": 0.5, "success": True, "score": 0.9, "reason": "fine"}


def _deepeval(tmp_path: Path, cases: list[dict]) -> Path:
    return write_json(tmp_path / "test_run_20261122_212108.json", {"testCases": cases})


@pytest.mark.parametrize(("mutate", "field"), [
    (lambda c: c["metricsData"][0].update(success="maybe"), "testCases[0].metricsData[0].success"),
    (lambda c: c["metricsData"][0].update(score=float("nan")), "testCases[0].metricsData[0].score"),
    (lambda c: c["metricsData"][0].update(score=True), "testCases[0].metricsData[0].score"),
    (lambda c: c["metricsData"][0].update(threshold=float("inf")), "testCases[0].metricsData[0].threshold"),
    (lambda c: c.update(success="yes"), "testCases[0].success"),
])
def test_deepeval_wrongly_typed_or_non_finite_field_is_bad_input(tmp_path, mutate, field):
    case = deepeval_case("a", [dict(OK_METRIC)])
    mutate(case)
    path = _deepeval(tmp_path, [case])
    with pytest.raises(InputError) as err:
        import_results([path])
    assert path.name in str(err.value) and field in str(err.value), str(err.value)


def test_deepeval_case_verdict_contradicting_its_metrics_is_an_error(tmp_path):
    passed_but_metric_failed = deepeval_case("a", [dict(OK_METRIC, success=False, score=0.1)])
    passed_but_metric_failed["success"] = True
    failed_but_metrics_passed = deepeval_case("b", [dict(OK_METRIC)])
    failed_but_metrics_passed["success"] = False
    df = import_results([_deepeval(tmp_path, [passed_but_metric_failed, failed_but_metrics_passed,
                                              deepeval_case("c", [dict(OK_METRIC)])])])
    assert df.select("case_id", "outcome").rows() == [("a", "error"), ("b", "error"), ("c", "pass")]
    assert all("contradicts" in e for e in df["error"][:2])


def _failed_call(name: str, **where) -> dict:
    """evaluate() mode: the user's code caught the provider error; the metric then simply failed."""
    case = deepeval_case(name, [dict(OK_METRIC, success=False, score=0.0, reason="keyword not in output")])
    case["actualOutput"] = ""
    case["metadata"] = {"case_id": name, "provider_error": None, **where}
    return case


@pytest.mark.parametrize(("case", "text"), [
    (_failed_call("a", provider_error="RateLimitError: Error code: 429 - slow down"), "RateLimitError: Error code: 429"),
    (_failed_call("a", exception="TimeoutError: read timed out"), "TimeoutError: read timed out"),
    (_failed_call("a", call={"errorMessage": "APIError: 500"}), "APIError: 500"),
])
def test_deepeval_failed_model_call_is_an_error_not_a_fail(tmp_path, case, text):
    df = import_results([_deepeval(tmp_path, [case, deepeval_case("b", [dict(OK_METRIC)])])])
    row = df.filter(pl.col("case_id") == "a").row(0, named=True)
    assert row["outcome"] == "error" and row["score"] is None
    assert text in row["error"]


def test_deepeval_metric_error_with_empty_output_is_an_error(tmp_path):
    case = deepeval_case("a", [{"name": "M", "threshold": 0.5, "success": False, "error": "judge: 503 overloaded"}])
    case["actualOutput"] = ""
    row = import_results([_deepeval(tmp_path, [case])]).row(0, named=True)
    assert (row["outcome"], row["error"]) == ("error", "judge: 503 overloaded")


def test_deepeval_fifteen_percent_failed_calls_block_an_error_rate_rule(tmp_path, monkeypatch, capsys):
    """The issue's numbers: 15% of cases had their model call fail; an error-rate rule must see them."""
    monkeypatch.chdir(tmp_path)
    cases = [deepeval_case(f"q{i:03d}", [dict(OK_METRIC)]) for i in range(85)]
    cases += [_failed_call(f"q{i:03d}", provider_error="RateLimitError: 429") for i in range(85, 100)]
    path = _deepeval(tmp_path, cases)
    (tmp_path / "policy.yaml").write_text("rules:\n  - {id: errors, metric: error_rate, bound: {max: 0.05}}\n")
    assert main(["gate", "--no-record", "--results", str(path), "--policy", str(tmp_path / "policy.yaml")]) == 1
    capsys.readouterr()


def test_deepeval_empty_output_without_a_recorded_error_stays_a_fail(tmp_path):
    case = _failed_call("a")
    assert import_results([_deepeval(tmp_path, [case])])["outcome"].to_list() == ["fail"]


def test_deepeval_name_suffix_is_the_repeat(tmp_path):
    """`name#k` is how DeepEval users number repeats (DeepEval has none); two repeats of one case align by id."""
    def rep(name: str, k: int, ok: bool) -> dict:
        c = deepeval_case(f"{name}#{k}", [dict(OK_METRIC, success=ok, score=0.9 if ok else 0.1)])
        c["input"] = f"in {name}"
        return c
    cases = [rep("q0", 0, True), rep("q1", 0, False), rep("q0", 1, False), rep("q1", 1, True)]
    df = import_results([_deepeval(tmp_path, cases)]).sort("case_id", "repeat")
    assert df.select("case_id", "repeat", "outcome").rows() == [
        ("q0", 0, "pass"), ("q0", 1, "fail"), ("q1", 0, "fail"), ("q1", 1, "pass")]


def test_deepeval_hash_in_a_name_is_kept_when_it_is_not_a_repeat(tmp_path):
    # Different content under one stem: these are different cases that happen to have numbers in their names.
    cases = [deepeval_case("issue#1", [dict(OK_METRIC)]), deepeval_case("issue#2", [dict(OK_METRIC)])]
    df = import_results([_deepeval(tmp_path, cases)])
    assert df.select("case_id", "repeat").rows() == [("issue#1", 0), ("issue#2", 0)]


# ---- Inspect ----

def _inspect(tmp_path: Path, sample: dict) -> Path:
    return write_json(tmp_path / "r.log.json", inspect_log([sample, inspect_sample("b", 1, "C")]))


@pytest.mark.parametrize(("mutate", "field"), [
    (lambda s: s["scores"]["includes"].update(value=float("nan")), "samples[0].scores.includes.value"),
    (lambda s: s["scores"]["includes"].update(value="Infinity"), "samples[0].scores.includes.value"),
    (lambda s: s["scores"]["includes"].update(value=[1]), "samples[0].scores.includes.value"),
    (lambda s: s["output"]["usage"].update(input_tokens=-4), "samples[0].output.usage.input_tokens"),
    (lambda s: s["output"]["usage"].update(output_tokens=2.5), "samples[0].output.usage.output_tokens"),
    (lambda s: s["output"].update(time=float("inf")), "samples[0].output.time"),
])
def test_inspect_wrongly_typed_or_non_finite_field_is_bad_input(tmp_path, mutate, field):
    sample = inspect_sample("a", 1, "C")
    mutate(sample)
    path = _inspect(tmp_path, sample)
    with pytest.raises(InputError) as err:
        import_results([path])
    assert path.name in str(err.value) and field in str(err.value), str(err.value)


def test_inspect_error_object_without_message_is_still_an_error(tmp_path):
    sample = inspect_sample("a", 1, "C")
    sample["error"] = {}
    df = import_results([_inspect(tmp_path, sample)])
    assert df.filter(pl.col("case_id") == "a")["outcome"].to_list() == ["error"]


# ---- JUnit ----

def _junit(tmp_path: Path, body: str, suite_attrs: str = "") -> Path:
    path = tmp_path / "r.junit.xml"
    path.write_text(f'<?xml version="1.0"?><testsuites><testsuite name="s" {suite_attrs}>{body}'
                    "</testsuite></testsuites>")
    return path


@pytest.mark.parametrize(("body", "attrs", "field"), [
    ('<testcase name="a" time="NaN"/>', "", "testcase@time"),
    ('<testcase name="a" time="inf"/>', "", "testcase@time"),
    ('<testcase name="a" time="-1"/>', "", "testcase@time"),
    ('<testcase name="a"/>', 'failures="many"', "testsuite@failures"),
    ('<testcase name="a"/>', 'errors="-1"', "testsuite@errors"),
])
def test_junit_wrongly_typed_or_non_finite_attribute_is_bad_input(tmp_path, body, attrs, field):
    path = _junit(tmp_path, body, attrs)
    with pytest.raises(InputError) as err:
        import_results([path])
    assert path.name in str(err.value) and field in str(err.value), str(err.value)


def test_junit_suite_stating_more_failures_than_its_testcases_show_is_incomplete(tmp_path):
    path = _junit(tmp_path, '<testcase name="a"/><testcase name="b"/>', 'tests="3" failures="1" errors="1"')
    out = load_results_for(path)
    assert out.frame["outcome"].to_list() == ["pass", "pass"]
    assert len(out.warnings) == 1 and "states 1 failure(s) and 1 error(s)" in out.warnings[0]
    assert path.name in out.warnings[0]


def test_junit_counts_that_agree_give_no_warning(tmp_path):
    path = _junit(tmp_path, '<testcase name="a"/><testcase name="b"><failure message="x"/></testcase>',
                  'tests="2" failures="1" errors="0"')
    assert load_results_for(path).warnings == []


def load_results_for(path: Path):
    from evalplatform.importers import load_results

    return load_results([path])


# ---- generic tables ----

@pytest.mark.parametrize(("column", "value"), [("latency_ms", "NaN"), ("cost_usd", "inf"), ("served_ms", "-inf")])
def test_generic_non_finite_measurements_are_bad_input(tmp_path, column, value):
    path = tmp_path / "r.csv"
    path.write_text(f"case_id,outcome,{column}\na,pass,{value}\n")
    with pytest.raises(InputError) as err:
        import_results([path])
    assert path.name in str(err.value) and column in str(err.value), str(err.value)


def test_lone_surrogates_in_json_text_are_replaced_not_a_crash(tmp_path, monkeypatch, capsys):
    """JavaScript tools cut strings by UTF-16 unit, so an emoji halved into a lone \\ud83d reaches the JSON;
    the text imports with U+FFFD in its place (the frame and the history hold UTF-8 only)."""
    rows = [promptfoo_row("q1", {"q": "a"}, passed=True, test_idx=0),
            promptfoo_row("q2", {"q": "b"}, passed=None, test_idx=1, error="boom \ud83d")]
    rows[0]["gradingResult"]["componentResults"][0]["reason"] = "ok \ude00"
    path = write_json(tmp_path / "r.results.json", promptfoo_doc(rows))
    assert "\\ud83d" in path.read_text()
    df = import_results([path]).sort("case_id")
    assert df["error"][1] == "boom \ufffd" and df["explanation"][0] == "ok \ufffd"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "policy.yaml").write_text(FLOOR)
    assert main(["gate", "--no-record", "--results", str(path), "--policy", "policy.yaml"]) == 1
    assert "internal failure" not in capsys.readouterr().err


def test_promptfoo_stats_that_disagree_with_the_rows_warn_and_block(tmp_path, monkeypatch, capsys):
    """results.stats is the file's own summary; rows missing or edited against it mean the file is not whole."""
    from evalplatform.importers import load_results

    doc = promptfoo_doc(_rows())
    assert load_results([write_json(tmp_path / "ok.results.json", doc)]).warnings == []
    doc["results"]["stats"].update(successes=1, failures=0, errors=1)
    path = write_json(tmp_path / "r.results.json", doc)
    warnings = load_results([path]).warnings
    assert len(warnings) == 1 and "results.stats" in warnings[0] and str(path) in warnings[0]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "policy.yaml").write_text("rules:\n  - {id: floor, metric: pass_rate, bound: {min: 0.1}}\n")
    assert main(["gate", "--no-record", "--results", str(path), "--policy", "policy.yaml"]) == 1
    capsys.readouterr()


def test_promptfoo_stats_of_the_wrong_type_are_bad_input(tmp_path):
    doc = promptfoo_doc(_rows())
    doc["results"]["stats"]["errors"] = "none"
    path = write_json(tmp_path / "r.results.json", doc)
    with pytest.raises(InputError, match=r"results\.stats\.errors"):
        import_results([path])


def test_deepeval_multi_turn_case_is_not_judged_by_the_empty_output_rule(tmp_path):
    # Conversational cases have turns, no actualOutput; a metadata note about errors is not a failed call.
    case = {"name": "conv", "turns": [{"role": "user", "content": "hi"}], "success": True,
            "metricsData": [dict(OK_METRIC)], "metadata": {"error_analysis": "none found"}}
    path = write_json(tmp_path / "test_run_1.json", {"testCases": [], "conversationalTestCases": [case]})
    assert import_results([path])["outcome"].to_list() == ["pass"]
