"""Pipeline SLOs in Dagster: a per-suite asset with one check per SLO, and a run-failure sensor that records scored
runs that died in the history (so the success rate is true)."""

from __future__ import annotations

import dagster as dg

from assets.resources import EvalProject
from evalplatform.history import HistoryStore
from evalplatform.slos import SLO_IDS
from sensors.run_failures import scored_run_failures
from tests.assets.conftest import build_definitions, copy_project, run_job


def _slos(defs, instance):
    asset = defs.get_assets_def(dg.AssetKey(["smoke", "pipeline_slos"]))
    return dg.materialize([asset], instance=instance, resources={"eval_project": defs.resources["eval_project"]})


def test_each_suite_has_a_pipeline_slos_asset_with_a_check_per_slo(tmp_path, project_env, instance):
    root = copy_project(tmp_path / "proj", suites=("smoke",))
    defs = build_definitions(root)
    assert run_job(defs, "smoke_pr", instance).success
    result = _slos(defs, instance)
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert set(checks) == set(SLO_IDS)
    wall = checks["pr_wall_time_p95"]
    # What the check reports and against which budget; whether this machine ran under it is not asserted.
    assert wall.description.split(":")[0] in ("OK", "BREACH") and "(target <= 600 s)" in wall.description
    assert wall.passed == wall.description.startswith("OK: ")
    assert checks["success_rate"].passed
    fresh = checks["freshness_p95"]
    assert not fresh.passed and fresh.severity == dg.AssetCheckSeverity.WARN and fresh.description.startswith("NO_DATA")
    sensors = {s.name: s for s in defs.sensors}
    assert sensors["scored_run_failures"].default_status == dg.DefaultSensorStatus.RUNNING
    assert sensors["pipeline_slo_automation"].default_status == dg.DefaultSensorStatus.RUNNING


def test_a_scored_run_that_died_is_recorded_failed_and_lowers_the_success_rate(tmp_path, project_env, instance):
    root = copy_project(tmp_path / "proj", suites=("smoke",))
    defs = build_definitions(root)
    assert run_job(defs, "smoke_pr", instance).success
    cases = root / "datasets" / "smoke" / "cases.jsonl"
    first = cases.read_text().splitlines()[0]
    cases.write_text(first + "\n" + first + "\n")  # a duplicate case id: the scored-run step fails
    failed = run_job(defs, "smoke_pr", instance)
    assert not failed.success
    event = failed.get_run_failure_event()
    context = dg.build_run_status_sensor_context(
        sensor_name="scored_run_failures", dagster_event=event, dagster_instance=instance,
        dagster_run=instance.get_run_by_id(failed.run_id),
        resources={"eval_project": EvalProject(root=str(root))}).for_run_failure()
    scored_run_failures(context)
    store = HistoryStore(root / ".evalplatform" / "history.duckdb")
    runs = store.list_runs("smoke", status="failed")
    assert runs.height == 1 and runs["dagster_run_id"][0] == failed.run_id
    assert "duplicate case id" in runs["failure"][0]
    scored_run_failures(context)  # the same failure seen twice is recorded once
    assert store.list_runs("smoke", status="failed").height == 1
    cases.write_text(first + "\n")
    checks = {e.check_name: e for e in _slos(defs, instance).get_asset_check_evaluations()}
    rate = checks["success_rate"]
    assert not rate.passed and rate.severity == dg.AssetCheckSeverity.ERROR
    assert rate.description.startswith("BREACH: 50.0%")


def test_a_scored_run_materialization_links_its_html_report_and_shows_cost_estimate_and_flaky_cases(
        tmp_path, project_env, instance):
    from pathlib import Path

    root = copy_project(tmp_path / "proj", suites=("smoke",))
    defs = build_definitions(root)
    result = run_job(defs, "smoke_pr", instance)
    assert result.success
    event = next(e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == "smoke/pr_run")
    meta = {k: v.value for k, v in event.materialization.metadata.items()}
    report = Path(meta["report"])
    assert report.is_file() and report.suffix == ".html"
    page = report.read_text(encoding="utf-8")
    assert meta["history_run_id"] in page and "data:image/png;base64," in page
    assert meta["judge_calls"] == 0 and meta["judge_cost_usd"] == 0.0  # smoke runs deterministic scorers only
    assert meta["estimated_calls"] == meta["model_calls"] > 0
    assert meta["total_cost_usd"] == meta["cost_usd"] + meta["judge_cost_usd"]
    assert meta["flaky_cases"] == 0 and meta["flaky_by_scorer"] == {}
