"""Versioned schema of the history database: an ordered list of migrations and `migrate()`."""

from __future__ import annotations

from collections.abc import Sequence

import duckdb

from evalplatform.errors import InfraError
from evalplatform.history.records import utcnow

# Written out rather than generated from results.SCHEMA: a migration is a frozen record of what
# version N looked like, so a later change to the result table needs a new migration, not an edit here.
_V1 = [
    """CREATE TABLE IF NOT EXISTS runs (
        run_id VARCHAR PRIMARY KEY,
        suite VARCHAR NOT NULL,
        tier VARCHAR,
        status VARCHAR NOT NULL CHECK (status IN ('running', 'complete', 'failed')),
        started_at TIMESTAMP NOT NULL,
        finished_at TIMESTAMP,
        git_commit VARCHAR,
        git_dirty BOOLEAN,
        package_version VARCHAR,
        lock_hash VARCHAR,
        dataset_hash VARCHAR,
        prompt_hash VARCHAR,
        suite_hash VARCHAR,
        target_model VARCHAR,
        target_params VARCHAR,
        judge_pins VARCHAR,
        seed BIGINT,
        repeats INTEGER,
        dagster_run_id VARCHAR,
        n_cases BIGINT,
        n_results BIGINT,
        n_pass BIGINT,
        n_fail BIGINT,
        n_error BIGINT,
        n_skipped BIGINT,
        tokens_in BIGINT,
        tokens_out BIGINT,
        cost_usd DOUBLE,
        cache_hits BIGINT,
        model_calls BIGINT,
        wall_s DOUBLE,
        decision VARCHAR,
        failure VARCHAR,
        provenance VARCHAR
    )""",
    """CREATE TABLE IF NOT EXISTS results (
        run_id VARCHAR NOT NULL,
        suite VARCHAR,
        case_id VARCHAR NOT NULL,
        "repeat" INTEGER NOT NULL,
        scorer VARCHAR NOT NULL,
        criterion VARCHAR,
        tier_cost VARCHAR,
        outcome VARCHAR NOT NULL,
        score DOUBLE,
        threshold DOUBLE,
        tags VARCHAR[],
        case_hash VARCHAR,
        output_hash VARCHAR,
        latency_ms DOUBLE,
        served_ms DOUBLE,
        tokens_in BIGINT,
        tokens_out BIGINT,
        cost_usd DOUBLE,
        cache_hit BOOLEAN,
        attempts INTEGER,
        explanation VARCHAR,
        error VARCHAR,
        PRIMARY KEY (run_id, case_id, "repeat", scorer)
    )""",
    """CREATE TABLE IF NOT EXISTS outputs (
        output_hash VARCHAR PRIMARY KEY,
        text VARCHAR NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS dataset_checks (
        dataset_hash VARCHAR PRIMARY KEY,
        checked_at TIMESTAMP NOT NULL,
        success BOOLEAN NOT NULL,
        summary VARCHAR
    )""",
    """CREATE TABLE IF NOT EXISTS baselines (
        suite VARCHAR NOT NULL,
        run_id VARCHAR NOT NULL,
        promoted_at TIMESTAMP NOT NULL,
        reason VARCHAR
    )""",
    """CREATE TABLE IF NOT EXISTS decisions (
        decision_id VARCHAR PRIMARY KEY,
        run_id VARCHAR,
        policy_hash VARCHAR,
        inputs VARCHAR,
        rules VARCHAR,
        overall VARCHAR NOT NULL,
        created_at TIMESTAMP NOT NULL
    )""",
]

# Version 2: judge calibrations (bound to a judge identity) and the per-item verdicts behind them,
# which the drift check compares between judge versions on the same frozen items.
_V2 = [
    """CREATE TABLE IF NOT EXISTS calibrations (
        calibration_id VARCHAR PRIMARY KEY,
        judge_name VARCHAR NOT NULL,
        judge_identity VARCHAR NOT NULL,
        judge_kind VARCHAR NOT NULL,
        criterion VARCHAR NOT NULL,
        purpose VARCHAR NOT NULL CHECK (purpose IN ('calibration', 'drift')),
        method VARCHAR NOT NULL,
        calibration_set_hash VARCHAR NOT NULL,
        n_items BIGINT NOT NULL,
        n_error BIGINT NOT NULL,
        judge_fail_human_fail BIGINT NOT NULL,
        judge_fail_human_pass BIGINT NOT NULL,
        judge_pass_human_fail BIGINT NOT NULL,
        judge_pass_human_pass BIGINT NOT NULL,
        fail_recall_lb DOUBLE,
        kappa_lb DOUBLE,
        self_consistency DOUBLE,
        allowed BOOLEAN NOT NULL,
        reasons VARCHAR,
        metrics VARCHAR NOT NULL,
        identity VARCHAR NOT NULL,
        created_at TIMESTAMP NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS judge_verdicts (
        calibration_id VARCHAR NOT NULL,
        item_id VARCHAR NOT NULL,
        label VARCHAR NOT NULL,
        verdict VARCHAR,
        PRIMARY KEY (calibration_id, item_id)
    )""",
]

# Version 3: a run records the process that owns it (pid, host) so a later writer can mark a run
# whose process is gone `abandoned`; a decision says whether it is the run's decision of record
# (made when the run ran, never replaced) or a later, labelled re-decision (`evalplatform gate --run`).
# DuckDB cannot alter a CHECK constraint, so `runs` is rebuilt with the wider status list.
_RUNS_V3_COLUMNS = (
    "run_id, suite, tier, status, started_at, finished_at, git_commit, git_dirty, package_version, lock_hash, "
    "dataset_hash, prompt_hash, suite_hash, target_model, target_params, judge_pins, seed, repeats, "
    "dagster_run_id, n_cases, n_results, n_pass, n_fail, n_error, n_skipped, tokens_in, tokens_out, cost_usd, "
    "cache_hits, model_calls, wall_s, decision, failure, provenance"
)
_V3 = [
    _V1[0].replace("CREATE TABLE IF NOT EXISTS runs (", "CREATE TABLE runs_v3 (")
    .replace("CHECK (status IN ('running', 'complete', 'failed'))",
             "CHECK (status IN ('running', 'complete', 'failed', 'abandoned'))")
    .replace("provenance VARCHAR\n    )", "provenance VARCHAR,\n        pid BIGINT,\n        host VARCHAR\n    )"),
    f"INSERT INTO runs_v3 ({_RUNS_V3_COLUMNS}) SELECT {_RUNS_V3_COLUMNS} FROM runs",
    "DROP TABLE runs",
    "ALTER TABLE runs_v3 RENAME TO runs",
    "ALTER TABLE decisions ADD COLUMN kind VARCHAR DEFAULT 'record'",
    "ALTER TABLE decisions ADD COLUMN label VARCHAR",
    # Before v3 a later `gate --run` could replace a run's decision: the earliest one is its record.
    """UPDATE decisions SET kind = 're-decision', label = 'recorded before v3'
       WHERE run_id IS NOT NULL AND decision_id NOT IN (
         SELECT arg_min(decision_id, created_at) FROM decisions WHERE run_id IS NOT NULL GROUP BY run_id)""",
    "UPDATE decisions SET kind = 'record' WHERE kind IS NULL",
    """UPDATE runs SET decision = (SELECT d.overall FROM decisions d WHERE d.run_id = runs.run_id
       AND d.kind = 'record') WHERE run_id IN (SELECT run_id FROM decisions WHERE kind = 'record')""",
]

# Version 4: with the pid, the identity of the process that owns a running run ("<boot id>:<start
# ticks>" on Linux), so a pid reused by a later process does not keep a dead run `running`.
_V4 = ["ALTER TABLE runs ADD COLUMN process_started VARCHAR"]

# Version 5: baselines are per suite and tier, and every change of one records who made it, why, which
# run it replaced, and whether it was a promotion or a rollback. Every case a case set (the regression
# set) ever held, with the content it first had: what the append-only check compares against.
_V5 = [
    "ALTER TABLE baselines ADD COLUMN tier VARCHAR",
    "ALTER TABLE baselines ADD COLUMN actor VARCHAR",
    "ALTER TABLE baselines ADD COLUMN replaced_run_id VARCHAR",
    "ALTER TABLE baselines ADD COLUMN action VARCHAR DEFAULT 'promote'",
    "UPDATE baselines SET tier = (SELECT r.tier FROM runs r WHERE r.run_id = baselines.run_id), "
    "action = coalesce(action, 'promote')",
    """CREATE TABLE IF NOT EXISTS case_set_members (
        suite VARCHAR NOT NULL,
        set_name VARCHAR NOT NULL,
        case_id VARCHAR NOT NULL,
        case_hash VARCHAR NOT NULL,
        first_version VARCHAR NOT NULL,
        first_seen_at TIMESTAMP NOT NULL,
        PRIMARY KEY (suite, set_name, case_id)
    )""",
]

# Version 6: how well a suite's policy catches known degradations of a recorded run (evalplatform discriminate):
# per dose of flipped outputs and per mutator, the share of draws the policy blocked, with its interval.
_V6 = [
    """CREATE TABLE IF NOT EXISTS discriminations (
        discrimination_id VARCHAR PRIMARY KEY,
        suite VARCHAR NOT NULL,
        run_id VARCHAR NOT NULL,
        baseline_run_id VARCHAR,
        policy_hash VARCHAR,
        seed BIGINT NOT NULL,
        draws INTEGER NOT NULL,
        score DOUBLE,
        detectable_fraction DOUBLE,
        results VARCHAR NOT NULL,
        warnings VARCHAR,
        created_at TIMESTAMP NOT NULL
    )""",
]

# Version 7 (production monitoring): trace batches read from files (accepted or quarantined, with their report),
# per-batch population counts by segment/scope/stratum (the N_h the monitors weight by), the sampled traces with
# their inclusion probability and their scores, monitor values over time, the review queue (with why, the label,
# the failure category and the promotion into the regression set) and the failure taxonomy. 
_V7 = [
    """CREATE TABLE IF NOT EXISTS trace_batches (
        batch_id VARCHAR PRIMARY KEY,
        suite VARCHAR NOT NULL,
        file VARCHAR NOT NULL,
        fingerprint VARCHAR NOT NULL,
        kind VARCHAR,
        status VARCHAR NOT NULL CHECK (status IN ('accepted', 'quarantined', 'superseded')),
        received_at TIMESTAMP NOT NULL,
        n_traces BIGINT,
        n_flagged BIGINT,
        n_sampled BIGINT,
        min_ts TIMESTAMP,
        max_ts TIMESTAMP,
        report VARCHAR,
        quarantine_path VARCHAR,
        data_path VARCHAR,
        dagster_run_id VARCHAR
    )""",
    """CREATE TABLE IF NOT EXISTS trace_population (
        suite VARCHAR NOT NULL,
        batch_id VARCHAR NOT NULL,
        segment VARCHAR NOT NULL,
        scope VARCHAR NOT NULL,
        name VARCHAR NOT NULL,
        stratum VARCHAR NOT NULL,
        n BIGINT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS sampled_traces (
        suite VARCHAR NOT NULL,
        trace_id VARCHAR NOT NULL,
        batch_id VARCHAR NOT NULL,
        "timestamp" TIMESTAMP,
        session_id VARCHAR,
        segment VARCHAR,
        release VARCHAR,
        model VARCHAR,
        service VARCHAR,
        input VARCHAR,
        output VARCHAR,
        retrieved_context VARCHAR[],
        latency_ms DOUBLE,
        feedback VARCHAR,
        signals VARCHAR[],
        status VARCHAR,
        error VARCHAR,
        tags VARCHAR[],
        flagged BOOLEAN NOT NULL,
        stratum VARCHAR NOT NULL,
        inclusion_prob DOUBLE NOT NULL,
        PRIMARY KEY (suite, trace_id)
    )""",
    """CREATE TABLE IF NOT EXISTS trace_results (
        suite VARCHAR NOT NULL,
        trace_id VARCHAR NOT NULL,
        batch_id VARCHAR NOT NULL,
        scorer VARCHAR NOT NULL,
        criterion VARCHAR,
        tier_cost VARCHAR,
        outcome VARCHAR NOT NULL,
        score DOUBLE,
        threshold DOUBLE,
        explanation VARCHAR,
        error VARCHAR,
        PRIMARY KEY (suite, trace_id, scorer)
    )""",
    """CREATE TABLE IF NOT EXISTS monitor_values (
        suite VARCHAR NOT NULL,
        computed_at TIMESTAMP NOT NULL,
        batch_id VARCHAR,
        segment VARCHAR NOT NULL,
        scope VARCHAR NOT NULL,
        name VARCHAR NOT NULL,
        slo_id VARCHAR,
        slo DOUBLE,
        severity VARCHAR,
        n_sampled BIGINT,
        n_population BIGINT,
        estimate DOUBLE,
        lower DOUBLE,
        upper DOUBLE,
        av_lower DOUBLE,
        av_upper DOUBLE,
        naive DOUBLE,
        kish_n DOUBLE,
        confidence DOUBLE,
        status VARCHAR NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS review_queue (
        item_id VARCHAR PRIMARY KEY,
        suite VARCHAR NOT NULL,
        trace_id VARCHAR NOT NULL,
        batch_id VARCHAR,
        enqueued_at TIMESTAMP NOT NULL,
        flagged_at TIMESTAMP,
        priority DOUBLE,
        reasons VARCHAR,
        status VARCHAR NOT NULL CHECK (status IN ('open', 'labelled')),
        label VARCHAR CHECK (label IN ('pass', 'fail')),
        category VARCHAR,
        note VARCHAR,
        reviewer VARCHAR,
        labelled_at TIMESTAMP,
        case_id VARCHAR,
        promoted_at TIMESTAMP,
        regression_file VARCHAR
    )""",
    """CREATE TABLE IF NOT EXISTS failure_categories (
        suite VARCHAR NOT NULL,
        category VARCHAR NOT NULL,
        description VARCHAR,
        created_at TIMESTAMP NOT NULL,
        created_by VARCHAR,
        PRIMARY KEY (suite, category)
    )""",
]

# Version 8: a result row references its trial's trace (transcript, tool calls, final state) by sha256;
# the trace's canonical JSON is kept in `outputs` like any output text.
_V8 = ["ALTER TABLE results ADD COLUMN trace_hash VARCHAR"]

# Version 9 (tiers that cost what they should): every result row carries its scorer's own model usage (an LLM
# judge's calls, tokens, cost and latency), a run its judge totals beside the target's, and the cases whose
# verdict changed between repeats. Those get a table rather than JSON in the run: "which cases flip night after
# night, and under which scorer" is a query across runs, and the rows are few (only cases that flipped).
_V9 = [
    "ALTER TABLE results ADD COLUMN scorer_calls INTEGER",
    "ALTER TABLE results ADD COLUMN scorer_tokens_in BIGINT",
    "ALTER TABLE results ADD COLUMN scorer_tokens_out BIGINT",
    "ALTER TABLE results ADD COLUMN scorer_cost_usd DOUBLE",
    "ALTER TABLE results ADD COLUMN scorer_latency_ms DOUBLE",
    "ALTER TABLE runs ADD COLUMN judge_calls BIGINT",
    "ALTER TABLE runs ADD COLUMN judge_tokens_in BIGINT",
    "ALTER TABLE runs ADD COLUMN judge_tokens_out BIGINT",
    "ALTER TABLE runs ADD COLUMN judge_cost_usd DOUBLE",
    "ALTER TABLE runs ADD COLUMN total_cost_usd DOUBLE",
    "ALTER TABLE runs ADD COLUMN n_flaky_cases BIGINT",
    """CREATE TABLE IF NOT EXISTS case_flakiness (
        run_id VARCHAR NOT NULL,
        case_id VARCHAR NOT NULL,
        scorer VARCHAR NOT NULL,
        criterion VARCHAR,
        tier_cost VARCHAR,
        n_repeats INTEGER NOT NULL,
        n_pass INTEGER NOT NULL,
        n_fail INTEGER NOT NULL,
        n_error INTEGER NOT NULL,
        n_outputs INTEGER,
        judge_only BOOLEAN,
        PRIMARY KEY (run_id, case_id, scorer)
    )""",
]

# Index i holds the statements that take the database from version i to version i + 1.
MIGRATIONS: list[list[str]] = [_V1, _V2, _V3, _V4, _V5, _V6, _V7, _V8, _V9]
LATEST_VERSION = len(MIGRATIONS)

_VERSION_TABLE = "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, applied_at TIMESTAMP NOT NULL)"


def one(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> tuple | None:
    """The first row of a query, fully fetched: duckdb 2 refuses other work while a result is unfinished."""
    rows = con.execute(sql, params or []).fetchall()
    return rows[0] if rows else None


def current_version(con: duckdb.DuckDBPyConnection) -> int:
    """The applied schema version; 0 for a database that has never been migrated."""
    exists = one(con, "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_version'")[0]
    if not exists:
        return 0
    return one(con, "SELECT coalesce(max(version), 0) FROM schema_version")[0]


def migrate(con: duckdb.DuckDBPyConnection, migrations: Sequence[Sequence[str]] = MIGRATIONS) -> int:
    """Apply the missing migrations in one transaction (all or none) and return the resulting version.

    Idempotent: at the latest version it changes nothing. The caller must hold the write lock.
    """
    latest = len(migrations)
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(_VERSION_TABLE)
        version = current_version(con)
        if version > latest:
            raise InfraError(
                f"history database is at schema version {version}, newer than this evalplatform knows ({latest}): "
                "upgrade evalplatform or point it at another history file"
            )
        for number in range(version + 1, latest + 1):
            for statement in migrations[number - 1]:
                con.execute(statement)
            con.execute("INSERT INTO schema_version VALUES (?, ?)", [number, utcnow()])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return max(version, latest)
