"""Schedules start running, request one run per suite per night, and dedupe by run key."""

from __future__ import annotations

import datetime as dt

import dagster as dg

from definitions import defs
from sensors.jobs import judge_nightly_schedule, nightly_sweep


def test_schedules_start_running():
    for s in (nightly_sweep, judge_nightly_schedule):
        assert s.default_status == dg.DefaultScheduleStatus.RUNNING
    assert judge_nightly_schedule.cron_schedule == "0 1 * * *" and nightly_sweep.cron_schedule == "0 2 * * *"


def test_nightly_sweep_requests_one_keyed_run_per_suite():
    when = dt.datetime(2026, 11, 25, 2, 0, tzinfo=dt.timezone.utc)
    requests = list(nightly_sweep(dg.build_schedule_context(scheduled_execution_time=when)))
    assert [r.partition_key for r in requests] == ["demo", "smoke"]
    assert [r.run_key for r in requests] == ["2026-11-25-demo", "2026-11-25-smoke"]
    assert all(r.tags["tier"] == "nightly" for r in requests)


def test_nightly_jobs_resolve():
    job = defs.resolve_job_def("nightly_eval_job")
    assert job.executor_def.name == "in_process"
    judge_job = defs.resolve_job_def("judge_nightly_job")
    keys = {k.to_user_string() for k in judge_job.asset_layer.executable_asset_keys}
    assert keys == {"calibration_sets", "judge_calibration", "judge_drift"}


def test_promotion_automation_sensor_runs_from_the_start():
    sensor = defs.resolve_sensor_def("promotion_automation")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
