"""Runs whose process died are marked abandoned, and a run is never complete without its decision."""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket

import duckdb
import pytest

from evalplatform.cli import main
from evalplatform.history import HistoryStore
from tests.evalplatform.history.history_worker import make_results
from tests.evalplatform.history.procs import wait_for
from tests.suite_helpers import make_project


def _set(store: HistoryStore, run_id: str, **columns) -> None:
    """Rewrite columns of a run directly, as another process or host would have left them."""
    names = ", ".join(f"{k} = ?" for k in columns)
    with duckdb.connect(str(store.path)) as con:
        con.execute(f"UPDATE runs SET {names} WHERE run_id = ?", [*columns.values(), run_id])


def _decision(overall: str = "PASS") -> dict:
    return {"overall": overall, "policy_hash": "sha-p", "inputs": {"policy": "p.yaml"},
            "rules": [{"rule_id": "floor", "outcome": overall}]}


def assert_no_complete_run_without_its_decision(store: HistoryStore) -> None:
    for run in store.list_runs(status=None, limit=1000).iter_rows(named=True):
        if run["status"] == "complete":
            record = store.decision_of_record(run["run_id"])
            assert record is not None, f"run {run['run_id']} is complete with no decision"
            assert record["overall"] == run["decision"]


def test_begin_run_records_the_owning_process(tmp_path):
    store = HistoryStore(tmp_path / "h.duckdb")
    store.begin_run({"run_id": "r1", "suite": "demo"})
    run = store.get_run("r1")
    assert (run["pid"], run["host"]) == (os.getpid(), socket.gethostname())


def test_a_run_killed_mid_run_is_abandoned_by_the_next_writer(tmp_path, workers):
    db = tmp_path / "h.duckdb"
    marker = tmp_path / "running"
    proc = workers("begin_and_wait", str(db), "doomed", str(marker))
    wait_for(marker, proc)
    store = HistoryStore(db)
    store.begin_run({"run_id": "while-alive", "suite": "demo"})
    assert store.get_run("doomed")["status"] == "running"  # its process is alive: left alone
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)

    store.begin_run({"run_id": "next", "suite": "demo"})
    doomed = store.get_run("doomed")
    assert doomed["status"] == "abandoned"
    assert f"process {proc.pid}" in doomed["failure"] and "gone" in doomed["failure"]
    assert doomed["finished_at"] is not None
    # This process's own runs are alive.
    assert store.get_run("while-alive")["status"] == store.get_run("next")["status"] == "running"


def test_a_real_run_killed_with_sigkill_shows_abandoned_in_history_list(tmp_path, workers, monkeypatch, capsys):
    root = make_project(tmp_path)
    db = tmp_path / "state" / "history.duckdb"
    marker = tmp_path / "in-call"
    proc = workers("pipeline", str(root), str(db), "hang", str(marker))
    wait_for(marker, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)

    monkeypatch.setenv("EVALPLATFORM_PROJECT", str(root))
    monkeypatch.setenv("EVALPLATFORM_HISTORY", str(db))
    assert main(["history", "list"]) == 0
    captured = capsys.readouterr()
    line = next(ln for ln in captured.out.splitlines() if "mini" in ln)
    assert "abandoned" in line and f"process {proc.pid}" in line
    run = HistoryStore(db).list_runs(status=None)
    assert run["status"].to_list() == ["abandoned"] and run["decision"].to_list() == [None]


@pytest.mark.parametrize("point", ["before_commit", "write:1", "write:2"])
def test_a_run_killed_at_any_write_is_never_complete_without_its_decision(tmp_path, workers, point):
    root = make_project(tmp_path)
    db = tmp_path / "state" / "history.duckdb"
    proc = workers("pipeline", str(root), str(db), point, str(tmp_path / "unused"))
    proc.communicate(timeout=600)  # a hang guard only

    store = HistoryStore(db)
    assert_no_complete_run_without_its_decision(store)
    (run,) = store.list_runs(status=None).iter_rows(named=True)
    if proc.returncode == 0:  # the injected point was never reached: the run finished normally
        assert run["status"] == "complete"
        return
    assert proc.returncode == 9
    assert run["status"] == "running" and run["n_results"] is None
    assert store.get_results(run["run_id"]).height == 0
    store.mark_abandoned()
    assert store.get_run(run["run_id"])["status"] == "abandoned"


def test_a_crash_between_results_and_decision_stores_neither(tmp_path):
    store = HistoryStore(tmp_path / "h.duckdb")
    store.begin_run({"run_id": "r1", "suite": "demo"})
    frame = make_results("r1", 50)

    def crash():
        raise KeyboardInterrupt  # the process is going down here

    store._before_commit = crash
    with pytest.raises(KeyboardInterrupt):
        store.complete_run("r1", frame, {}, decision=_decision("BLOCK"))
    run = store.get_run("r1")
    assert (run["status"], run["decision"], run["n_results"]) == ("running", None, None)
    assert store.decision_of_record("r1") is None and store.get_results("r1").height == 0

    store._before_commit = None
    store.complete_run("r1", frame, {}, decision=_decision("BLOCK"))
    assert store.get_run("r1")["decision"] == "BLOCK"
    record = store.decision_of_record("r1")
    assert (record["overall"], record["kind"], record["rules"]) == ("BLOCK", "record", _decision("BLOCK")["rules"])
    assert_no_complete_run_without_its_decision(store)


def test_a_decision_in_totals_alone_is_refused(tmp_path):
    from evalplatform.errors import InputError

    store = HistoryStore(tmp_path / "h.duckdb")
    store.begin_run({"run_id": "r1", "suite": "demo"})
    with pytest.raises(InputError, match="decision"):
        store.complete_run("r1", make_results("r1", 10), {}, {"decision": "PASS"})
    assert store.get_run("r1")["status"] == "running"


def test_a_reused_pid_does_not_keep_a_dead_run_running(tmp_path):
    store = HistoryStore(tmp_path / "h.duckdb")
    store.begin_run({"run_id": "mine", "suite": "demo"})
    store.begin_run({"run_id": "old", "suite": "demo"})
    started = store.get_run("old")["process_started"]
    if started is None:
        pytest.fail("this host's process start time could not be read from /proc")
    boot = started.split(":", 1)[0]
    # Same pid as a live process (ours), but the process that began the run started at another time.
    _set(store, "old", process_started=f"{boot}:1")
    store.mark_abandoned()
    old = store.get_run("old")
    assert old["status"] == "abandoned" and "another process" in old["failure"]
    assert store.get_run("mine")["status"] == "running"


def test_runs_of_other_hosts_are_left_alone_until_a_generous_limit(tmp_path):
    store = HistoryStore(tmp_path / "h.duckdb")
    for run_id in ("elsewhere", "legacy"):
        store.begin_run({"run_id": run_id, "suite": "demo"})
    _set(store, "elsewhere", host="build-42", pid=999_999_999)
    _set(store, "legacy", host=None, pid=None, process_started=None)
    store.begin_run({"run_id": "next", "suite": "demo"})
    assert store.get_run("elsewhere")["status"] == store.get_run("legacy")["status"] == "running"

    long_ago = dt.datetime.now(dt.UTC).replace(tzinfo=None) - store.foreign_run_limit - dt.timedelta(minutes=1)
    _set(store, "elsewhere", started_at=long_ago)
    _set(store, "legacy", started_at=long_ago)
    assert sorted(store.mark_abandoned()) == ["elsewhere", "legacy"]
    assert "build-42" in store.get_run("elsewhere")["failure"]
    assert store.get_run("legacy")["status"] == "abandoned"


def test_the_cheap_check_does_not_write_when_nothing_is_abandoned(tmp_path, workers):
    db = tmp_path / "h.duckdb"
    store = HistoryStore(db)
    store.begin_run({"run_id": "alive", "suite": "demo"})
    store.complete_run("alive", make_results("alive", 10), {}, decision=_decision())
    marker = tmp_path / "locked"
    holder = workers("hold_lock", str(db) + ".lock", str(marker))
    wait_for(marker, holder)
    # Another writer holds the lock: a check that wanted to write would fail here.
    assert HistoryStore(db, lock_timeout=0).mark_abandoned() == []
