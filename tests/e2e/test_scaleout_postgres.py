"""Scale-out on a real engine: deploy/dagster.postgres.yaml against a real PostgreSQL server, a webserver and
a daemon draining the run queue, three suites' PR runs at once on the multiprocess executor, one DuckDB history.

Also: the deploy/ instance files are valid Dagster instance configuration, with no literal secrets.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
from pathlib import Path

import polars as pl
import pytest
import yaml

from evalplatform.ci import DagsterCiClient
from evalplatform.history import HistoryStore
from tests.e2e import pg_server
from tests.e2e.procs import BIN, ROOT, free_port, graphql_loaded, start, stop, wait_until
from tests.suite_helpers import calibrate_judges

pytestmark = pytest.mark.e2e

DEPLOY = ROOT / "deploy"
SUITES = ("demo", "smoke", "smoke_copy")
RUN_TIMEOUT_S = 900  # a bound against a hung run, not a speed target (3 runs x 3+ step processes on 2 shared cores)
HISTORY_WRITERS = ("__pr_run", "__promoted_baseline")  # step keys of the assets in the history_writer pool
# One process per step, forked from a server that already imported Great Expectations (the heaviest import).
# Not `definitions`: loading the code location starts polars' thread pool (regex checks), and a pool inherited
# across fork deadlocks the step that next uses polars.
MULTIPROCESS = {"execution": {"config": {"multiprocess": {"start_method": {"forkserver": {
    "preload_modules": ["great_expectations"]}}}}}}


def _credentials(node) -> list[tuple[str, object]]:
    """Every (key, value) under a key naming a credential, anywhere in a parsed YAML file."""
    found = []
    if isinstance(node, dict):
        for k, v in node.items():
            if any(word in str(k).lower() for word in ("password", "secret", "token", "username")):
                found.append((k, v))
            found += _credentials(v)
    elif isinstance(node, list):
        for v in node:
            found += _credentials(v)
    return found


@pytest.mark.parametrize("name", ["dagster.postgres.yaml", "dagster.k8s.yaml"])
def test_deploy_instance_files_are_valid_dagster_config_without_secrets(name):
    from dagster._core.instance.config import dagster_instance_config

    parsed = yaml.safe_load((DEPLOY / name).read_text())
    config, _ = dagster_instance_config(str(DEPLOY), name)  # raises DagsterInvalidConfigError when invalid
    db = config["storage"]["postgres"]["postgres_db"]
    # Connection settings come from the environment, never from the file.
    assert all(isinstance(db[k], dict) and set(db[k]) == {"env"} for k in ("hostname", "username", "password"))
    for key, value in _credentials(parsed):
        # A Kubernetes Secret's *name* is fine (postgres_password_secret, env_secrets); a value is not.
        assert isinstance(value, (dict, list)) or key in ("postgres_password_secret",), (name, key)
    assert config["concurrency"]["pools"]["default_limit"] == 1  # one writer of the DuckDB history
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"


def test_k8s_example_mounts_the_history_volume_at_evalplatform_home():
    launcher = yaml.safe_load((DEPLOY / "dagster.k8s.yaml").read_text())["run_launcher"]
    assert (launcher["module"], launcher["class"]) == ("dagster_k8s.launcher", "K8sRunLauncher")
    cfg = launcher["config"]
    home = next(v.split("=", 1)[1] for v in cfg["env_vars"] if v.startswith("EVALPLATFORM_HOME="))
    mount = next(m for m in cfg["volume_mounts"] if m["mount_path"] == home)
    volume = next(v for v in cfg["volumes"] if v["name"] == mount["name"])
    assert volume["persistent_volume_claim"]["claim_name"]


@pytest.fixture
def postgres():
    reason = pg_server.why_unusable()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(reason)  # .ci/run installs it: a CI machine without it is a broken CI script
        pytest.skip(reason)
    with pg_server.postgres_server() as server:
        yield server


def _project(tmp_path: Path) -> Path:
    """The project's suites plus a third one (a renamed copy of smoke), in a project folder of its own."""
    project = tmp_path / "project"
    shutil.copytree(ROOT / "datasets", project / "datasets")
    third = project / "datasets" / SUITES[2]
    shutil.copytree(project / "datasets" / "smoke", third)
    suite = third / "suite.yaml"
    suite.write_text(suite.read_text().replace("name: smoke", f"name: {SUITES[2]}", 1))
    return project


def _overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


@pytest.mark.slow
def test_three_suites_pr_runs_at_once_on_postgres_land_complete_in_one_history(postgres, tmp_path, monkeypatch):
    import dagster as dg
    from dagster._core.events import DagsterEventType

    home, volume = tmp_path / "dagster_home", tmp_path / "volume"
    home.mkdir()
    volume.mkdir()
    shutil.copy(DEPLOY / "dagster.postgres.yaml", home / "dagster.yaml")  # the deploy file, unchanged
    workspace = ROOT / "workspace.yaml"  # the project's own code location
    env = {k: v for k, v in os.environ.items() if k not in ("EVALPLATFORM_HISTORY", "EVALPLATFORM_CODE_LOCATION")}
    project = _project(tmp_path)
    # Only calibrated judges may gate the demo suite (`make demo` calibrates them first).
    calibrate_judges(project / "datasets" / "demo" / "suite.yaml", volume / "history.duckdb")
    env.update(postgres.env(), DAGSTER_HOME=str(home), EVALPLATFORM_PROJECT=str(project),
               EVALPLATFORM_HOME=str(volume),  # the shared volume every run process mounts
               DAGSTER_DISABLE_TELEMETRY="1", LITELLM_LOCAL_MODEL_COST_MAP="True")
    # The dataset sensor would give each suite of the fresh project a PR run of its own, all queued on the one
    # history_writer pool with the three runs under test: stopped, so the test waits for its own runs only.
    subprocess.run([str(BIN / "dagster"), "sensor", "stop", "dataset_change_sensor", "-w", str(workspace)],
                   env=env, cwd=tmp_path, check=True, capture_output=True, timeout=300)
    port = free_port()
    daemon_log, web_log = tmp_path / "daemon.log", tmp_path / "webserver.log"
    daemon = start([str(BIN / "dagster-daemon"), "run", "-w", str(workspace)], env=env, cwd=tmp_path, log=daemon_log)
    web = None
    try:
        web = start([str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(port), "-w", str(workspace)],
                    env=env, cwd=tmp_path, log=web_log)
        wait_until(lambda: graphql_loaded(port), timeout_s=180, what="dagster-webserver", alive=web, log=web_log)
        client = DagsterCiClient(f"http://127.0.0.1:{port}")
        run_ids = {suite: client.launch(f"{suite}_pr", None,
                                        {"ops": {f"{suite}__pr_run": {"config": {}}}, **MULTIPROCESS},
                                        {"evalplatform/test": "scaleout"})
                   for suite in SUITES}
        statuses = {}
        for suite, run_id in run_ids.items():  # launched together; waited for one after the other
            if daemon.poll() is not None:
                pytest.fail(f"dagster-daemon exited:\n{daemon_log.read_text(errors='replace')[-3000:]}")
            statuses[suite] = client.wait(run_id, RUN_TIMEOUT_S)
        assert statuses == dict.fromkeys(SUITES, "SUCCESS"), daemon_log.read_text(errors="replace")[-3000:]
    finally:
        for proc in (web, daemon):
            if proc is not None:
                stop(proc)

    # Dagster kept the runs in PostgreSQL (not in a SQLite file under DAGSTER_HOME).
    con = postgres.connect()
    try:
        with con.cursor() as cur:
            cur.execute("SELECT run_id, status FROM runs WHERE run_id = ANY(%s)", (list(run_ids.values()),))
            assert dict(cur.fetchall()) == dict.fromkeys(run_ids.values(), "SUCCESS")
    finally:
        con.close()
    assert not list(home.rglob("*.db"))

    for key, value in postgres.env().items():
        monkeypatch.setenv(key, value)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        spans, writes = {}, []
        for suite, run_id in run_ids.items():
            stats = instance.get_run_stats(run_id)
            spans[suite] = (stats.start_time, stats.end_time)
            # The multiprocess executor ran each step in a process of its own.
            workers = instance.all_logs(run_id, of_type=DagsterEventType.STEP_WORKER_STARTED)
            assert len({e.step_key for e in workers}) >= 3, suite
            started = {e.step_key: e.timestamp for e in instance.all_logs(run_id, of_type=DagsterEventType.STEP_START)}
            for e in instance.all_logs(run_id, of_type=DagsterEventType.STEP_SUCCESS):
                if e.step_key.endswith(HISTORY_WRITERS):
                    writes.append((suite, e.step_key, started[e.step_key], e.timestamp))
    # The runs really went in parallel: each one was in progress while another was.
    assert all(any(_overlap(spans[a], spans[b]) for b in SUITES if b != a) for a in SUITES), spans
    # ...while the history_writer pool let one history writer step run at a time, across the runs.
    assert len(writes) == 2 * len(SUITES)
    clashes = [(a[:2], b[:2]) for a, b in itertools.combinations(writes, 2) if _overlap(a[2:], b[2:])]
    assert not clashes, clashes

    # (Other automation may still start runs of its own: count ours.)
    store = HistoryStore(volume / "history.duckdb")
    ours = store.list_runs(limit=100, status=None).filter(pl.col("dagster_run_id").is_in(list(run_ids.values())))
    assert sorted(ours["suite"].to_list()) == sorted(SUITES)
    assert set(ours["status"].to_list()) == {"complete"}
