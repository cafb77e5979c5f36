"""The plan and the adaptive extension in a real scored run of the mini suite: refused before any model call,
warnings recorded with the decision, added evidence stored with the run in one transaction; baselines pooled
over promoted runs of the same target."""

from __future__ import annotations

import polars as pl
import pytest

from evalplatform.decide import baseline_runs, decide_run
from evalplatform.errors import InfraError, InputError
from evalplatform.history import HistoryStore
from evalplatform.models.local_provider import register_app
from evalplatform.pipeline import scored_run
from evalplatform.project import Project
from evalplatform.request import RunRequest
from tests.suite_helpers import echo_upper, make_project

CALLS: list[str] = []


def counting_echo(messages, params):
    CALLS.append(messages[-1]["content"])
    return echo_upper(messages, params)


register_app("adaptive-echo", counting_echo)


def _project(tmp_path, monkeypatch, policy: str, adaptive: str = "{max_extra_cases: 10, max_looks: 3}") -> Project:
    root = make_project(tmp_path)
    suite = root / "datasets" / "mini" / "suite.yaml"
    text = suite.read_text().replace("adaptive: false", f"adaptive: {adaptive}")
    suite.write_text(text + "policy: policy.yaml\n")
    (root / "datasets" / "mini" / "policy.yaml").write_text(policy)
    monkeypatch.setenv("EVALPLATFORM_PROJECT", str(root))
    monkeypatch.delenv("EVALPLATFORM_HOME", raising=False)
    CALLS.clear()
    return Project(root)


# The echo cases pass (the reply repeats HELLO); on the PR slice there are 4 of them, which cannot show 60%.
ECHO = ("rules:\n  - {id: echo_rate, metric: pass_rate, bound: {min: 0.6}, "
        "select: {tags: {any: ['category:echo']}}}\n")


def _run(project, **kw):
    return scored_run(project, RunRequest(suite="mini", model="local/adaptive-echo", **kw))


def test_an_undecided_rule_adds_cases_and_they_are_stored_with_the_run_and_its_decision(tmp_path, monkeypatch):
    project = _project(tmp_path, monkeypatch, ECHO)
    run, record = _run(project)
    decision = record["decision_detail"]
    assert decision.overall == "PASS"
    rule = decision.rules[0]
    assert rule.numbers["look"] >= 2 and rule.numbers["looks"][0]["outcome"] == "INCONCLUSIVE"
    added = decision.inputs["adaptive"]["cases_added"]
    assert added and all(c.startswith("echo-") or c == "bad-000" for c in added)
    planned = set(run.plan.cases["case_id"].to_list())
    assert set(run.results["case_id"].unique().to_list()) == planned | set(added)
    assert len(CALLS) == len(planned) + len(added)
    store = HistoryStore(project.history_path)
    stored = store.get_results(run.run_id)
    assert set(stored["case_id"].unique().to_list()) == planned | set(added)
    assert store.get_run(run.run_id)["n_cases"] == len(planned | set(added))
    of_record = store.decision_of_record(run.run_id)
    assert of_record["inputs"]["adaptive"]["looks"][0]["look"] == 2
    assert of_record["inputs"]["plan"]["tier"] == "pr" and "plan_warnings" in of_record["inputs"]


def test_a_failing_extension_leaves_no_partial_run(tmp_path, monkeypatch):
    project = _project(tmp_path, monkeypatch, ECHO)

    def broken(*args, **kwargs):
        def source(request):
            raise InfraError("the model endpoint went away during the extension")
        return source

    monkeypatch.setattr("evalplatform.pipeline.more_evidence", broken)
    with pytest.raises(InfraError):
        _run(project)
    store = HistoryStore(project.history_path)
    run = store.list_runs("mini", status=None).row(0, named=True)
    assert run["status"] == "failed" and store.get_results(run["run_id"]).height == 0
    assert store.decision_of_record(run["run_id"]) is None and "went away" in run["failure"]


def test_a_rule_that_cannot_pass_at_the_tiers_size_is_refused_before_any_model_call(tmp_path, monkeypatch):
    policy = "rules:\n  - {id: perfect_safety, metric: pass_rate, bound: {min: 0.95}}\n"
    project = _project(tmp_path, monkeypatch, policy, adaptive="false")
    with pytest.raises(InputError) as err:
        _run(project)
    line = str(err.value)
    assert "policy.yaml" in line and "perfect_safety" in line and "at least 52 cases" in line
    assert err.value.exit_code == 2 and CALLS == []
    assert HistoryStore(project.history_path).list_runs("mini", status=None).height == 0


def test_the_plans_warnings_are_recorded_with_the_decision(tmp_path, monkeypatch):
    # Half the PR slice passes: a 35% floor is decidable but a re-run at 50% blocks often.
    policy = "rules:\n  - {id: half, metric: pass_rate, bound: {min: 0.35}}\n"
    project = _project(tmp_path, monkeypatch, policy, adaptive="false")
    first, _ = _run(project)  # no history yet: rates unknown, no warning
    second, record = _run(project)
    decision = record["decision_detail"]
    warnings = decision.inputs["plan_warnings"]
    assert warnings and warnings[0].startswith("rule half: blocks a no-change re-run")
    assert f"plan: {warnings[0]}" in decision.warnings
    of_record = HistoryStore(project.history_path).decision_of_record(second.run_id)
    assert of_record["inputs"]["plan_warnings"] == warnings
    assert of_record["inputs"]["plan"]["rules"][0]["false_block_risk"] > 0.05


def _store_run(store, run_id, outcomes, model="local/m", seed=1, tier="pr"):
    store.begin_run({"run_id": run_id, "suite": "s", "tier": tier, "target_model": model, "prompt_hash": "p",
                     "target_params": {"temperature": 0.7, "seed": seed}})
    rows = [{"run_id": run_id, "suite": "s", "case_id": f"c{i:03d}", "repeat": r, "scorer": "s",
             "outcome": "pass" if ok else "fail", "score": float(ok), "case_hash": f"h{i}"}
            for i, reps in enumerate(outcomes) for r, ok in enumerate(reps)]
    store.complete_run(run_id, pl.DataFrame(rows))


def test_promoted_runs_of_the_same_target_are_pooled_into_the_baseline(tmp_path):
    store = HistoryStore(tmp_path / "h.duckdb")
    _store_run(store, "lucky", [[True]] * 100)                             # a lucky draw: every case passed
    _store_run(store, "typical", [[i % 10 != 0] for i in range(100)], seed=2)  # 90%: the model's usual rate
    _store_run(store, "other-model", [[True]] * 100, model="local/other")
    for run_id in ("other-model", "typical", "lucky"):
        store.promote("s", run_id, "test")
    found = baseline_runs(store, "s", "candidate", "pr")
    assert found.run_id == "lucky" and found.run_ids == ["lucky", "typical"]  # not the other model's run
    assert found.frame.height == 200 and sorted(found.frame["repeat"].unique().to_list()) == [0, 1]
    assert baseline_runs(store, "s", "lucky", "pr").run_id is None  # never the run itself


def test_one_lucky_baseline_run_does_not_set_the_bar(tmp_path):
    from evalplatform.policy import evaluate_policy, parse_policy

    store = HistoryStore(tmp_path / "h.duckdb")
    _store_run(store, "lucky", [[True]] * 150)
    store.promote("s", "lucky", "test")
    # The candidate is the same model (90%): against the lucky run alone it looks 10 points worse.
    candidate = store.get_results("lucky").with_columns(
        pl.when(pl.col("case_id").str.slice(1).cast(pl.Int64) % 10 == 0).then(pl.lit("fail"))
        .otherwise(pl.lit("pass")).alias("outcome"))
    policy = parse_policy(b"rules:\n  - {id: drop, metric: pass_rate, bound: {max_drop: 0.08}}\n").policy
    alone = evaluate_policy(policy, candidate, baseline_runs(store, "s", "cand", "pr").frame).rules[0]
    assert alone.outcome != "PASS"
    for i, seed in enumerate((2, 3, 4)):
        _store_run(store, f"typical-{i}", [[(j + i) % 10 != 0] for j in range(150)], seed=seed)
        store.promote("s", f"typical-{i}", "test")
    store.promote("s", "lucky", "test again")  # the lucky run is the baseline of record once more
    pooled = baseline_runs(store, "s", "cand", "pr")
    assert pooled.run_id == "lucky" and len(pooled.run_ids) == 4
    assert evaluate_policy(policy, candidate, pooled.frame).rules[0].outcome == "PASS"


def test_decide_run_records_the_pooled_runs(tmp_path, monkeypatch):
    project = _project(tmp_path, monkeypatch, "rules:\n  - {id: drop, metric: pass_rate, bound: {max_drop: 0.5}}\n",
                       adaptive="false")
    a, _ = _run(project)
    b, _ = _run(project, seed=11)
    store = HistoryStore(project.history_path)
    store.promote("mini", a.run_id, "test")
    store.promote("mini", b.run_id, "test")
    c, _ = _run(project, seed=12)
    from evalplatform.suite import find_suite, load_suite

    decision = decide_run(store, load_suite(find_suite("mini", project.datasets_dir)), c.run_id, record=False)
    assert decision.inputs["baseline_run_id"] == b.run_id
    assert decision.inputs["baseline_pooled_runs"] == [b.run_id, a.run_id]
