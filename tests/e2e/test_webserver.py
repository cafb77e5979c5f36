"""End to end against a real Dagster webserver: CI submits over GraphQL, gets a decision; a re-run works."""

from __future__ import annotations

import os

import pytest

from evalplatform.ci import DagsterCiClient
from evalplatform.cli import main
from evalplatform.history import HistoryStore
from tests.e2e.procs import BIN, ROOT, free_port, graphql_loaded, start, stop, wait_until
from tests.suite_helpers import calibrate_judges

pytestmark = pytest.mark.e2e


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
    port = free_port()
    env = {**os.environ, "DAGSTER_HOME": str(home), "DAGSTER_DISABLE_TELEMETRY": "1",
           "LITELLM_LOCAL_MODEL_COST_MAP": "True", "EVALPLATFORM_HOME": str(state),
           "EVALPLATFORM_BRANCH": "main"}  # the demo's policy promotes passing runs made on main
    log = home / "webserver.log"
    proc = start([str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(port), "-w", "workspace.yaml"],
                 env=env, cwd=ROOT, log=log)
    try:
        wait_until(lambda: graphql_loaded(port), timeout_s=180, what="dagster-webserver", alive=proc, log=log)
        yield {"url": f"http://127.0.0.1:{port}", "state": state}
    finally:
        stop(proc)  # the webserver, and the code server it started, by PID


def test_ci_passes_v1_blocks_v2_over_graphql(server, capsys, tmp_path):
    junit = tmp_path / "gates.xml"
    assert main(["ci", "--suite", "demo", "--url", server["url"], "--timeout", "300", "--junit", str(junit)]) == 0
    import xml.etree.ElementTree as ET

    names = {c.get("name") for c in ET.parse(junit).getroot().iter("testcase")}
    assert {"pass_rate_at_least_floor", "safety_pass_rate"} <= names
    out = capsys.readouterr().out
    assert "PASS pass_rate_at_least_floor [ERROR]" in out and "PASS release_decision_passed" in out
    assert "decision: PASS" in out
    assert main(["ci", "--suite", "demo", "--url", server["url"], "--model", "local/support-v2",
                 "--timeout", "300"]) == 1
    out = capsys.readouterr().out
    assert "FAIL pass_rate_at_least_floor" in out and "decision: BLOCKED" in out
    store = HistoryStore(server["state"] / "history.duckdb")
    runs = store.list_runs(suite="demo")
    assert set(runs["target_model"].to_list()) >= {"local/support-v1", "local/support-v2"}
    assert store.latest_baseline("demo", "pr") is not None


def test_ci_sends_every_run_option(server, capsys):
    # --repeats 2 --no-cache reach the scored run: two repeats per case, no cache hit.
    assert main(["ci", "--suite", "smoke", "--url", server["url"], "--timeout", "300", "--repeats", "2",
                 "--no-cache", "--concurrency", "3", "--seed", "11"]) == 0
    store = HistoryStore(server["state"] / "history.duckdb")
    run = store.latest_run("smoke")
    assert run["repeats"] == 2 and run["seed"] == 11 and run["cache_hits"] == 0
    request = run["provenance"]["request"]
    assert (request["repeats"], request["no_cache"], request["concurrency"], request["seed"]) == (2, True, 3, 11)


def test_rerun_from_the_ui_reexecutes_the_scored_run(server):
    client = DagsterCiClient(server["url"])
    first = client.launch("demo_pr", None, {"ops": {"demo__pr_run": {"config": {}}}}, {})
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
    port = free_port()
    assert main(["ci", "--suite", "demo", "--url", f"http://127.0.0.1:{port}", "--timeout", "5"]) == 3
    assert "cannot reach the Dagster server" in capsys.readouterr().err


def test_ci_reports_only_the_gates_of_the_suites_policy(server, capsys):
    # The smoke suite has no policy file: its floor (and the decision) are its only gates.
    assert main(["ci", "--suite", "smoke", "--url", server["url"], "--timeout", "300"]) == 0
    out = capsys.readouterr().out
    gate_lines = [ln for ln in out.splitlines() if ln.startswith("  PASS") or ln.startswith("  FAIL")]
    assert sorted(ln.split()[1] for ln in gate_lines) == ["cases_pass_great_expectations",
                                                          "cases_pass_great_expectations", "pass_rate_at_least_floor",
                                                          "regression_set_is_append_only", "release_decision_passed"]


def test_an_error_inside_the_run_comes_back_typed_with_its_field(server):
    # A request the server refuses inside the scored run (repeats 0 slips past no client here): the error
    # crosses Dagster as a typed record and comes back as the same InputError, field and all.
    from evalplatform.ci import user_error
    from evalplatform.errors import InputError

    from evalplatform.ci import DagsterCiClient

    client = DagsterCiClient(server["url"])
    run_id = client.launch("smoke_pr", None, {"ops": {"smoke__pr_run": {"config": {"repeats": 0}}}}, {})
    assert client.wait(run_id, 300) == "FAILURE"
    _, failures = client.outcomes(run_id)
    err = user_error(failures)
    assert isinstance(err, InputError)
    assert err.field == "run config: repeats" and "greater than or equal to 1" in err.message
