"""One trace file through production monitoring, as the steps the Dagster assets call: read and validate (or
quarantine), sample, score the sample and queue what needs a person, update the monitors.

A file is a batch; a file dropped again with new content (a new fingerprint) is a new batch that
supersedes the earlier one of the same name, so a corrected file replaces what it corrects.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import polars as pl

from evalplatform.errors import InputError
from evalplatform.history import HistoryStore
from evalplatform.history.monitoring import MonitoringStore
from evalplatform.policy.monitors import Monitors
from evalplatform.project import Project
from evalplatform.suite import LoadedSuite, find_suite, load_suite
from evalplatform.traces.read import read_batch
from evalplatform.traces.sampling import sample
from evalplatform.traces.signals import derive_signals
from evalplatform.traces.validate import describe_failures, validate_batch

QUARANTINE_DIR = ".quarantine"
# How much each reason weighs when the queue is ordered for a person (evidence of failure first).
SIGNAL_WEIGHT = {"thumbs_down": 3.0, "error": 3.0, "regenerated": 2.0, "rephrased": 1.5, "empty_retrieval": 1.0,
                 "abandoned": 1.0}
FAILED_SCORER_WEIGHT = 2.0


@dataclass(frozen=True)
class TraceSetup:
    """What monitoring a suite needs: the suite, its policy's `monitors:` section and the folder it watches."""

    project: Project
    suite: LoadedSuite
    monitors: Monitors
    folder: Path
    policy_file: str

    @property
    def name(self) -> str:
        return self.suite.name

    def data_dir(self) -> Path:
        return self.project.state_dir / "traces" / self.suite.name


def setup_for(project: Project, suite_name: str, suite: LoadedSuite | None = None) -> TraceSetup:
    """The suite's monitoring setup; InputError when its policy has no `monitors:` section."""
    from evalplatform.decide import effective_policy

    suite = suite or load_suite(find_suite(suite_name, project.datasets_dir))
    policy = effective_policy(suite)
    monitors = policy.policy.monitors
    if monitors is None:
        raise InputError(policy.source, "monitors", f"suite {suite.name!r} has no `monitors:` section",
                         "add one to its policy file (see datasets/demo/policy.yaml)")
    folder = monitors.traces.folder or f"traces/{suite.name}"
    return TraceSetup(project, suite, monitors, (project.root / folder).resolve(), policy.source)


def fingerprint(path: Path) -> str:
    st = path.stat()
    return f"{st.st_size}:{st.st_mtime_ns}"


def batch_id_for(suite: str, file_name: str, fp: str) -> str:
    digest = hashlib.sha256(f"{suite}\0{file_name}\0{fp}".encode()).hexdigest()[:12]
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in file_name)[:60]
    return f"{suite}:{stem}:{digest}"


def input_field(setup: TraceSetup) -> str:
    """The case field that holds the user's message: configured, else the prompt template's only field."""
    if setup.monitors.input_field:
        return setup.monitors.input_field
    from evalplatform.prompt import template_fields

    fields = template_fields(setup.suite.prompt_template)
    if len(fields) != 1:
        raise InputError(setup.policy_file, "monitors.input_field", f"the prompt template has fields "
                         f"{', '.join(fields) or 'none'}; say which one holds the user's message")
    return fields[0]


@dataclass
class BatchResult:
    batch_id: str
    file: str
    status: str                      # accepted | quarantined
    n_traces: int = 0
    n_flagged: int = 0
    kind: str | None = None
    problems: list[dict] = field(default_factory=list)
    description: str = ""
    quarantine_path: str | None = None
    data_path: str | None = None
    superseded: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)


def _quarantine(setup: TraceSetup, path: Path, batch_id: str, report: dict) -> Path:
    """Keep the refused file and its report side by side in the folder's quarantine (the original stays put)."""
    qdir = setup.folder / QUARANTINE_DIR
    qdir.mkdir(parents=True, exist_ok=True)
    safe = batch_id.split(":")[-1]
    target = qdir / f"{safe}-{path.name}"
    if not target.exists():
        try:
            os.link(path, target)
        except OSError:
            shutil.copy2(path, target)
    report_path = qdir / f"{safe}-{path.name}.report.json"
    tmp = report_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, report_path)
    return target


def ingest(setup: TraceSetup, store: HistoryStore, file_name: str, *, now: dt.datetime | None = None,
           dagster_run_id: str | None = None) -> BatchResult:
    """Read and validate one file of the folder; a bad one is quarantined with its report, never lost."""
    path = setup.folder / file_name
    if not path.is_file():
        raise InputError(path, None, "trace file not found", f"drop it into {setup.folder}")
    fp = fingerprint(path)
    batch_id = batch_id_for(setup.name, file_name, fp)
    mstore = MonitoringStore(store)
    limits = setup.monitors.limits
    now = now or dt.datetime.now(dt.timezone.utc)
    base = {"batch_id": batch_id, "suite": setup.name, "file": file_name, "fingerprint": fp,
            "dagster_run_id": dagster_run_id}
    try:
        raw = read_batch(path, max_line_bytes=int(limits.max_line_mib * 2**20))
    except InputError as err:
        problem = {"stage": "read", "column": err.field, "description": err.message, "fix": err.fix}
        return _refuse(setup, mstore, path, base, None, [problem], str(err), {})
    services = setup.monitors.traces.services
    if services:
        # A shared folder: this suite's traces are those of its services (service.name).
        if raw.frame is not None:
            keep = raw.frame["service"].is_in(services) if "service" in raw.frame.columns else None
            raw.frame = raw.frame.filter(keep) if keep is not None else raw.frame.clear()
            raw.n_rows = raw.frame.height
        elif raw.columns is not None:
            rows = [i for i, s in enumerate(raw.columns.get("service") or [None] * raw.n_rows) if s in services]
            raw.columns = {k: [v[i] for i in rows] for k, v in raw.columns.items()}
            raw.lines = [raw.lines[i] for i in rows] if raw.lines else raw.lines
            raw.n_rows = len(rows)
        if raw.n_rows == 0:
            return _refuse(setup, mstore, path, base, raw.kind, [{
                "stage": "read", "column": "service", "description": "no trace of the services "
                f"{', '.join(setup.monitors.traces.services)}"}], "no trace of this suite's services", raw.info)
    validation = validate_batch(raw, now=now, max_clock_skew=dt.timedelta(minutes=limits.max_clock_skew_minutes),
                                max_age=dt.timedelta(days=limits.max_age_days))
    if not validation.success:
        for f in validation.failed:
            f["stage"] = "validate"
        return _refuse(setup, mstore, path, base, raw.kind, validation.failed,
                       f"{path}: {describe_failures(validation.failed, raw.kind)}", raw.info)
    frame = derive_signals(validation.frame)
    segment = pl.col("release").fill_null("(none)") if setup.monitors.segment_by == "release" else pl.lit("all")
    frame = frame.with_columns(segment.alias("segment"))
    data_path = setup.data_dir() / f"{batch_id.split(':')[-1]}.parquet"
    data_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = data_path.with_suffix(".tmp")
    frame.write_parquet(tmp)
    os.replace(tmp, data_path)
    population = population_counts(setup, store, frame, batch_id)
    n_flagged = int(frame["flagged"].sum())
    row = {**base, "kind": raw.kind, "status": "accepted", "n_traces": frame.height, "n_flagged": n_flagged,
           "min_ts": frame["timestamp"].min(), "max_ts": frame["timestamp"].max(),
           "report": {"info": raw.info, "statistics": validation.statistics}, "data_path": str(data_path)}
    superseded = mstore.record_batch(row, population)
    return BatchResult(batch_id, file_name, "accepted", frame.height, n_flagged, raw.kind, [],
                       f"{frame.height} traces, {n_flagged} flagged", None, str(data_path), superseded, raw.info)


def _refuse(setup: TraceSetup, mstore: MonitoringStore, path: Path, base: dict, kind: str | None,
            problems: list[dict], description: str, info: dict) -> BatchResult:
    report = {"file": str(path), "batch_id": base["batch_id"], "refused_at": dt.datetime.now(dt.timezone.utc),
              "problems": problems, "summary": description,
              "fix": "correct the file and drop it again (same name): it is read anew"}
    target = _quarantine(setup, path, base["batch_id"], report)
    mstore.record_batch({**base, "kind": kind, "status": "quarantined", "n_traces": 0, "n_flagged": 0,
                         "report": report, "quarantine_path": str(target)})
    return BatchResult(base["batch_id"], base["file"], "quarantined", kind=kind, problems=problems,
                       description=description, quarantine_path=str(target), info=info)


# -- scorers and population --------------------------------------------------------------------


def trace_scorers(setup: TraceSetup, store: HistoryStore | None) -> tuple[list, dict[str, str]]:
    """The suite's scorers that can score a production trace, and why each other one does not.

    A trace has a message and a reply but no reference fields: scorers reading other case fields are
    left out. Judges run only when allowed to gate (a current calibration clearing the floors); by
    default the non-advisory ones, or exactly `monitors.judges` when listed.
    """
    from evalplatform.judges.calibrate import gate_status
    from evalplatform.judges.llm_judge import JudgeScorerBase

    field_name = input_field(setup)
    chosen, skipped = [], {}
    listed = setup.monitors.judges
    for scorer in setup.suite.spec.scorers:
        if isinstance(scorer, JudgeScorerBase):
            if listed is not None and scorer.id not in listed:
                skipped[scorer.id] = "judge not listed in monitors.judges"
                continue
            if listed is None and scorer.advisory:
                skipped[scorer.id] = "advisory judge (list it in monitors.judges to run it)"
                continue
            status = gate_status(store, scorer) if store is not None else None
            if status is None or not status.allowed:
                skipped[scorer.id] = f"judge not allowed to gate ({status.status if status else 'no history'})"
                continue
        missing = [c for c in scorer.columns_needed() if c not in (field_name, getattr(scorer, "input_field", None))]
        if missing:
            skipped[scorer.id] = f"reads case field(s) {', '.join(missing)}, which a trace does not have"
            continue
        chosen.append(scorer)
    return chosen, skipped


def _case_frame(setup: TraceSetup, traces: pl.DataFrame, scorers: list) -> pl.DataFrame:
    names = {input_field(setup)} | {getattr(s, "input_field", None) for s in scorers} - {None}
    return traces.select(
        pl.col("trace_id").alias("case_id"), pl.lit(0, dtype=pl.Int32).alias("repeat"), pl.col("output"),
        pl.when(pl.col("output").is_null()).then(pl.col("error").fill_null("the turn failed with no reply"))
        .otherwise(None).alias("call_error"),
        pl.concat_list([pl.col("tags"), pl.lit(["source:trace"])]).alias("tags"),
        pl.col("latency_ms"),
        *[pl.col("input").alias(n) for n in sorted(names)],
    )


def population_counts(setup: TraceSetup, store: HistoryStore, frame: pl.DataFrame, batch_id: str) -> pl.DataFrame:
    """Traces per (segment, scope, name, stratum) in the batch: the N_h the monitors weight strata by."""
    scorers, _ = trace_scorers(setup, store)
    cases = frame.select("segment", "flagged", pl.concat_list([pl.col("tags"), pl.lit(["source:trace"])]).alias("tags"))
    stratum = pl.when(pl.col("flagged")).then(pl.lit("flagged")).otherwise(pl.lit("unflagged")).alias("stratum")
    parts = [cases.group_by("segment", stratum).len("n").with_columns(pl.lit("overall").alias("scope"),
                                                                     pl.lit("all").alias("name"))]
    for criterion in sorted({s.criterion for s in scorers}):
        applies = pl.any_horizontal([s.applies() for s in scorers if s.criterion == criterion])
        parts.append(cases.filter(applies).group_by("segment", stratum).len("n")
                     .with_columns(pl.lit("criterion").alias("scope"), pl.lit(criterion).alias("name")))
    tagged = frame.select("segment", stratum, pl.col("tags").list.unique()).explode("tags").drop_nulls("tags")
    parts.append(tagged.group_by("segment", "stratum", "tags").len("n")
                 .rename({"tags": "name"}).with_columns(pl.lit("tag").alias("scope")))
    out = pl.concat([p.select("segment", "scope", "name", "stratum", pl.col("n").cast(pl.Int64)) for p in parts])
    return out.with_columns(pl.lit(setup.name).alias("suite"), pl.lit(batch_id).alias("batch_id"))


# -- sample, score, queue --------------------------------------------------------------------------


def _accepted(mstore: MonitoringStore, batch_id: str) -> dict:
    batch = mstore.batch(batch_id)
    if batch is None:
        raise InputError(mstore.path, "batch", f"no trace batch {batch_id!r}", "materialize its trace_batch first")
    if batch["status"] != "accepted":
        # Fail closed: a quarantined (or replaced) batch is never sampled or scored.
        raise InputError(batch.get("quarantine_path") or batch["file"], "batch",
                         f"trace batch {batch_id} is {batch['status']}; it is not sampled or scored",
                         "correct the file and drop it again")
    return batch


def sample_batch(setup: TraceSetup, store: HistoryStore, batch_id: str) -> dict[str, Any]:
    """Draw the batch's sample (hash inclusion, flagged traces oversampled) and store it with each trace's π."""
    mstore = MonitoringStore(store)
    batch = _accepted(mstore, batch_id)
    frame = pl.read_parquet(batch["data_path"])
    cfg = setup.monitors.sampling
    drawn = sample(frame, base_rate=cfg.base_rate, flagged_rate=cfg.flagged_rate, salt=cfg.salt)
    rows = drawn.with_columns(
        pl.lit(setup.name).alias("suite"), pl.lit(batch_id).alias("batch_id"),
        pl.col("timestamp").dt.replace_time_zone(None),
    )
    stored = mstore.put_sample(batch_id, rows)
    mstore.set_sampled(batch_id, drawn.height)
    by_stratum = dict(drawn.group_by("stratum").len().iter_rows()) if drawn.height else {}
    return {"batch_id": batch_id, "n_traces": batch["n_traces"], "n_sampled": drawn.height, "stored": stored,
            "already_seen": drawn.height - stored, "by_stratum": by_stratum,
            "base_rate": cfg.base_rate, "flagged_rate": cfg.flagged_rate}


def score_sample(setup: TraceSetup, store: HistoryStore, batch_id: str) -> dict[str, Any]:
    """Score the batch's sample with the suite's trace scorers; queue flagged or failed traces for review."""
    from evalplatform.runner import score_outputs

    mstore = MonitoringStore(store)
    _accepted(mstore, batch_id)
    traces = mstore.sample_of(batch_id)
    scorers, skipped = trace_scorers(setup, store)
    results = pl.DataFrame()
    if traces.height and scorers:
        plan = SimpleNamespace(suite=SimpleNamespace(spec=SimpleNamespace(scorers=scorers), name=setup.name,
                                                     path=setup.suite.path))
        try:
            results = score_outputs(plan, _case_frame(setup, traces, scorers), run_id=f"trace:{batch_id}")
        except InputError:
            results = pl.DataFrame()  # no scorer applies to any trace of this sample
    if results.height:
        rows = results.select(
            pl.lit(setup.name).alias("suite"), pl.col("case_id").alias("trace_id"), pl.lit(batch_id).alias("batch_id"),
            "scorer", "criterion", "tier_cost", "outcome", "score", "threshold", "explanation", "error")
        mstore.put_results(batch_id, rows)
    queued = enqueue_for_review(setup, mstore, traces, results, batch_id)
    counts = dict(results.group_by("outcome").len().iter_rows()) if results.height else {}
    return {"batch_id": batch_id, "n_scored_traces": traces.height, "scorers": [s.id for s in scorers],
            "skipped_scorers": skipped, "outcomes": counts, "queued_for_review": queued}


def enqueue_for_review(setup: TraceSetup, mstore: MonitoringStore, traces: pl.DataFrame, results: pl.DataFrame,
                       batch_id: str) -> int:
    """Flagged or failed sampled traces, most suspicious first, up to the policy's per-batch limit."""
    limit = setup.monitors.review.max_items_per_batch
    if traces.height == 0 or limit == 0:
        return 0
    failed: dict[str, list[str]] = {}
    if results.height:
        bad = results.filter(pl.col("outcome").is_in(["fail", "error"]))
        for tid, scorer, criterion, outcome in bad.select("case_id", "scorer", "criterion", "outcome").iter_rows():
            failed.setdefault(tid, []).append(f"{outcome}: {scorer} ({criterion})")
    items = []
    for row in traces.select("trace_id", "signals", "timestamp").iter_rows(named=True):
        signals = row["signals"] or []
        reasons = [f"signal: {s}" for s in signals] + failed.get(row["trace_id"], [])
        if not reasons:
            continue
        priority = sum(SIGNAL_WEIGHT.get(s, 1.0) for s in signals) + FAILED_SCORER_WEIGHT * len(
            failed.get(row["trace_id"], []))
        tie = int(hashlib.sha256(row["trace_id"].encode()).hexdigest()[:8], 16) / 2**32
        items.append({"item_id": f"{setup.name}:{row['trace_id']}", "suite": setup.name, "trace_id": row["trace_id"],
                      "batch_id": batch_id, "flagged_at": row["timestamp"], "priority": priority,
                      "reasons": reasons, "_tie": tie})
    items.sort(key=lambda i: (-i["priority"], i["_tie"]))
    for i in items:
        i.pop("_tie")
    return mstore.enqueue(items[:limit])
