"""Per suite, `<suite>/pipeline_slos`: the pipeline's SLOs from the run history, one asset check per SLO.

Refreshed after every scored run of the suite and every hour (freshness moves without runs) by its own automation
sensor. A check passes when its SLO is met (or is measured with no target set); a breach fails it with ERROR, an
SLO with nothing to measure yet fails it with WARN. The checks do not block anything: they are the pipeline's alerts.
"""


import dagster as dg

from assets.catalog import Catalog, SuiteEntry
from assets.resources import EvalProject

SENSOR = "pipeline_slo_automation"


def _condition() -> dg.AutomationCondition:
    ac = dg.AutomationCondition
    # Not while a scored run of the suite is in progress: a burst of runs refreshes the SLOs once, after it,
    # rather than reading the history between every one of its writes.
    return ((ac.any_deps_updated() | ac.cron_tick_passed("0 * * * *")).since_last_handled()
            .with_label("a scored run finished, or the hour turned") & ~ac.in_progress()
            & ~ac.any_deps_in_progress())


def _slo_asset(entry: SuiteEntry) -> dg.AssetsDefinition:
    from evalplatform.slos import SLO_IDS

    key = dg.AssetKey([entry.key_prefix, "pipeline_slos"])
    specs = [dg.AssetCheckSpec(slo, asset=key, blocking=False, description=_DESCRIPTIONS[slo]) for slo in SLO_IDS]

    @dg.asset(key=key, group_name=entry.name, kinds={"duckdb"}, check_specs=specs, tags={"suite": entry.name},
              deps=[dg.AssetKey([entry.key_prefix, f"{tier}_run"]) for tier in ("pr", "nightly")],
              automation_condition=_condition(),
              description="The pipeline's SLOs over the suite's latest runs (suite.yaml `pipeline_slos:`): PR-tier "
                          "wall time P95, success rate, throughput, judge cost per run, freshness of the regression "
                          "set.")
    def _slos(context: dg.AssetExecutionContext, eval_project: EvalProject):
        from evalplatform.pipeline import resolve_suite
        from evalplatform.slos import pipeline_slos

        from assets.suite_assets import _raise_typed

        project, store = eval_project.project(), eval_project.store()
        results = _raise_typed(lambda: pipeline_slos(store, resolve_suite(project, entry.name)))
        checks = [dg.AssetCheckResult(
            check_name=r.slo_id, asset_key=key, passed=r.status in ("OK", "REPORTED"),
            severity=dg.AssetCheckSeverity.ERROR if r.status == "BREACH" else dg.AssetCheckSeverity.WARN,
            description=f"{r.status}: {_value(r)} (target {r.target}); {r.description}",
            metadata={"status": r.status, "target": r.target, "unit": r.unit, "n": r.n,
                      **({"value": r.value} if r.value is not None else {})}) for r in results]
        return dg.MaterializeResult(
            metadata={r.slo_id: dg.MetadataValue.text(f"{r.status}: {_value(r)}") for r in results}
            | {"slos": dg.MetadataValue.json([r.to_dict() for r in results])},
            check_results=checks)

    return _slos


def _value(r) -> str:
    if r.value is None:
        return "no data"
    if r.unit == "share":
        return f"{r.value:.1%}"
    return f"${r.value:.4f}" if r.unit == "USD" else f"{r.value:.4g} {r.unit}"


_DESCRIPTIONS = {
    "pr_wall_time_p95": "PR-tier wall time (start to decision), P95 over the latest runs, within budget "
                        "(pipeline_slos.pr_wall_p95_s, default 10 minutes).",
    "success_rate": "Runs that reached a decision / runs started (failed and abandoned count against it).",
    "throughput": "Cases scored per minute of run wall time (pipeline_slos.min_cases_per_minute).",
    "judge_cost_per_run": "Mean judge cost per run (pipeline_slos.max_judge_cost_per_run_usd).",
    "freshness_p95": "Flag-to-regression-case time P95 of production failures (pipeline_slos.max_freshness_p95_h).",
}


def build_slos(catalog: Catalog) -> tuple[list, list]:
    """(assets, sensors): one SLO asset per suite, and the automation sensor that keeps them current."""
    assets = [_slo_asset(entry) for entry in catalog.entries]
    if not assets:
        return [], []
    sensor = dg.AutomationConditionSensorDefinition(
        SENSOR, target=dg.AssetSelection.assets(*assets), default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=30, description="Re-measures each suite's pipeline SLOs after its runs and hourly.")
    return assets, [sensor]
