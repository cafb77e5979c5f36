"""The run history in one DuckDB file: one writer at a time, short transactions, atomic per run.

DuckDB lets one read-write process lock out every other process, readers included, so every
call opens a connection, does one transaction and closes it again. Writers queue on a file lock
beside the database; both writers and readers retry the open while another process holds it.
"""

from __future__ import annotations

import json
import random
import secrets
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
from evalplatform.history import schema
from evalplatform.history.records import JSON_COLUMNS, RunStart, RunTotals, derive_totals, utcnow
from evalplatform.provenance import canonical_json

STATUSES = ("running", "complete", "failed", "abandoned")
_RESULT_COLUMNS = ", ".join(f'"{c}"' for c in rt.COLUMNS)
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


# Complete runs' results by (database file, run id): immutable once written, so safe to reuse.
_RESULTS_CACHE: "OrderedDict[tuple[str, str], pl.DataFrame]" = OrderedDict()
_RESULTS_CACHE_RUNS = 8
_RESULTS_CACHE_MAX_ROWS = 250_000


class HistoryStore:
    """Runs, results, outputs, baselines, decisions and dataset checks in the DuckDB file at `path`.

    Args:
        path: the database file; created (with its folder) by the first write.
        lock_timeout: seconds a writer waits for the other writers' file lock.
        connect_timeout: seconds a writer retries opening the file while a reader holds it.
        read_timeout: seconds a reader retries opening the file while a writer holds it.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        lock_timeout: float = 60.0,
        connect_timeout: float = 60.0,
        read_timeout: float = 30.0,
    ):
        self.path = Path(path)
        self.lock_path = Path(str(self.path) + ".lock")
        self.lock_timeout = lock_timeout
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self._schema_current = False
        # Called inside complete_run's transaction just before COMMIT; tests use it to crash there.
        self._before_commit: Callable[[], None] | None = None

    # -- connections -------------------------------------------------------------------------

    def _connect(self, read_only: bool) -> duckdb.DuckDBPyConnection | None:
        """Open the file, retrying with jittered backoff while another connection holds it.

        Returns None when reading a database that does not exist yet.
        """
        budget = self.read_timeout if read_only else self.connect_timeout
        deadline = time.monotonic() + budget
        delay = 0.005
        while True:
            if read_only and not self.path.exists():
                return None
            try:
                return duckdb.connect(str(self.path), read_only=read_only)
            except (duckdb.IOException, duckdb.ConnectionException) as err:
                if read_only and "does not exist" in str(err):
                    return None
                if not _is_lock_conflict(err):
                    raise InfraError(f"{self.path}: cannot open the history database: {_first_line(err)}") from err
                if time.monotonic() + delay > deadline:
                    raise InfraError(
                        f"{self.path}: history database is held by another process (retried {budget:g}s); "
                        "wait for the other run to finish or raise the timeout"
                    ) from err
            time.sleep(delay * random.uniform(0.5, 1.5))
            delay = min(delay * 2, 0.2)

    @contextmanager
    def _writing(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-write connection at the latest schema, held under the writers' file lock."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = filelock.FileLock(str(self.lock_path), timeout=self.lock_timeout)
        try:
            lock.acquire()
        except filelock.Timeout as err:
            raise InfraError(
                f"{self.lock_path}: another writer has held the history lock for over {self.lock_timeout:g}s; "
                "wait for it to finish, or remove the lock file if no evalplatform process is running"
            ) from err
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
        """A read-only connection, or None when there is no history yet."""
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
        try:
            yield con
        except duckdb.Error as err:
            raise InfraError(f"{self.path}: history read failed: {_first_line(err)}") from err
        finally:
            if con is not None:
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

    def _rows(self, sql: str, params: list[Any]) -> list[dict[str, Any]]:
        with self._reading() as con:
            if con is None:
                return []
            cur = con.execute(sql, params)
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row)) for row in cur.fetchall()]

    def _frame(self, sql: str, params: list[Any], empty: pl.DataFrame) -> pl.DataFrame:
        with self._reading() as con:
            if con is None:
                return empty
            return con.sql(sql, params=params).pl()

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
        row["status"] = "running"
        names = list(row)
        sql = f"INSERT INTO runs ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})"
        with self._writing() as con:
            try:
                con.execute(sql, [row[n] for n in names])
            except duckdb.ConstraintException as err:
                raise InputError(
                    self.path, "run_id", f"run {row['run_id']!r} already exists", "use new_run_id()"
                ) from err

    def complete_run(
        self,
        run_id: str,
        results: pl.DataFrame,
        outputs: dict[str, str] | None = None,
        totals: dict[str, Any] | None = None,
    ) -> None:
        """Store a run's results and outputs and mark it complete, all in one transaction.

        Totals are derived from `results` (outcome counts, tokens and cost per call); keys in
        `totals` override them or add what the frame cannot know (wall_s, decision). On any
        failure nothing is written and the run stays 'running'.
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
        frame = rt.conform(results).with_columns(pl.col("run_id").fill_null(run_id))
        strays = frame.filter(pl.col("run_id") != run_id)
        if strays.height:
            raise InputError(
                self.path, "results.run_id", f"row for run {strays['run_id'][0]!r} in results of run {run_id!r}"
            )
        row_totals = {**derive_totals(frame), **given}
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
            con.register("incoming_results", frame)
            con.register("incoming_outputs", outputs_frame)
            try:
                con.execute(f"INSERT INTO results ({_RESULT_COLUMNS}) SELECT {_RESULT_COLUMNS} FROM incoming_results")
            except duckdb.ConstraintException as err:
                raise InputError(self.path, "results", f"{source}: {_first_line(err)}") from err
            con.execute("INSERT OR IGNORE INTO outputs SELECT output_hash, text FROM incoming_outputs")
            assignments = ", ".join(f"{k} = ?" for k in row_totals)
            con.execute(
                f"UPDATE runs SET {assignments}, status = 'complete', finished_at = ? WHERE run_id = ?",
                [*row_totals.values(), utcnow(), run_id],
            )
            if self._before_commit is not None:
                self._before_commit()
            con.unregister("incoming_results")
            con.unregister("incoming_outputs")

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

    def list_runs(self, suite: str | None = None, limit: int = 20, status: str | None = "complete") -> pl.DataFrame:
        """The latest runs first; `suite=None` for all suites, `status=None` for any status."""
        if status is not None and status not in STATUSES:
            raise InputError(None, "status", f"unknown run status {status!r}", f"use one of {', '.join(STATUSES)}")
        return self._frame(
            "SELECT * FROM runs WHERE (? IS NULL OR suite = ?) AND (? IS NULL OR status = ?) "
            "ORDER BY started_at DESC, run_id DESC LIMIT ?",
            [suite, suite, status, status, int(limit)],
            _empty_runs(),
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

    def promote(self, suite: str, run_id: str, reason: str) -> None:
        """Make a complete run of `suite` its baseline; the history of promotions is kept."""
        with self._writing() as con, self._transaction(con):
            found = schema.one(con, "SELECT suite, status FROM runs WHERE run_id = ?", [run_id])
            if found is None:
                raise InputError(self.path, "run_id", f"no run {run_id!r} to promote")
            if found[0] != suite:
                raise InputError(self.path, "run_id", f"run {run_id!r} belongs to suite {found[0]!r}, not {suite!r}")
            if found[1] != "complete":
                raise InputError(
                    self.path, "run_id", f"run {run_id!r} is {found[1]}; only a complete run can be a baseline"
                )
            con.execute("INSERT INTO baselines VALUES (?, ?, ?, ?)", [suite, run_id, utcnow(), reason])

    def latest_baseline(self, suite: str) -> str | None:
        rows = self._rows(
            "SELECT run_id FROM baselines WHERE suite = ? ORDER BY promoted_at DESC, rowid DESC LIMIT 1", [suite]
        )
        return rows[0]["run_id"] if rows else None

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
    ) -> str:
        """Store a gate decision (and set it on its run, if any); returns the decision id."""
        decision_id = decision_id or new_run_id()
        with self._writing() as con, self._transaction(con):
            con.execute(
                "INSERT INTO decisions (decision_id, run_id, policy_hash, inputs, rules, overall, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [decision_id, run_id, policy_hash, canonical_json(inputs), canonical_json(rules), overall, utcnow()],
            )
            if run_id is not None:
                con.execute("UPDATE runs SET decision = ? WHERE run_id = ?", [overall, run_id])
        return decision_id

    def get_decision(self, decision_id: str) -> dict[str, Any] | None:
        rows = self._rows("SELECT * FROM decisions WHERE decision_id = ?", [decision_id])
        if not rows:
            return None
        row = rows[0]
        row["inputs"] = json.loads(row["inputs"])
        row["rules"] = json.loads(row["rules"])
        return row

    def latest_decision(self, run_id: str) -> dict[str, Any] | None:
        """The newest decision recorded for a run (a run can be gated again under another policy)."""
        rows = self._rows("SELECT decision_id FROM decisions WHERE run_id = ? ORDER BY created_at DESC, "
                          "decision_id DESC LIMIT 1", [run_id])
        return self.get_decision(rows[0]["decision_id"]) if rows else None


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
                con.register("incoming_verdicts", items)
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
            _RUN_SCHEMA.update(con.sql("SELECT * FROM runs").pl().schema)
    return pl.DataFrame(schema=_RUN_SCHEMA)
