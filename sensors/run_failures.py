"""Sensor: a Dagster run of a scored run that failed is recorded in the history, so the pipeline's success rate is true.

A run whose step died (a crash, a killed worker, a refused input) may leave its history run `running`, or never
have recorded one: either way the history gets a failed run with the reason. A run that was blocked by its
gate also ends FAILURE in Dagster, but its history run is complete with its decision: nothing changes then.
"""


import dagster as dg

from assets.resources import EvalProject

TIERS = ("pr", "nightly")


def failure_reason(context: dg.RunFailureSensorContext) -> str:
    """The first failed step's error in one line (redacted), or the run's own failure message."""
    from evalplatform.models.redact import redact

    for event in context.get_step_failure_events():
        error = event.step_failure_data.error if event.step_failure_data else None
        if error is not None and error.cls_name != "DagsterAssetCheckFailedError":
            lines = (error.message or "").strip().splitlines()
            return redact(f"dagster run {context.dagster_run.run_id}: step {event.step_key} failed: "
                          f"{lines[-1] if lines else error.cls_name}")[:500]
    message = (context.failure_event.message or "").strip().splitlines() if context.failure_event else []
    return redact(f"dagster run {context.dagster_run.run_id} failed: {message[0] if message else 'no message'}")[:500]


@dg.run_failure_sensor(name="scored_run_failures", default_status=dg.DefaultSensorStatus.RUNNING,
                       minimum_interval_seconds=30,
                       description="Records a failed Dagster run of a suite's tier in the history (marks its run "
                                   "failed with the reason, or records one), so the success-rate SLO counts it.")
def scored_run_failures(context: dg.RunFailureSensorContext, eval_project: EvalProject):
    run = context.dagster_run
    suite, tier = run.tags.get("suite"), run.tags.get("tier")
    if not suite or tier not in TIERS:
        return dg.SkipReason(f"dagster run {run.run_id} is not a scored run of a suite's tier")
    marked = eval_project.store().fail_dagster_run(run.run_id, failure_reason(context), suite=suite, tier=tier)
    if marked is None:
        return dg.SkipReason(f"dagster run {run.run_id}: its history run already finished (a gate that blocked)")
    context.log.info(f"history run {marked} recorded as failed")
    return None
