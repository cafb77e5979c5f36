"""HistoryStore on real DuckDB files: round trips, atomic completion, reads without history, baselines."""

from __future__ import annotations

import re

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from evalplatform import results as rt
from evalplatform.errors import InfraError, InputError
from evalplatform.history import HistoryStore, new_run_id
from tests.evalplatform.history.history_worker import make_results, outputs_for


@pytest.fixture
def store(tmp_path) -> HistoryStore:
    return HistoryStore(tmp_path / "hist" / "history.duckdb")


def _begin(store: HistoryStore, run_id: str, suite: str = "demo", **extra) -> None:
    store.begin_run({"run_id": run_id, "suite": suite, **extra})


def _count(store: HistoryStore, table: str) -> int:
    import duckdb

    with duckdb.connect(str(store.path), read_only=True) as con:
        return con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]


def test_round_trip_preserves_schema_values_and_totals(store):
    run_id = new_run_id()
    _begin(
        store, run_id, tier="pr", git_commit="abc123", git_dirty=True, seed=7, repeats=3,
        target_model="local/echo", target_params={"temperature": 0.0, "max_tokens": 64},
        judge_pins={"llm_judge": "openai/gpt-4o-2024-08-06"}, python_version="3.11.7",
    )
    frame = make_results(run_id, 300)
    store.complete_run(run_id, frame, outputs_for(frame), {"wall_s": 12.5},
                       decision={"overall": "PASS", "policy_hash": "sha", "inputs": {}, "rules": []})

    back = store.get_results(run_id)
    assert back.schema == pl.Schema(rt.SCHEMA)
    assert_frame_equal(back, frame.sort("case_id", "repeat", "scorer"))

    run = store.get_run(run_id)
    calls = rt.call_rows(frame)
    assert run["status"] == "complete" and run["finished_at"] >= run["started_at"]
    assert (run["n_results"], run["n_cases"]) == (300, frame["case_id"].n_unique())
    for outcome in rt.OUTCOMES:
        assert run[f"n_{outcome}"] == (frame["outcome"] == outcome).sum()
    # Per-call columns are counted once per (case, repeat), not once per scorer row.
    assert run["tokens_in"] == calls["tokens_in"].sum() and run["tokens_out"] == calls["tokens_out"].sum()
    assert run["cost_usd"] == pytest.approx(calls["cost_usd"].sum())
    assert (run["cache_hits"], run["model_calls"]) == (calls["cache_hit"].sum(), (~calls["cache_hit"]).sum())
    assert (run["wall_s"], run["decision"]) == (12.5, "PASS")
    assert run["target_params"] == {"temperature": 0.0, "max_tokens": 64}
    assert run["judge_pins"] == {"llm_judge": "openai/gpt-4o-2024-08-06"}
    assert (run["git_commit"], run["git_dirty"], run["seed"], run["repeats"]) == ("abc123", True, 7, 3)
    # Keys that are not columns are kept, in the provenance JSON.
    assert run["provenance"] == {"python_version": "3.11.7"}


def test_outputs_are_stored_once_per_hash(store):
    for run_id in ("r1", "r2"):
        _begin(store, run_id)
        frame = make_results(run_id, 300)
        store.complete_run(run_id, frame, outputs_for(frame))
    # Both runs produced the same ten output hashes.
    assert _count(store, "outputs") == 10
    assert store.get_output("out-3") == "model said out-3"
    assert store.get_output("never-seen") is None


def test_missing_database_reads_as_empty_history_without_creating_it(store):
    assert store.list_runs().height == 0
    assert store.list_runs().columns[:4] == ["run_id", "suite", "tier", "status"]
    assert store.get_run("anything") is None
    assert store.latest_run("demo") is None
    assert_frame_equal(store.get_results("anything"), rt.empty())
    assert store.get_output("h") is None
    assert store.latest_baseline("demo") is None
    assert store.get_dataset_check("d") is None
    assert not store.path.exists()


def test_duplicate_rows_are_refused_and_the_run_stays_running(store):
    _begin(store, "r1")
    frame = make_results("r1", 100)
    with pytest.raises(InputError, match="duplicate rows"):
        store.complete_run("r1", pl.concat([frame, frame.head(1)]), outputs_for(frame))
    assert store.get_run("r1")["status"] == "running"
    assert store.get_results("r1").height == 0
    assert _count(store, "outputs") == 0


def test_failure_inside_the_transaction_rolls_everything_back(store):
    _begin(store, "r1")
    frame = make_results("r1", 500)

    def boom():
        raise RuntimeError("disk on fire")

    store._before_commit = boom
    with pytest.raises(RuntimeError, match="disk on fire"):
        store.complete_run("r1", frame, outputs_for(frame))
    assert store.get_run("r1")["status"] == "running"
    assert store.get_run("r1")["n_results"] is None
    assert store.get_results("r1").height == 0
    assert _count(store, "outputs") == 0

    store._before_commit = None
    store.complete_run("r1", frame, outputs_for(frame))
    assert store.get_results("r1").height == 500


def test_complete_run_refuses_unknown_finished_and_foreign_runs(store):
    frame = make_results("r1", 10)
    with pytest.raises(InputError, match="no run 'r1'"):
        store.complete_run("r1", frame, {})
    _begin(store, "r1")
    with pytest.raises(InputError, match="row for run 'other'"):
        store.complete_run("r1", frame.with_columns(pl.lit("other").alias("run_id")), {})
    with pytest.raises(InputError, match="totals.n_pass"):
        store.complete_run("r1", frame, {}, {"n_pass": "many"})
    store.complete_run("r1", frame, {})
    with pytest.raises(InputError, match="already complete"):
        store.complete_run("r1", frame, {})
    assert store.get_results("r1").height == 10


def test_result_rows_without_run_id_or_suite_take_the_runs(store):
    _begin(store, "r1", suite="support-bot")
    frame = rt.from_rows([{"case_id": "c1", "repeat": 0, "scorer": "contains", "outcome": "pass", "score": 1.0}])
    store.complete_run("r1", frame, {})
    back = store.get_results("r1")
    assert back.select("run_id", "suite").row(0) == ("r1", "support-bot")


def test_begin_run_validates_and_refuses_reused_ids(store):
    with pytest.raises(InputError, match="suite"):
        store.begin_run({"run_id": "r1"})
    with pytest.raises(InputError, match="seed"):
        store.begin_run({"run_id": "r1", "suite": "demo", "seed": "not a number"})
    _begin(store, "r1")
    with pytest.raises(InputError, match="already exists"):
        _begin(store, "r1")


def test_fail_run_marks_running_runs_only(store):
    _begin(store, "r1")
    _begin(store, "r2")
    store.complete_run("r2", make_results("r2", 10), {})
    assert store.fail_run("r1", "judge unreachable") is True
    assert store.fail_run("r2", "too late") is False
    r1, r2 = store.get_run("r1"), store.get_run("r2")
    assert (r1["status"], r1["failure"]) == ("failed", "judge unreachable")
    assert r2["status"] == "complete"
    with pytest.raises(InputError):
        store.fail_run("nope", "x")


def test_list_runs_filters_by_suite_and_status_newest_first(store):
    for i, suite in enumerate(["a", "b", "a", "a"]):
        _begin(store, f"run-{i}", suite=suite, started_at=f"2026-01-0{i + 1}T00:00:00Z")
    for i in (0, 1, 2):
        store.complete_run(f"run-{i}", make_results(f"run-{i}", 4), {})
    assert store.list_runs()["run_id"].to_list() == ["run-2", "run-1", "run-0"]
    assert store.list_runs(suite="a")["run_id"].to_list() == ["run-2", "run-0"]
    assert store.list_runs(suite="a", limit=1)["run_id"].to_list() == ["run-2"]
    assert store.list_runs(suite="a", status="running")["run_id"].to_list() == ["run-3"]
    assert store.list_runs(status=None).height == 4
    assert store.latest_run("a")["run_id"] == "run-2"
    assert store.latest_run("a", status="running")["run_id"] == "run-3"
    with pytest.raises(InputError, match="status"):
        store.list_runs(status="done")
    store.fail_run("run-3", "boom")
    assert store.list_runs(status=("failed", "abandoned"))["run_id"].to_list() == ["run-3"]


def test_get_run_accepts_a_unique_prefix(store):
    _begin(store, "20261125T081500Z-aaaa1111")
    _begin(store, "20261125T081500Z-aaaa2222")
    _begin(store, "20261125T090000Z-bbbb0000")
    assert store.get_run("20261125T09")["run_id"] == "20261125T090000Z-bbbb0000"
    assert store.get_run("20261125T081500Z-aaaa1")["run_id"] == "20261125T081500Z-aaaa1111"
    with pytest.raises(InputError, match="several runs"):
        store.get_run("20261125T0815")
    assert store.get_run("2030") is None


def test_promote_keeps_history_and_latest_wins(store):
    for run_id in ("r1", "r2", "r3"):
        _begin(store, run_id)
    for run_id in ("r1", "r2"):
        store.complete_run(run_id, make_results(run_id, 4), {})
    store.promote("demo", "r1", "first green nightly")
    store.promote("demo", "r2", "better")
    assert store.latest_baseline("demo") == "r2"
    assert store.latest_baseline("other") is None
    with pytest.raises(InputError, match="only a complete run"):
        store.promote("demo", "r3", "not finished")
    with pytest.raises(InputError, match="belongs to suite"):
        store.promote("other", "r1", "wrong suite")
    assert store.latest_baseline("demo") == "r2"
    assert _count(store, "baselines") == 2


def test_dataset_checks_are_remembered_per_dataset_hash(store):
    store.put_dataset_check("sha-1", False, {"failed": ["expect_column_values_to_not_be_null"]})
    store.put_dataset_check("sha-1", True, {"failed": []})  # a re-check replaces the old verdict
    check = store.get_dataset_check("sha-1")
    assert (check["success"], check["summary"]) == (True, {"failed": []})
    assert store.get_dataset_check("sha-2") is None


def test_record_decision_sets_the_runs_decision(store):
    _begin(store, "r1")
    store.complete_run("r1", make_results("r1", 4), {})
    decision_id = store.record_decision(
        "BLOCKED", "policy-sha", {"baseline": "r0"}, [{"rule": "pass_rate", "status": "FAIL"}], run_id="r1"
    )
    assert store.get_run("r1")["decision"] == "BLOCKED"
    stored = store.get_decision(decision_id)
    assert stored["rules"] == [{"rule": "pass_rate", "status": "FAIL"}] and stored["run_id"] == "r1"
    # A decision on imported results has no run.
    assert store.get_decision(store.record_decision("PASS", "p", {}, []))["run_id"] is None


def test_new_run_ids_are_time_sortable_and_unique():
    ids = {new_run_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{8}", i) for i in ids)


def test_unreadable_file_is_an_infra_error_naming_it(tmp_path):
    bad = tmp_path / "history.duckdb"
    bad.write_text("this is not a database")
    with pytest.raises(InfraError, match="history.duckdb"):
        HistoryStore(bad).list_runs()


def test_results_of_a_complete_run_are_read_once_and_stay_correct(tmp_path):

    from evalplatform import results as rt
    from evalplatform.history import HistoryStore

    store = HistoryStore(tmp_path / "h.duckdb")
    store.begin_run({"run_id": "r1", "suite": "s"})
    assert store.get_results("r1").height == 0  # running: nothing stored, nothing cached
    df = rt.from_rows([{"run_id": "r1", "suite": "s", "case_id": f"c{i}", "repeat": 0, "scorer": "x",
                        "outcome": "pass"} for i in range(5)])
    store.complete_run("r1", df)
    first = store.get_results("r1")
    assert first.height == 5
    (tmp_path / "h.duckdb").rename(tmp_path / "moved.duckdb")  # a second read must not touch the file
    assert store.get_results("r1").equals(first)
    assert HistoryStore(tmp_path / "other.duckdb").get_results("r1").height == 0  # keyed by database file


def test_shared_reads_open_the_file_once_see_writes_made_inside_and_release_it_at_the_end(store, monkeypatch):
    import duckdb

    _begin(store, "20260101T000000Z-aaaaaaaa")
    opened = []
    real = store._connect
    monkeypatch.setattr(store, "_connect", lambda read_only: opened.append(read_only) or real(read_only))
    with store.shared_reads():
        assert store.get_run("20260101T000000Z-aaaaaaaa")["status"] == "running"
        assert store.list_runs(status=None).height == 1
        with store.shared_reads():  # re-entrant: the inner block uses the same connection
            assert store.latest_run("demo", status=None)["run_id"] == "20260101T000000Z-aaaaaaaa"
        assert opened == [True]
        # A write inside the block closes the shared connection first (a process cannot hold the file both
        # read-only and read-write), and the next read sees what it wrote.
        _begin(store, "20260101T000001Z-bbbbbbbb")
        assert store.list_runs(status=None).height == 2
        assert opened == [True, False, True]
    # After the block nothing holds the file: another read-write connection (as another process's writer
    # would take) opens at once.
    with duckdb.connect(str(store.path)) as con:
        assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 2
    assert store.list_runs(status=None).height == 2 and opened[-1] is True and len(opened) == 4


def test_shared_reads_before_any_history_exists_read_empty_and_then_see_the_first_write(store):
    with store.shared_reads():
        assert store.list_runs().height == 0 and store.get_run("20260101T000000Z-aaaaaaaa") is None
        _begin(store, "20260101T000000Z-aaaaaaaa")
        assert store.get_run("20260101T000000Z-aaaaaaaa")["status"] == "running"
