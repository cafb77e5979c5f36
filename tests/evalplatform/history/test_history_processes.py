"""The history under several processes: concurrent writers and a reader, a writer killed mid-run, held locks."""

from __future__ import annotations

import signal

import polars as pl
import pytest

from evalplatform.errors import InfraError
from evalplatform.history import HistoryStore
from tests.evalplatform.history.history_worker import make_results
from tests.evalplatform.history.procs import wait_for

RUNS_PER_WRITER = 20
ROWS_PER_RUN = 1_000


def test_two_writers_and_a_reader_at_once(tmp_path, workers):
    db = tmp_path / "history.duckdb"
    stop = tmp_path / "stop"
    HistoryStore(db).begin_run({"run_id": "seed", "suite": "seed"})  # the reader starts on an existing file
    reader = workers("read", str(db), str(stop))
    writers = [workers("write", str(db), tag, str(RUNS_PER_WRITER), str(ROWS_PER_RUN)) for tag in ("alpha", "beta")]
    # Timeouts here are hang guards only, far above any loaded machine's time; the workers wait as
    # long for each other (see history_worker._store), so load cannot fail the test.
    for proc in writers:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
    stop.write_text("done")
    out, err = reader.communicate(timeout=600)
    assert reader.returncode == 0, out + err
    counts = dict(item.split("=") for item in out.split())
    # It read while the writers wrote, and checked completed runs' rows, not just an empty list.
    assert int(counts["reads"]) > 0 and int(counts["checked"]) > 0, out

    store = HistoryStore(db)
    runs = store.list_runs(limit=100, status=None).filter(pl.col("suite") != "seed")
    assert runs.height == 2 * RUNS_PER_WRITER
    assert set(runs["status"]) == {"complete"}
    assert set(runs["n_results"]) == {ROWS_PER_RUN}
    for run_id in ("alpha-000", "alpha-019", "beta-007", "beta-019"):
        assert store.get_results(run_id).height == ROWS_PER_RUN


@pytest.mark.parametrize("how", ["sigkill", "exit"])
def test_writer_killed_inside_complete_run_leaves_no_partial_run(tmp_path, workers, how):
    db = tmp_path / "history.duckdb"
    store = HistoryStore(db)
    store.begin_run({"run_id": "before", "suite": "demo"})
    store.complete_run("before", make_results("before", 500), {"out-1": "kept"})

    marker = tmp_path / "in-transaction"
    # Large enough that DuckDB writes row groups to the file before the commit that never comes.
    proc = workers("crash", str(db), "doomed", "300000", str(marker), how)
    if how == "sigkill":
        wait_for(marker, proc)
        proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == (-signal.SIGKILL if how == "sigkill" else 17)

    fresh = HistoryStore(db)
    doomed = fresh.get_run("doomed")
    assert doomed["status"] == "running" and doomed["n_results"] is None
    assert fresh.get_results("doomed").height == 0
    assert fresh.list_runs()["run_id"].to_list() == ["before"]
    assert fresh.get_results("before").height == 500
    assert fresh.get_output("out-1") == "kept" and fresh.get_output("out-2") is None
    # The dead writer's lock went with it: the next write goes through and the run can be closed.
    assert fresh.fail_run("doomed", "writer killed") is True
    fresh.begin_run({"run_id": "after", "suite": "demo"})
    fresh.complete_run("after", make_results("after", 100), {})
    assert fresh.get_results("after").height == 100


@pytest.mark.parametrize("holder_read_only", ["0", "1"])
def test_writer_retries_then_fails_while_another_process_holds_the_file(tmp_path, workers, holder_read_only):
    db = tmp_path / "history.duckdb"
    HistoryStore(db).begin_run({"run_id": "r1", "suite": "demo"})
    marker = tmp_path / "open"
    holder = workers("hold_db", str(db), str(marker), holder_read_only)
    wait_for(marker, holder)
    with pytest.raises(InfraError, match=r"history\.duckdb: history database is held by another process"):
        HistoryStore(db, connect_timeout=0.5).begin_run({"run_id": "r2", "suite": "demo"})
    holder.kill()
    holder.wait()
    HistoryStore(db).begin_run({"run_id": "r2", "suite": "demo"})


def test_reader_waits_for_a_writer_and_then_reads(tmp_path, workers):
    db = tmp_path / "history.duckdb"
    HistoryStore(db).begin_run({"run_id": "r1", "suite": "demo"})
    marker = tmp_path / "open"
    holder = workers("hold_db", str(db), str(marker), "0")
    wait_for(marker, holder)
    with pytest.raises(InfraError, match=r"history\.duckdb"):
        HistoryStore(db, read_timeout=0.3).get_run("r1")
    holder.kill()
    holder.wait()
    assert HistoryStore(db, read_timeout=0.3).get_run("r1")["status"] == "running"
