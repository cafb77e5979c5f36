"""A run's decision of record is the one made when it ran: a later gate is a labelled re-decision beside it."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
import yaml

from evalplatform.cli import main
from evalplatform.errors import InputError
from evalplatform.history import HistoryStore
from evalplatform.policy import evaluate_policy, load_policy
from tests.evalplatform.policy.builders import frame, rows

# A floor every run here passes, and the relative rule that catches a drop against the baseline.
POLICY = {
    "name": "regress", "suite": "demo",
    "rules": [
        {"id": "floor", "metric": "pass_rate", "bound": {"min": 0.5}, "severity": "blocking"},
        {"id": "no_regression_vs_baseline", "metric": "pass_rate", "bound": {"max_drop": 0.05},
         "severity": "blocking", "on_missing": "no_data", "no_data": "pass"},
    ],
}


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EVALPLATFORM_PROJECT", str(tmp_path))
    monkeypatch.setenv("EVALPLATFORM_HISTORY", str(tmp_path / "history.duckdb"))
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump(POLICY))
    return HistoryStore(tmp_path / "history.duckdb"), policy


def _results(run_id: str, n_pass: int, n_fail: int) -> pl.DataFrame:
    return frame(rows(n_pass, n_fail)).with_columns(pl.lit(run_id).alias("run_id"))


def _ran(store: HistoryStore, policy: Path, run_id: str, results: pl.DataFrame, baseline_id: str | None) -> str:
    """Store a run as the pipeline does: complete, with the decision it made against its baseline."""
    loaded = load_policy(policy)
    baseline = store.get_results(baseline_id) if baseline_id else None
    decision = evaluate_policy(loaded.policy, results, baseline, policy_hash=loaded.sha256)
    store.begin_run({"run_id": run_id, "suite": "demo"})
    store.complete_run(run_id, results, {}, decision={
        "overall": decision.overall, "policy_hash": loaded.sha256,
        "inputs": {"run_id": run_id, "baseline_run_id": baseline_id, "policy": str(policy)},
        "rules": [r.to_dict() for r in decision.rules]})
    return decision.overall


def _blocked_run(store: HistoryStore, policy: Path) -> None:
    assert _ran(store, policy, "base", _results("base", 380, 20), None) == "PASS"
    store.promote("demo", "base", "test")
    assert _ran(store, policy, "worse", _results("worse", 300, 100), "base") == "BLOCK"


def test_a_re_decision_never_changes_the_decision_of_record(env):
    store, policy = env
    _blocked_run(store, policy)
    loaded = load_policy(policy)
    store.record_decision("PASS", loaded.sha256, {"run_id": "worse"}, [{"rule_id": "floor", "outcome": "PASS"}],
                          run_id="worse", kind="re-decision", label="gate --run without a baseline")
    assert store.get_run("worse")["decision"] == "BLOCK"
    record = store.decision_of_record("worse")
    assert (record["overall"], record["kind"], record["label"]) == ("BLOCK", "record", None)
    (again,) = store.re_decisions("worse")
    assert (again["overall"], again["label"]) == ("PASS", "gate --run without a baseline")


def test_a_second_decision_of_record_is_refused(env):
    store, policy = env
    _blocked_run(store, policy)
    with pytest.raises(InputError, match="decision of record"):
        store.record_decision("PASS", "sha", {}, [], run_id="worse")
    with pytest.raises(InputError, match="kind"):
        store.record_decision("PASS", "sha", {}, [], run_id="worse", kind="override")
    assert store.decision_of_record("worse")["overall"] == "BLOCK"


def test_a_re_gate_cannot_change_what_history_show_and_the_checks_report(env, capsys):
    store, policy = env
    _blocked_run(store, policy)
    recorded = store.decision_of_record("worse")
    # Re-gated against a run as bad as itself: nothing regresses, so this gate alone would pass.
    _ran(store, policy, "just-as-bad", _results("just-as-bad", 300, 100), None)
    assert main(["gate", "--run", "worse", "--policy", str(policy), "--baseline", "just-as-bad"]) == 0
    out = capsys.readouterr().out
    assert "re-decision" in out and "BLOCK" in out

    assert store.get_run("worse")["decision"] == "BLOCK"
    assert store.decision_of_record("worse") == recorded
    assert main(["history", "show", "worse"]) == 0
    shown = capsys.readouterr().out
    assert "RELEASE GATE BLOCKS" in shown and "RELEASE GATE PASSED" not in shown
    redecision = next(ln for ln in shown.splitlines() if "re-decision" in ln)
    assert "PASS" in redecision and "gate --run" in redecision
    assert main(["history", "list"]) == 0
    listed = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("worse"))
    assert listed.rstrip().endswith("BLOCK")

    # The policy checks in Dagster report the decision of record (evalplatform.pipeline.recorded_decision).
    from evalplatform.pipeline import recorded_decision

    rule = next(r for r in recorded_decision(store, "worse")["rules"] if r["rule_id"] == "no_regression_vs_baseline")
    assert rule["blocks"] and rule["outcome"] == "FAIL"


def test_gate_run_compares_with_the_promoted_baseline_by_default(env, capsys):
    store, policy = env
    _blocked_run(store, policy)
    # Without --baseline the run is judged as it ran, against the promoted baseline: still BLOCK.
    assert main(["gate", "--run", "worse", "--policy", str(policy), "--json", "again.json"]) == 1
    import json

    again = json.loads(Path("again.json").read_text())
    assert again["overall"] == "BLOCK"
    assert again["inputs"]["baseline"] == {"kind": "promoted", "suite": "demo", "run_id": "base"}
    (redecision,) = store.re_decisions("worse")
    assert redecision["overall"] == "BLOCK" and redecision["kind"] == "re-decision"


def test_gate_run_of_the_promoted_baseline_itself_has_no_baseline(env, capsys):
    store, policy = env
    _blocked_run(store, policy)
    assert main(["gate", "--run", "base", "--policy", str(policy), "--json", "base.json"]) == 0
    import json

    inputs = json.loads(Path("base.json").read_text())["inputs"]
    assert inputs["baseline"] == {"kind": "promoted", "suite": "demo", "run_id": None}
    assert store.decision_of_record("base")["overall"] == "PASS"


@pytest.mark.parametrize("status", ["running", "abandoned"])
def test_a_run_that_did_not_complete_cannot_be_re_decided(env, capsys, status):
    store, policy = env
    store.begin_run({"run_id": "partial", "suite": "demo"})
    if status == "abandoned":
        import duckdb

        with duckdb.connect(str(store.path)) as con:
            con.execute("UPDATE runs SET status = 'abandoned' WHERE run_id = 'partial'")
    assert main(["gate", "--run", "partial", "--policy", str(policy)]) == 2
    out, err = capsys.readouterr()
    assert f"is {status}" in err and "PASS" not in out and "BLOCK" not in out
    assert store.re_decisions("partial") == [] and store.get_run("partial")["decision"] is None


def test_a_verdict_other_than_pass_never_exits_0(env, capsys, monkeypatch):
    store, policy = env
    _blocked_run(store, policy)
    import evalplatform.policy as policy_pkg
    from evalplatform.policy import evaluate_policy as real

    def no_data(*args, **kwargs):
        decision = real(*args, **kwargs)
        decision.overall = "NO_DATA"
        return decision

    monkeypatch.setattr(policy_pkg, "evaluate_policy", no_data)
    assert main(["gate", "--run", "base", "--policy", str(policy)]) == 1
    assert store.re_decisions("base")[-1]["overall"] == "NO_DATA"
