"""The warm launcher: a Dagster-engine `evalplatform run` handed to a server that imported the code location once.

Each test gets a runtime folder of its own (TMPDIR), so its servers are its own; every server a test started is
stopped by the PID in its pid file at the end. Waits are bounded; nothing here asserts how long anything took.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from assets.resources import REPO_ROOT
from evalplatform.history import HistoryStore
from evalplatform.launcher_client import process_alive as _alive
from tests.evalplatform.test_pipeline_http import write_suite
from tests.helpers.openai_server import OpenAIServer

GUARD_S = 300


class Launcher:
    """A project outside the repo, its environment, and the servers its commands started (found by pid file)."""

    def __init__(self, tmp_path: Path):
        self.tmp = tmp_path
        # Unix socket paths are limited to ~107 bytes: the runtime folder lives under a short temporary folder.
        self.rt = Path(tempfile.mkdtemp(prefix="epl"))
        self.project = tmp_path / "evals"
        suite_dir = self.project / "datasets" / "smoke"
        shutil.copytree(REPO_ROOT / "datasets" / "smoke", suite_dir)
        self.env = {k: v for k, v in os.environ.items() if k not in ("EVALPLATFORM_HOME", "EVALPLATFORM_HISTORY",
                                                                      "DAGSTER_HOME")}
        self.env.update(EVALPLATFORM_PROJECT=str(self.project), TMPDIR=str(self.rt), EVALPLATFORM_LAUNCHER="server",
                        EVALPLATFORM_LAUNCHER_IDLE_S="120", LITELLM_LOCAL_MODEL_COST_MAP="True",
                        TEST_LOCAL_KEY="sk-test-local-0123456789abcdef")

    @property
    def folder(self) -> Path:
        return self.rt / f"evalplatform-launcher-{os.getuid()}"

    def pids(self) -> list[int]:
        return [int(p.read_text()) for p in self.folder.glob("*.pid")] if self.folder.is_dir() else []

    def log(self) -> str:
        return "".join(p.read_text() for p in self.folder.glob("*.log")) if self.folder.is_dir() else ""

    def run(self, *args: str, cold: bool = False, **popen) -> subprocess.CompletedProcess:
        env = {**self.env, "EVALPLATFORM_LAUNCHER": "cold"} if cold else self.env
        return subprocess.run([sys.executable, "-m", "evalplatform", "run", *args], cwd=self.tmp, env=env,
                              capture_output=True, text=True, timeout=GUARD_S, **popen)

    def stop(self) -> None:
        for pid in self.pids() + self.started_children():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(self.rt, ignore_errors=True)

    def started_children(self) -> list[int]:
        return [int(line.rsplit(" ", 1)[1]) for line in self.log().splitlines() if " -> child " in line]


@pytest.fixture
def launcher(tmp_path):
    it = Launcher(tmp_path)
    yield it
    it.stop()


def _wait_until(check, guard_s: float = 60.0) -> bool:
    deadline = time.monotonic() + guard_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


def _decision_lines(out: str) -> list[str]:
    """What the run decided, as printed: the plan line, the rule rows, the decision (not ids, times, the estimate
    or warnings that depend on the history the earlier runs left)."""
    return [line for line in out.splitlines()
            if line.startswith(("smoke pr tier:", "pass_rate_at_least_floor", "decision:", "RELEASE GATE"))]


@pytest.mark.slow
def test_a_warm_launcher_prints_what_the_cold_path_prints_and_serves_the_next_command_too(launcher):
    cold = launcher.run("--suite", "smoke", cold=True)
    assert cold.returncode == 0, cold.stderr
    assert launcher.pids() == []  # the cold path started no server

    first = launcher.run("--suite", "smoke")
    assert first.returncode == 0, first.stderr
    [server] = launcher.pids()
    second = launcher.run("--suite", "smoke")
    assert second.returncode == 0, second.stderr
    assert launcher.pids() == [server] and _alive(server)  # one server served both
    assert len(launcher.started_children()) == 2
    for out in (first, second):
        assert "dagster run " in out.stdout  # through the Dagster engine
        assert _decision_lines(out.stdout) == _decision_lines(cold.stdout), (out.stdout, cold.stdout)
    runs = HistoryStore(launcher.project / ".evalplatform" / "history.duckdb").list_runs("smoke", limit=10)
    assert runs.height == 3 and runs["dagster_run_id"].null_count() == 0

    # Bad input in the child is the same one line and exit 2 as on the cold path; the secret stays out of the log.
    launcher.env["SOME_API_KEY"] = "sk-secret-never-logged-0123456789"
    warm_bad = launcher.run("--suite", "smoke", "--engine", "dagster", "--concurrency", "0")
    cold_bad = launcher.run("--suite", "smoke", "--engine", "dagster", "--concurrency", "0", cold=True)
    assert (warm_bad.returncode, warm_bad.stderr) == (2, cold_bad.stderr) and cold_bad.returncode == 2
    assert len(warm_bad.stderr.strip().splitlines()) == 1
    assert "sk-secret-never-logged" not in launcher.log()


@pytest.mark.slow
def test_concurrent_first_commands_start_one_server_and_all_complete(launcher):
    procs = [subprocess.Popen([sys.executable, "-m", "evalplatform", "run", "--suite", "smoke"], cwd=launcher.tmp,
                              env=launcher.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
    outs = [p.communicate(timeout=GUARD_S) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [o[1] for o in outs]
    assert launcher.log().count("listening on ") == 1 and len(launcher.pids()) == 1
    assert len(launcher.started_children()) == 3
    runs = HistoryStore(launcher.project / ".evalplatform" / "history.duckdb").list_runs("smoke", limit=10)
    assert runs.height == 3 and set(runs["decision"]) == {"PASS"}


@pytest.mark.slow
def test_a_server_killed_outright_is_replaced_and_one_whose_code_changed_steps_aside(launcher, tmp_path):
    # The code location as a copy of its own, so a test can change its sources.
    location = tmp_path / "location"
    location.mkdir()
    for name in ("assets", "sensors"):
        shutil.copytree(REPO_ROOT / name, location / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO_ROOT / "definitions.py", location / "definitions.py")
    launcher.env["EVALPLATFORM_CODE_LOCATION"] = str(location)

    assert launcher.run("--suite", "smoke").returncode == 0
    [first] = launcher.pids()
    os.kill(first, signal.SIGKILL)  # no chance to clean up: its socket file stays behind
    assert _wait_until(lambda: not _alive(first))
    again = launcher.run("--suite", "smoke")
    assert again.returncode == 0, again.stderr
    [second] = launcher.pids()
    assert second != first

    source = location / "assets" / "catalog.py"
    source.write_text(source.read_text() + "\n# changed\n")
    changed = launcher.run("--suite", "smoke")
    assert changed.returncode == 0, changed.stderr
    assert "sources changed: exiting" in launcher.log()
    [third] = launcher.pids()
    assert third != second and _wait_until(lambda: not _alive(second))


@pytest.mark.slow
def test_a_server_with_no_command_for_its_idle_time_exits_and_removes_its_socket(launcher):
    launcher.env["EVALPLATFORM_LAUNCHER_IDLE_S"] = "1"
    assert launcher.run("--suite", "smoke").returncode == 0
    [server] = launcher.pids() or [None]
    if server is None:  # it may already have gone: then its files are gone too
        assert not list(launcher.folder.glob("*.sock"))
        return
    assert _wait_until(lambda: not _alive(server))
    assert not list(launcher.folder.glob("*.sock")) and not list(launcher.folder.glob("*.pid"))
    assert "idle: exiting" in launcher.log()


@pytest.fixture
def slow_server():
    srv = OpenAIServer(max_lifetime_s=GUARD_S, latency_s=1.0).start()
    yield srv
    srv.stop()


@pytest.mark.slow
def test_a_client_killed_midway_stops_its_command_and_the_run_is_not_left_running(launcher, slow_server):
    rows = [{"id": f"ok-{i}", "category": "ok", "behaviour": "ok", "text": f"case ok {i}"} for i in range(40)]
    write_suite(launcher.project, slow_server, rows, name="slow", target="  transport: openai")
    (launcher.project / "datasets" / "slow" / "suite.yaml").write_text(
        (launcher.project / "datasets" / "slow" / "suite.yaml").read_text().replace("concurrency: 4", "concurrency: 1"))
    client = subprocess.Popen([sys.executable, "-m", "evalplatform", "run", "--suite", "slow", "--engine", "dagster",
                               "--no-cache"], cwd=launcher.tmp, env=launcher.env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert _wait_until(lambda: sum(slow_server.requests.values()) >= 2, GUARD_S), "the run never started calling"
        [child] = launcher.started_children()
        client.kill()
        client.wait(timeout=30)
        assert _wait_until(lambda: not _alive(child), 90), "the command went on after its client was killed"
    finally:
        if client.poll() is None:
            client.kill()
    made = sum(slow_server.requests.values())
    assert made < 80  # it stopped calling long before the 40 cases x 2 repeats
    # The child had the API key (the model answered it); the long-lived server's own environment holds no key.
    [server] = launcher.pids()
    assert b"sk-test-local-0123456789abcdef" not in Path(f"/proc/{server}/environ").read_bytes()
    store = HistoryStore(launcher.project / ".evalplatform" / "history.duckdb")
    runs = store.list_runs("slow", limit=5, status=None)
    assert runs.height == 1 and runs["status"][0] in ("failed", "abandoned"), runs.select("status", "error")
    # The server itself is untouched and serves the next command.
    assert launcher.run("--suite", "smoke").returncode == 0 and len(launcher.pids()) == 1


@pytest.mark.slow
def test_launcher_status_lists_this_projects_server_and_stop_ends_it_by_its_pid(launcher):
    assert launcher.run("--suite", "smoke").returncode == 0
    [server] = launcher.pids()

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "evalplatform", "launcher", *args], cwd=launcher.tmp,
                              env=launcher.env, capture_output=True, text=True, timeout=GUARD_S)

    status = cli("status")
    assert status.returncode == 0 and f"pid {server} " in status.stdout and "1 launcher server(s)" in status.stdout
    other = cli("status")
    other_env = {**launcher.env, "EVALPLATFORM_PROJECT": str(launcher.tmp)}  # another project: not its server
    assert "0 launcher server(s)" in subprocess.run(
        [sys.executable, "-m", "evalplatform", "launcher", "status"], cwd=launcher.tmp, env=other_env,
        capture_output=True, text=True, timeout=GUARD_S).stdout and other.returncode == 0
    stop = cli("stop")
    assert stop.returncode == 0 and "stopped 1 launcher server(s)" in stop.stdout
    assert not _alive(server) and launcher.pids() == [] and not list(launcher.folder.glob("*.sock"))


def test_a_runtime_folder_others_can_enter_is_not_used_and_the_command_runs_cold(launcher):
    # A folder at the runtime path that is not private to this user (another user could have made it, or
    # read the socket): no server is started there; the command runs on the cold path and passes.
    launcher.folder.mkdir(mode=0o755)
    launcher.folder.chmod(0o755)
    out = launcher.run("--suite", "smoke")
    assert out.returncode == 0, out.stderr
    assert "dagster run " in out.stdout
    assert launcher.pids() == [] and not list(launcher.folder.iterdir())


def test_a_runtime_path_that_cannot_be_a_folder_means_the_cold_path_not_a_failure(launcher):
    launcher.folder.write_text("a file where the runtime folder would be")
    out = launcher.run("--suite", "smoke")
    assert out.returncode == 0, out.stderr
    assert "dagster run " in out.stdout and launcher.pids() == []


@pytest.mark.slow
def test_each_command_gets_its_own_pythonpath_and_umask_not_the_servers(launcher, tmp_path):
    import yaml

    assert launcher.run("--suite", "smoke").returncode == 0  # the server starts with the first environment
    # A later command whose Python target is found through its own PYTHONPATH (a src/ layout inside the
    # project), run with a stricter umask.
    pkg = launcher.project / "src"
    pkg.mkdir()
    (pkg / "team_target_pp.py").write_text("def answer(case):\n    return 'your order ' + case.prompt.strip()\n")
    suite_dir = launcher.project / "datasets" / "pyt"
    suite_dir.mkdir()
    (suite_dir / "prompt.txt").write_text("{{ question }}\n")
    (suite_dir / "cases.jsonl").write_text("".join(json.dumps({"id": f"c{i}", "category": "x", "question": f"q{i}"})
                                                   + "\n" for i in range(3)))
    (suite_dir / "suite.yaml").write_text(yaml.safe_dump({
        "schema_version": 1, "name": "pyt", "datasets": ["cases.jsonl"], "prompt": "prompt.txt",
        "target": {"python": "team_target_pp:answer"}, "concurrency": 2,
        "scorers": [{"id": "says_order", "type": "contains", "criterion": "correctness", "value": "order"}],
        "gate": {"pass_rate_floor": 0.5}}, sort_keys=False))
    env = {**launcher.env, "PYTHONPATH": os.pathsep.join(filter(None, [str(pkg), launcher.env.get("PYTHONPATH")]))}
    out = subprocess.run(["bash", "-c", 'umask 077 && exec "$0" -m evalplatform run --suite pyt', sys.executable],
                         cwd=launcher.tmp, env=env, capture_output=True, text=True, timeout=GUARD_S)
    assert out.returncode == 0, out.stdout[-1500:] + out.stderr[-1500:]
    assert len(launcher.started_children()) == 2  # the warm server ran it
    reports = list((launcher.project / ".evalplatform" / "reports" / "pyt").glob("*.html"))
    assert reports and all(r.stat().st_mode & 0o077 == 0 for r in reports)  # written under the command's umask


def test_a_servers_log_over_its_limit_is_rotated_when_the_next_server_starts(launcher):
    from evalplatform import launcher_client

    launcher.folder.mkdir(mode=0o700)
    key = launcher_client.server_key(REPO_ROOT, launcher.project)
    log = launcher.folder / f"{key}.log"
    log.write_bytes(b"old line\n" * (launcher_client.LOG_MAX_BYTES // 9 + 1))
    assert launcher.run("--suite", "smoke").returncode == 0
    assert (launcher.folder / f"{key}.log.1").read_bytes().startswith(b"old line")
    assert "listening on " in log.read_text() and "old line" not in log.read_text()


@pytest.mark.slow
def test_a_child_killed_midway_is_exit_3_for_its_client_and_its_run_is_abandoned_not_left_running(launcher,
                                                                                                  slow_server):
    rows = [{"id": f"ok-{i}", "category": "ok", "behaviour": "ok", "text": f"case ok {i}"} for i in range(40)]
    write_suite(launcher.project, slow_server, rows, name="slow", target="  transport: openai")
    suite = launcher.project / "datasets" / "slow" / "suite.yaml"
    suite.write_text(suite.read_text().replace("concurrency: 4", "concurrency: 1"))
    client = subprocess.Popen([sys.executable, "-m", "evalplatform", "run", "--suite", "slow", "--engine", "dagster",
                               "--no-cache"], cwd=launcher.tmp, env=launcher.env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert _wait_until(lambda: sum(slow_server.requests.values()) >= 2, GUARD_S), "the run never started calling"
        [child] = launcher.started_children()
        os.kill(child, signal.SIGKILL)
        _, err = client.communicate(timeout=GUARD_S)
    finally:
        if client.poll() is None:
            client.kill()
    assert client.returncode == 3
    assert err.strip().splitlines()[-1].startswith("error: the Dagster launcher (pid ")
    # The next command that writes the history finds the dead process and records the run as abandoned.
    assert launcher.run("--suite", "smoke").returncode == 0
    runs = HistoryStore(launcher.project / ".evalplatform" / "history.duckdb").list_runs("slow", limit=5, status=None)
    assert runs.height == 1 and runs["status"][0] == "abandoned", runs.select("status", "error")
