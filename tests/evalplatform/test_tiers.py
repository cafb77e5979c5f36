"""Tiers choose their scorers: no LLM judge on the PR tier by default, a judge that may not gate is never called,
rules reading only scorers a tier does not run are not applicable there, and the plan agrees with the run."""

from __future__ import annotations

import polars as pl
import pytest

from evalplatform import results as R
from evalplatform.cli import main
from evalplatform.errors import InputError
from evalplatform.history import HistoryStore
from evalplatform.pipeline import scored_run
from evalplatform.policy import Policy, evaluate_policy
from evalplatform.project import find_project
from evalplatform.request import RunRequest
from evalplatform.suite import load_suite
from evalplatform.tiers import TierScope, rule_scope, select_scorers
from tests.evalplatform.tier_helpers import JUDGE_CALLS, judge_scorer, mini_with_judge

DEMO = "datasets/demo/suite.yaml"


def test_the_demo_pr_tier_runs_no_llm_judge_and_its_nightly_tier_runs_every_judge():
    suite = load_suite(DEMO)
    pr, nightly = select_scorers(suite, "pr"), select_scorers(suite, "nightly")
    assert {s.tier_cost for s in pr.run} == {"deterministic", "cheap_judge"}
    assert set(pr.not_in_tier) == {"tone_judge", "tone_judge_lenient", "grounded_judge"}
    assert "tone_trained" in pr.run_ids  # the trained judge gates the PR tier
    assert nightly.run_ids == [s.id for s in suite.spec.scorers]
    assert {s.tier_cost for s in nightly.run} >= {"llm_judge", "frontier_judge"}


def test_the_pr_tier_calls_no_llm_judge_and_the_nightly_tier_judges_every_case_and_repeat(tmp_path, monkeypatch):
    mini_with_judge(tmp_path, monkeypatch)
    project = find_project()
    run, record = scored_run(project, RunRequest(suite="mini", tier="pr"))
    assert JUDGE_CALLS == []
    assert "polite" not in run.results["scorer"].to_list()
    assert "polite" in record["provenance"]["scorers"]["not_in_tier"]
    assert record["judge_calls"] == 0

    run, record = scored_run(project, RunRequest(suite="mini", tier="nightly"))
    n_cases = run.plan.cases.height
    assert len(JUDGE_CALLS) == n_cases * 2  # every case, both repeats
    stored = HistoryStore(project.history_path).get_run(run.run_id)
    assert stored["judge_calls"] == n_cases * 2


def test_a_judge_that_may_not_gate_is_not_called_and_every_rule_it_would_feed_errors(tmp_path, monkeypatch, capsys):
    # Not advisory and never calibrated: it would gate, and may not.
    mini_with_judge(tmp_path, monkeypatch, judge=judge_scorer(advisory=False))
    code = main(["run", "--suite", "mini", "--tier", "nightly", "--engine", "direct", "--json", str(tmp_path / "d.json")])
    out = capsys.readouterr().out
    assert code == 1
    assert JUDGE_CALLS == []  # it costs money and cannot count: never called
    import json

    decision = json.loads((tmp_path / "d.json").read_text())
    floor = next(r for r in decision["rules"] if r["rule_id"] == "pass_rate_at_least_floor")
    assert floor["outcome"] == "ERROR" and floor["blocks"]
    assert floor["reason"].startswith("judge polite is not allowed to gate: uncalibrated")
    assert "it was not called" in floor["reason"]
    assert "scorers not run on the nightly tier: polite (not called: the judge may not gate (uncalibrated" in out


def _frame(rows: list[tuple[str, str, str]]) -> pl.DataFrame:
    return R.from_rows([{"run_id": "r", "suite": "mini", "case_id": c, "repeat": 0, "scorer": s, "criterion": "x",
                         "outcome": o, "tags": ["category:echo"]} for c, s, o in rows])


def test_a_rule_reading_only_scorers_the_tier_does_not_run_is_not_applicable_and_never_evidence(tmp_path, monkeypatch):
    suite = load_suite(mini_with_judge(tmp_path, monkeypatch))
    scope = select_scorers(suite, "pr")
    assert "polite" in scope.not_in_tier
    policy = Policy.model_validate({"rules": [
        {"id": "judged", "metric": "pass_rate", "select": {"scorer": "polite"}, "bound": {"min": 0.5}},
        {"id": "judged_and_word", "metric": "pass_rate", "select": {"scorer": ["polite", "has_word"]},
         "bound": {"min": 0.5}},
        {"id": "tone", "metric": "pass_rate", "select": {"criterion": "tone"}, "bound": {"min": 0.5}},
    ]})
    cases = pl.DataFrame({"case_id": [f"c{i}" for i in range(30)], "tags": [["category:echo"]] * 30,
                          "case_hash": [None] * 30}, schema={"case_id": pl.Utf8, "tags": pl.List(pl.Utf8),
                                                             "case_hash": pl.Utf8})
    scoped = rule_scope(policy, suite, scope, cases)
    # Named scorers of which one is not run, or only scorers not run: not applicable (never a partial rule).
    assert set(scoped) == {"judged", "judged_and_word", "tone"}
    assert all(outcome == "NO_DATA" for outcome, _ in scoped.values())
    results = _frame([(f"c{i}", "has_word", "pass") for i in range(30)])
    decision = evaluate_policy(policy, results, scope=scoped)
    assert all(r.outcome == "NO_DATA" and r.numbers["applicable"] is False for r in decision.rules)
    # Not applicable is never evidence: with no other blocking rule, nothing passed, so the decision is NO_DATA.
    assert decision.overall == "NO_DATA"
    both = Policy.model_validate({"rules": [
        *[r.model_dump(exclude_unset=True) for r in policy.rules],
        {"id": "words", "metric": "pass_rate", "select": {"scorer": "has_word"}, "bound": {"min": 0.5}}]})
    decision = evaluate_policy(both, results, scope=rule_scope(both, suite, scope, cases))
    by_id = {r.rule_id: r for r in decision.rules}
    assert decision.overall == "PASS" and by_id["words"].outcome == "PASS"
    assert by_id["judged"].outcome == "NO_DATA" and not by_id["judged"].blocks
    assert "not applicable on the pr tier" in by_id["judged"].reason


def test_plan_and_run_agree_on_the_rules_a_tier_cannot_apply(tmp_path, monkeypatch):
    from evalplatform.planning import plan_tier

    suite_file = mini_with_judge(tmp_path, monkeypatch)
    (suite_file.parent / "policy.yaml").write_text(
        "rules:\n"
        "  - {id: floor, metric: pass_rate, bound: {min: 0.5}}\n"
        "  - {id: polite_enough, metric: pass_rate, select: {scorer: polite}, bound: {min: 0.5}, severity: blocking}\n")
    suite_file.write_text(suite_file.read_text() + "policy: policy.yaml\n")
    suite = load_suite(suite_file)
    project = find_project()
    store = HistoryStore(project.history_path)
    plan = plan_tier(suite, "pr", store=store)
    planned = plan.rule("polite_enough")
    assert planned.scoped == "NO_DATA" and not planned.refused
    assert any("polite_enough" in w and "not applicable on the pr tier" in w for w in plan.warnings())
    _, record = scored_run(project, RunRequest(suite="mini", tier="pr"))
    ran = {r.rule_id: r for r in record["decision_detail"].rules}["polite_enough"]
    assert ran.outcome == "NO_DATA" and not ran.blocks and ran.numbers["applicable"] is False
    assert record["decision"] == "PASS"
    # On the nightly tier the judge is in the tier and the blocking rule would read it; uncalibrated, it may not
    # gate: plan and run agree the rule is ERROR, and the judge is never called.
    assert plan_tier(suite, "nightly", store=store).rule("polite_enough").scoped == "ERROR"
    _, record = scored_run(project, RunRequest(suite="mini", tier="nightly"))
    ran = {r.rule_id: r for r in record["decision_detail"].rules}["polite_enough"]
    assert ran.outcome == "ERROR" and ran.blocks and "not allowed to gate" in ran.reason
    assert record["decision"] == "BLOCK" and JUDGE_CALLS == []


@pytest.mark.parametrize("entry, field", [("[deterministic, nope]", "tiers.pr.scorers[1]"),
                                          ("[]", "tiers.pr.scorers"),
                                          ("[has_word, has_word]", "tiers.pr.scorers")])
def test_a_tier_scorer_list_that_names_nothing_is_one_line_naming_its_place(tmp_path, monkeypatch, capsys, entry, field):
    suite = mini_with_judge(tmp_path, monkeypatch, tiers={"pr": f"scorers: {entry}"})
    with pytest.raises(InputError) as err:
        load_suite(suite)
    assert err.value.field == field
    assert main(["run", "--suite", "mini", "--engine", "direct"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and field in lines[0] and str(suite) in lines[0]
    assert not HistoryStore(find_project().history_path).path.exists()


def test_relative_rules_compare_on_the_scorers_both_sides_ran():
    # A PR-tier baseline (no judge) against a nightly candidate whose judge fails a fifth of the cases: the judge
    # rows the baseline never had must not read as a regression.
    policy = Policy.model_validate({"rules": [
        {"id": "no_drop", "metric": "pass_rate", "bound": {"max_drop": 0.1}, "on_missing": "no_data"}]})
    cases = [f"c{i:02d}" for i in range(60)]
    baseline = _frame([(c, "has_word", "pass") for c in cases])
    candidate = _frame([(c, "has_word", "pass") for c in cases]
                       + [(c, "polite", "fail" if i % 5 == 0 else "pass") for i, c in enumerate(cases)])
    rule = evaluate_policy(policy, candidate, baseline).rules[0]
    assert rule.outcome == "PASS", rule.reason
    assert "compared on the 1 scorer(s) both ran (left out: polite)" in rule.reason


def test_a_scope_recorded_with_a_run_is_read_back_for_its_re_decision(tmp_path, monkeypatch):
    from evalplatform.decide import recorded_scope

    mini_with_judge(tmp_path, monkeypatch)
    project = find_project()
    run, _ = scored_run(project, RunRequest(suite="mini", tier="pr"))
    suite = load_suite(project.datasets_dir / "mini" / "suite.yaml")
    scope = recorded_scope(HistoryStore(project.history_path), suite, run.run_id)
    assert isinstance(scope, TierScope) and "polite" in scope.not_in_tier and "has_word" in scope.run_ids


def test_a_judge_refused_by_its_calibration_is_never_called_where_it_would_gate(tmp_path, monkeypatch, capsys):
    import json
    import shutil
    from pathlib import Path

    # An always-PASS judge, gating (not advisory), with the demo's tone labels as its calibration set (the
    # default ../calibration/<criterion>.jsonl): its calibration refuses it.
    suite = mini_with_judge(tmp_path, monkeypatch, judge=judge_scorer(advisory=False))
    (suite.parents[1] / "calibration").mkdir()
    shutil.copy(Path(__file__).resolve().parents[2] / "datasets" / "calibration" / "tone.jsonl",
                suite.parents[1] / "calibration" / "tone.jsonl")
    assert main(["calibrate", "--suite", "mini", "--k", "1"]) == 1  # refused
    capsys.readouterr()
    JUDGE_CALLS.clear()
    code = main(["run", "--suite", "mini", "--tier", "nightly", "--engine", "direct", "--json", str(tmp_path / "d.json")])
    out = capsys.readouterr().out
    assert code == 1 and JUDGE_CALLS == []
    floor = next(r for r in json.loads((tmp_path / "d.json").read_text())["rules"]
                 if r["rule_id"] == "pass_rate_at_least_floor")
    assert floor["outcome"] == "ERROR" and floor["reason"].startswith("judge polite is not allowed to gate: refused")
    assert "polite (not called: the judge may not gate (refused" in out
