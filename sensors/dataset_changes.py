"""Sensor: a suite whose cases changed gets a PR-tier run, once per new dataset version.

The cursor (suite -> last dataset version seen) starts from the history: a version some complete run
already evaluated is not run again because the server (re)started.
"""


import json

import dagster as dg

from assets.catalog import Catalog
from assets.resources import EvalProject


def build_dataset_sensor(catalog: Catalog, pr_jobs: dict) -> dg.SensorDefinition | None:
    """`pr_jobs`: suite name -> its PR job (None when no suite is served)."""
    if not pr_jobs:
        return None

    @dg.sensor(name="dataset_change_sensor", jobs=list(pr_jobs.values()), minimum_interval_seconds=60,
               default_status=dg.DefaultSensorStatus.RUNNING,
               description="Runs the PR tier of a suite when its dataset version (sha256 of the content) changes.")
    def dataset_change_sensor(context: dg.SensorEvaluationContext, eval_project: EvalProject):
        from evalplatform.errors import EvalPlatformError
        from evalplatform.pipeline import resolve_suite
        from evalplatform.runner import load_dataset

        project, store = eval_project.project(), eval_project.store()
        seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
        requests, skipped = [], [f"{name}: {why}" for name, why in catalog.broken.items()]
        for name in sorted(pr_jobs):
            try:
                version = load_dataset(resolve_suite(project, name)).version
            except EvalPlatformError as exc:
                # A broken suite is reported on the tick, not launched as a run that would fail the same way.
                skipped.append(f"{name}: {exc}")
                continue
            if name not in seen:
                last = store.latest_run(name)
                seen[name] = (last or {}).get("dataset_hash") or ""
            if seen[name] != version:
                seen[name] = version
                requests.append(dg.RunRequest(job_name=pr_jobs[name].name, run_key=f"{name}-{version[:16]}",
                                              tags={"suite": name, "tier": "pr", "dataset_version": version}))
        cursor = json.dumps(seen, sort_keys=True)
        if not requests:
            reason = "no dataset changed" + (f"; skipped {'; '.join(skipped)}" if skipped else "")
            return dg.SensorResult(skip_reason=reason, cursor=cursor)
        return dg.SensorResult(run_requests=requests, cursor=cursor)

    return dataset_change_sensor
