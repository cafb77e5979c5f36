"""EVALPLATFORM_PROJECT serves another folder's suites through this code location, as the README promises."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from assets.resources import REPO_ROOT
from evalplatform.history import HistoryStore

HANG_GUARD_S = 600


@pytest.mark.slow
def test_a_suite_in_a_folder_outside_the_repo_runs_through_dagster_by_default(tmp_path):
    evals = tmp_path / "team-evals"
    suite_dir = evals / "datasets" / "checkout"
    shutil.copytree(REPO_ROOT / "datasets" / "smoke", suite_dir)
    text = (suite_dir / "suite.yaml").read_text().replace("name: smoke", "name: checkout")
    (suite_dir / "suite.yaml").write_text(text)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    env = {k: v for k, v in os.environ.items() if k not in ("EVALPLATFORM_HOME", "EVALPLATFORM_HISTORY")}
    env.update(EVALPLATFORM_PROJECT=str(evals), DAGSTER_HOME=str(home), LITELLM_LOCAL_MODEL_COST_MAP="True")
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    out = subprocess.run([sys.executable, "-m", "evalplatform", "run", "--suite", "checkout"], cwd=workdir, env=env,
                         capture_output=True, text=True, timeout=HANG_GUARD_S)
    assert out.returncode == 0, out.stderr
    assert "dagster run " in out.stdout  # the Dagster engine ran it, not the direct path
    store = HistoryStore(evals / ".evalplatform" / "history.duckdb")
    run = store.latest_run("checkout")
    assert run is not None and run["dagster_run_id"] and run["decision"] == "PASS"
    assert not (REPO_ROOT / "datasets" / "checkout").exists()
