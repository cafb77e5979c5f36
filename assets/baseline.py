"""The promoted baseline: the last scored run whose blocking gates passed, recorded in the history."""


import dagster as dg

from assets.partitions import suite_partitions
from assets.resources import EvalProject


@dg.asset(
    partitions_def=suite_partitions,
    group_name="evaluation",
    pool="history_writer",
    # A judge refused by its calibration check must also hold back promotion (through automation).
    deps=["judge_calibration"],
    automation_condition=dg.AutomationCondition.eager() & dg.AutomationCondition.all_deps_blocking_checks_passed(),
    output_required=False,
    description="Promotes the latest complete scored run of the suite to baseline; blocked by any failed "
    "blocking gate on the scored run (in the same run, and across runs through its automation condition), "
    "and only when the run's decision of record is PASS.",
)
def promoted_baseline(context: dg.AssetExecutionContext, eval_project: EvalProject, scored_run: dict):
    store = eval_project.store()
    run = store.get_run(scored_run["run_id"])
    if run is None or run["status"] != "complete":
        raise dg.Failure(f"run {scored_run['run_id']!r} is not a complete run in {store.path}")
    if run.get("decision") != "PASS":
        # NO_DATA (nothing demonstrated, e.g. an advisory_only policy) fails no blocking check, yet is no evidence.
        context.log.info(f"run {run['run_id']}: decision {run.get('decision')}, not PASS: not promoted")
        return
    store.promote(run["suite"], run["run_id"], reason=f"gates passed in dagster run {context.run_id}")
    yield dg.Output({"run_id": run["run_id"], "suite": run["suite"]},
                    metadata={"run_id": run["run_id"], "model": run["target_model"] or ""})
