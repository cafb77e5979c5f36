"""Jobs over the evaluation assets, the nightly schedule, and the in-process launcher the CLI uses."""


import datetime as dt
import os
import re
from pathlib import Path

import dagster as dg

from assets.baseline import promoted_baseline
from assets.partitions import suite_partitions
from assets.scored_runs import scored_run
from assets.suites import suite_dataset
from evalplatform.errors import InfraError, InputError
from sensors.instance import broken_instance, cli_instance

EVAL_SELECTION = dg.AssetSelection.assets(suite_dataset, scored_run, promoted_baseline)

# PR tier: in-process, because the multiprocess executor costs ~2 s of process start per step.
pr_eval_job = dg.define_asset_job(
    "pr_eval_job",
    selection=EVAL_SELECTION,
    executor_def=dg.in_process_executor,
    tags={"tier": "pr"},
    config={"ops": {"scored_run": {"config": {"tier": "pr"}}}},
    description="PR tier: regression set + stratified slice, cheap scorers, pass-rate gate, promotion if it passes.",
)

nightly_eval_job = dg.define_asset_job(
    "nightly_eval_job",
    selection=EVAL_SELECTION,
    executor_def=dg.in_process_executor,
    tags={"tier": "nightly"},
    config={"ops": {"scored_run": {"config": {"tier": "nightly", "no_cache": True}}}},
    description="Nightly tier: every case, the tier's repeats, no response cache.",
)


# Judges: calibration sets -> calibration -> drift on the frozen reference set, re-judged every night
# (unpartitioned, so a job of its own), an hour before the nightly eval sweep uses them.
judge_nightly_job = dg.define_asset_job(
    "judge_nightly_job",
    selection=dg.AssetSelection.assets("calibration_sets", "judge_calibration", "judge_drift"),
    executor_def=dg.in_process_executor,
    tags={"tier": "nightly"},
    description="Re-calibrate every judge on its human labels and re-judge the frozen reference set (drift).",
)

judge_nightly_schedule = dg.ScheduleDefinition(
    name="judge_nightly_schedule", job=judge_nightly_job, cron_schedule="0 1 * * *",
    execution_timezone="UTC", default_status=dg.DefaultScheduleStatus.RUNNING,
)


@dg.schedule(job=nightly_eval_job, cron_schedule="0 2 * * *", execution_timezone="UTC",
             default_status=dg.DefaultScheduleStatus.RUNNING)
def nightly_sweep(context: dg.ScheduleEvaluationContext):
    day = context.scheduled_execution_time.strftime("%Y-%m-%d")
    for suite in suite_partitions.get_partition_keys():
        yield dg.RunRequest(run_key=f"{day}-{suite}", partition_key=suite, tags={"tier": "nightly"})


# Dagster's default automation sensor starts STOPPED; this one runs promoted_baseline's condition
# (eager and all blocking checks passed) from the start, so a scored run materialized from the UI
# is promoted when, and only when, its gates passed.
promotion_automation = dg.AutomationConditionSensorDefinition(
    "promotion_automation",
    target=dg.AssetSelection.assets("promoted_baseline"),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
)


def _user_error(result) -> Exception | None:
    """The first step failure, rebuilt as our error type so the CLI exits with the right code."""
    for event in result.all_events:
        if event.event_type_value != "STEP_FAILURE":
            continue
        err = event.step_failure_data.error
        while err is not None:
            name = err.cls_name or ""
            lines = (err.message or "").strip().splitlines()
            text = re.sub(r"^[\w.]*(Error|Exception): ", "", lines[-1] if lines else "")
            if name == "InputError":
                return InputError(None, None, text)
            if name == "InfraError":
                return InfraError(text)
            if name == "DagsterAssetCheckFailedError":
                return None
            if err.cause is None:
                return InfraError(f"step {event.step_key} failed: {name}: {text}")
            err = err.cause
    return None


def run_pr_job_in_process(project, opts) -> tuple[str, str]:
    """Execute the PR (or nightly) job for one suite in this process; returns (run_id, dagster run id)."""
    from definitions import defs

    if opts.suite not in suite_partitions.get_partition_keys():
        raise InputError(None, "--suite", f"{opts.suite!r} is not a suite of this code location "
                         f"({', '.join(suite_partitions.get_partition_keys())})",
                         "put it under datasets/NAME/suite.yaml, or use --engine direct")
    job = defs.resolve_job_def("nightly_eval_job" if opts.tier == "nightly" else "pr_eval_job")
    run_config = {
        "ops": {"scored_run": {"config": {
            "tier": opts.tier, "model": opts.model, "repeats": opts.repeats,
            "no_cache": opts.no_cache, "concurrency": opts.concurrency,
        }}},
        # The CLI prints its own summary; Dagster's event log stays complete in the instance (and the UI).
        "loggers": {"console": {"config": {"log_level": os.environ.get("EVALPLATFORM_DAGSTER_LOG_LEVEL", "CRITICAL")}}},
    }
    with cli_instance() as instance:
        try:
            result = job.execute_in_process(
                run_config=run_config, instance=instance, partition_key=opts.suite, raise_on_error=False,
                tags={"tier": opts.tier, "evalplatform/cli": "run",
                      "started": dt.datetime.now(dt.timezone.utc).isoformat()},
            )
        except Exception as exc:
            # Failures inside the job come back in `result`; one raised here is the instance's storage.
            if type(exc).__module__.startswith(("sqlalchemy", "sqlite3", "alembic")) and os.environ.get("DAGSTER_HOME"):
                raise broken_instance(Path(os.environ["DAGSTER_HOME"]), exc) from exc
            raise
        err = _user_error(result)
        if err is not None:
            raise err
        mats = [e for e in result.all_events if e.event_type_value == "ASSET_MATERIALIZATION"
                and e.asset_key == scored_run.key]
        if not mats:
            raise InfraError(f"dagster run {result.run_id} produced no scored run")
        run_id = mats[-1].event_specific_data.materialization.metadata["run_id"].value
        return run_id, result.run_id
