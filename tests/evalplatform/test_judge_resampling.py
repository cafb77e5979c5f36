"""The nightly sweep re-samples its judges: no response cache, repeat r with seed + r; verdicts that change between
repeats are stored per case (with counts) and shown."""

from __future__ import annotations

from evalplatform.history import HistoryStore
from evalplatform.pipeline import scored_run
from evalplatform.project import find_project
from evalplatform.report import render_summary, usage_lines
from evalplatform.request import RunRequest
from tests.evalplatform.tier_helpers import JUDGE_CALLS, judge_scorer, mini_with_judge


def test_nightly_judges_bypass_the_cache_and_repeat_r_is_judged_with_seed_plus_r(tmp_path, monkeypatch):
    mini_with_judge(tmp_path, monkeypatch)
    project = find_project()
    first, _ = scored_run(project, RunRequest(suite="mini", tier="nightly"))
    n = first.plan.cases.height
    assert len(JUDGE_CALLS) == 2 * n
    assert sorted({c["seed"] for c in JUDGE_CALLS}) == [7, 8]  # repeat 0 with the judge's seed, repeat 1 with seed + 1
    JUDGE_CALLS.clear()
    second, record = scored_run(project, RunRequest(suite="mini", tier="nightly"))
    assert len(JUDGE_CALLS) == 2 * n  # fresh samples again: nothing came from the cache
    judged = second.results.filter(second.results["scorer"] == "polite")
    assert judged["scorer_calls"].to_list() == [1] * (2 * n)
    assert record["judge_calls"] == 2 * n


def test_a_tier_that_uses_the_cache_serves_its_judges_from_it_too(tmp_path, monkeypatch):
    mini_with_judge(tmp_path, monkeypatch, tiers={"pr": "scorers: [deterministic, llm_judge]"})
    project = find_project()
    first, _ = scored_run(project, RunRequest(suite="mini", tier="pr"))
    made = len(JUDGE_CALLS)
    assert made == first.plan.cases.height
    JUDGE_CALLS.clear()
    second, record = scored_run(project, RunRequest(suite="mini", tier="pr"))
    assert JUDGE_CALLS == [] and record["judge_calls"] == 0
    judged = second.results.filter(second.results["scorer"] == "polite")
    assert judged["scorer_calls"].to_list() == [0] * made  # answered by the cache, as the target was
    JUDGE_CALLS.clear()
    scored_run(project, RunRequest(suite="mini", tier="pr", no_cache=True))
    assert len(JUDGE_CALLS) == made  # --no-cache reaches the judges


def test_cases_whose_verdict_changes_between_repeats_are_stored_with_counts_and_shown(tmp_path, monkeypatch):
    # A judge that passes even seeds and fails odd ones: every case's verdict flips from repeat 0 to repeat 1,
    # while the target's output stays the same (a judge's noise, not the target's).
    mini_with_judge(tmp_path, monkeypatch, judge=judge_scorer(model="local/judge-by-seed"))
    project = find_project()
    run, record = scored_run(project, RunRequest(suite="mini", tier="nightly"))
    n = run.plan.cases.height
    store = HistoryStore(project.history_path)
    flaky = store.flaky_cases(run.run_id)
    assert flaky.height == n and set(flaky["scorer"]) == {"polite"}
    assert flaky["n_repeats"].to_list() == [2] * n
    assert flaky["n_pass"].to_list() == [1] * n and flaky["n_fail"].to_list() == [1] * n
    assert flaky["judge_only"].all()  # the same output judged twice, two verdicts
    assert store.get_run(run.run_id)["n_flaky_cases"] == n
    lines = usage_lines(store.get_run(run.run_id), run.results, record["decision_detail"])
    assert f"flaky: {n} case(s) changed verdict between repeats (polite {n} ({n} with the same output))" in lines
    text = render_summary(run=store.get_run(run.run_id), results=run.results, decision=record["decision_detail"],
                          history_path=str(project.history_path))
    assert f"flaky: {n} case(s)" in text


def test_a_run_whose_verdicts_never_change_stores_no_flaky_case(tmp_path, monkeypatch):
    mini_with_judge(tmp_path, monkeypatch)
    project = find_project()
    run, _ = scored_run(project, RunRequest(suite="mini", tier="nightly"))
    store = HistoryStore(project.history_path)
    assert store.flaky_cases(run.run_id).height == 0 and store.get_run(run.run_id)["n_flaky_cases"] == 0
