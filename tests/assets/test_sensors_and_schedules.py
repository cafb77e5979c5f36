"""The dataset sensor starts from the history and runs a suite's PR tier once per new version; schedules per suite."""

from __future__ import annotations

import datetime as dt
import json

import dagster as dg

from definitions import build_definitions, defs
from evalplatform.history import HistoryStore
from tests.assets.conftest import copy_project, run_job


def _tick(definitions: dg.Definitions, cursor=None):
    sensor = definitions.resolve_sensor_def("dataset_change_sensor")
    ctx = dg.build_sensor_context(cursor=cursor, resources=definitions.resources, definitions=definitions)
    return sensor(ctx)


def test_a_new_dataset_version_triggers_its_suites_pr_job_once(tmp_path, project_env):
    root = copy_project(tmp_path / "proj", suites=("smoke",))
    definitions = build_definitions(root)
    first = _tick(definitions)
    assert [(r.job_name, r.tags["suite"], r.tags["tier"]) for r in first.run_requests] == [("smoke_pr", "smoke", "pr")]
    again = _tick(definitions, first.cursor)
    assert not again.run_requests and "no dataset changed" in again.skip_reason.skip_message
    cases = root / "datasets" / "smoke" / "cases.jsonl"
    rows = [json.loads(x) for x in cases.read_text().splitlines()]
    rows[0]["question"] += " (reworded)"
    cases.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    changed = _tick(definitions, again.cursor)
    assert [r.job_name for r in changed.run_requests] == ["smoke_pr"]
    assert changed.run_requests[0].run_key != first.run_requests[0].run_key


def test_starting_the_server_does_not_rerun_a_version_already_evaluated(tmp_path, project_env, instance):
    root = copy_project(tmp_path / "proj", suites=("smoke",))
    definitions = build_definitions(root)
    assert run_job(definitions, "smoke_pr", instance).success
    # A fresh sensor (no cursor: a server that just started) finds the version in the history.
    fresh = _tick(definitions)
    assert not fresh.run_requests and "no dataset changed" in fresh.skip_reason.skip_message
    assert HistoryStore(root / ".evalplatform" / "history.duckdb").latest_run("smoke") is not None


def test_a_broken_suite_is_reported_on_the_tick_not_run(tmp_path, project_env):
    root = copy_project(tmp_path / "proj", suites=("demo", "smoke"))
    definitions = build_definitions(root)
    (root / "datasets" / "smoke" / "cases.jsonl").write_text('{"id": "x"}\n{"id": "x"}\n')
    result = _tick(definitions)
    assert [r.tags["suite"] for r in result.run_requests] == ["demo"]


def test_schedules_start_running_one_keyed_nightly_run_per_suite():
    when = dt.datetime(2026, 11, 25, 2, 0, tzinfo=dt.timezone.utc)
    for suite in ("demo", "smoke"):
        schedule = defs.resolve_schedule_def(f"{suite}_nightly_schedule")
        assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
        assert schedule.cron_schedule == "0 2 * * *" and schedule.job_name == f"{suite}_nightly"
        request = schedule(dg.build_schedule_context(scheduled_execution_time=when))
        assert request.run_key == f"2026-11-25-{suite}" and request.tags["tier"] == "nightly"
    judges = defs.resolve_schedule_def("judge_nightly_schedule")
    assert judges.cron_schedule == "0 1 * * *" and judges.default_status == dg.DefaultScheduleStatus.RUNNING


def test_sensors_start_running():
    for name in ("dataset_change_sensor", "promotion_automation"):
        assert defs.resolve_sensor_def(name).default_status == dg.DefaultSensorStatus.RUNNING
