"""Per-test projects for the code location: a copy of the repo's datasets, its own history, a fresh Definitions."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pytest

from assets.resources import REPO_ROOT
from definitions import build_definitions


def copy_project(root: Path, suites: tuple[str, ...] = ("demo", "smoke")) -> Path:
    """A project folder with the repo's calibration labels and the given suites."""
    shutil.copytree(REPO_ROOT / "datasets" / "calibration", root / "datasets" / "calibration",
                    ignore=shutil.ignore_patterns("*.py"))
    for suite in suites:
        shutil.copytree(REPO_ROOT / "datasets" / suite, root / "datasets" / suite)
    return root


@pytest.fixture
def project_env(monkeypatch):
    """Run state from the project folder (not the developer's), runs made on main (the demo promotes those)."""
    monkeypatch.delenv("EVALPLATFORM_HOME", raising=False)
    monkeypatch.delenv("EVALPLATFORM_HISTORY", raising=False)
    monkeypatch.delenv("EVALPLATFORM_PROJECT", raising=False)
    monkeypatch.setenv("EVALPLATFORM_BRANCH", "main")


@pytest.fixture
def instance():
    with dg.DagsterInstance.ephemeral() as inst:
        yield inst


def run_job(defs: dg.Definitions, name: str, instance, options: dict | None = None) -> dg.ExecuteInProcessResult:
    """Execute a suite's tier job in-process with run options (op config of its scored run)."""
    job = defs.resolve_job_def(name)
    suite, tier = name.rsplit("_", 1)
    config = {"ops": {f"{suite}__{tier}_run": {"config": {**{k: None for k in
                                                                ("model", "repeats", "no_cache", "concurrency", "seed")},
                                                             **(options or {})}}}}
    return job.execute_in_process(run_config=config, instance=instance, raise_on_error=False)


def checks_of(result) -> dict[str, dg.AssetCheckEvaluation]:
    return {f"{e.asset_key.to_user_string()}:{e.check_name}": e for e in result.get_asset_check_evaluations()}


def materialized(result) -> set[str]:
    return {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


__all__ = ["build_definitions", "checks_of", "copy_project", "materialized", "run_job"]
