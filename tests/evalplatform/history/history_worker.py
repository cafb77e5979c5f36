"""Subprocess side of the multi-process history tests: writers, a reader, crashing writers and runs, lock holders."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import polars as pl

from evalplatform import results as rt


def make_results(run_id: str, n_rows: int, suite: str = "demo", scorers: int = 2) -> pl.DataFrame:
    """A canonical result frame of `n_rows` rows (rounded down to a multiple of `scorers`) with every column used."""
    calls = n_rows // scorers
    idx = pl.int_range(0, calls * scorers, eager=True)
    call = idx // scorers
    frame = pl.DataFrame({"i": idx, "call": call}).with_columns(
        pl.lit(run_id).alias("run_id"),
        pl.lit(suite).alias("suite"),
        ("case-" + (pl.col("call") // 3).cast(pl.Utf8)).alias("case_id"),
        (pl.col("call") % 3).cast(pl.Int32).alias("repeat"),
        ("scorer_" + (pl.col("i") % scorers).cast(pl.Utf8)).alias("scorer"),
        pl.lit("correctness").alias("criterion"),
        pl.lit("deterministic").alias("tier_cost"),
        pl.when(pl.col("i") % 7 == 0).then(pl.lit("error"))
        .when(pl.col("i") % 5 == 0).then(pl.lit("fail"))
        .when(pl.col("i") % 11 == 0).then(pl.lit("skipped"))
        .otherwise(pl.lit("pass")).alias("outcome"),
        pl.when(pl.col("i") % 7 == 0).then(None).otherwise((pl.col("i") % 100) / 99).alias("score"),
        pl.lit(0.5).alias("threshold"),
        pl.when(pl.col("i") % 4 == 0).then(None)
        .when(pl.col("i") % 4 == 1).then(pl.lit([], dtype=pl.List(pl.Utf8)))
        .otherwise(pl.concat_list(pl.lit("category:grounding"), "severity:" + (pl.col("i") % 3).cast(pl.Utf8)))
        .alias("tags"),
        ("ch-" + (pl.col("call") // 3).cast(pl.Utf8)).alias("case_hash"),
        # Every tenth call repeats an earlier output, so outputs must deduplicate.
        ("out-" + (pl.col("call") % 10).cast(pl.Utf8)).alias("output_hash"),
        (pl.col("call") * 1.5).alias("latency_ms"),
        pl.when(pl.col("call") % 2 == 0).then(0.0).otherwise(pl.col("call") * 1.5).alias("served_ms"),
        (pl.col("call") % 50 + 10).cast(pl.Int64).alias("tokens_in"),
        (pl.col("call") % 20 + 1).cast(pl.Int64).alias("tokens_out"),
        (pl.col("call") % 50 + 10).cast(pl.Float64).mul(1e-6).alias("cost_usd"),
        (pl.col("call") % 2 == 0).alias("cache_hit"),
        pl.lit(1, dtype=pl.Int32).alias("attempts"),
        pl.when(pl.col("i") % 3 == 0).then(pl.lit("reasoning: ünïcode ✓")).otherwise(None).alias("explanation"),
        pl.when(pl.col("i") % 7 == 0).then(pl.lit("timeout after 30s")).otherwise(None).alias("error"),
    )
    return rt.conform(frame)


def outputs_for(frame: pl.DataFrame) -> dict[str, str]:
    return {h: f"model said {h}" for h in frame["output_hash"].unique().to_list()}


def _store(db: str):
    from evalplatform.history import HistoryStore

    # Generous waits: under load a writer may queue behind the other for long; a hang is the test's guard.
    return HistoryStore(Path(db), lock_timeout=600, connect_timeout=600, read_timeout=600)


def write(db: str, tag: str, n_runs: str, n_rows: str) -> None:
    store = _store(db)
    for k in range(int(n_runs)):
        run_id = f"{tag}-{k:03d}"
        store.begin_run({"run_id": run_id, "suite": tag})
        frame = make_results(run_id, int(n_rows), suite=tag)
        store.complete_run(run_id, frame, outputs_for(frame), {"wall_s": 0.1})


def read(db: str, stop_file: str) -> None:
    """Read in a loop until told to stop; any complete run must show all of its rows."""
    store = _store(db)
    reads = checked = 0
    while not os.path.exists(stop_file):
        runs = store.list_runs(limit=5)
        for run in runs.iter_rows(named=True):
            got = store.get_results(run["run_id"]).height
            if got != run["n_results"]:
                print(f"INCONSISTENT {run['run_id']}: {got} rows, n_results={run['n_results']}", flush=True)
                sys.exit(1)
            checked += 1
        reads += 1
    print(f"reads={reads} checked={checked}", flush=True)


def crash(db: str, run_id: str, n_rows: str, marker: str, how: str) -> None:
    """Begin a run and die inside complete_run's transaction, after the rows went in, before COMMIT."""
    store = _store(db)
    store.begin_run({"run_id": run_id, "suite": "demo"})
    frame = make_results(run_id, int(n_rows))

    def die() -> None:
        if how == "exit":
            os._exit(17)
        Path(marker).write_text("in transaction")
        time.sleep(120)  # the test SIGKILLs us here

    store._before_commit = die
    store.complete_run(run_id, frame, outputs_for(frame))


def hold_lock(lock_path: str, marker: str) -> None:
    import filelock

    with filelock.FileLock(lock_path):
        Path(marker).write_text("locked")
        time.sleep(120)


def hold_db(db: str, marker: str, read_only: str) -> None:
    import duckdb

    con = duckdb.connect(db, read_only=read_only == "1")
    Path(marker).write_text("open")
    time.sleep(120)
    con.close()


def begin_and_wait(db: str, run_id: str, marker: str) -> None:
    """Begin a run and stay inside it until killed."""
    _store(db).begin_run({"run_id": run_id, "suite": "demo"})
    Path(marker).write_text("running")
    time.sleep(120)  # the test SIGKILLs us here


def pipeline(project_root: str, db: str, point: str, marker: str) -> None:
    """A real scored run of the mini suite that dies at `point`.

    hang: blocks inside the first model call (the test SIGKILLs it); before_commit: exits inside
    complete_run's transaction; write:N: exits as the Nth history write after begin_run starts.
    """
    from contextlib import contextmanager

    os.environ["EVALPLATFORM_PROJECT"] = project_root
    os.environ["EVALPLATFORM_HISTORY"] = db
    import tests.suite_helpers  # noqa: F401  (registers local/echo-upper)
    from evalplatform.history import HistoryStore
    from evalplatform.models.local_provider import register_app
    from evalplatform.pipeline import scored_run
    from evalplatform.request import RunRequest
    from evalplatform.project import Project

    def hang(messages, params):
        Path(marker).write_text("in a model call")
        time.sleep(120)
        return "never"

    register_app("hang", hang)
    store = HistoryStore(Path(db))
    armed = {"writes": None}
    begin, writing = HistoryStore.begin_run, HistoryStore._writing

    def begin_then_arm(self, run):
        begin(self, run)
        armed["writes"] = 0

    @contextmanager
    def counted(self):
        if armed["writes"] is not None:
            armed["writes"] += 1
            if point == f"write:{armed['writes']}":
                os._exit(9)
        with writing(self) as con:
            yield con

    HistoryStore.begin_run, HistoryStore._writing = begin_then_arm, counted
    if point == "before_commit":
        store._before_commit = lambda: os._exit(9)
    model = "local/hang" if point == "hang" else "local/echo-upper"
    scored_run(Project(Path(project_root)), RunRequest(suite="mini", model=model, no_cache=True), store=store)


if __name__ == "__main__":
    commands = {"write": write, "read": read, "crash": crash, "hold_lock": hold_lock, "hold_db": hold_db,
                "begin_and_wait": begin_and_wait, "pipeline": pipeline}
    commands[sys.argv[1]](*sys.argv[2:])
