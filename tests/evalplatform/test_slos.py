"""Pipeline SLOs from the run history: PR wall time P95 against its budget, success rate counting runs that died,
throughput, judge cost per run, freshness (NO_DATA before any production failure was promoted)."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest

from evalplatform import results as R
from evalplatform.history import HistoryStore
from evalplatform.history.records import utcnow
from evalplatform.slos import pipeline_slos
from evalplatform.suite import load_suite
from tests.evalplatform.tier_helpers import mini_with_judge


def _run(store: HistoryStore, run_id: str, *, tier: str = "pr", seconds: float = 30, judge_cost: float = 0.0,
         fail: str | None = None) -> None:
    store.begin_run({"run_id": run_id, "suite": "mini", "tier": tier,
                     "started_at": utcnow() - dt.timedelta(seconds=seconds)})
    if fail is not None:
        store.fail_run(run_id, fail)
        return
    rows = [{"run_id": run_id, "case_id": f"c{i}", "repeat": 0, "scorer": "s", "outcome": "pass",
             "scorer_calls": 1, "scorer_cost_usd": judge_cost / 4} for i in range(4)]
    store.complete_run(run_id, R.from_rows(rows), decision={"overall": "PASS", "rules": []})
    # The run took exactly `seconds` (the clock of this machine plays no part in what the test asserts).
    with duckdb.connect(str(store.path)) as con:
        con.execute("UPDATE runs SET finished_at = started_at + to_seconds(?) WHERE run_id = ?",
                    [float(seconds), run_id])


def _by_id(store, suite):
    return {r.slo_id: r for r in pipeline_slos(store, suite)}


def test_slos_with_nothing_recorded_are_no_data(tmp_path, monkeypatch):
    suite = load_suite(mini_with_judge(tmp_path, monkeypatch))
    slos = _by_id(HistoryStore(tmp_path / "h.duckdb"), suite)
    assert {s.status for s in slos.values()} == {"NO_DATA"}


def test_the_pr_wall_time_p95_breaches_its_budget_when_runs_take_longer(tmp_path, monkeypatch):
    suite = load_suite(mini_with_judge(tmp_path, monkeypatch))
    store = HistoryStore(tmp_path / "h.duckdb")
    for i in range(5):
        _run(store, f"run-{i}", seconds=60)
    slos = _by_id(store, suite)
    assert slos["pr_wall_time_p95"].status == "OK" and slos["pr_wall_time_p95"].value == pytest.approx(60.0)
    _run(store, "run-slow", seconds=900)  # 15 minutes: over the 10-minute default
    slo = _by_id(store, suite)["pr_wall_time_p95"]
    assert slo.status == "BREACH" and slo.value >= 900 and slo.n == 6 and slo.target == "<= 600 s"
    # A nightly run's time is not the PR tier's.
    assert _by_id(store, suite)["pr_wall_time_p95"].n == 6
    _run(store, "nightly-slow", tier="nightly", seconds=5000)
    assert _by_id(store, suite)["pr_wall_time_p95"].n == 6


def test_the_success_rate_counts_failed_and_abandoned_runs_against_it(tmp_path, monkeypatch):
    suite = load_suite(mini_with_judge(tmp_path, monkeypatch))
    store = HistoryStore(tmp_path / "h.duckdb")
    for i in range(3):
        _run(store, f"ok-{i}")
    assert _by_id(store, suite)["success_rate"].status == "OK"
    _run(store, "died", fail="killed")
    slo = _by_id(store, suite)["success_rate"]
    assert slo.value == 0.75 and slo.status == "BREACH" and "1 failed or abandoned" in slo.description


def test_a_dagster_run_that_died_is_recorded_so_the_success_rate_counts_it(tmp_path, monkeypatch):
    suite = load_suite(mini_with_judge(tmp_path, monkeypatch))
    store = HistoryStore(tmp_path / "h.duckdb")
    _run(store, "ok-0")
    # Died before its run was recorded (say, refused input): a failed run is recorded for it.
    recorded = store.fail_dagster_run("dagster-1", "step mini__pr_run failed: boom", suite="mini", tier="pr")
    assert store.get_run(recorded)["status"] == "failed" and store.get_run(recorded)["dagster_run_id"] == "dagster-1"
    # Died while its run was running: that run is marked failed with the reason.
    store.begin_run({"run_id": "running-1", "suite": "mini", "tier": "pr", "dagster_run_id": "dagster-2"})
    assert store.fail_dagster_run("dagster-2", "worker killed", suite="mini", tier="pr") == "running-1"
    assert store.get_run("running-1")["failure"] == "worker killed"
    # A run blocked by its gate also fails in Dagster; its history run is complete and stays so.
    store.begin_run({"run_id": "blocked-1", "suite": "mini", "tier": "pr", "dagster_run_id": "dagster-3"})
    store.complete_run("blocked-1", R.from_rows([{"run_id": "blocked-1", "case_id": "c", "repeat": 0, "scorer": "s",
                                                  "outcome": "fail"}]), decision={"overall": "BLOCK", "rules": []})
    assert store.fail_dagster_run("dagster-3", "check failed", suite="mini", tier="pr") is None
    assert store.get_run("blocked-1")["status"] == "complete"
    slo = _by_id(store, suite)["success_rate"]
    assert slo.n == 4 and slo.value == 0.5


def test_throughput_judge_cost_and_freshness(tmp_path, monkeypatch):
    suite_file = mini_with_judge(tmp_path, monkeypatch)
    suite_file.write_text(suite_file.read_text() + "pipeline_slos: {max_judge_cost_per_run_usd: 0.5, "
                                                   "min_cases_per_minute: 1000}\n")
    suite = load_suite(suite_file)
    store = HistoryStore(tmp_path / "h.duckdb")
    _run(store, "a", seconds=60, judge_cost=0.2)
    _run(store, "b", seconds=60, judge_cost=1.0)
    slos = _by_id(store, suite)
    assert slos["judge_cost_per_run"].value == 0.6 and slos["judge_cost_per_run"].status == "BREACH"
    assert 3 < slos["throughput"].value < 5 and slos["throughput"].status == "BREACH"  # 8 cases in ~2 minutes
    assert slos["freshness_p95"].status == "NO_DATA"
    from evalplatform.history.monitoring import MonitoringStore

    mstore = MonitoringStore(store)
    now = utcnow()
    with store._writing() as con:  # one promoted production failure, flagged two days before its promotion
        con.execute("INSERT INTO review_queue (item_id, suite, trace_id, enqueued_at, flagged_at, status, label, "
                    "promoted_at, case_id) VALUES ('i1', 'mini', 't1', ?, ?, 'labelled', 'fail', ?, 'reg-1')",
                    [now, now - dt.timedelta(hours=48), now])
    assert len(mstore.promotions("mini")) == 1
    fresh = _by_id(store, suite)["freshness_p95"]
    assert fresh.status == "OK" and fresh.value == 48.0


def test_old_runs_without_judge_usage_do_not_count_as_free(tmp_path, monkeypatch):
    suite = load_suite(mini_with_judge(tmp_path, monkeypatch))
    store = HistoryStore(tmp_path / "h.duckdb")
    _run(store, "new", judge_cost=0.4)
    with store._writing() as con:  # a run recorded before judge usage was: unknown, not zero
        con.execute("UPDATE runs SET judge_cost_usd = NULL WHERE run_id = 'new'")
    assert _by_id(store, suite)["judge_cost_per_run"].status == "NO_DATA"
