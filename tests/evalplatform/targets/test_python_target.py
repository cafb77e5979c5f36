"""A team's own Python function or class as the suite's target: inputs, results, timeouts, retries, cache, errors."""

from __future__ import annotations

import asyncio
import json
import sys
import threading

import polars as pl
import pytest

from evalplatform import results as R
from evalplatform.errors import InputError
from evalplatform.models.calls import CallRequest
from evalplatform.models.cache import ResponseCache
from evalplatform.targets import PythonTarget
from evalplatform.targets.python_target import Trial, run_trials
from evalplatform.targets.resolve import Resolved
from tests.helpers.clock import FakeClock
from tests.python_targets import case, make_suite, run_suite

ECHO = '''
from evalplatform.targets import TargetResult, ToolCall, Step

SEEN = []

def answer(case):
    SEEN.append(case)
    return TargetResult(
        output=f"{case.prompt.upper()} seed={case.seed} repeat={case.repeat} city={case.fields.get('city')}",
        context=["doc-1"], tool_calls=[ToolCall(name="search", arguments='{"q": "x"}')],
        steps=[Step(name="retrieve", k=1)], tokens_in=3, tokens_out=5, cost_usd=0.002, latency_ms=250.0)
'''


def test_a_function_in_the_suite_folder_receives_the_typed_case_and_its_result_lands_in_the_table(tmp_path):
    suite = make_suite(tmp_path, ECHO, cases=[case("c1", "hello", ["HELLO"], city="Oslo", extra={"k": [1, 2]})],
                       target={"python": "team_pipeline:answer", "seed": 10, "system_prompt": "Be brief."})
    run = run_suite(suite, repeats=2)
    calls = R.call_rows(run.results).sort("repeat")
    assert calls["outcome"].to_list() == ["pass", "pass"]
    module = sys.modules["team_pipeline"]
    got = sorted(module.SEEN, key=lambda c: c.repeat)
    assert [c.seed for c in got] == [10, 11]  # the target's seed plus the repeat index
    assert got[0].messages == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello\n"}]
    assert got[0].fields["city"] == "Oslo" and got[0].fields["extra"] == {"k": [1, 2]}  # JSON values come back
    # The pipeline's own latency and cost are the call's numbers; its trace is stored by hash.
    assert calls["latency_ms"].to_list() == [250.0, 250.0] and calls["cost_usd"].to_list() == [0.002, 0.002]
    trace = json.loads(run.outputs[calls["trace_hash"][0]])
    assert trace["tool_calls"][0]["arguments"] == {"q": "x"} and trace["turns"][0]["context"] == ["doc-1"]


ASYNC = '''
import asyncio

async def answer(case):
    await asyncio.sleep(0)
    return f"async {case.prompt.strip()}"
'''


def test_an_async_function_is_awaited(tmp_path):
    suite = make_suite(tmp_path, ASYNC, cases=[case("c1", "hi", ["async hi"])],
                       target={"python": "team_pipeline:answer"})
    assert run_suite(suite).results["outcome"].to_list() == ["pass"]


def _resolved(fn) -> Resolved:
    return Resolved(obj=fn, is_class=False, module_file=__import__("pathlib").Path(__file__), code_version="v")


def _trials(n: int) -> list[Trial]:
    return [Trial(CallRequest(f"c{i}", 0, [{"role": "user", "content": f"q{i}"}]), {}, []) for i in range(n)]


def test_a_sync_call_over_its_timeout_is_abandoned_and_recorded_as_an_error_while_the_others_finish():
    release = threading.Event()
    started = threading.Event()

    def answer(case):
        if case.case_id == "c0":
            started.set()
            release.wait()  # blocks until the test ends: only the timeout can get the run past it
            return "late"
        return "ok"

    target = PythonTarget(python="m:answer", timeout_s=0.2, retry_on=["TimeoutError"])
    try:
        results = asyncio.run(run_trials(target, _resolved(answer), _trials(3), concurrency=3))
    finally:
        release.set()
    assert started.is_set()
    assert [r.text for r in results] == [None, "ok", "ok"]
    assert "no answer within timeout_s=0.2" in results[0].error and results[0].error_kind == "timeout"
    assert results[0].attempts == 1  # a timed-out call is never retried: it may still be running
    assert not results[0].infra_error  # the pipeline's slowness is its own error, not the infrastructure's


def test_retries_only_on_the_exceptions_the_suite_marks_retryable():
    calls: dict[str, int] = {}

    def flaky(case):
        calls[case.case_id] = calls.get(case.case_id, 0) + 1
        if calls[case.case_id] < 3:
            raise ConnectionResetError("reset by peer")
        return "fine"

    clock = FakeClock()
    target = PythonTarget(python="m:flaky", retry_on=["ConnectionResetError"], max_attempts=4,
                          backoff_base_s=1.0, backoff_max_s=8.0)
    [ok] = asyncio.run(run_trials(target, _resolved(flaky), _trials(1), clock=clock))
    assert ok.text == "fine" and ok.attempts == 3 and len(clock.sleeps) == 2
    assert [e["outcome"] for e in ok.attempt_log] == ["connection", "connection", "ok"]

    calls.clear()
    unmarked = PythonTarget(python="m:flaky")
    [failed] = asyncio.run(run_trials(unmarked, _resolved(flaky), _trials(1), clock=FakeClock()))
    assert failed.attempts == 1 and "ConnectionResetError: reset by peer" in failed.error
    assert failed.infra_error  # a connection failure inside the pipeline is its dependencies' failure


def test_what_the_function_returns_must_be_text_or_a_result_else_the_trial_errors():
    def bad(case):
        return {"output": "x", "tool_calls": [{"arguments": {}}]} if case.case_id == "c0" else 42

    results = asyncio.run(run_trials(PythonTarget(python="m:bad"), _resolved(bad), _trials(2)))
    assert "invalid result: tool_calls.0.name" in results[0].error
    assert "returned int, expected text or a TargetResult" in results[1].error


COUNTING = '''
CALLS = []

def answer(case):
    CALLS.append(case.case_id)
    return "v1 " + case.prompt
'''


def test_the_cache_is_keyed_by_import_path_and_code_version(tmp_path):
    suite = make_suite(tmp_path, COUNTING, cases=[case("c1", "a"), case("c2", "b")],
                       target={"python": "team_pipeline:answer"})
    cache = tmp_path / "cache"
    first = run_suite(suite, cache_dir=cache)
    module = sys.modules["team_pipeline"]
    assert len(module.CALLS) == 2 and not R.call_rows(first.results)["cache_hit"].any()
    second = run_suite(suite, cache_dir=cache)
    assert len(module.CALLS) == 2 and R.call_rows(second.results)["cache_hit"].all()
    assert R.call_rows(second.results)["output_hash"].to_list() == R.call_rows(first.results)["output_hash"].to_list()
    # A change to the module file is a new code version: nothing stale is served, the new code runs.
    path = suite.parent / "team_pipeline.py"
    path.write_text(path.read_text().replace('"v1 "', '"v2 "'))
    third = run_suite(suite, cache_dir=cache)
    assert not R.call_rows(third.results)["cache_hit"].any()
    texts = [run for run in third.outputs.values() if run.startswith("v")]
    assert texts and all(t.startswith("v2 ") for t in texts)


def test_an_explicit_version_keys_the_cache_instead_of_the_file(tmp_path):
    suite = make_suite(tmp_path, COUNTING, cases=[case("c1", "a")],
                       target={"python": "team_pipeline:answer", "version": "2026.03"})
    cache = tmp_path / "cache"
    run_suite(suite, cache_dir=cache)
    path = suite.parent / "team_pipeline.py"
    path.write_text(path.read_text() + "\n# a comment\n")
    assert R.call_rows(run_suite(suite, cache_dir=cache).results)["cache_hit"].all()


@pytest.mark.parametrize("path, expected", [
    ("no_such_module:answer", "cannot import 'no_such_module:answer': ModuleNotFoundError"),
    ("team_pipeline:missing", "module team_pipeline has no attribute 'missing'"),
    ("broken_on_import:answer", "cannot import 'broken_on_import:answer': ZeroDivisionError: division by zero"),
])
def test_an_import_that_fails_is_bad_input_naming_the_import_path_and_the_exception(tmp_path, path, expected):
    suite = make_suite(tmp_path, COUNTING, cases=[case("c1", "a")], target={"python": path})
    (suite.parent / "broken_on_import.py").write_text("x = 1 / 0\n")
    with pytest.raises(InputError) as err:
        run_suite(suite)
    assert err.value.exit_code == 2 and err.value.field == "target.python"
    assert expected in err.value.message and str(suite) in str(err.value)


def test_a_module_found_outside_the_project_is_refused(tmp_path, monkeypatch):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "stray_pipeline.py").write_text("def answer(case):\n    return 'x'\n")
    monkeypatch.syspath_prepend(str(elsewhere))
    suite = make_suite(tmp_path, COUNTING, cases=[case("c1", "a")], target={"python": "stray_pipeline:answer"})
    with pytest.raises(InputError, match="outside the project folder"):
        run_suite(suite)


def test_a_malformed_import_path_is_refused_when_the_suite_loads(tmp_path):
    from evalplatform.suite import load_suite

    suite = make_suite(tmp_path, COUNTING, cases=[case("c1", "a")], target={"python": "team_pipeline.answer"})
    with pytest.raises(InputError) as err:
        load_suite(suite)
    assert err.value.field == "target.python" and "package.module:name" in err.value.message


def test_a_module_at_the_project_root_is_importable_and_two_projects_do_not_share_a_module_name(tmp_path):
    one = make_suite(tmp_path / "a", "def answer(case):\n    return 'from a'\n", cases=[case("c1", "q", ["from a"])],
                     target={"python": "team_pipeline:answer"}, module_at_root=True)
    two = make_suite(tmp_path / "b", "def answer(case):\n    return 'from b'\n", cases=[case("c1", "q", ["from b"])],
                     target={"python": "team_pipeline:answer"})
    assert run_suite(one).results["outcome"].to_list() == ["pass"]
    assert run_suite(two).results["outcome"].to_list() == ["pass"]


def test_model_override_reaches_the_pipeline_and_the_run_record(tmp_path):
    src = "def answer(case):\n    return f'model={case.model}'\n"
    suite = make_suite(tmp_path, src, cases=[case("c1", "q", ["model=big"])],
                       target={"python": "team_pipeline:answer", "model": "small"})
    run = run_suite(suite, model="big")
    assert run.results["outcome"].to_list() == ["pass"]
    from evalplatform.targets.dispatch import target_record

    record = target_record(run.plan.target, run.plan.suite)
    assert record["target_model"] == "big" and record["target_params"]["python"] == "team_pipeline:answer"
    assert record["target_params"]["code_version"].startswith("sha256:")


def test_every_trial_failing_in_the_pipelines_dependencies_is_an_infrastructure_failure(tmp_path):
    from evalplatform.errors import InfraError

    src = "def answer(case):\n    raise ConnectionRefusedError('vector store down')\n"
    suite = make_suite(tmp_path, src, cases=[case("c1", "q"), case("c2", "r")],
                       target={"python": "team_pipeline:answer"})
    with pytest.raises(InfraError, match="team_pipeline:answer"):
        run_suite(suite)


def test_a_pipeline_bug_on_every_case_is_scored_as_errors_not_an_infrastructure_failure(tmp_path):
    src = "def answer(case):\n    raise KeyError('oops')\n"
    suite = make_suite(tmp_path, src, cases=[case("c1", "q")], target={"python": "team_pipeline:answer"})
    run = run_suite(suite)
    assert run.results["outcome"].to_list() == ["error"]
    assert "raised KeyError" in run.results["error"][0]
    assert pl.Series(run.results["error"]).str.contains("oops").all()


def test_a_nan_in_the_returned_state_is_an_error_not_a_silent_null():
    def nan_state(case):
        return {"output": "x", "state": {"balance": float("nan")}}

    [r] = asyncio.run(run_trials(PythonTarget(python="m:nan_state"), _resolved(nan_state), _trials(1)))
    assert r.text is None and "NaN or infinite number at state.balance" in r.error


@pytest.mark.parametrize("source, message", [
    ("class Agent:\n    def __init__(self, db):\n        self.db = db\n    def __call__(self, case):\n        return 'x'\n",
     "cannot be created without arguments"),
    ("def Agent():\n    return 'x'\n", "must take one argument, the case"),
    ("class Agent:\n    def __call__(self):\n        return 'x'\n", "must take one argument, the case"),
    ("class Agent:\n    pass\n", "has no __call__ method"),
    ("Agent = 42\n", "is a int, not a function or class"),
])
def test_a_target_that_cannot_be_called_with_the_case_is_refused_before_any_trial(tmp_path, source, message):
    suite = make_suite(tmp_path, source, cases=[case("c1", "a")], target={"python": "team_pipeline:Agent"})
    with pytest.raises(InputError, match=message):
        run_suite(suite)


def test_a_model_setting_on_a_python_target_points_at_params(tmp_path):
    from evalplatform.suite import load_suite

    suite = make_suite(tmp_path, COUNTING, cases=[case("c1", "a")],
                       target={"python": "team_pipeline:answer", "temperature": 0.2})
    with pytest.raises(InputError) as err:
        load_suite(suite)
    assert err.value.field == "target.temperature" and "params:" in err.value.fix


def test_errors_raised_during_a_run_carry_no_stray_context_from_starting_it():
    # Retry classification reads an error's __context__ chain: "no running event loop" must not be in it.
    from evalplatform.models.calls import run_sync

    async def fails():
        raise ValueError("inside the run")

    with pytest.raises(ValueError) as err:
        run_sync(fails)
    assert err.value.__context__ is None
