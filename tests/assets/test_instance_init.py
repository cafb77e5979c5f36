"""A fresh DAGSTER_HOME survives concurrent first use, and a broken one is one line naming it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from assets.resources import REPO_ROOT
from sensors.instance import READY_MARKER, ensure_instance_storage

PARALLEL = 4
# Bounds a hang only; the assertions are on exit codes and what the instance holds.
HANG_GUARD_S = 900


def _env(home: Path, state: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("EVALPLATFORM_PROJECT", "EVALPLATFORM_HISTORY")}
    env.update(DAGSTER_HOME=str(home), EVALPLATFORM_HOME=str(state), LITELLM_LOCAL_MODEL_COST_MAP="True")
    return env


def _fresh_home(tmp_path: Path) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    return home


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "evalplatform", *args]


@pytest.mark.slow
def test_parallel_runs_on_a_fresh_home_all_succeed_and_leave_it_usable(tmp_path):
    home, state = _fresh_home(tmp_path), tmp_path / "state"
    procs = [subprocess.Popen(_cli("run", "--suite", "smoke", "--engine", "dagster"), cwd=REPO_ROOT,
                              env=_env(home, state), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(PARALLEL)]
    outcomes = [(p.wait(timeout=HANG_GUARD_S), p.stderr.read()) for p in procs]
    for p in procs:
        p.stdout.close()
        p.stderr.close()
    assert [code for code, _ in outcomes] == [0] * PARALLEL, [err for _, err in outcomes]
    assert (home / READY_MARKER).is_file()

    import dagster as dg

    with dg.DagsterInstance.from_config(str(home)) as instance:
        runs = instance.get_runs()
        assert len(runs) == PARALLEL
        assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)
    # And the home still works afterwards.
    again = subprocess.run(_cli("run", "--suite", "smoke", "--engine", "dagster"), cwd=REPO_ROOT,
                           env=_env(home, state), capture_output=True, text=True, timeout=HANG_GUARD_S)
    assert again.returncode == 0, again.stderr


def test_initialisation_is_idempotent_and_marks_the_home(tmp_path):
    home = _fresh_home(tmp_path)
    ensure_instance_storage(home)
    ensure_instance_storage(home)
    assert (home / READY_MARKER).is_file()
    assert (home / "history" / "runs.db").is_file()


def test_a_corrupted_instance_is_one_line_naming_dagster_home(tmp_path):
    home, state = _fresh_home(tmp_path), tmp_path / "state"
    ensure_instance_storage(home)
    (home / "history" / "runs.db").write_bytes(os.urandom(4096))
    out = subprocess.run(_cli("run", "--suite", "smoke", "--engine", "dagster"), cwd=REPO_ROOT,
                         env=_env(home, state), capture_output=True, text=True, timeout=HANG_GUARD_S)
    assert out.returncode == 3
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and f"DAGSTER_HOME={home}" in lines[0] and "move the folder aside" in lines[0]
    assert "Traceback" not in out.stderr


def test_a_home_without_dagster_yaml_is_refused_in_one_line(tmp_path):
    home = tmp_path / "empty_home"
    home.mkdir()
    from evalplatform.errors import InfraError

    with pytest.raises(InfraError, match="no dagster.yaml"):
        ensure_instance_storage(home)
