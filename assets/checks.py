"""Gates as asset checks on the scored run: a failed blocking gate stops the promotion downstream."""


import dagster as dg

from assets.resources import EvalProject
from assets.scored_runs import scored_run
from evalplatform.pipeline import gate_from_history


@dg.asset_check(asset=scored_run, blocking=True, description=(
    "The one-sided lower confidence bound (Wilson; cluster-robust with repeats) of the case pass rate "
    "is at least the suite's floor. Errors are not passes; too many errors, no data or an inconclusive "
    "bound block too."))
def pass_rate_at_least_floor(eval_project: EvalProject, scored_run: dict) -> dg.AssetCheckResult:
    gate, _ = gate_from_history(eval_project.project(), scored_run["run_id"], eval_project.store())
    meta = {k: v for k, v in gate.as_dict().items() if v is not None}
    meta["run_id"] = scored_run["run_id"]
    return dg.AssetCheckResult(
        passed=not gate.blocks,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata=meta,
        description=f"{gate.status}: {gate.reason}",
    )
