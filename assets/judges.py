"""Judge assets: calibration sets -> judge calibration (gated on the floors) and the nightly judge drift check."""


import dagster as dg

from assets.resources import EvalProject
from evalplatform.judges.calibrate import calibrate_judge, gate_status, store_report
from evalplatform.judges.drift import drift_against_previous
from evalplatform.judges.suites import project_judges
from evalplatform.provenance import canonical_json, sha256_text


def _unique_judges(project):
    """Each judge once (by identity), with the suites that use it."""
    seen: dict[str, tuple[object, list[str]]] = {}
    for suite, judge in project_judges(project):
        key = judge.identity().key
        seen.setdefault(key, (judge, []))[1].append(suite)
    return list(seen.values())


@dg.asset(
    group_name="judges",
    kinds={"polars"},
    description="Human-labelled calibration sets (datasets/calibration/<criterion>.jsonl) of every judge the suites "
    "use, validated row by row; the data version is the sha256 of their canonical content.",
)
def calibration_sets(eval_project: EvalProject) -> dg.Output[dict]:
    sets = {}
    for judge, _ in _unique_judges(eval_project.project()):
        cal = judge.calibration_set()
        sets[str(cal.path)] = {"criterion": cal.criterion, "version": cal.version, "n": len(cal.items),
                               "n_fail": cal.n_fail}
    version = sha256_text(canonical_json(sets))
    return dg.Output(sets, data_version=dg.DataVersion(version), metadata={
        "sets": dg.MetadataValue.json(sets), "n_sets": len(sets), "version": version})


@dg.asset(
    group_name="judges",
    kinds={"duckdb"},
    pool="history_writer",
    deps=[calibration_sets],
    description="Each judge run on its calibration set: confusion matrix, TPR/TNR, FAIL precision/recall/F1, kappa "
    "with intervals, self-consistency; stored in the history's `calibrations` table, bound to the judge identity.",
)
def judge_calibration(context: dg.AssetExecutionContext, eval_project: EvalProject) -> dg.Output[dict]:
    project, store = eval_project.project(), eval_project.store()
    out = {}
    for judge, suites in _unique_judges(project):
        report = calibrate_judge(judge, cache_dir=project.cache_dir)
        store_report(store, report)
        m = report.metrics
        out[report.identity_key] = {
            "judge": report.judge_name, "suites": suites, "calibration_id": report.calibration_id,
            "allowed": report.allowed, "reasons": report.reasons, "fail_recall_lb": m.get("fail_recall_lb"),
            "kappa_lb": m.get("kappa_lb"), "agreement": m.get("agreement"), "table": m["table"],
        }
        context.log.info(f"{report.identity_key}: {'allowed' if report.allowed else 'refused'} {report.reasons}")
    return dg.Output(out, metadata={"judges": dg.MetadataValue.json(out), "n_judges": len(out)})


@dg.asset_check(asset=judge_calibration, blocking=True, description=(
    "Every judge a suite relies on to gate has a calibration of its current identity (model, rubric version, prompt "
    "sha256) whose FAIL-recall and kappa lower bounds clear the floors; a changed judge is stale until recalibrated."))
def judge_allowed_to_gate(eval_project: EvalProject) -> dg.AssetCheckResult:
    store = eval_project.store()
    rows, blocking = {}, []
    for suite, judge in project_judges(eval_project.project()):
        st = gate_status(store, judge)
        rows[f"{suite}/{judge.id}"] = {"status": st.status, "advisory": judge.advisory, "reasons": st.reasons,
                                       "identity": st.identity_key}
        if not st.allowed and not judge.advisory:
            blocking.append(f"{suite}/{judge.id} {st.status}: {'; '.join(st.reasons)}")
    return dg.AssetCheckResult(
        passed=not blocking, severity=dg.AssetCheckSeverity.ERROR,
        metadata={"judges": dg.MetadataValue.json(rows)},
        description="all gating judges calibrated and above the floors" if not blocking else " | ".join(blocking),
    )


@dg.asset(
    group_name="judges",
    kinds={"duckdb"},
    pool="history_writer",
    deps=[judge_calibration],
    description="Nightly: each judge re-judges its frozen reference set (the calibration set); agreement with the "
    "humans is compared item by item with the previous judgment (McNemar, overall and per class).",
)
def judge_drift(context: dg.AssetExecutionContext, eval_project: EvalProject) -> dg.Output[dict]:
    project, store = eval_project.project(), eval_project.store()
    out = {}
    for judge, _ in _unique_judges(project):
        report = calibrate_judge(judge, cache_dir=None, purpose="drift", self_consistency_k=1)
        store_report(store, report)
        out[report.identity_key] = drift_against_previous(store, report)
    return dg.Output(out, metadata={"drift": dg.MetadataValue.json(out)})


@dg.asset_check(asset=judge_drift, blocking=False, description=(
    "No judge's agreement with the human labels on the frozen reference set moved significantly (mid-p McNemar "
    "< 0.05, overall or within a class) since its previous judgment."))
def judge_agreement_stable(judge_drift: dict) -> dg.AssetCheckResult:
    drifted = {k: v for k, v in judge_drift.items() if v.get("drifted")}
    return dg.AssetCheckResult(
        passed=not drifted, severity=dg.AssetCheckSeverity.WARN,
        metadata={"drift": dg.MetadataValue.json(judge_drift)},
        description="no drift" if not drifted else "drift: " + ", ".join(
            f"{k} agreement {v['agreement_before']:.3f} -> {v['agreement_now']:.3f} (p={v['p_midp']:.3g})"
            for k, v in drifted.items()),
    )


JUDGE_ASSETS = [calibration_sets, judge_calibration, judge_drift]
JUDGE_CHECKS = [judge_allowed_to_gate, judge_agreement_stable]
