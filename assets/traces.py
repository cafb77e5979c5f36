"""Production monitoring assets of a suite whose policy has a `monitors:` section (one partition per trace file).

<suite>/trace_batch          the file read and validated by Great Expectations (check trace_batch_is_valid,
                             blocking: a refused file is quarantined with its report and never sampled)
<suite>/trace_sample         hash sample: base rate plus every flagged trace, each with its inclusion probability
<suite>/scored_sample        the sample scored by the suite's reference-free scorers and judges allowed to gate;
                             flagged or failed traces queued for review
<suite>/production_monitor   HT-weighted pass rates per criterion and tag with always-valid bounds, per release
                             (check production_within_slos)
<suite>/review_queue         what waits for a person (`evalplatform review`)
<suite>/failure_coverage     reviewed failures per category against regression cases (check
                             failure_categories_covered)
plus the job <suite>_traces and the sensor <suite>_trace_files_sensor. Thin: the work is in evalplatform.
"""


from dataclasses import dataclass, field

import dagster as dg

from assets.catalog import Catalog, SuiteEntry
from assets.resources import PROJECT_ROOT, EvalProject
from assets.suite_assets import HISTORY_POOL, _raise_typed

CHECK_VALID = "trace_batch_is_valid"
CHECK_SLOS = "production_within_slos"
CHECK_COVERAGE = "failure_categories_covered"


@dataclass
class ProductionDefinitions:
    assets: list = field(default_factory=list)
    checks: list = field(default_factory=list)
    jobs: list = field(default_factory=list)
    sensors: list = field(default_factory=list)


def _setup(eval_project: EvalProject, entry: SuiteEntry):
    from evalplatform.traces.pipeline import setup_for

    return setup_for(eval_project.project(), entry.name)


def _problems_md(problems: list[dict]) -> str:
    if not problems:
        return "no problems"
    rows = ["| field | problem | rows | examples |", "|---|---|---|---|"]
    for p in problems:
        rows.append(f"| {p.get('column') or '-'} | {p.get('description', '')} | {p.get('count') or ''} | "
                    f"{', '.join(map(str, p.get('examples') or []))[:120]} |")
    return "\n".join(rows)


def build_production(entry: SuiteEntry, project_root=PROJECT_ROOT) -> ProductionDefinitions | None:
    monitors = entry.policy.policy.monitors
    if monitors is None:
        return None
    from sensors.trace_files import build_trace_sensor

    out = ProductionDefinitions()
    prefix, group = entry.key_prefix, f"{entry.name}_production"
    folder = (project_root / (monitors.traces.folder or f"traces/{entry.name}")).resolve()
    partitions = dg.DynamicPartitionsDefinition(name=f"{entry.op_prefix}_trace_files")
    tags = {"suite": entry.name}

    batch_key = dg.AssetKey([prefix, "trace_batch"])

    @dg.asset(key=batch_key, group_name=group, partitions_def=partitions, pool=HISTORY_POOL,
              kinds={"parquet"}, tags=tags, check_specs=[dg.AssetCheckSpec(
                  CHECK_VALID, asset=batch_key, blocking=True,
                  description="The file was readable and passed Great Expectations (columns, types, nulls, unique "
                              "ids, timestamp range, signal values); a refused file is never sampled or scored.")],
              description=f"A trace file of {folder} (OTLP JSON, JSONL or Parquet) read into one row per trace, "
                          "failure signals derived, checked by Great Expectations. A refused file is quarantined "
                          f"with its report in {folder}/.quarantine and never sampled.")
    def trace_batch(context: dg.AssetExecutionContext, eval_project: EvalProject):
        from evalplatform.traces.pipeline import ingest

        setup = _raise_typed(lambda: _setup(eval_project, entry))
        result = _raise_typed(lambda: ingest(setup, eval_project.store(), context.partition_key,
                                             dagster_run_id=context.run_id))
        value = {"batch_id": result.batch_id, "status": result.status, "file": result.file,
                 "problems": result.problems, "description": result.description,
                 "quarantine_path": result.quarantine_path}
        yield dg.Output(value, metadata={
            "status": result.status, "batch_id": result.batch_id, "format": result.kind or "",
            "traces": result.n_traces, "flagged": result.n_flagged,
            "quarantine": result.quarantine_path or "", "validation_report": dg.MetadataValue.md(
                _problems_md(result.problems)), "superseded": dg.MetadataValue.json(result.superseded),
            "read": dg.MetadataValue.json(result.info)})
        ok = result.status == "accepted"
        yield dg.AssetCheckResult(
            check_name=CHECK_VALID, passed=ok, severity=dg.AssetCheckSeverity.ERROR,
            description=(result.description if ok else f"quarantined: {result.description}")[:2000],
            metadata={"batch_id": result.batch_id, "quarantine": result.quarantine_path or "",
                      "problems": dg.MetadataValue.md(_problems_md(result.problems))})

    @dg.asset(key=dg.AssetKey([prefix, "trace_sample"]), group_name=group, partitions_def=partitions,
              pool=HISTORY_POOL, kinds={"duckdb"}, tags=tags,
              ins={"batch": dg.AssetIn(key=trace_batch.key)},
              description=f"Hash sample of the batch: {monitors.sampling.base_rate:.0%} of traces plus "
                          f"{monitors.sampling.flagged_rate:.0%} of flagged ones; the same trace is always drawn "
                          "the same way; each carries its inclusion probability.")
    def trace_sample(context: dg.AssetExecutionContext, eval_project: EvalProject, batch: dict) -> dg.Output[dict]:
        from evalplatform.traces.pipeline import sample_batch

        setup = _raise_typed(lambda: _setup(eval_project, entry))
        result = _raise_typed(lambda: sample_batch(setup, eval_project.store(), batch["batch_id"]))
        return dg.Output(result, metadata={"sampled": result["n_sampled"], "traces": result["n_traces"],
                                           "by_stratum": dg.MetadataValue.json(result["by_stratum"]),
                                           "already_seen_in_other_files": result["already_seen"]})

    @dg.asset(key=dg.AssetKey([prefix, "scored_sample"]), group_name=group, partitions_def=partitions,
              pool=HISTORY_POOL, kinds={"duckdb"}, tags=tags,
              ins={"sampled": dg.AssetIn(key=trace_sample.key)},
              description="The sample scored by the suite's scorers that need no reference (and its judges allowed "
                          "to gate); flagged or failed traces join the review queue with why.")
    def scored_sample(context: dg.AssetExecutionContext, eval_project: EvalProject, sampled: dict) -> dg.Output[dict]:
        from evalplatform.traces.pipeline import score_sample

        setup = _raise_typed(lambda: _setup(eval_project, entry))
        result = _raise_typed(lambda: score_sample(setup, eval_project.store(), sampled["batch_id"]))
        return dg.Output(result, metadata={"scored_traces": result["n_scored_traces"],
                                           "scorers": dg.MetadataValue.json(result["scorers"]),
                                           "not_used": dg.MetadataValue.json(result["skipped_scorers"]),
                                           "outcomes": dg.MetadataValue.json(result["outcomes"]),
                                           "queued_for_review": result["queued_for_review"]})

    monitor_key = dg.AssetKey([prefix, "production_monitor"])

    @dg.asset(key=monitor_key, group_name=group, deps=[scored_sample.key],
              pool=HISTORY_POOL, kinds={"duckdb"}, tags=tags, check_specs=[dg.AssetCheckSpec(
                  CHECK_SLOS, asset=monitor_key, blocking=False,
                  description="No SLO of the current release has its always-valid upper bound below the target "
                              "(an alert is ERROR for a blocking SLO, WARN for an advisory one).")],
              description="Pass rates of production traffic per release, criterion and tag: Horvitz-Thompson "
                          "weighted estimates with intervals and always-valid bounds; every value is kept in the "
                          "history (`evalplatform monitor --suite " + entry.name + "`).")
    def production_monitor(context: dg.AssetExecutionContext, eval_project: EvalProject):
        from evalplatform.monitoring import update_monitors

        setup = _raise_typed(lambda: _setup(eval_project, entry))
        summary = _raise_typed(lambda: update_monitors(setup, eval_project.store(),
                                                       context.run.tags.get("dagster/partition")))
        rows = "\n".join(f"| {s['status']} | {s['slo_id']} | {s['slo']:.2f} | {s['estimate'] or 0:.3f} | "
                         f"{s['av_upper']:.3f} | {s['n_sampled']} |" for s in summary["slos"])
        yield dg.Output(summary, metadata={
            "release": summary["segment"] or "", "alerts": len(summary["alerts"]),
            "slos": dg.MetadataValue.md("| status | SLO | target | estimate | always-valid upper | n |\n"
                                        "|---|---|---|---|---|---|\n" + rows)})
        yield _slo_check(summary)

    def _slo_check(production_monitor: dict) -> dg.AssetCheckResult:
        alerts = production_monitor["alerts"]
        severity = dg.AssetCheckSeverity.ERROR if production_monitor["blocking_alert"] else dg.AssetCheckSeverity.WARN
        if alerts:
            desc = "ALERT: " + "; ".join(f"{a['slo_id']} upper bound {a['av_upper']:.3f} < {a['slo']:.2f} "
                                         f"(estimate {a['estimate']:.3f}, n={a['n_sampled']})" for a in alerts)
        elif production_monitor["no_data"]:
            desc = f"no scored traces yet for {', '.join(production_monitor['no_data'])}"
        else:
            desc = f"every SLO of release {production_monitor['segment']} holds"
        return dg.AssetCheckResult(check_name=CHECK_SLOS, passed=not alerts, severity=severity, description=desc,
                                   metadata={"release": production_monitor["segment"] or "",
                                             "alerts": dg.MetadataValue.json(alerts)})

    @dg.asset(key=dg.AssetKey([prefix, "review_queue"]), group_name=group, deps=[scored_sample.key], kinds={"duckdb"},
              tags=tags, description="Flagged or failed sampled traces waiting for a person, with why "
                                     f"(`evalplatform review --suite {entry.name}`).")
    def review_queue(context: dg.AssetExecutionContext, eval_project: EvalProject) -> dg.Output[dict]:
        from evalplatform.history.monitoring import MonitoringStore

        mstore = MonitoringStore(eval_project.store())
        counts = mstore.queue_counts(entry.name)
        top = mstore.queue(entry.name, limit=10)
        table = "\n".join(f"| {i['item_id']} | {'; '.join(i['reasons'][:2])} | {str(i.get('input') or '')[:60]} |"
                          for i in top)
        return dg.Output(counts, metadata={"open": counts.get("open", 0), "labelled": counts.get("labelled", 0),
                                           "next": dg.MetadataValue.md("| item | why | message |\n|---|---|---|\n"
                                                                       + table)})

    coverage_key = dg.AssetKey([prefix, "failure_coverage"])

    @dg.asset(key=coverage_key, group_name=group,
              deps=[review_queue.key, dg.AssetKey([prefix, "regression_set"])], kinds={"duckdb"}, tags=tags,
              check_specs=[dg.AssetCheckSpec(
                  CHECK_COVERAGE, asset=coverage_key, blocking=False,
                  description="Every failure category seen in review has regression cases (none: WARN; fewer than "
                              "the policy's minimum: its configured severity).")],
              description="Reviewed production failures per failure category against regression cases per category.")
    def failure_coverage(context: dg.AssetExecutionContext, eval_project: EvalProject):
        from evalplatform.traces.coverage import coverage_audit

        setup = _raise_typed(lambda: _setup(eval_project, entry))
        audit = _raise_typed(lambda: coverage_audit(setup, eval_project.store()))
        table = "\n".join(f"| {r['category']} | {r['reviewed_failures']} | {r['regression_cases']} | {r['status']} |"
                          for r in audit["rows"])
        yield dg.Output(audit, metadata={"categories": dg.MetadataValue.md(
            "| category | reviewed failures | regression cases | status |\n|---|---|---|---|\n" + table)})
        yield _coverage_check(audit)

    def _coverage_check(failure_coverage: dict) -> dg.AssetCheckResult:
        return dg.AssetCheckResult(
            check_name=CHECK_COVERAGE, passed=failure_coverage["passed"],
            severity=dg.AssetCheckSeverity.ERROR if failure_coverage["severity"] == "ERROR"
            else dg.AssetCheckSeverity.WARN,
            description=failure_coverage["description"], metadata={"rows": dg.MetadataValue.json(
                failure_coverage["rows"])})

    out.assets += [trace_batch, trace_sample, scored_sample, production_monitor, review_queue, failure_coverage]
    job = dg.define_asset_job(
        f"{entry.op_prefix}_traces", partitions_def=partitions, tags={"suite": entry.name, "tier": "production"},
        selection=dg.AssetSelection.assets(*out.assets),
        description=f"One trace file of {entry.name}: validate, sample, score, monitor, queue, audit coverage.")
    out.jobs.append(job)
    out.sensors.append(build_trace_sensor(entry, job, partitions, folder, monitors.traces))
    return out


def build_all(catalog: Catalog, project_root=PROJECT_ROOT) -> ProductionDefinitions:
    out = ProductionDefinitions()
    for entry in catalog.entries:
        built = build_production(entry, project_root)
        if built is not None:
            out.assets += built.assets
            out.checks += built.checks
            out.jobs += built.jobs
            out.sensors += built.sensors
    return out
