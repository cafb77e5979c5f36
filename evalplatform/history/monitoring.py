"""History tables of production monitoring (schema v7): trace batches, population counts, the scored sample,
monitor values over time, the review queue and the failure taxonomy. Same rules as the run history: one
writer at a time, short transactions, readers open read-only."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import polars as pl

from evalplatform.errors import InputError
from evalplatform.history import schema
from evalplatform.history.records import utcnow
from evalplatform.history.store import HistoryStore, arrow_stream
from evalplatform.provenance import canonical_json

SAMPLE_COLUMNS = ("suite", "trace_id", "batch_id", "timestamp", "session_id", "segment", "release", "model", "service",
                  "input", "output", "retrieved_context", "latency_ms", "feedback", "signals", "status", "error",
                  "tags", "flagged", "stratum", "inclusion_prob")
RESULT_COLUMNS = ("suite", "trace_id", "batch_id", "scorer", "criterion", "tier_cost", "outcome", "score", "threshold",
                  "explanation", "error")
MONITOR_COLUMNS = ("suite", "computed_at", "batch_id", "segment", "scope", "name", "slo_id", "slo", "severity",
                   "n_sampled", "n_population", "estimate", "lower", "upper", "av_lower", "av_upper", "naive", "kish_n",
                   "confidence", "status")
LABELS = ("pass", "fail")


def _naive_utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value.astimezone(dt.timezone.utc).replace(tzinfo=None) if value.tzinfo else value


class MonitoringStore:
    """The monitoring tables of the history at `store.path` (the same DuckDB file, lock and retries)."""

    def __init__(self, store: HistoryStore):
        self.store = store
        self.path = store.path

    def _insert_frame(self, con, table: str, columns: tuple[str, ...], frame: pl.DataFrame, verb: str = "INSERT") -> None:
        if frame.height == 0:
            return
        name = f"incoming_{table}"
        con.register(name, arrow_stream(frame.select(list(columns))))
        quoted = ", ".join(f'"{c}"' for c in columns)
        con.execute(f"{verb} INTO {table} ({quoted}) SELECT {quoted} FROM {name}")
        con.unregister(name)

    # -- batches --------------------------------------------------------------------------------

    def record_batch(self, row: dict[str, Any], population: pl.DataFrame | None = None) -> list[str]:
        """Store a batch (accepted or quarantined); an accepted one supersedes earlier batches of the same file.

        Returns the ids of the batches it superseded. Their sample and scores leave the monitors; traces a
        person already reviewed keep their stored text.
        """
        row = {**row, "received_at": row.get("received_at") or utcnow()}
        for key in ("min_ts", "max_ts"):
            row[key] = _naive_utc(row.get(key))
        if isinstance(row.get("report"), (dict, list)):
            row["report"] = canonical_json(row["report"])
        names = list(row)
        with self.store._writing() as con, self.store._transaction(con):
            superseded: list[str] = []
            if row["status"] == "accepted":
                superseded = [r[0] for r in con.execute(
                    "SELECT batch_id FROM trace_batches WHERE suite = ? AND file = ? AND status = 'accepted' "
                    "AND batch_id <> ?", [row["suite"], row["file"], row["batch_id"]]).fetchall()]
            for old in superseded + [row["batch_id"]]:
                con.execute("DELETE FROM trace_population WHERE batch_id = ?", [old])
                con.execute("DELETE FROM trace_results WHERE batch_id = ?", [old])
                con.execute("DELETE FROM sampled_traces WHERE batch_id = ? AND trace_id NOT IN "
                            "(SELECT trace_id FROM review_queue WHERE suite = ?)", [old, row["suite"]])
            if superseded:
                con.execute(f"UPDATE trace_batches SET status = 'superseded' WHERE batch_id IN "
                            f"({', '.join('?' * len(superseded))})", superseded)
            con.execute("DELETE FROM trace_batches WHERE batch_id = ?", [row["batch_id"]])
            con.execute(f"INSERT INTO trace_batches ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
                        [row[n] for n in names])
            if population is not None:
                self._insert_frame(con, "trace_population", ("suite", "batch_id", "segment", "scope", "name",
                                                              "stratum", "n"), population)
        return superseded

    def batch(self, batch_id: str) -> dict[str, Any] | None:
        rows = self.store._rows("SELECT * FROM trace_batches WHERE batch_id = ?", [batch_id])
        if not rows:
            return None
        row = rows[0]
        row["report"] = json.loads(row["report"]) if row.get("report") else None
        return row

    def batches(self, suite: str, limit: int = 50) -> list[dict[str, Any]]:
        return self.store._rows("SELECT batch_id, file, kind, status, received_at, n_traces, n_flagged, n_sampled, "
                                "quarantine_path FROM trace_batches WHERE suite = ? ORDER BY received_at DESC LIMIT ?",
                                [suite, int(limit)])

    def set_sampled(self, batch_id: str, n_sampled: int) -> None:
        with self.store._writing() as con:
            con.execute("UPDATE trace_batches SET n_sampled = ? WHERE batch_id = ?", [n_sampled, batch_id])

    # -- the sample and its scores ------------------------------------------------------------

    def put_sample(self, batch_id: str, sample: pl.DataFrame) -> int:
        """Store a batch's sampled traces (a trace already stored from another file keeps its first copy)."""
        with self.store._writing() as con, self.store._transaction(con):
            before = schema.one(con, "SELECT count(*) FROM sampled_traces WHERE batch_id = ?", [batch_id])[0]
            self._insert_frame(con, "sampled_traces", SAMPLE_COLUMNS, sample, verb="INSERT OR IGNORE")
            after = schema.one(con, "SELECT count(*) FROM sampled_traces WHERE batch_id = ?", [batch_id])[0]
        return after - before

    def put_results(self, batch_id: str, results: pl.DataFrame) -> None:
        with self.store._writing() as con, self.store._transaction(con):
            con.execute("DELETE FROM trace_results WHERE batch_id = ?", [batch_id])
            self._insert_frame(con, "trace_results", RESULT_COLUMNS, results)

    def sample_of(self, batch_id: str) -> pl.DataFrame:
        return self.store._frame("SELECT * FROM sampled_traces WHERE batch_id = ? ORDER BY trace_id", [batch_id],
                                 pl.DataFrame())

    def scored(self, suite: str) -> pl.DataFrame:
        """Every scored trace row of the suite's accepted batches: (trace, scorer) with its trace's design."""
        return self.store._frame(
            "SELECT s.trace_id, s.segment, s.stratum, s.inclusion_prob, s.tags, s.flagged, r.scorer, r.criterion, "
            "r.outcome FROM sampled_traces s JOIN trace_results r ON r.suite = s.suite AND r.trace_id = s.trace_id "
            "JOIN trace_batches b ON b.batch_id = s.batch_id AND b.status = 'accepted' WHERE s.suite = ?",
            [suite], pl.DataFrame())

    def population(self, suite: str) -> pl.DataFrame:
        return self.store._frame(
            "SELECT p.segment, p.scope, p.name, p.stratum, sum(p.n) AS n FROM trace_population p JOIN trace_batches b "
            "ON b.batch_id = p.batch_id AND b.status = 'accepted' WHERE p.suite = ? GROUP BY ALL", [suite],
            pl.DataFrame())

    def trace(self, suite: str, trace_id: str) -> dict[str, Any] | None:
        rows = self.store._rows("SELECT * FROM sampled_traces WHERE suite = ? AND trace_id = ?", [suite, trace_id])
        return rows[0] if rows else None

    def trace_results(self, suite: str, trace_id: str) -> list[dict[str, Any]]:
        return self.store._rows("SELECT scorer, criterion, outcome, score, explanation, error FROM trace_results "
                                "WHERE suite = ? AND trace_id = ? ORDER BY scorer", [suite, trace_id])

    # -- monitors ----------------------------------------------------------------------------

    def put_monitor_values(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        frame = pl.DataFrame(rows, schema={
            "suite": pl.Utf8, "computed_at": pl.Datetime("us"), "batch_id": pl.Utf8, "segment": pl.Utf8,
            "scope": pl.Utf8, "name": pl.Utf8, "slo_id": pl.Utf8, "slo": pl.Float64, "severity": pl.Utf8,
            "n_sampled": pl.Int64, "n_population": pl.Int64, "estimate": pl.Float64, "lower": pl.Float64,
            "upper": pl.Float64, "av_lower": pl.Float64, "av_upper": pl.Float64, "naive": pl.Float64,
            "kish_n": pl.Float64, "confidence": pl.Float64, "status": pl.Utf8})
        with self.store._writing() as con, self.store._transaction(con):
            self._insert_frame(con, "monitor_values", MONITOR_COLUMNS, frame)

    def monitor_values(self, suite: str, *, latest_only: bool = False, segment: str | None = None,
                       limit: int = 10_000) -> pl.DataFrame:
        where = "suite = ? AND (? IS NULL OR segment = ?)"
        if latest_only:
            where += " AND computed_at = (SELECT max(computed_at) FROM monitor_values WHERE suite = ?)"
            params: list[Any] = [suite, segment, segment, suite]
        else:
            params = [suite, segment, segment]
        return self.store._frame(f"SELECT * FROM monitor_values WHERE {where} ORDER BY computed_at, segment, scope, "
                                 f"name LIMIT ?", [*params, int(limit)], pl.DataFrame())

    # -- review queue --------------------------------------------------------------------------

    def enqueue(self, items: list[dict[str, Any]]) -> int:
        """Add traces to the review queue (a trace is queued once per suite); returns how many were new."""
        if not items:
            return 0
        frame = pl.DataFrame([{**i, "reasons": canonical_json(i["reasons"]), "flagged_at": _naive_utc(i["flagged_at"]),
                               "enqueued_at": utcnow(), "status": "open"} for i in items],
                             schema={"item_id": pl.Utf8, "suite": pl.Utf8, "trace_id": pl.Utf8, "batch_id": pl.Utf8,
                                     "enqueued_at": pl.Datetime("us"), "flagged_at": pl.Datetime("us"),
                                     "priority": pl.Float64, "reasons": pl.Utf8, "status": pl.Utf8})
        cols = ("item_id", "suite", "trace_id", "batch_id", "enqueued_at", "flagged_at", "priority", "reasons", "status")
        with self.store._writing() as con, self.store._transaction(con):
            before = schema.one(con, "SELECT count(*) FROM review_queue")[0]
            self._insert_frame(con, "review_queue", cols, frame, verb="INSERT OR IGNORE")
            after = schema.one(con, "SELECT count(*) FROM review_queue")[0]
        return after - before

    def queue(self, suite: str, status: str | None = "open", limit: int = 100) -> list[dict[str, Any]]:
        rows = self.store._rows(
            "SELECT q.*, s.input, s.output, s.signals, s.release, s.\"timestamp\", s.tags, s.retrieved_context, "
            "s.session_id, s.model, s.feedback, s.error AS trace_error FROM review_queue q LEFT JOIN sampled_traces s "
            "ON s.suite = q.suite AND s.trace_id = q.trace_id WHERE q.suite = ? AND (? IS NULL OR q.status = ?) "
            "ORDER BY q.priority DESC, q.flagged_at, q.item_id LIMIT ?", [suite, status, status, int(limit)])
        for r in rows:
            r["reasons"] = json.loads(r["reasons"]) if r.get("reasons") else []
        return rows

    def item(self, item_id: str) -> dict[str, Any] | None:
        rows = self.store._rows("SELECT * FROM review_queue WHERE item_id = ?", [item_id])
        if not rows:
            return None
        rows[0]["reasons"] = json.loads(rows[0]["reasons"]) if rows[0].get("reasons") else []
        return rows[0]

    def record_label(self, item_id: str, label: str, category: str | None, note: str | None, reviewer: str,
                     new_category: tuple[str, str | None] | None = None) -> None:
        if label not in LABELS:
            raise InputError(self.path, "--label", f"unknown label {label!r}", "use pass or fail")
        with self.store._writing() as con, self.store._transaction(con):
            found = schema.one(con, "SELECT suite, status, case_id FROM review_queue WHERE item_id = ?", [item_id])
            if found is None:
                raise InputError(self.path, "--id", f"no review item {item_id!r}", "see `evalplatform review --list`")
            if found[2] is not None:
                raise InputError(self.path, "--id", f"{item_id!r} is already in the regression set as {found[2]!r}",
                                 "a promoted failure is not relabelled")
            if new_category is not None:
                con.execute("INSERT OR IGNORE INTO failure_categories VALUES (?, ?, ?, ?, ?)",
                            [found[0], new_category[0], new_category[1], utcnow(), reviewer])
            con.execute("UPDATE review_queue SET status = 'labelled', label = ?, category = ?, note = ?, reviewer = ?, "
                        "labelled_at = ? WHERE item_id = ?", [label, category, note, reviewer, utcnow(), item_id])

    def record_promotion(self, item_id: str, case_id: str, regression_file: str,
                         promoted_at: dt.datetime | None = None) -> None:
        with self.store._writing() as con:
            con.execute("UPDATE review_queue SET case_id = ?, promoted_at = ?, regression_file = ? WHERE item_id = ?",
                        [case_id, promoted_at or utcnow(), regression_file, item_id])

    def promotions(self, suite: str) -> list[dict[str, Any]]:
        return self.store._rows(
            "SELECT item_id, trace_id, case_id, category, reviewer, flagged_at, labelled_at, promoted_at, "
            "date_diff('second', flagged_at, promoted_at) AS freshness_s FROM review_queue "
            "WHERE suite = ? AND promoted_at IS NOT NULL ORDER BY promoted_at", [suite])

    def reviewed_failures(self, suite: str) -> list[dict[str, Any]]:
        return self.store._rows("SELECT category, count(*) AS n FROM review_queue WHERE suite = ? AND label = 'fail' "
                                "GROUP BY category ORDER BY category", [suite])

    def categories(self, suite: str) -> list[dict[str, Any]]:
        return self.store._rows("SELECT category, description, created_at, created_by FROM failure_categories "
                                "WHERE suite = ? ORDER BY category", [suite])

    def queue_counts(self, suite: str) -> dict[str, int]:
        rows = self.store._rows("SELECT status, count(*) AS n FROM review_queue WHERE suite = ? GROUP BY status",
                                [suite])
        return {r["status"]: r["n"] for r in rows}
