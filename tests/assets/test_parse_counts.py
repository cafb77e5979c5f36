"""One `evalplatform run --suite demo` through Dagster parses the suite and its policy at most twice each.

The run spans two processes: the CLI (which validates the request before anything starts) and the launcher
(which loads the code location and runs the job). Each is measured from a cold start of its caches.
"""

from __future__ import annotations

from evalplatform.policy import load as policy_load
from evalplatform.request import RunRequest
from evalplatform import suite as suite_module
from tests.assets.conftest import build_definitions, copy_project
from tests.suite_helpers import calibrate_judges


def _cold() -> None:
    suite_module._LOADED.clear()
    policy_load._PARSED.clear()
    suite_module.PARSES.clear()


def test_a_dagster_run_parses_suite_and_policy_at_most_twice(tmp_path, project_env, instance, monkeypatch):
    from evalplatform.pipeline import resolve_suite
    from evalplatform.project import Project
    from evalplatform.runner import plan_run
    from sensors.launch import launch

    root = copy_project(tmp_path / "proj", suites=("demo", "smoke"))
    calibrate_judges(root / "datasets" / "demo" / "suite.yaml", root / ".evalplatform" / "history.duckdb")

    _cold()  # the CLI process: validate the request, as `evalplatform run` does before starting the launcher
    suite = resolve_suite(Project(root), "demo")
    plan_run(suite, "pr")
    cli = dict(suite_module.PARSES)

    _cold()  # the launcher process: load the code location, run the job (dataset, run, checks, promotion)
    outcome = launch(build_definitions(root), RunRequest(suite="demo"), instance)
    assert outcome.error is None and outcome.run_id
    launcher = {k: v for k, v in suite_module.PARSES.items()}
    # The code location also loads the other suite (smoke) once: count the demo suite's files only.
    demo_suite = launcher.get("suite", 0) - 1  # smoke's one parse
    print(f"parses: cli {cli}, launcher {launcher}")
    assert cli == {"suite": 1, "policy": 1}, cli
    assert demo_suite <= 1 and launcher.get("policy", 0) <= 1, launcher
    assert cli["suite"] + demo_suite <= 2 and cli["policy"] + launcher.get("policy", 0) <= 2
