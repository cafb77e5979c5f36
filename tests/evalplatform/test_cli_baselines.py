"""`promote`, `rollback` and `baseline` over a real history: only a PASS run becomes a baseline unless forced (and then
the record says so), a rollback restores the run the current baseline replaced, and the history says who, when, why."""

from __future__ import annotations

import polars as pl
import pytest

from evalplatform.cli import main
from evalplatform.history import HistoryStore
from evalplatform.policy.evaluate import RuleResult
from tests.evalplatform.policy.builders import frame, rows


@pytest.fixture
def store(tmp_path, monkeypatch) -> HistoryStore:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EVALPLATFORM_PROJECT", str(tmp_path))
    monkeypatch.setenv("EVALPLATFORM_HISTORY", str(tmp_path / "history.duckdb"))
    monkeypatch.setenv("USER", "alice")
    monkeypatch.delenv("EVALPLATFORM_FORCE_TERMINAL", raising=False)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    return HistoryStore(tmp_path / "history.duckdb")


def ran(store: HistoryStore, run_id: str, overall: str, *, tier: str = "pr", model: str = "local/echo",
        n_fail: int = 0) -> None:
    """A complete run with the decision of record it made."""
    store.begin_run({"run_id": run_id, "suite": "demo", "tier": tier, "target_model": model})
    results = frame(rows(10, n_fail)).with_columns(pl.lit(run_id).alias("run_id"))
    rule = RuleResult("floor", "pass_rate", "blocking", "PASS" if overall == "PASS" else "FAIL", overall == "BLOCK",
                      "as it ran", {})
    store.complete_run(run_id, results, {}, decision={
        "overall": overall, "policy_hash": "p", "inputs": {"run_id": run_id, "policy": "p"},
        "rules": [rule.to_dict()]})


def test_promote_makes_a_pass_run_the_baseline_of_its_tier_with_who_and_why(store, capsys):
    ran(store, "r-pass", "PASS")
    assert main(["promote", "r-pass", "--reason", "first good run"]) == 0
    out = capsys.readouterr().out
    assert "promoted run r-pass" in out and "pr baseline" in out and "local/echo" in out
    assert store.latest_baseline("demo", "pr") == "r-pass"
    (change,) = store.baseline_history("demo", "pr")
    assert change["reason"] == "first good run" and change["actor"].startswith("alice@")
    assert change["action"] == "promote" and change["replaced_run_id"] is None


@pytest.mark.parametrize("overall", ["BLOCK", "NO_DATA"])
def test_promote_refuses_a_run_that_did_not_pass(store, capsys, overall):
    ran(store, "r-good", "PASS")
    store.promote("demo", "r-good", "earlier", actor="bob@h")
    ran(store, "r-bad", overall, n_fail=5)
    assert main(["promote", "r-bad", "--reason", "looks fine to me"]) == 2
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and overall in lines[0] and "--force" in lines[0]
    assert "promoted" not in out
    assert store.latest_baseline("demo", "pr") == "r-good"
    assert len(store.baseline_history("demo", "pr")) == 1


def test_promote_with_force_records_the_reason_as_forced(store, capsys):
    ran(store, "r-good", "PASS")
    store.promote("demo", "r-good", "earlier", actor="bob@h")
    ran(store, "r-bad", "BLOCK", n_fail=5)
    assert main(["promote", "r-bad", "--reason", "known flaky rule", "--force"]) == 0
    assert "forced" in capsys.readouterr().out
    assert store.latest_baseline("demo", "pr") == "r-bad"
    change = store.baseline_history("demo", "pr")[0]
    assert change["reason"] == "forced: known flaky rule" and change["replaced_run_id"] == "r-good"


def test_promote_of_a_run_without_a_decision_of_record_is_refused(store, capsys):
    store.begin_run({"run_id": "r-none", "suite": "demo", "tier": "pr"})
    store.complete_run("r-none", frame(rows(3)).with_columns(pl.lit("r-none").alias("run_id")), {})
    assert main(["promote", "r-none", "--reason", "x"]) == 2
    assert "no decision of record" in capsys.readouterr().err
    assert store.latest_baseline("demo", "pr") is None


def test_promote_refuses_a_run_that_did_not_complete_even_forced(store, capsys):
    store.begin_run({"run_id": "r-failed", "suite": "demo", "tier": "pr"})
    store.fail_run("r-failed", "crashed")
    assert main(["promote", "r-failed", "--reason", "x", "--force"]) == 2
    assert "failed" in capsys.readouterr().err
    assert store.latest_baseline("demo", "pr") is None


@pytest.mark.parametrize("argv, needle", [
    (["promote", "nope", "--reason", "x"], "no run 'nope'"),
    (["promote", "r-pass", "--reason", "   "], "--reason"),
    (["rollback", "--suite", "demo", "--tier", "weekly", "--reason", "x"], "--tier"),
    (["baseline", "--suite", "demo", "--tier", "weekly"], "--tier"),
    (["rollback", "--suite", "demo", "--tier", "pr", "--reason", "x"], "replaced no earlier baseline"),
    (["rollback", "--suite", "demo", "--tier", "nightly", "--reason", "x"], "no nightly baseline"),
    (["promote", "r-pass"], "--reason"),
])
def test_bad_input_to_the_baseline_verbs_is_one_line_and_exit_2(store, capsys, argv, needle):
    ran(store, "r-pass", "PASS")
    store.promote("demo", "r-pass", "first", actor="bob@h")
    assert main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], lines
    assert [c["run_id"] for c in store.baseline_history("demo")] == ["r-pass"]  # nothing changed


def test_rollback_restores_the_run_the_current_baseline_replaced(store, capsys):
    ran(store, "r1", "PASS", model="local/model-one")
    ran(store, "r2", "PASS", model="local/model-two")
    assert main(["promote", "r1", "--reason", "first"]) == 0
    assert main(["promote", "r2", "--reason", "second"]) == 0
    assert store.latest_baseline("demo", "pr") == "r2"
    capsys.readouterr()
    assert main(["rollback", "--suite", "demo", "--tier", "pr", "--reason", "r2 regressed in production"]) == 0
    out = capsys.readouterr().out
    assert "run r1" in out and "run r2 is taken out" in out
    assert store.latest_baseline("demo", "pr") == "r1"
    change = store.baseline_history("demo", "pr")[0]
    assert (change["action"], change["run_id"], change["replaced_run_id"]) == ("rollback", "r1", "r2")
    assert change["reason"] == "r2 regressed in production" and change["actor"].startswith("alice@")


def test_a_rollback_of_one_tier_leaves_the_other_alone(store, capsys):
    ran(store, "p1", "PASS")
    ran(store, "p2", "PASS")
    ran(store, "n1", "PASS", tier="nightly")
    for run in ("p1", "p2", "n1"):
        assert main(["promote", run, "--reason", "ok"]) == 0
    assert main(["rollback", "--suite", "demo", "--tier", "pr", "--reason", "undo"]) == 0
    assert store.latest_baseline("demo", "pr") == "p1"
    assert store.latest_baseline("demo", "nightly") == "n1"


def test_baseline_shows_the_current_baseline_per_tier_and_its_history(store, capsys):
    ran(store, "r1", "PASS", model="local/model-one")
    ran(store, "r2", "BLOCK", model="local/model-two", n_fail=5)
    ran(store, "n1", "PASS", tier="nightly", model="local/model-night")
    assert main(["promote", "r1", "--reason", "first good run"]) == 0
    assert main(["promote", "r2", "--reason", "accepted regression", "--force"]) == 0
    assert main(["promote", "n1", "--reason", "nightly start"]) == 0
    capsys.readouterr()
    assert main(["baseline", "--suite", "demo"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    pr = next(ln for ln in lines if ln.startswith("pr baseline:"))
    assert "r2" in pr and "local/model-two" in pr and "BLOCK" in pr and "forced: accepted regression" in pr
    nightly = next(ln for ln in lines if ln.startswith("nightly baseline:"))
    assert "n1" in nightly and "local/model-night" in nightly
    # The history: newest first, each change with who, why, what it replaced and the run's model and decision.
    changes = [ln for ln in lines if ln.startswith("20")]
    assert len(changes) == 3
    assert "n1" in changes[0] and "nightly start" in changes[0]
    assert "r2" in changes[1] and "r1" in changes[1] and "local/model-two" in changes[1] and "alice@" in changes[1]
    assert "r1" in changes[2] and "first good run" in changes[2] and "PASS" in changes[2]


def test_baseline_of_one_tier_lists_only_that_tier(store, capsys):
    ran(store, "r1", "PASS")
    ran(store, "n1", "PASS", tier="nightly")
    for run in ("r1", "n1"):
        store.promote("demo", run, "ok", actor="bob@h")
    assert main(["baseline", "--suite", "demo", "--tier", "nightly"]) == 0
    out = capsys.readouterr().out
    assert "nightly baseline: run n1" in out and "pr baseline" not in out and "r1" not in out


def test_baseline_of_a_suite_without_one_says_so(store, capsys):
    assert main(["baseline", "--suite", "demo"]) == 0
    assert "has no baseline" in capsys.readouterr().out


def test_a_multi_line_reason_is_kept_on_one_line(store, capsys):
    ran(store, "r1", "PASS")
    assert main(["promote", "r1", "--reason", "Merge pull request #12\n\n  new prompt\tfor math"]) == 0
    assert store.baseline_history("demo", "pr")[0]["reason"] == "Merge pull request #12 new prompt for math"


@pytest.mark.parametrize("reason, needle", [("ok \x1b[2J wiped", "control character"), ("x" * 2001, "at most")])
def test_a_reason_with_control_characters_or_too_long_is_refused(store, capsys, reason, needle):
    ran(store, "r1", "PASS")
    assert main(["promote", "r1", "--reason", reason]) == 2
    err = capsys.readouterr().err
    assert needle in err and "\x1b" not in err
    assert store.latest_baseline("demo", "pr") is None
