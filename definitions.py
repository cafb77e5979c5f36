"""The evalplatform code location: per suite, cases -> scored runs -> policy checks -> baseline; shared judges."""


from pathlib import Path

import dagster as dg

from assets.catalog import discover
from assets.executor import in_process_unless_told
from assets.judges import build_judges
from assets.resources import PROJECT_ROOT, EvalProject
from assets.slos import build_slos
from assets.suite_assets import build_suite
from assets.traces import build_all as build_production
from sensors.dataset_changes import build_dataset_sensor
from sensors.run_failures import scored_run_failures


def build_definitions(project_root: Path = PROJECT_ROOT) -> dg.Definitions:
    """Everything Dagster serves for the suites under `project_root`/datasets (a test builds its own)."""
    catalog = discover(project_root)
    judges = build_judges(catalog)
    assets, checks, jobs, schedules = [*judges.assets], [*judges.checks], [], []
    pr_jobs = {}
    for entry in catalog.entries:
        built = build_suite(entry, judges.keys)
        assets += built.assets
        checks += built.checks
        jobs += built.jobs
        schedules += built.schedules
        pr_jobs[entry.name] = built.jobs[0]
    if judges.job is not None:
        jobs.append(judges.job)
        schedules.append(judges.schedule)
    sensors = [s for s in (build_dataset_sensor(catalog, pr_jobs),) if s is not None]
    # Production monitoring of suites whose policy has `monitors:`: trace files -> sample -> monitors -> review.
    production = build_production(catalog, project_root)
    assets, checks, jobs, sensors = assets + production.assets, checks + production.checks, jobs + production.jobs, \
        sensors + production.sensors
    # Pipeline SLOs per suite (checks per SLO), and the history learning of scored runs that died.
    slo_assets, slo_sensors = build_slos(catalog)
    assets, sensors = assets + slo_assets, sensors + slo_sensors + ([scored_run_failures] if catalog.entries else [])
    if catalog.entries:
        # Dagster's default automation sensor starts STOPPED; this one evaluates promotion from the start, so a
        # scored run materialized from the UI is promoted when, and only when, its blocking checks passed.
        sensors.append(dg.AutomationConditionSensorDefinition(
            "promotion_automation", target=dg.AssetSelection.assets(
                *[dg.AssetKey([e.key_prefix, "promoted_baseline"]) for e in catalog.entries]),
            default_status=dg.DefaultSensorStatus.RUNNING, minimum_interval_seconds=30))
    return dg.Definitions(
        assets=assets, asset_checks=checks, jobs=jobs, schedules=schedules, sensors=sensors,
        resources={"eval_project": EvalProject(root=str(project_root))},
        # A scored run materialized from the UI runs in-process too (the multiprocess executor costs ~2 s a step);
        # run config `execution: {config: {multiprocess: {}}}` opts into processes per step.
        executor=in_process_unless_told,
    )


defs = build_definitions()
