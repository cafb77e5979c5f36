"""The scored-run pipeline on the mini suite: tiers, repeats, cache, history and the floor gate."""

from __future__ import annotations

import polars as pl
import pytest

from evalplatform import results as R
from evalplatform.cli import main
from evalplatform.decide import floor_policy
from evalplatform.policy import evaluate_policy
from evalplatform.report import case_outcomes
from evalplatform.suite import Gate
from evalplatform.history import HistoryStore
from evalplatform.models.local_provider import register_app
from evalplatform.pipeline import scored_run
from evalplatform.request import RunRequest
from evalplatform.project import Project
from tests.suite_helpers import echo_upper, make_project

CALLS: list[str] = []


def counting_echo(messages, params):
    CALLS.append(messages[-1]["content"])
    return echo_upper(messages, params)


register_app("counting-echo", counting_echo)


@pytest.fixture
def project(tmp_path, monkeypatch):
    root = make_project(tmp_path)
    monkeypatch.setenv("EVALPLATFORM_PROJECT", str(root))
    monkeypatch.delenv("EVALPLATFORM_HOME", raising=False)
    CALLS.clear()
    return Project(root)


def _run(project, **kw):
    return scored_run(project, RunRequest(suite="mini", model="local/counting-echo", **kw))


def test_pr_tier_is_regression_set_plus_stratified_slice(project):
    run, record = _run(project)
    cases = run.results["case_id"].unique().to_list()
    assert {"reg-001", "reg-002"} <= set(cases)
    golden = [c for c in cases if not c.startswith("reg-")]
    # per_stratum 3 over categories echo (13 cases), format (4), safety (1)
    assert len(golden) == 3 + 3 + 1
    again, _ = _run(project)
    assert sorted(again.results["case_id"].unique().to_list()) == sorted(cases)  # reproducible slice
    assert record["tier"] == "pr" and record["n_cases"] == len(cases)


def test_every_case_repeat_scorer_has_exactly_one_row(project):
    run, _ = _run(project, tier="nightly")
    assert run.plan.repeats == 2
    assert R.validate(run.results) == []
    per_call = run.results.group_by(["case_id", "repeat"]).len()
    assert per_call.height == 18 * 2 + 2 * 2
    # 4 unconditional scorers + is_json on format cases
    n_format = run.plan.cases.filter(pl.col("category") == "format").height
    assert run.results.height == (run.plan.cases.height * 4 + n_format) * 2


def test_identical_rerun_is_served_from_cache_and_keeps_original_latency(project):
    first, _ = _run(project)
    n_calls = len(CALLS)
    assert n_calls == first.plan.n_calls and first.totals["cache_hits"] == 0
    second, _ = _run(project)
    assert len(CALLS) == n_calls, "a cached re-run must make zero model calls"
    calls = R.call_rows(second.results)
    assert calls["cache_hit"].all()
    a = R.call_rows(first.results).select("case_id", "latency_ms").sort("case_id")
    b = calls.select("case_id", "latency_ms").sort("case_id")
    assert a["latency_ms"].to_list() == b["latency_ms"].to_list()
    assert second.results.drop("run_id", "served_ms", "cache_hit", "attempts").equals(
        first.results.drop("run_id", "served_ms", "cache_hit", "attempts"))


def test_changed_param_or_repeat_misses_and_no_cache_always_calls(project):
    _run(project)
    base = len(CALLS)
    _run(project, tier="nightly")  # repeat 1 is a new sample; repeat 0 of slice cases hits
    nightly_new = len(CALLS) - base
    assert nightly_new > 0
    before = len(CALLS)
    _run(project, no_cache=True)
    assert len(CALLS) - before == base
    suite_file = project.datasets_dir / "mini" / "suite.yaml"
    suite_file.write_text(suite_file.read_text().replace("seed: 7", "seed: 8"))
    before = len(CALLS)
    _run(project)
    assert len(CALLS) - before == base, "a changed seed must miss the cache"


def test_run_is_recorded_complete_with_provenance(project):
    run, _ = _run(project)
    store = HistoryStore(project.history_path)
    rec = store.get_run(run.run_id)
    assert rec["status"] == "complete"
    assert rec["dataset_hash"] and rec["prompt_hash"] and rec["suite_hash"]
    assert rec["target_model"] == "local/counting-echo" and rec["seed"] == 7
    assert rec["decision"] in ("PASS", "FAIL", "INCONCLUSIVE")
    stored = store.get_results(run.run_id)
    assert stored.height == run.results.height
    assert store.get_output(stored["output_hash"].drop_nulls()[0]) is not None


def test_dataset_check_runs_once_per_version(project):
    from evalplatform.pipeline import checked_dataset, resolve_suite

    suite = resolve_suite(project, "mini")
    _, first = checked_dataset(project, suite)
    _, second = checked_dataset(project, suite)
    assert first["cached"] is False and second["cached"] is True


def _frame(outcomes: list[tuple[str, int, str]]) -> pl.DataFrame:
    return R.from_rows([{"run_id": "r", "case_id": c, "repeat": rep, "scorer": "s", "outcome": o}
                        for c, rep, o in outcomes])


def test_case_outcome_precedence():
    df = R.from_rows([
        {"case_id": "a", "repeat": 0, "scorer": "x", "outcome": "pass"},
        {"case_id": "a", "repeat": 0, "scorer": "y", "outcome": "error"},
        {"case_id": "b", "repeat": 0, "scorer": "x", "outcome": "fail"},
        {"case_id": "b", "repeat": 0, "scorer": "y", "outcome": "pass"},
        {"case_id": "c", "repeat": 0, "scorer": "x", "outcome": "skipped"},
    ])
    assert dict(case_outcomes(df).select("case_id", "outcome").iter_rows()) == {"a": "error", "b": "fail", "c": "skipped"}


def floor(df: pl.DataFrame, threshold: float):
    """The suite floor as the policy evaluates it (rule pass_rate_at_least_floor)."""
    return evaluate_policy(floor_policy("t", Gate(pass_rate_floor=threshold)), df).rules[0]


def test_floor_gate_outcomes():
    passing = _frame([(f"c{i}", 0, "pass") for i in range(100)])
    assert floor(passing, 0.9).outcome == "PASS"
    failing = _frame([(f"c{i}", 0, "pass" if i < 50 else "fail") for i in range(100)])
    assert floor(failing, 0.9).outcome == "FAIL"
    few = _frame([(f"c{i}", 0, "pass") for i in range(5)])
    g = floor(few, 0.9)
    assert g.outcome == "INCONCLUSIVE" and g.blocks
    assert floor(R.empty(), 0.5).blocks
    errors = _frame([(f"c{i}", 0, "pass" if i < 90 else "error") for i in range(100)])
    g = floor(errors, 0.5)
    assert g.outcome == "ERROR" and g.blocks
    all_err = _frame([(f"c{i}", 0, "error") for i in range(10)])
    assert floor(all_err, 0.5).outcome == "ERROR"


def test_floor_gate_clusters_repeats():
    # 30 cases x 10 repeats, each case all-pass or all-fail: the effective n is 30, not 300.
    rows = [(f"c{i}", r, "pass" if i < 27 else "fail") for i in range(30) for r in range(10)]
    clustered = floor(_frame(rows), 0.8)
    naive = floor(_frame([(f"{c}-{r}", 0, o) for c, r, o in rows]), 0.8)
    assert clustered.numbers["lower"] < naive.numbers["lower"]


def test_cli_direct_run_prints_summary_and_exit_code(project, capsys):
    code = main(["run", "--suite", "mini", "--engine", "direct", "--model", "local/counting-echo"])
    out = capsys.readouterr().out
    assert "pass_rate_at_least_floor" in out and "95% Wilson CI" in out
    assert str(project.history_path) in out
    assert code in (0, 1)
    assert (code == 1) == ("RELEASE GATE BLOCKS" in out)
    # The mini suite has no policy file: its `gate:` floor is the whole policy.
    assert "policy suite gate" in out or "release policy (suite gate" in out
    assert main(["history", "list"]) == 0
    assert "mini" in capsys.readouterr().out


def seed_echo(messages, params):
    return echo_upper(messages, params) + f" seed={params.get('seed')}"


register_app("seed-echo", seed_echo)


def test_each_repeat_samples_with_its_own_seed(project):
    run, _ = scored_run(project, RunRequest(suite="mini", model="local/seed-echo", tier="nightly"))
    from evalplatform.history import HistoryStore

    store = HistoryStore(project.history_path)
    calls = R.call_rows(run.results).filter(pl.col("case_id") == "echo-000").sort("repeat")
    texts = [store.get_output(h) for h in calls["output_hash"].to_list()]
    assert texts[0].endswith("seed=7") and texts[1].endswith("seed=8")


def test_clustered_gate_never_passes_a_handful_of_all_pass_cases():
    rows = [(f"c{i}", r, "pass") for i in range(3) for r in range(5)]
    assert floor(_frame(rows), 0.8).outcome != "PASS"


def test_run_writes_junit_markdown_and_json_for_ci(project, tmp_path, monkeypatch, capsys):
    summary = tmp_path / "step_summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    out = {k: tmp_path / f"decision.{k}" for k in ("xml", "md", "json")}
    code = main(["run", "--suite", "mini", "--engine", "direct", "--model", "local/counting-echo",
                 "--junit", str(out["xml"]), "--markdown", str(out["md"]), "--json", str(out["json"])])
    import json
    import xml.etree.ElementTree as ET

    decision = json.loads(out["json"].read_text())
    assert decision["overall"] in ("PASS", "BLOCK") and (code == 1) == (decision["overall"] == "BLOCK")
    cases = ET.parse(out["xml"]).getroot().iter("testcase")
    assert [c.get("name") for c in cases] == ["pass_rate_at_least_floor"]
    assert "pass_rate_at_least_floor" in out["md"].read_text()
    assert summary.read_text() == out["md"].read_text()


def test_a_suite_file_outside_the_project_runs_directly(tmp_path, monkeypatch, capsys):
    from tests.suite_helpers import MINI

    repo = MINI.parents[3]
    monkeypatch.setenv("EVALPLATFORM_PROJECT", str(repo))  # a project with a Dagster code location
    monkeypatch.setenv("EVALPLATFORM_HOME", str(tmp_path / "state"))
    code = main(["run", "--suite", str(MINI / "suite.yaml"), "--model", "local/counting-echo"])
    out = capsys.readouterr().out
    assert code in (0, 1) and "release policy" in out
    assert "dagster run" not in out  # not a partition of the code location: the direct engine ran it


def test_a_call_result_whose_text_cannot_be_encoded_becomes_an_error_row_not_a_crash(project):
    from evalplatform.models.calls import CallResult
    from evalplatform.pipeline import resolve_suite
    from evalplatform.runner import outputs_frame, plan_run

    plan = plan_run(resolve_suite(project, "mini"), repeats=1)
    ok, bad = plan.requests[:2]
    calls = [CallResult(ok.case_id, ok.repeat, "fine", None, 1.0, 1.0, 1, 1, 0.0, cache_hit=False, attempts=1),
             CallResult(bad.case_id, bad.repeat, "x\ud800", None, 1.0, 1.0, 1, 1, 0.0, cache_hit=False, attempts=1)]
    frame, texts = outputs_frame(plan, calls)
    rows = {r["case_id"]: r for r in frame.iter_rows(named=True)}
    assert rows[ok.case_id]["output"] == "fine" and list(texts.values()) == ["fine"]
    assert rows[bad.case_id]["output"] is None and rows[bad.case_id]["output_hash"] is None
    assert "not valid Unicode" in rows[bad.case_id]["call_error"]
