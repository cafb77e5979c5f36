"""Schema migrations on real DuckDB files: fresh, repeated, upgraded from older states, all-or-nothing."""

from __future__ import annotations

import duckdb
import pytest

from evalplatform.errors import InfraError
from evalplatform.history import LATEST_VERSION, MIGRATIONS, HistoryStore, migrate
from evalplatform.history.schema import current_version
from tests.evalplatform.history.history_worker import make_results

TABLES = {"schema_version", "runs", "results", "outputs", "dataset_checks", "baselines", "decisions",
          "calibrations", "judge_verdicts", "case_set_members", "discriminations",
          # v7: production monitoring
          "trace_batches", "trace_population", "sampled_traces", "trace_results", "monitor_values", "review_queue",
          "failure_categories",
          # v8: cases whose verdict changed between repeats
          "case_flakiness"}


def _tables(con) -> set[str]:
    return {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}


def _versions(con) -> list[int]:
    return [r[0] for r in con.execute("SELECT version FROM schema_version ORDER BY version").fetchall()]


def test_fresh_database_gets_the_latest_version(tmp_path):
    with duckdb.connect(str(tmp_path / "h.duckdb")) as con:
        assert migrate(con) == LATEST_VERSION
        assert _tables(con) == TABLES
        assert _versions(con) == list(range(1, LATEST_VERSION + 1))


def test_migrate_twice_is_a_no_op(tmp_path):
    with duckdb.connect(str(tmp_path / "h.duckdb")) as con:
        migrate(con)
        applied = con.execute("SELECT * FROM schema_version").fetchall()
        assert migrate(con) == LATEST_VERSION
        assert con.execute("SELECT * FROM schema_version").fetchall() == applied


def test_version_zero_file_is_upgraded_by_the_first_read(tmp_path):
    # A file made before versioning: an empty schema_version table and a stray table of its own.
    path = tmp_path / "h.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE schema_version (version INTEGER NOT NULL, applied_at TIMESTAMP NOT NULL)")
        con.execute("CREATE TABLE scratch (x INTEGER)")
        con.execute("INSERT INTO scratch VALUES (42)")
    store = HistoryStore(path)
    assert store.list_runs().height == 0
    with duckdb.connect(str(path), read_only=True) as con:
        assert current_version(con) == LATEST_VERSION
        assert _tables(con) == TABLES | {"scratch"}
        assert con.execute("SELECT x FROM scratch").fetchall() == [(42,)]
    store.begin_run({"run_id": "r1", "suite": "demo"})
    assert store.get_run("r1")["status"] == "running"


def test_partially_created_tables_are_adopted(tmp_path):
    # An unversioned file that already holds one of the tables (with a row) is completed, not clobbered.
    path = tmp_path / "h.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute(MIGRATIONS[0][2])  # outputs
        con.execute("INSERT INTO outputs VALUES ('h1', 'kept')")
    store = HistoryStore(path)
    store.begin_run({"run_id": "r1", "suite": "demo"})
    assert store.get_output("h1") == "kept"


def test_an_older_version_is_upgraded_keeping_its_data(tmp_path):
    path = tmp_path / "h.duckdb"
    store = HistoryStore(path)
    store.begin_run({"run_id": "r1", "suite": "demo"})
    store.complete_run("r1", make_results("r1", 20), {})
    v2 = [*MIGRATIONS, ["ALTER TABLE runs ADD COLUMN reviewer VARCHAR", "CREATE TABLE later_table (case_id VARCHAR)"]]
    with duckdb.connect(str(path)) as con:
        assert migrate(con, v2) == LATEST_VERSION + 1
        assert migrate(con, v2) == LATEST_VERSION + 1
        assert _versions(con) == list(range(1, LATEST_VERSION + 2))
        assert con.execute("SELECT run_id, reviewer FROM runs").fetchall() == [("r1", None)]
        assert con.execute("SELECT count(*) FROM results").fetchall() == [(20,)]
        assert "later_table" in _tables(con)


def test_a_failing_migration_leaves_the_previous_version_intact(tmp_path):
    path = tmp_path / "h.duckdb"
    with duckdb.connect(str(path)) as con:
        migrate(con)
        broken = [*MIGRATIONS, ["CREATE TABLE half_done (x INTEGER)", "ALTER TABLE no_such_table ADD COLUMN y INTEGER"]]
        with pytest.raises(duckdb.Error):
            migrate(con, broken)
        assert current_version(con) == LATEST_VERSION
        assert "half_done" not in _tables(con)


def test_a_newer_database_is_refused(tmp_path):
    path = tmp_path / "h.duckdb"
    with duckdb.connect(str(path)) as con:
        migrate(con)
        con.execute("INSERT INTO schema_version VALUES (?, now()::TIMESTAMP)", [LATEST_VERSION + 5])
    with pytest.raises(InfraError, match="newer than this evalplatform"):
        HistoryStore(path).begin_run({"run_id": "r1", "suite": "demo"})
