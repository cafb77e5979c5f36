"""Under a real dagster-daemon: trace files dropped into a suite's folder are picked up by the RUNNING trace sensor,
one run per file; the good file reaches the monitor in the DuckDB history, the bad one is quarantined."""

from __future__ import annotations

import json
import os
import shutil
import time

import pytest

from tests.e2e.procs import BIN, ROOT, start, stop
from tests.evalplatform.traces.helpers import monitored_project, plain_row, write_jsonl

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
TIMEOUT_S = 300


def _runs(home):
    import dagster as dg

    with dg.DagsterInstance.from_config(str(home)) as instance:
        return {r.tags.get("trace_file"): r.status.value for r in instance.get_runs()
                if r.job_name == "demo_traces"}


def test_the_daemon_runs_the_trace_sensor_and_its_runs(tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    project = monitored_project(tmp_path / "project", """
monitors:
  traces: {folder: traces/demo, settle_seconds: 1}
  slos:
    - {id: dates_in_iso_format, criterion: dates, min_pass_rate: 0.90}
""")
    folder = project / "traces" / "demo"
    write_jsonl(folder / "batch-001.jsonl", [plain_row(i, output="Your trial ends on 03/06/2026.", feedback="down",
                                                        tags=["category:dates"]) for i in range(40)])
    write_jsonl(folder / "batch-002.jsonl", [plain_row(0), {"trace_id": "x"}])  # no input, no timestamp
    past = time.time_ns() - 60 * 10**9
    for f in folder.iterdir():
        os.utime(f, ns=(past, past))
    env = {k: v for k, v in os.environ.items() if k not in ("EVALPLATFORM_HISTORY", "EVALPLATFORM_HOME",
                                                            "EVALPLATFORM_CODE_LOCATION")}
    env.update(DAGSTER_HOME=str(home), EVALPLATFORM_PROJECT=str(project), DAGSTER_DISABLE_TELEMETRY="1",
               LITELLM_LOCAL_MODEL_COST_MAP="True", GX_ANALYTICS_ENABLED="false")
    log = tmp_path / "daemon.log"
    daemon = start([str(BIN / "dagster-daemon"), "run", "-w", str(ROOT / "workspace.yaml")], env=env, cwd=ROOT,
                   log=log)
    try:
        deadline = time.monotonic() + TIMEOUT_S
        runs: dict = {}
        while time.monotonic() < deadline:
            if daemon.poll() is not None:
                pytest.fail(f"dagster-daemon exited:\n{log.read_text(errors='replace')[-3000:]}")
            runs = _runs(home) if (home / "storage").exists() else {}
            if len(runs) == 2 and all(s in ("SUCCESS", "FAILURE", "CANCELED") for s in runs.values()):
                break
            time.sleep(2)
        assert runs == {"batch-001.jsonl": "SUCCESS", "batch-002.jsonl": "FAILURE"}, (
            runs, log.read_text(errors="replace")[-3000:])
    finally:
        stop(daemon)
    from evalplatform.history import HistoryStore
    from evalplatform.history.monitoring import MonitoringStore

    store = MonitoringStore(HistoryStore(project / ".evalplatform" / "history.duckdb"))
    assert {b["file"]: b["status"] for b in store.batches("demo")} == {"batch-001.jsonl": "accepted",
                                                                        "batch-002.jsonl": "quarantined"}
    values = store.monitor_values("demo", latest_only=True)
    alert = values.filter(values["slo_id"] == "dates_in_iso_format").row(0, named=True)
    assert alert["status"] == "ALERT" and alert["n_population"] == 40
    report = json.loads(next((folder / ".quarantine").glob("*.report.json")).read_text())
    assert {p["column"] for p in report["problems"]} >= {"input"}
