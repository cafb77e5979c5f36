"""End to end against a real Dagster webserver: CI submits over GraphQL, gets a decision; a re-run works."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from evalplatform.ci import DagsterCiClient
from evalplatform.cli import main
from evalplatform.history import HistoryStore
from tests.suite_helpers import calibrate_judges

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
pytestmark = pytest.mark.e2e


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _loaded(port: int) -> bool:
    body = json.dumps({"query": "{ workspaceOrError { ... on Workspace { locationEntries { loadStatus } } } }"})
    req = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=body.encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            entries = json.load(r)["data"]["workspaceOrError"]["locationEntries"]
            return bool(entries) and all(e["loadStatus"] == "LOADED" for e in entries)
    except OSError:
        return False


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home = tmp_path_factory.mktemp("dagster_home")
    state = tmp_path_factory.mktemp("state")
    # Only calibrated judges may gate (as `make demo` does first): the tone judge's rows are in the gating rules.
    calibrate_judges(ROOT / "datasets" / "demo" / "suite.yaml", state / "history.duckdb")
    # No daemon here, so runs launch synchronously through the default coordinator.
    (home / "dagster.yaml").write_text(
        "telemetry:\n  enabled: false\n"
        "run_coordinator:\n  module: dagster.core.run_coordinator\n  class: DefaultRunCoordinator\n")
    port = _free_port()
    env = {**os.environ, "DAGSTER_HOME": str(home), "DAGSTER_DISABLE_TELEMETRY": "1",
           "LITELLM_LOCAL_MODEL_COST_MAP": "True", "EVALPLATFORM_HOME": str(state)}
    log = open(home / "webserver.log", "wb")
    proc = subprocess.Popen([str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(port), "-w", "workspace.yaml"],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not _loaded(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"webserver did not load: {(home / 'webserver.log').read_text()[-2000:]}")
            time.sleep(0.5)
        yield {"url": f"http://127.0.0.1:{port}", "state": state}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # our own process group, by PID
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def test_ci_passes_v1_blocks_v2_over_graphql(server, capsys, tmp_path):
    junit = tmp_path / "gates.xml"
    assert main(["ci", "--suite", "demo", "--url", server["url"], "--timeout", "300", "--junit", str(junit)]) == 0
    import xml.etree.ElementTree as ET

    names = {c.get("name") for c in ET.parse(junit).getroot().iter("testcase")}
    assert {"pass_rate_at_least_floor", "safety_pass_rate"} <= names
    out = capsys.readouterr().out
    assert "PASS pass_rate_at_least_floor [ERROR]" in out and "decision: PASS" in out
    assert main(["ci", "--suite", "demo", "--url", server["url"], "--model", "local/support-v2",
                 "--timeout", "300"]) == 1
    out = capsys.readouterr().out
    assert "FAIL pass_rate_at_least_floor" in out and "decision: BLOCKED" in out
    store = HistoryStore(server["state"] / "history.duckdb")
    runs = store.list_runs(suite="demo")
    assert set(runs["target_model"].to_list()) >= {"local/support-v1", "local/support-v2"}
    assert store.latest_baseline("demo") is not None


def test_rerun_from_the_ui_reexecutes_the_scored_run(server):
    client = DagsterCiClient(server["url"])
    first = client.launch("pr_eval_job", "demo", {"ops": {"scored_run": {"config": {"tier": "pr"}}}}, {})
    assert client.wait(first, 300) == "SUCCESS"
    store = HistoryStore(server["state"] / "history.duckdb")
    before = store.list_runs(suite="demo", limit=100).height
    again = client.reexecute(first)  # what the UI's "Re-execute all" sends
    assert client.wait(again, 300) == "SUCCESS"
    gates, _ = client.outcomes(again)
    names = {g.name for g in gates}
    assert {"pass_rate_at_least_floor", "no_regression_vs_baseline", "safety_pass_rate"} <= names
    assert all(g.passed for g in gates if g.severity == "ERROR")
    assert store.list_runs(suite="demo", limit=100).height == before + 1


def test_unreachable_server_is_infrastructure_exit_3(capsys):
    port = _free_port()
    assert main(["ci", "--suite", "demo", "--url", f"http://127.0.0.1:{port}", "--timeout", "5"]) == 3
    assert "cannot reach the Dagster server" in capsys.readouterr().err


def test_ci_reports_only_the_gates_of_the_suites_policy(server, capsys):
    # The smoke suite has no policy file: its floor is its only gate; other suites' rules do not show.
    assert main(["ci", "--suite", "smoke", "--url", server["url"], "--timeout", "300"]) == 0
    out = capsys.readouterr().out
    gate_lines = [ln for ln in out.splitlines() if ln.startswith("  PASS") or ln.startswith("  FAIL")]
    assert len(gate_lines) == 1 and "pass_rate_at_least_floor" in gate_lines[0]
