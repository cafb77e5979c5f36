"""Sensor: a suite whose dataset content changed gets a PR-tier run (one per new dataset version)."""

import json

import dagster as dg

from assets.partitions import suite_partitions
from assets.resources import EvalProject
from evalplatform.errors import EvalPlatformError
from evalplatform.pipeline import resolve_suite
from evalplatform.runner import load_dataset
from sensors.jobs import pr_eval_job


@dg.sensor(job=pr_eval_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Runs the PR tier of a suite when its dataset version (sha256 of the content) changes.")
def dataset_change_sensor(context: dg.SensorEvaluationContext, eval_project: EvalProject):
    seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    project = eval_project.project()
    requests, skipped = [], []
    for suite_name in suite_partitions.get_partition_keys():
        try:
            version = load_dataset(resolve_suite(project, suite_name)).version
        except EvalPlatformError as exc:
            # A broken suite is reported on the tick, not retried as a run that would fail the same way.
            skipped.append(f"{suite_name}: {exc}")
            continue
        if seen.get(suite_name) != version:
            seen[suite_name] = version
            requests.append(dg.RunRequest(run_key=f"{suite_name}-{version[:16]}", partition_key=suite_name,
                                          tags={"tier": "pr", "dataset_version": version}))
    if not requests:
        reason = "no dataset changed" + (f"; skipped {'; '.join(skipped)}" if skipped else "")
        return dg.SensorResult(skip_reason=reason, cursor=json.dumps(seen, sort_keys=True))
    return dg.SensorResult(run_requests=requests, cursor=json.dumps(seen, sort_keys=True))
