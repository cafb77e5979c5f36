"""The run history in one DuckDB file: one writer at a time, short transactions, atomic per run.

DuckDB lets one read-write process lock out every other process, readers included, so every
call opens a connection, does one transaction and closes it again. Writers queue on a file lock
beside the database; both writers and readers retry the open while another process holds it.
A run records the process that owns it; a later writer marks a run whose process is gone abandoned.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import secrets
import socket
import threading
import types
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import filelock
import polars as pl
from pydantic import ValidationError

from evalplatform import results as rt
from evalplatform.errors import InfraError, InputError
from evalplatform.history import owner, schema
from evalplatform.history.records import JSON_COLUMNS, DecisionRecord, RunStart, RunTotals, derive_totals, utcnow
from evalplatform.provenance import canonical_json

STATUSES = ("running", "complete", "failed", "abandoned")
DECISION_KINDS = ("record", "re-decision")
_DECISION_COLUMNS = "decision_id, run_id, policy_hash, inputs, rules, overall, created_at, kind, label"
# A run of another host (or of an older evalplatform that recorded no process) cannot be checked
# from here; it counts as abandoned only once no run could plausibly still be going.
FOREIGN_RUN_LIMIT = dt.timedelta(hours=72)
_RESULT_COLUMNS = ", ".join(f'"{c}"' for c in rt.COLUMNS)
_FLAKY_COLUMNS = ("run_id, case_id, scorer, criterion, tier_cost, n_repeats, n_pass, n_fail, n_error, n_outputs, "
                  "judge_only")
_LOCK_MESSAGES = ("Could not set lock", "Conflicting lock", "different configuration")


def new_run_id() -> str:
    """A run id that sorts by start time: 20261125T081500Z-1a2b3c4d."""
    return f"{utcnow():%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"


def _is_lock_conflict(err: duckdb.Error) -> bool:
    # Another process holds the file (IOException), or this process holds it with the other
    # read_only setting (ConnectionException): both clear once that connection closes.
    return any(m in str(err) for m in _LOCK_MESSAGES)


def _first_line(err: BaseException) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


READ_ATTEMPTS = 4  # a read that meets a writer's checkpoint is repeated on a new connection (HistoryStore._read)


class _ArrowStream:
    """A polars frame as an Arrow C stream (the PyCapsule interface), for DuckDB to scan.

    Handing DuckDB the frame itself makes it convert through pyarrow, which costs ~50 MB and ~50 ms of import
    for nothing: DuckDB and polars both speak the C stream interface. Each scan takes a fresh stream."""

    def __init__(self, frame: pl.DataFrame):
        self.frame = frame

    def __arrow_c_stream__(self, requested_schema: object = None) -> object:
        return self.frame.__arrow_c_stream__(requested_schema)


def arrow_stream(frame: pl.DataFrame) -> _ArrowStream:
    return _ArrowStream(frame)


def frame_of(relation: duckdb.DuckDBPyRelation) -> pl.DataFrame:
    """A query's result as a polars frame over the Arrow C stream (what `.pl()` gives, without pyarrow)."""
    return pl.DataFrame(relation)


class _Busy(Exception):
    """Another process holds the file or the lock: worth another try."""

    def __init__(self, cause: BaseException):
        super().__init__(str(cause))
        self.cause = cause


def _decision_row(path: Path, decision: DecisionRecord | dict[str, Any], run_id: str | None,
                  kind: str = "record", label: str | None = None, decision_id: str | None = None) -> dict[str, Any]:
    """A `decisions` row, the decision validated first (bad input names the field)."""
    if kind not in DECISION_KINDS:
        raise InputError(path, "kind", f"unknown decision kind {kind!r}", f"use one of {', '.join(DECISION_KINDS)}")
    try:
        valid = DecisionRecord.model_validate(decision)
    except ValidationError as err:
        first = err.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise InputError(path, f"decision.{field}" if field else "decision", first["msg"]) from err
    return {
        "decision_id": decision_id or new_run_id(),
        "run_id": run_id,
        "policy_hash": valid.policy_hash,
        "inputs": canonical_json(valid.inputs),
        "rules": canonical_json(valid.rules),
        "overall": valid.overall,
        "created_at": utcnow(),
        "kind": kind,
        "label": label,
    }


# Complete runs' results by (database file, run id): immutable once written, so safe to reuse.
_RESULTS_CACHE: "OrderedDict[tuple[str, str], pl.DataFrame]" = OrderedDict()
_RESULTS_CACHE_RUNS = 8
_RESULTS_CACHE_MAX_ROWS = 250_000


# Per thread: {database path: SimpleNamespace(depth, con)} of the shared_reads blocks open in that thread.
_SHARED = threading.local()


class HistoryStore:
    """Runs, results, outputs, baselines, decisions and dataset checks in the DuckDB file at `path`.

    Args:
        path: the database file; created (with its folder) by the first write.
        lock_timeout: seconds a writer waits for the other writers' file lock.
        connect_timeout: seconds a writer retries opening the file while a reader holds it.
        read_timeout: seconds a reader retries opening the file while a writer holds it.
        foreign_run_limit: how long a running run of another host stays running before it counts
            as abandoned (its process cannot be checked from here).
        clock, sleep: the time source and the wait of every retry (tests inject their own).
    """

    def __init__(
        self,
        path: Path | str,
        *,
        lock_timeout: float = 60.0,
        connect_timeout: float = 60.0,
        read_timeout: float = 30.0,
        foreign_run_limit: dt.timedelta = FOREIGN_RUN_LIMIT,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.path = Path(path)
        self.lock_path = Path(str(self.path) + ".lock")
        self.lock_timeout = lock_timeout
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.foreign_run_limit = foreign_run_limit
        self._clock = clock
        self._sleep = sleep
        self._schema_current = False
        # Called inside complete_run's transaction after the results went in and before the decision
        # and the COMMIT; tests use it to crash there.
        self._before_commit: Callable[[], None] | None = None

    # -- connections -------------------------------------------------------------------------

    def _retry(self, attempt: Callable[[], Any], budget: float, gave_up: Callable[[BaseException], InfraError]) -> Any:
        """Call `attempt` until it returns, waiting with jittered, capped backoff between tries.

        `attempt` raises `_Busy` while the resource is held; once the next wait would pass `budget`
        seconds, `gave_up(err)` is raised instead. Time comes from the injected clock and sleep.
        """
        deadline = self._clock() + budget
        delay = 0.005
        while True:
            try:
                return attempt()
            except _Busy as busy:
                wait = delay * random.uniform(0.5, 1.5)
                if self._clock() + wait > deadline:
                    raise gave_up(busy.cause) from busy.cause
            self._sleep(wait)
            delay = min(delay * 2, 0.2)

    def _connect(self, read_only: bool) -> duckdb.DuckDBPyConnection | None:
        """Open the file, retrying while another connection holds it.

        Returns None when reading a database that does not exist yet.
        """
        budget = self.read_timeout if read_only else self.connect_timeout

        def attempt() -> duckdb.DuckDBPyConnection | None:
            if read_only and not self.path.exists():
                return None
            try:
                return duckdb.connect(str(self.path), read_only=read_only)
            except (duckdb.IOException, duckdb.ConnectionException) as err:
                if read_only and "does not exist" in str(err):
                    return None
                if not _is_lock_conflict(err):
                    raise InfraError(f"{self.path}: cannot open the history database: {_first_line(err)}") from err
                raise _Busy(err) from err

        return self._retry(attempt, budget, lambda err: InfraError(
            f"{self.path}: history database is held by another process (retried {budget:g}s); "
            "wait for the other run to finish or raise the timeout"
        ))

    def _lock(self) -> filelock.FileLock:
        """The writers' file lock, acquired: waits (on the injected clock) while another writer holds it."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise InfraError(f"{self.path.parent}: cannot create the history folder: {err.strerror or err}") from err
        lock = filelock.FileLock(str(self.lock_path))

        def attempt() -> filelock.FileLock:
            try:
                lock.acquire(blocking=False)
            except filelock.Timeout as err:
                raise _Busy(err) from err
            except OSError as err:
                raise InfraError(
                    f"{self.lock_path}: cannot create the history's lock file: {err.strerror or err}"
                ) from err
            return lock

        return self._retry(attempt, self.lock_timeout, lambda err: InfraError(
            f"{self.lock_path}: another writer has held the history lock for over {self.lock_timeout:g}s; "
            "wait for it to finish, or remove the lock file if no evalplatform process is running"
        ))

    @property
    def _shared(self) -> types.SimpleNamespace:
        """This thread's shared-read state for this file, common to every HistoryStore of the same path."""
        by_path = _SHARED.__dict__.setdefault("by_path", {})
        return by_path.setdefault(str(self.path), types.SimpleNamespace(depth=0, con=None))

    @contextmanager
    def shared_reads(self) -> Iterator[None]:
        """Let the reads inside this block share one read-only connection (opened on the first read).

        Opening the file costs ~15 ms, and one command's planning, estimate, baseline and summary read it a dozen
        times. The connection holds DuckDB's shared file lock, which keeps other processes' writers waiting, so
        a block must stay short (never around model calls); a write inside it closes the connection first (a
        process cannot hold the file read-only and read-write at once) and the next read opens a fresh one.
        Re-entrant, and shared by every HistoryStore of the same file in this thread (a Dagster step's helpers
        each make their own); per thread (each thread's block has its own connection).
        """
        local = self._shared
        local.depth += 1
        try:
            yield
        finally:
            local.depth -= 1
            if local.depth == 0:
                self._drop_shared()

    def _drop_shared(self) -> None:
        con, self._shared.con = self._shared.con, None
        if con is not None:
            con.close()

    def _sharing(self) -> bool:
        return self._shared.depth > 0

    @contextmanager
    def _writing(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-write connection at the latest schema, held under the writers' file lock."""
        if self._sharing():
            self._drop_shared()
        lock = self._lock()
        try:
            con = self._connect(read_only=False)
            try:
                if not self._schema_current:
                    schema.migrate(con)
                    self._schema_current = True
                yield con
            except duckdb.Error as err:
                raise InfraError(f"{self.path}: history write failed: {_first_line(err)}") from err
            finally:
                con.close()
        finally:
            lock.release()

    @contextmanager
    def _reading(self) -> Iterator[duckdb.DuckDBPyConnection | None]:
        """A read-only connection, or None when there is no history yet (the shared one inside shared_reads)."""
        sharing = self._sharing()
        con = self._shared.con if sharing else None
        if con is None:
            con = self._connect(read_only=True)
            if con is not None and not self._schema_current:
                version = schema.current_version(con)
                if version < schema.LATEST_VERSION:
                    # An older file: upgrade it once under the write lock, then read.
                    con.close()
                    with self._writing():
                        pass
                    con = self._connect(read_only=True)
                else:
                    self._schema_current = version == schema.LATEST_VERSION
            if sharing:
                self._shared.con = con
        try:
            yield con
        except duckdb.Error as err:
            if sharing:  # a torn read is retried on a fresh connection (see _read)
                self._shared.con = None
                if con is not None:
                    con.close()
            raise InfraError(f"{self.path}: history read failed: {_first_line(err)}") from err
        finally:
            if con is not None and not sharing:
                con.close()

    @staticmethod
    @contextmanager
    def _transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
        con.execute("BEGIN TRANSACTION")
        try:
            yield
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")

    def _read(self, use: Callable[[duckdb.DuckDBPyConnection], Any], empty: Any) -> Any:
        """`use` on a fresh read-only connection; `empty` when there is no history yet.

        A reader that opened the file just as a writer checkpointed it can find a block not there yet ("Could
        not read enough bytes"): the read is retried on a new connection a few times (a reader never writes, so
        it is safe to repeat); a file that stays unreadable is the read's InfraError, as before.
        """
        for attempt in range(READ_ATTEMPTS):
            try:
                with self._reading() as con:
                    return empty if con is None else use(con)
            except InfraError as err:
                # Only a query that failed on the file's contents; opening it has its own waits (_connect).
                torn = isinstance(err.__cause__, duckdb.IOException) and "history read failed" in str(err)
                if attempt + 1 == READ_ATTEMPTS or not torn:
                    raise
            self._sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")

    def _rows(self, sql: str, params: list[Any]) -> list[dict[str, Any]]:
        def use(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
            cur = con.execute(sql, params)
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row)) for row in cur.fetchall()]

        return self._read(use, [])

    def _frame(self, sql: str, params: list[Any], empty: pl.DataFrame | Callable[[], pl.DataFrame]) -> pl.DataFrame:
        """The query as a frame; `empty` (or what it returns, when it is a function) when there is no history."""
        frame = self._read(lambda con: frame_of(con.sql(sql, params=params)), None)
        if frame is None:
            return empty() if callable(empty) else empty
        return frame

    # -- runs ---------------------------------------------------------------------------------

    def begin_run(self, run: dict[str, Any]) -> None:
        """Record a run as 'running'. Keys beyond the `runs` columns are kept in its provenance."""
        try:
            row = RunStart.model_validate(run).columns()
        except ValidationError as err:
            first = err.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or "run"
            raise InputError(self.path, field, f"invalid run record: {first['msg']}") from err
        for name in JSON_COLUMNS:
            row[name] = canonical_json(row[name]) if row[name] is not None else None
        me = owner.this_process()
        row.update(status="running", pid=me.pid, host=me.host, process_started=me.started)
        names = list(row)
        sql = f"INSERT INTO runs ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})"
        with self._writing() as con, self._transaction(con):
            self._mark_abandoned(con)
            try:
                con.execute(sql, [row[n] for n in names])
            except duckdb.ConstraintException as err:
                raise InputError(
                    self.path, "run_id", f"run {row['run_id']!r} already exists", "use new_run_id()"
                ) from err

    # -- runs whose process is gone -----------------------------------------------------------

    def _gone(self, run: dict[str, Any], here: str, now: dt.datetime) -> str | None:
        """Why a running run will never finish, or None while its process may still be at work."""
        if run["pid"] is not None and run["host"] == here:
            return owner.gone_reason(int(run["pid"]), run["process_started"])
        return owner.foreign_reason(run["host"], run["started_at"], now, self.foreign_run_limit)

    def _abandoned(self, runs: list[dict[str, Any]]) -> dict[str, str]:
        here, now = socket.gethostname(), utcnow()
        found = {}
        for run in runs:
            reason = self._gone(run, here, now)
            if reason is not None:
                where = f"host {run['host']}" if run["host"] else "unknown host"
                found[run["run_id"]] = (f"abandoned: {reason} ({where}; found at {now:%Y-%m-%d %H:%M:%S}Z by "
                                        f"process {os.getpid()} on {here})")
        return found

    _RUNNING_SQL = "SELECT run_id, pid, host, process_started, started_at FROM runs WHERE status = 'running'"

    def _mark_abandoned(self, con: duckdb.DuckDBPyConnection) -> list[str]:
        """Inside a write transaction: mark running runs whose process is gone abandoned, with the reason."""
        cur = con.execute(self._RUNNING_SQL)
        names = [d[0] for d in cur.description]
        found = self._abandoned([dict(zip(names, r)) for r in cur.fetchall()])
        for run_id, reason in found.items():
            con.execute(
                "UPDATE runs SET status = 'abandoned', failure = ?, finished_at = ? "
                "WHERE run_id = ? AND status = 'running'",
                [reason, utcnow(), run_id],
            )
        return sorted(found)

    def mark_abandoned(self) -> list[str]:
        """Mark running runs whose process is gone abandoned; returns their ids.

        A cheap check for readers (`history list`): it reads first and takes the write lock only
        when there is a run to mark.
        """
        if not self._abandoned(self._rows(self._RUNNING_SQL, [])):
            return []
        with self._writing() as con, self._transaction(con):
            return self._mark_abandoned(con)

    def complete_run(
        self,
        run_id: str,
        results: pl.DataFrame,
        outputs: dict[str, str] | None = None,
        totals: dict[str, Any] | None = None,
        decision: DecisionRecord | dict[str, Any] | None = None,
    ) -> str | None:
        """Store a run's results, outputs, totals and decision of record and mark it complete, in one transaction.

        Totals are derived from `results` (outcome counts, tokens and cost per call); keys in
        `totals` override them or add what the frame cannot know (wall_s). `decision` (keys overall,
        policy_hash, inputs, rules) is the decision the run made: it lands with the results or not
        at all, so a crash never leaves a complete run without it. On any failure nothing is written
        and the run stays 'running'. Returns the decision's id (None without a decision).
        """
        source = f"run {run_id}"
        problems = rt.validate(results, source=source)
        if problems:
            raise InputError(self.path, "results", "; ".join(problems), "fix the result table before storing it")
        try:
            given = RunTotals.model_validate(totals or {}).model_dump(exclude_unset=True)
        except ValidationError as err:
            first = err.errors()[0]
            raise InputError(self.path, f"totals.{first['loc'][0]}", first["msg"]) from err
        record = _decision_row(self.path, decision, run_id) if decision is not None else None
        stated = given.pop("decision", None)
        if stated is not None and (record is None or stated != record["overall"]):
            raise InputError(self.path, "totals.decision",
                             f"run {run_id!r}: a decision is stored with its rules, not as a total",
                             "pass it as complete_run(..., decision={overall, policy_hash, inputs, rules})")
        frame = rt.conform(results).with_columns(pl.col("run_id").fill_null(run_id))
        strays = frame.filter(pl.col("run_id") != run_id)
        if strays.height:
            raise InputError(
                self.path, "results.run_id", f"row for run {strays['run_id'][0]!r} in results of run {run_id!r}"
            )
        from evalplatform.flakiness import flaky_cases

        flaky = flaky_cases(frame).with_columns(pl.lit(run_id).alias("run_id"))
        row_totals: dict[str, Any] = {**derive_totals(frame), "n_flaky_cases": flaky["case_id"].n_unique(), **given}
        outputs_frame = pl.DataFrame(
            {"output_hash": list((outputs or {}).keys()), "text": list((outputs or {}).values())},
            schema={"output_hash": pl.Utf8, "text": pl.Utf8},
        )

        with self._writing() as con, self._transaction(con):
            found = schema.one(con, "SELECT suite, status FROM runs WHERE run_id = ?", [run_id])
            if found is None:
                raise InputError(self.path, "run_id", f"no run {run_id!r}", "call begin_run first")
            suite, status = found
            if status != "running":
                raise InputError(self.path, "run_id", f"run {run_id!r} is already {status}")
            frame = frame.with_columns(pl.col("suite").fill_null(suite))
            con.register("incoming_results", arrow_stream(frame))
            con.register("incoming_outputs", arrow_stream(outputs_frame))
            try:
                con.execute(f"INSERT INTO results ({_RESULT_COLUMNS}) SELECT {_RESULT_COLUMNS} FROM incoming_results")
            except duckdb.ConstraintException as err:
                raise InputError(self.path, "results", f"{source}: {_first_line(err)}") from err
            con.execute("INSERT OR IGNORE INTO outputs SELECT output_hash, text FROM incoming_outputs")
            if flaky.height:
                con.register("incoming_flaky", arrow_stream(flaky))
                con.execute(f"INSERT INTO case_flakiness ({_FLAKY_COLUMNS}) SELECT {_FLAKY_COLUMNS} FROM incoming_flaky")
                con.unregister("incoming_flaky")
            if self._before_commit is not None:
                self._before_commit()
            if record is not None:
                con.execute(f"INSERT INTO decisions ({_DECISION_COLUMNS}) VALUES ({', '.join('?' * 9)})",
                            [record[c] for c in _DECISION_COLUMNS.split(", ")])
                row_totals["decision"] = record["overall"]
            assignments = ", ".join(f"{k} = ?" for k in row_totals)
            con.execute(
                f"UPDATE runs SET {assignments}, status = 'complete', finished_at = ? WHERE run_id = ?",
                [*row_totals.values(), utcnow(), run_id],
            )
            con.unregister("incoming_results")
            con.unregister("incoming_outputs")
        return record["decision_id"] if record is not None else None

    def fail_run(self, run_id: str, reason: str) -> bool:
        """Mark a running run failed with its reason; False (and no change) when it already finished."""
        with self._writing() as con, self._transaction(con):
            found = schema.one(con, "SELECT status FROM runs WHERE run_id = ?", [run_id])
            if found is None:
                raise InputError(self.path, "run_id", f"no run {run_id!r}")
            if found[0] != "running":
                return False
            con.execute(
                "UPDATE runs SET status = 'failed', failure = ?, finished_at = ? WHERE run_id = ?",
                [reason, utcnow(), run_id],
            )
            return True

    def fail_dagster_run(self, dagster_run_id: str, reason: str, *, suite: str | None = None,
                         tier: str | None = None) -> str | None:
        """A Dagster run of a scored run died: mark its history run failed with the reason, or, when it died
        before its run was recorded, record one as failed (so the pipeline's success rate counts it).

        Returns the history run marked or recorded; None when its run already finished (nothing to change).
        """
        with self._writing() as con, self._transaction(con):
            found = con.execute("SELECT run_id, status FROM runs WHERE dagster_run_id = ? ORDER BY started_at",
                                [dagster_run_id]).fetchall()
            if found:
                running = [run_id for run_id, status in found if status == "running"]
                for run_id in running:
                    con.execute("UPDATE runs SET status = 'failed', failure = ?, finished_at = ? WHERE run_id = ?",
                                [reason, utcnow(), run_id])
                return running[0] if running else None
            if suite is None:
                return None
            run_id = new_run_id()
            con.execute("INSERT INTO runs (run_id, suite, tier, status, started_at, finished_at, dagster_run_id, "
                        "failure) VALUES (?, ?, ?, 'failed', ?, ?, ?, ?)",
                        [run_id, suite, tier, utcnow(), utcnow(), dagster_run_id, reason])
            return run_id

    def token_averages(self, suite: str, target_model: str, scorers: list[str], last_runs: int = 20) -> dict:
        """Tokens per call over the suite's latest complete runs: {"target": {...}, <scorer id>: {...}}, each
        {tokens_in, tokens_out, n} (the target's with cost_usd); only what the history has (what a run's cost estimate starts from)."""
        recent = ("SELECT run_id FROM runs WHERE suite = ? AND status = 'complete' "
                  "ORDER BY started_at DESC LIMIT ?")
        out: dict[str, dict] = {}
        # A Python target may report its cost without tokens: those rows count for the cost average only.
        rows = self._rows(
            "SELECT avg(tokens_in) AS tokens_in, avg(tokens_out) AS tokens_out, avg(cost_usd) AS cost_usd, "
            "count(*) AS n FROM ("
            "SELECT DISTINCT ON (r.run_id, r.case_id, r.\"repeat\") r.tokens_in, r.tokens_out, r.cost_usd "
            f"FROM results r JOIN runs u ON u.run_id = r.run_id WHERE r.run_id IN ({recent}) AND u.target_model = ? "
            "AND ((r.tokens_in IS NOT NULL AND r.tokens_out IS NOT NULL) OR r.cost_usd IS NOT NULL))",
            [suite, int(last_runs), target_model])
        if rows and rows[0]["n"]:
            out["target"] = rows[0]
        if scorers:
            for row in self._rows(
                    "SELECT scorer, avg(scorer_tokens_in) AS tokens_in, avg(scorer_tokens_out) AS tokens_out, "
                    f"count(*) AS n FROM results WHERE run_id IN ({recent}) AND list_contains(?, scorer) "
                    "AND scorer_tokens_in IS NOT NULL AND scorer_tokens_out IS NOT NULL GROUP BY scorer",
                    [suite, int(last_runs), list(scorers)]):
                out[row["scorer"]] = {k: row[k] for k in ("tokens_in", "tokens_out", "n")}
        return out

    def flaky_cases(self, run_id: str) -> pl.DataFrame:
        """The run's cases whose verdict changed between repeats (per scorer), as stored with its results."""
        from evalplatform.flakiness import SCHEMA

        return self._frame(f"SELECT {_FLAKY_COLUMNS} FROM case_flakiness WHERE run_id = ? ORDER BY case_id, scorer",
                           [run_id], pl.DataFrame(schema={"run_id": pl.Utf8, **SCHEMA}))

    def list_runs(self, suite: str | None = None, limit: int = 20,
                  status: str | tuple[str, ...] | None = "complete") -> pl.DataFrame:
        """The latest runs first; `suite=None` for all suites; `status` one status, several, or None for any."""
        wanted = [status] if isinstance(status, str) else list(status) if status is not None else None
        for one in wanted or []:
            if one not in STATUSES:
                raise InputError(None, "status", f"unknown run status {one!r}", f"use one of {', '.join(STATUSES)}")
        return self._frame(
            "SELECT * FROM runs WHERE (? IS NULL OR suite = ?) AND (?::VARCHAR[] IS NULL OR list_contains(?, status)) "
            "ORDER BY started_at DESC, run_id DESC LIMIT ?",
            [suite, suite, wanted, wanted, int(limit)],
            _empty_runs,
        )

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        """One run with its JSON columns decoded; a unique prefix of the id is enough."""
        rows = self._rows("SELECT * FROM runs WHERE run_id = ?", [run_id])
        if not rows:
            rows = self._rows("SELECT * FROM runs WHERE starts_with(run_id, ?) ORDER BY run_id LIMIT 2", [run_id])
            if len(rows) > 1:
                raise InputError(
                    None, "run_id", f"{run_id!r} matches several runs ({rows[0]['run_id']}, {rows[1]['run_id']}, ...)",
                    "give more of the run id",
                )
        return _decode_run(rows[0]) if rows else None

    def latest_run(self, suite: str, status: str | None = "complete") -> dict[str, Any] | None:
        runs = self.list_runs(suite=suite, limit=1, status=status)
        return _decode_run(runs.row(0, named=True)) if runs.height else None

    def get_results(self, run_id: str) -> pl.DataFrame:
        """The run's results in the canonical schema, ordered by (case_id, repeat, scorer).

        Results land in the same transaction that marks a run complete and never change after, so
        a non-empty read is kept in a small per-process cache (a gate's checks read one run many times).
        """
        key = (str(self.path.resolve()), run_id)
        cached = _RESULTS_CACHE.get(key)
        if cached is not None:
            _RESULTS_CACHE.move_to_end(key)
            return cached
        frame = rt.conform(self._frame(
            f'SELECT {_RESULT_COLUMNS} FROM results WHERE run_id = ? ORDER BY case_id, "repeat", scorer',
            [run_id],
            rt.empty(),
        ))
        if 0 < frame.height <= _RESULTS_CACHE_MAX_ROWS:
            _RESULTS_CACHE[key] = frame
            while len(_RESULTS_CACHE) > _RESULTS_CACHE_RUNS:
                _RESULTS_CACHE.popitem(last=False)
        return frame

    def get_output(self, output_hash: str) -> str | None:
        rows = self._rows("SELECT text FROM outputs WHERE output_hash = ?", [output_hash])
        return rows[0]["text"] if rows else None

    # -- baselines ----------------------------------------------------------------------------

    def promote(self, suite: str, run_id: str, reason: str, *, actor: str = "unknown",
                require_pass: bool = False) -> str | None:
        """Make a complete run of `suite` the baseline of its tier; returns the run it replaced.

        Every promotion is kept (who, when, why, what it replaced): `baseline_history` lists them.
        With `require_pass`, only a run whose decision of record is PASS may become a baseline.
        """
        with self._writing() as con, self._transaction(con):
            found = schema.one(con, "SELECT suite, status, tier, decision FROM runs WHERE run_id = ?", [run_id])
            if found is None:
                raise InputError(self.path, "run_id", f"no run {run_id!r} to promote")
            run_suite, status, tier, decision = found
            if run_suite != suite:
                raise InputError(self.path, "run_id", f"run {run_id!r} belongs to suite {run_suite!r}, not {suite!r}")
            if status != "complete":
                raise InputError(
                    self.path, "run_id", f"run {run_id!r} is {status}; only a complete run can be a baseline"
                )
            if require_pass and decision != "PASS":
                raise InputError(self.path, "run_id", f"run {run_id!r} decided {decision or 'nothing'}; only a "
                                 "run whose decision of record is PASS becomes a baseline", "use --force to "
                                 "promote it anyway (recorded as forced)")
            current = self._current_baseline(con, suite, tier)
            if current == run_id:
                return current
            con.execute("INSERT INTO baselines (suite, run_id, promoted_at, reason, tier, actor, replaced_run_id, "
                        "action) VALUES (?, ?, ?, ?, ?, ?, ?, 'promote')",
                        [suite, run_id, utcnow(), reason, tier, actor, current])
            return current

    def rollback(self, suite: str, tier: str, reason: str, *, actor: str = "unknown") -> tuple[str, str]:
        """Restore the baseline the current one replaced; returns (restored run, run taken out)."""
        with self._writing() as con, self._transaction(con):
            current = self._current_baseline(con, suite, tier)
            if current is None:
                raise InputError(self.path, "--tier", f"suite {suite!r} has no {tier} baseline to roll back")
            previous = schema.one(con, "SELECT replaced_run_id FROM baselines WHERE suite = ? AND tier = ? "
                                  "ORDER BY promoted_at DESC, rowid DESC LIMIT 1", [suite, tier])[0]
            if previous is None:
                raise InputError(self.path, "--tier", f"the {tier} baseline of {suite!r} ({current}) replaced no "
                                 "earlier baseline", "promote another run instead")
            con.execute("INSERT INTO baselines (suite, run_id, promoted_at, reason, tier, actor, replaced_run_id, "
                        "action) VALUES (?, ?, ?, ?, ?, ?, ?, 'rollback')",
                        [suite, previous, utcnow(), reason, tier, actor, current])
            return previous, current

    @staticmethod
    def _current_baseline(con: duckdb.DuckDBPyConnection, suite: str, tier: str | None) -> str | None:
        found = schema.one(con, "SELECT run_id FROM baselines WHERE suite = ? AND tier IS NOT DISTINCT FROM ? "
                           "ORDER BY promoted_at DESC, rowid DESC LIMIT 1", [suite, tier])
        return found[0] if found else None

    def latest_baseline(self, suite: str, tier: str | None = None) -> str | None:
        """The current baseline of `suite`'s `tier`; without a tier, the most recent baseline of any tier."""
        if tier is None:
            rows = self._rows("SELECT run_id FROM baselines WHERE suite = ? ORDER BY promoted_at DESC, rowid DESC "
                              "LIMIT 1", [suite])
        else:
            rows = self._rows("SELECT run_id FROM baselines WHERE suite = ? AND tier = ? "
                              "ORDER BY promoted_at DESC, rowid DESC LIMIT 1", [suite, tier])
        return rows[0]["run_id"] if rows else None

    def baseline_history(self, suite: str, tier: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """Promotions and rollbacks, newest first: run, tier, when, who, why, what it replaced."""
        return self._rows(
            "SELECT b.suite, b.tier, b.run_id, b.action, b.promoted_at, b.actor, b.reason, b.replaced_run_id, "
            "r.target_model, r.n_cases, r.decision FROM baselines b LEFT JOIN runs r ON r.run_id = b.run_id "
            "WHERE b.suite = ? AND (? IS NULL OR b.tier = ?) ORDER BY b.promoted_at DESC, b.rowid DESC LIMIT ?",
            [suite, tier, tier, int(limit)])

    # -- case sets ----------------------------------------------------------------------------

    def record_case_set(self, suite: str, set_name: str, version: str, members: dict[str, str]) -> int:
        """Remember every case of this version of a case set (a case keeps the content it first had)."""
        frame = pl.DataFrame({"case_id": list(members), "case_hash": list(members.values())},
                             schema={"case_id": pl.Utf8, "case_hash": pl.Utf8})
        with self._writing() as con, self._transaction(con):
            before = schema.one(con, "SELECT count(*) FROM case_set_members WHERE suite = ? AND set_name = ?",
                                [suite, set_name])[0]
            con.register("incoming_members", arrow_stream(frame))
            con.execute("INSERT OR IGNORE INTO case_set_members SELECT ?, ?, case_id, case_hash, ?, ? "
                        "FROM incoming_members", [suite, set_name, version, utcnow()])
            con.unregister("incoming_members")
            after = schema.one(con, "SELECT count(*) FROM case_set_members WHERE suite = ? AND set_name = ?",
                               [suite, set_name])[0]
        return after - before

    def case_set_members(self, suite: str, set_name: str) -> dict[str, str]:
        """Every case the set ever held, with its first content hash."""
        rows = self._rows("SELECT case_id, case_hash FROM case_set_members WHERE suite = ? AND set_name = ?",
                          [suite, set_name])
        return {r["case_id"]: r["case_hash"] for r in rows}

    # -- dataset checks -----------------------------------------------------------------------

    def get_dataset_check(self, dataset_hash: str) -> dict[str, Any] | None:
        """A remembered validation of this dataset version, or None if it was never checked."""
        rows = self._rows("SELECT * FROM dataset_checks WHERE dataset_hash = ?", [dataset_hash])
        if not rows:
            return None
        row = rows[0]
        row["summary"] = json.loads(row["summary"]) if row["summary"] is not None else None
        return row

    def put_dataset_check(self, dataset_hash: str, success: bool, summary: dict[str, Any]) -> None:
        with self._writing() as con:
            con.execute(
                "INSERT OR REPLACE INTO dataset_checks VALUES (?, ?, ?, ?)",
                [dataset_hash, utcnow(), bool(success), canonical_json(summary)],
            )

    # -- decisions ----------------------------------------------------------------------------

    def record_decision(
        self,
        overall: str,
        policy_hash: str,
        inputs: dict[str, Any],
        rules: list[dict[str, Any]] | dict[str, Any],
        run_id: str | None = None,
        decision_id: str | None = None,
        kind: str = "record",
        label: str | None = None,
    ) -> str:
        """Store a gate decision; returns its id.

        kind 'record' is a run's decision of record (or a decision on imported files, run_id None):
        a run has at most one, normally written by `complete_run`, and it is never replaced.
        kind 're-decision' is a later gate of a recorded run, kept beside the record under its
        `label`; it never changes what the run decided.
        """
        row = _decision_row(self.path, {"overall": overall, "policy_hash": policy_hash, "inputs": inputs,
                                        "rules": rules}, run_id, kind, label, decision_id)
        if kind == "re-decision" and run_id is None:
            raise InputError(self.path, "run_id", "a re-decision is of a recorded run", "give run_id")
        with self._writing() as con, self._transaction(con):
            if run_id is not None:
                found = schema.one(con, "SELECT status FROM runs WHERE run_id = ?", [run_id])
                if found is None:
                    raise InputError(self.path, "run_id", f"no run {run_id!r}", "see `evalplatform history list`")
                if found[0] != "complete":
                    raise InputError(self.path, "run_id", f"run {run_id!r} is {found[0]}; only a complete run "
                                     "has a decision", "see `evalplatform history show`")
                if kind == "record":
                    self._check_first_record(con, run_id)
            con.execute(f"INSERT INTO decisions ({_DECISION_COLUMNS}) VALUES ({', '.join('?' * 9)})",
                        [row[c] for c in _DECISION_COLUMNS.split(", ")])
            if run_id is not None and kind == "record":
                con.execute("UPDATE runs SET decision = ? WHERE run_id = ?", [overall, run_id])
        return row["decision_id"]

    def _check_first_record(self, con: duckdb.DuckDBPyConnection, run_id: str) -> None:
        """A run's decision of record is written once, never replaced."""
        earlier = schema.one(con, "SELECT overall FROM decisions WHERE run_id = ? AND kind = 'record'", [run_id])
        if earlier is not None:
            raise InputError(
                self.path, "run_id", f"run {run_id!r} already has its decision of record ({earlier[0]}), "
                "which is never replaced", "record a later gate as kind='re-decision' with a label",
            )

    def get_decision(self, decision_id: str) -> dict[str, Any] | None:
        rows = self._rows("SELECT * FROM decisions WHERE decision_id = ?", [decision_id])
        return _decode_decision(rows[0]) if rows else None

    def decision_of_record(self, run_id: str) -> dict[str, Any] | None:
        """The decision the run made when it ran: what everything that reports the run's decision shows."""
        rows = self._rows("SELECT * FROM decisions WHERE run_id = ? AND kind = 'record' "
                          "ORDER BY created_at, decision_id LIMIT 1", [run_id])
        return _decode_decision(rows[0]) if rows else None

    def re_decisions(self, run_id: str) -> list[dict[str, Any]]:
        """Later gates of the run (`evalplatform gate --run`), oldest first, each with its label."""
        rows = self._rows("SELECT * FROM decisions WHERE run_id = ? AND kind = 're-decision' "
                          "ORDER BY created_at, decision_id", [run_id])
        return [_decode_decision(r) for r in rows]

    # -- judge calibrations -------------------------------------------------------------------

    def put_calibration(self, record: dict[str, Any], verdicts: list[dict[str, Any]] | None = None) -> str:
        """Store one judge calibration (a `calibrations` row) and its per-item verdicts in one transaction.

        `record` holds the columns of `calibrations` except calibration_id and created_at; `metrics`,
        `identity` and `reasons` may be dicts/lists (stored as JSON). Returns the calibration id.
        """
        row = dict(record)
        row["calibration_id"] = row.get("calibration_id") or new_run_id()
        row["created_at"] = row.get("created_at") or utcnow()
        for name in ("metrics", "identity", "reasons"):
            if row.get(name) is not None and not isinstance(row[name], str):
                row[name] = canonical_json(row[name])
        names = list(row)
        items = pl.DataFrame(
            [{"calibration_id": row["calibration_id"], "item_id": v["item_id"], "label": v["label"],
              "verdict": v.get("verdict")} for v in (verdicts or [])],
            schema={"calibration_id": pl.Utf8, "item_id": pl.Utf8, "label": pl.Utf8, "verdict": pl.Utf8},
        )
        with self._writing() as con, self._transaction(con):
            con.execute(
                f"INSERT INTO calibrations ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})",
                [row[n] for n in names],
            )
            if items.height:
                con.register("incoming_verdicts", arrow_stream(items))
                con.execute("INSERT INTO judge_verdicts SELECT calibration_id, item_id, label, verdict "
                            "FROM incoming_verdicts")
                con.unregister("incoming_verdicts")
        return row["calibration_id"]

    def list_calibrations(
        self,
        judge_name: str | None = None,
        judge_identity: str | None = None,
        purpose: str | None = None,
        limit: int = 50,
    ) -> list[dict[str, Any]]:
        """Calibrations, newest first, with their JSON columns decoded."""
        rows = self._rows(
            "SELECT * FROM calibrations WHERE (? IS NULL OR judge_name = ?) AND (? IS NULL OR judge_identity = ?) "
            "AND (? IS NULL OR purpose = ?) ORDER BY created_at DESC, calibration_id DESC LIMIT ?",
            [judge_name, judge_name, judge_identity, judge_identity, purpose, purpose, int(limit)],
        )
        for row in rows:
            for name in ("metrics", "identity", "reasons"):
                if row.get(name) is not None:
                    row[name] = json.loads(row[name])
        return rows

    def get_judge_verdicts(self, calibration_id: str) -> pl.DataFrame:
        """Per-item (item_id, label, verdict) of one calibration; verdict is null where the judge errored."""
        return self._frame(
            "SELECT item_id, label, verdict FROM judge_verdicts WHERE calibration_id = ? ORDER BY item_id",
            [calibration_id],
            pl.DataFrame(schema={"item_id": pl.Utf8, "label": pl.Utf8, "verdict": pl.Utf8}),
        )


    # -- discrimination -------------------------------------------------------------------------

    def put_discrimination(self, record: dict[str, Any]) -> str:
        """Store one discrimination measurement (a `discriminations` row); `results` and `warnings` may be
        dicts or lists (stored as JSON). Returns its id."""
        row = dict(record)
        for required in ("suite", "run_id", "seed", "draws", "results"):
            if row.get(required) is None:
                raise InputError(self.path, f"discrimination.{required}", "is required")
        row["discrimination_id"] = row.get("discrimination_id") or new_run_id()
        row["created_at"] = row.get("created_at") or utcnow()
        for name in ("results", "warnings"):
            if row.get(name) is not None and not isinstance(row[name], str):
                row[name] = canonical_json(row[name])
        names = list(row)
        with self._writing() as con, self._transaction(con):
            con.execute(f"INSERT INTO discriminations ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})",
                        [row[n] for n in names])
        return row["discrimination_id"]

    def discriminations(self, suite: str, limit: int = 20) -> list[dict[str, Any]]:
        """The suite's discrimination measurements, newest first, JSON decoded."""
        rows = self._rows("SELECT * FROM discriminations WHERE suite = ? ORDER BY created_at DESC, "
                          "discrimination_id DESC LIMIT ?", [suite, int(limit)])
        for row in rows:
            for name in ("results", "warnings"):
                if row.get(name) is not None:
                    row[name] = json.loads(row[name])
        return rows


def _decode_decision(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    out["inputs"] = json.loads(out["inputs"]) if out.get("inputs") is not None else {}
    out["rules"] = json.loads(out["rules"]) if out.get("rules") is not None else []
    return out


def _decode_run(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    for name in JSON_COLUMNS:
        if out.get(name) is not None:
            out[name] = json.loads(out[name])
    return out


_RUN_SCHEMA: dict[str, pl.DataType] = {}


def _empty_runs() -> pl.DataFrame:
    """The shape of `list_runs` before any history exists (read once from a scratch database)."""
    if not _RUN_SCHEMA:
        with duckdb.connect(":memory:") as con:
            schema.migrate(con)
            _RUN_SCHEMA.update(frame_of(con.sql("SELECT * FROM runs")).schema)
    return pl.DataFrame(schema=_RUN_SCHEMA)
