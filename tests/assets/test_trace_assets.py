"""The trace sensor (new files -> partitions and keyed runs, cursor, settle time) and the trace job's assets and checks."""

from __future__ import annotations

import json
import os
import time

import dagster as dg

from definitions import build_definitions
from evalplatform.history import HistoryStore
from evalplatform.history.monitoring import MonitoringStore
from tests.evalplatform.traces.helpers import monitored_project, plain_row, write_jsonl

SENSOR = "demo_trace_files_sensor"
PARTITIONS = "demo_trace_files"


def _tick(definitions, instance, cursor=None):
    sensor = definitions.resolve_sensor_def(SENSOR)
    return sensor(dg.build_sensor_context(instance=instance, cursor=cursor, definitions=definitions))


def _age(path, seconds=60):
    """Make a file look written `seconds` ago (past the settle time), keeping its size."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, time.time_ns() - int(seconds * 1e9)))


def _project(tmp_path):
    monitors = """
monitors:
  traces: {folder: traces/demo, settle_seconds: 5, ignore: ["current-*"]}
  slos:
    - {id: overall_pass_rate, min_pass_rate: 0.85}
    - {id: dates_in_iso_format, criterion: dates, min_pass_rate: 0.90}
"""
    return monitored_project(tmp_path / "proj", monitors)


def test_the_sensor_requests_one_keyed_run_per_new_file_once(tmp_path, project_env, instance):
    root = _project(tmp_path)
    definitions = build_definitions(root)
    assert definitions.resolve_sensor_def(SENSOR).default_status == dg.DefaultSensorStatus.RUNNING
    folder = root / "traces" / "demo"
    assert "does not exist" in _tick(definitions, instance).skip_reason.skip_message
    for name in ("a.jsonl", "b.parquet", "current-000.jsonl", ".hidden.jsonl", "notes.txt"):
        write_jsonl(folder / name, [plain_row(0)])
        _age(folder / name)
    write_jsonl(folder / "fresh.jsonl", [plain_row(0)])  # still being written: waits for a later tick
    first = _tick(definitions, instance)
    assert sorted(r.partition_key for r in first.run_requests) == ["a.jsonl", "b.parquet"]
    assert all(r.job_name in (None, "demo_traces") for r in first.run_requests)
    request = first.dynamic_partitions_requests[0]
    assert request.partitions_def_name == PARTITIONS and sorted(request.partition_keys) == ["a.jsonl", "b.parquet"]
    instance.add_dynamic_partitions(PARTITIONS, list(request.partition_keys))
    again = _tick(definitions, instance, first.cursor)
    assert not again.run_requests and "1 still being written" in again.skip_reason.skip_message
    _age(folder / "fresh.jsonl", 30)
    third = _tick(definitions, instance, again.cursor)
    assert [r.partition_key for r in third.run_requests] == ["fresh.jsonl"]
    # A corrected file dropped again: same partition, a new run key; no new partition is added.
    write_jsonl(folder / "a.jsonl", [plain_row(0), plain_row(1)])
    _age(folder / "a.jsonl", 10)
    fourth = _tick(definitions, instance, third.cursor)
    assert [r.partition_key for r in fourth.run_requests] == ["a.jsonl"]
    assert fourth.run_requests[0].run_key != next(r.run_key for r in first.run_requests if r.partition_key == "a.jsonl")
    assert not fourth.dynamic_partitions_requests


def _run(definitions, instance, key):
    job = definitions.resolve_job_def("demo_traces")
    result = job.execute_in_process(partition_key=key, instance=instance, raise_on_error=False)
    return result, {c.check_name: c for c in result.get_asset_check_evaluations()}


def test_a_good_file_flows_to_the_monitor_and_a_bad_one_stops_at_its_check(tmp_path, project_env, instance):
    root = _project(tmp_path)
    definitions = build_definitions(root)
    folder = root / "traces" / "demo"
    write_jsonl(folder / "good.jsonl", [plain_row(i, output="Your trial ends on 03/06/2026.", feedback="down",
                                                  tags=["category:dates"]) for i in range(60)])
    write_jsonl(folder / "bad.jsonl", [plain_row(0), plain_row(0)])  # duplicate trace ids
    instance.add_dynamic_partitions(PARTITIONS, ["good.jsonl", "bad.jsonl"])

    good, checks = _run(definitions, instance, "good.jsonl")
    assert good.success
    assert {e.asset_key.to_user_string() for e in good.get_asset_materialization_events()} == {
        f"demo/{a}" for a in ("trace_batch", "trace_sample", "scored_sample", "production_monitor", "review_queue",
                              "failure_coverage")}
    assert checks["trace_batch_is_valid"].passed
    slo = checks["production_within_slos"]
    assert not slo.passed and slo.severity == dg.AssetCheckSeverity.ERROR and "dates_in_iso_format" in slo.description
    assert checks["failure_categories_covered"].passed

    bad, checks = _run(definitions, instance, "bad.jsonl")
    assert not bad.success
    check = checks["trace_batch_is_valid"]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert "duplicate" in check.description and ".quarantine" in check.metadata["quarantine"].value
    assert {e.asset_key.to_user_string() for e in bad.get_asset_materialization_events()} == {"demo/trace_batch"}
    store = MonitoringStore(HistoryStore(root / ".evalplatform" / "history.duckdb"))
    statuses = {b["file"]: b["status"] for b in store.batches("demo")}
    assert statuses == {"good.jsonl": "accepted", "bad.jsonl": "quarantined"}
    report = json.loads(next((folder / ".quarantine").glob("*bad.jsonl.report.json")).read_text())
    assert report["problems"][0]["column"] == "trace_id"
