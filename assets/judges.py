"""Shared judge assets: one calibration set per labels file, one calibration per judge (gated), nightly drift.

judges/calibration_set_<name>   human labels (datasets/calibration/<name>.jsonl), data version = content sha256
judges/<judge>                  the judge run on its labels: confusion matrix, kappa, FAIL recall with intervals;
                                check judge_allowed_to_gate (blocking where a suite relies on the judge to gate)
judges/judge_drift              nightly: every judge re-judges its frozen reference set; check judge_agreement_stable
"""


import re
from dataclasses import dataclass, field

import dagster as dg

from assets.catalog import Catalog
from assets.resources import EvalProject

GROUP = "judges"
POOL = "history_writer"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]+", "_", text).strip("_").lower()


@dataclass
class JudgeUse:
    judge: object                 # a JudgeScorerBase, as configured in the first suite that uses it
    suites: list[str] = field(default_factory=list)
    gating: bool = False          # some suite uses it without `advisory: true`


@dataclass
class JudgeDefinitions:
    assets: list = field(default_factory=list)
    checks: list = field(default_factory=list)
    keys: dict[str, dg.AssetKey] = field(default_factory=dict)   # judge name -> calibration asset key
    job: object | None = None          # the judges' nightly asset job
    schedule: dg.ScheduleDefinition | None = None


def judge_uses(catalog: Catalog) -> dict[str, JudgeUse]:
    from evalplatform.judges.suites import judges_in_suite

    uses: dict[str, JudgeUse] = {}
    for entry in catalog.entries:
        for judge in judges_in_suite(entry.suite):
            use = uses.setdefault(judge.judge_name, JudgeUse(judge))
            use.suites.append(entry.name)
            use.gating |= not judge.advisory
    return uses


def _calibration_set_asset(name: str, judge) -> dg.AssetsDefinition:
    path = str(judge.calibration_path())

    @dg.asset(key=dg.AssetKey([GROUP, f"calibration_set_{name}"]), group_name=GROUP, kinds={"polars"},
              description=f"Human labels for judge calibration: {path} (validated row by row; data version = "
                          "sha256 of the canonical content).")
    def _set(context: dg.AssetExecutionContext) -> dg.Output[dict]:
        from evalplatform.errors import EvalPlatformError
        from assets.suite_assets import as_failure

        try:
            cal = judge.calibration_set()
        except EvalPlatformError as err:
            raise as_failure(err) from None
        value = {"path": path, "criterion": cal.criterion, "version": cal.version, "n": len(cal.items),
                 "n_fail": cal.n_fail}
        return dg.Output(value, data_version=dg.DataVersion(cal.version),
                         metadata={"n_items": len(cal.items), "n_fail": cal.n_fail, "version": cal.version})

    return _set


def _calibration_asset(name: str, use: JudgeUse, set_key: dg.AssetKey) -> tuple:
    key = dg.AssetKey([GROUP, _slug(name)])
    suites = ", ".join(use.suites)

    @dg.asset(key=key, group_name=GROUP, deps=[set_key], kinds={"duckdb"}, pool=POOL,
              description=f"Judge {name} (used by {suites}) run on its calibration set: confusion matrix, TPR/TNR, "
                          "FAIL precision/recall, kappa with intervals, self-consistency; stored in the history, bound "
                          "to the judge identity (model, rubric version, prompt sha256).")
    def _calibrate(context: dg.AssetExecutionContext, eval_project: EvalProject) -> dg.Output[dict]:
        from evalplatform.errors import EvalPlatformError
        from evalplatform.judges.calibrate import calibrate_judge, store_report
        from assets.suite_assets import as_failure

        try:
            report = calibrate_judge(use.judge, cache_dir=eval_project.project().cache_dir)
            store_report(eval_project.store(), report)
        except EvalPlatformError as err:
            raise as_failure(err) from None
        m = report.metrics
        value = {"judge": name, "identity": report.identity_key, "calibration_id": report.calibration_id,
                 "allowed": report.allowed, "reasons": report.reasons}
        return dg.Output(value, metadata={
            "identity": report.identity_key, "allowed": report.allowed,
            "fail_recall_lb": m.get("fail_recall_lb") or 0.0, "kappa_lb": m.get("kappa_lb") or 0.0,
            "agreement": m.get("agreement") or 0.0, "n_items": m["n"],
            "confusion (judge rows x human cols: FAIL, PASS)": dg.MetadataValue.json(m["table"]),
            "reasons": dg.MetadataValue.json(report.reasons)})

    @dg.asset_check(asset=key, name="judge_allowed_to_gate", blocking=use.gating, description=(
        "The judge's current identity has a calibration whose FAIL-recall and kappa lower bounds clear its floors; "
        "a changed judge is stale until recalibrated" + ("" if use.gating else " (advisory everywhere: a warning)")))
    def _allowed(context: dg.AssetCheckExecutionContext, eval_project: EvalProject) -> dg.AssetCheckResult:
        from evalplatform.judges.calibrate import gate_status

        status = gate_status(eval_project.store(), use.judge)
        return dg.AssetCheckResult(
            passed=status.allowed,
            severity=dg.AssetCheckSeverity.ERROR if use.gating else dg.AssetCheckSeverity.WARN,
            description=f"{status.status}" + (f": {'; '.join(status.reasons)}" if status.reasons else ""),
            metadata={"status": status.status, "identity": status.identity_key, "suites": suites})

    return key, _calibrate, _allowed


def build_judges(catalog: Catalog) -> JudgeDefinitions:
    out = JudgeDefinitions()
    uses = judge_uses(catalog)
    if not uses:
        return out
    sets: dict[str, dg.AssetKey] = {}
    for name, use in sorted(uses.items()):
        path = use.judge.calibration_path()
        set_name = _slug(path.stem)
        if str(path) not in sets:
            asset = _calibration_set_asset(set_name, use.judge)
            sets[str(path)] = asset.key
            out.assets.append(asset)
        key, calibrate, allowed = _calibration_asset(name, use, sets[str(path)])
        out.assets.append(calibrate)
        out.checks.append(allowed)
        out.keys[name] = key

    @dg.asset(key=dg.AssetKey([GROUP, "judge_drift"]), group_name=GROUP, deps=list(out.keys.values()),
              kinds={"duckdb"}, pool=POOL,
              description="Nightly: every judge re-judges its frozen reference set (its calibration set); agreement with "
                          "the humans is compared item by item with its previous judgment (McNemar).")
    def judge_drift(context: dg.AssetExecutionContext, eval_project: EvalProject) -> dg.Output[dict]:
        from evalplatform.judges.calibrate import calibrate_judge, store_report
        from evalplatform.judges.drift import drift_against_previous

        store, result = eval_project.store(), {}
        for name, use in sorted(uses.items()):
            report = calibrate_judge(use.judge, cache_dir=None, purpose="drift", self_consistency_k=1)
            store_report(store, report)
            result[name] = drift_against_previous(store, report)
        return dg.Output(result, metadata={"drift": dg.MetadataValue.json(result)})

    @dg.asset_check(asset=judge_drift, name="judge_agreement_stable", blocking=False, description=(
        "No judge's agreement with the human labels on the frozen reference set moved significantly (mid-p McNemar "
        "< 0.05, overall or within a class) since its previous judgment."))
    def judge_agreement_stable(judge_drift: dict) -> dg.AssetCheckResult:
        drifted = {k: v for k, v in judge_drift.items() if v.get("drifted")}
        return dg.AssetCheckResult(
            passed=not drifted, severity=dg.AssetCheckSeverity.WARN,
            metadata={"drift": dg.MetadataValue.json(judge_drift)},
            description="no drift" if not drifted else "drift: " + ", ".join(
                f"{k} agreement {v['agreement_before']:.3f} -> {v['agreement_now']:.3f} (p={v['p_midp']:.3g})"
                for k, v in drifted.items()))

    out.assets.append(judge_drift)
    out.checks.append(judge_agreement_stable)
    out.job = dg.define_asset_job("judge_nightly_job", selection=dg.AssetSelection.groups(GROUP),
                                  tags={"tier": "nightly"},
                                  description="Re-calibrate every judge on its human labels and re-judge the frozen "
                                              "reference set (drift).")
    out.schedule = dg.ScheduleDefinition(name="judge_nightly_schedule", job=out.job, cron_schedule="0 1 * * *",
                                         execution_timezone="UTC", default_status=dg.DefaultScheduleStatus.RUNNING)
    return out
