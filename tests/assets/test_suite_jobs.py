"""A suite's PR job in-process: v1 passes and is promoted, v2 is blocked and is not; only PASS is green in the UI."""

from __future__ import annotations

import dagster as dg
import pytest

from evalplatform.history import HistoryStore
from tests.assets.conftest import build_definitions, checks_of, copy_project, materialized, run_job
from tests.suite_helpers import calibrate_judges

PR_RUN, BASELINE = "demo/pr_run", "demo/promoted_baseline"


@pytest.fixture
def demo(tmp_path, project_env):
    root = copy_project(tmp_path / "proj", suites=("demo",))
    calibrate_judges(root / "datasets" / "demo" / "suite.yaml", root / ".evalplatform" / "history.duckdb")
    return root, build_definitions(root), HistoryStore(root / ".evalplatform" / "history.duckdb")


def _meta(result, key: str) -> dict:
    event = next(e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == key)
    return {k: v.value for k, v in event.materialization.metadata.items()}


def test_v1_passes_and_is_promoted_then_v2_is_blocked_and_is_not(demo, instance):
    root, defs, store = demo
    first = run_job(defs, "demo_pr", instance)
    assert first.success
    checks = checks_of(first)
    assert checks[f"{PR_RUN}:release_decision_passed"].passed
    assert all(c.passed for c in checks.values() if c.severity == dg.AssetCheckSeverity.ERROR)
    meta = _meta(first, PR_RUN)
    run_id = meta["history_run_id"]
    assert meta["decision"] == "PASS" and meta["model"] == "local/support-v1" and meta["tier"] == "pr"
    assert "| criterion | pass rate |" in meta["pass_rates"] and "Wilson" in meta["pass_rates"]
    assert "| rule |" in meta["policy_rules"] and "pass_rate_at_least_floor" in meta["policy_rules"]
    assert BASELINE in materialized(first)
    assert store.latest_baseline("demo", "pr") == run_id
    assert store.baseline_history("demo", "pr")[0]["actor"] == f"dagster run {first.run_id}"
    tags = instance.get_run_by_id(first.run_id).tags
    assert {tags["suite"], tags["tier"], tags["model"], tags["decision"]} == {"demo", "pr", "local/support-v1", "PASS"}

    second = run_job(defs, "demo_pr", instance, {"model": "local/support-v2"})
    assert not second.success  # a blocking check failed: promotion did not run
    checks = checks_of(second)
    floor = checks[f"{PR_RUN}:pass_rate_at_least_floor"]
    assert not floor.passed and floor.severity == dg.AssetCheckSeverity.ERROR
    assert floor.description.startswith("FAIL: upper bound")
    regression = checks[f"{PR_RUN}:no_regression_vs_baseline"]
    assert not regression.passed and regression.metadata["outcome"].value == "FAIL"
    assert not checks[f"{PR_RUN}:release_decision_passed"].passed
    meta = _meta(second, PR_RUN)
    assert meta["decision"] == "BLOCK" and meta["baseline_run_id"] == run_id
    # The failing cases are in the UI, not only in a terminal.
    assert "| case | category | scorer | outcome | reason |" in meta["failing_cases"]
    failing = store.get_results(meta["history_run_id"]).filter(dg_outcome_failed())["case_id"].to_list()
    assert failing and failing[0] in meta["failing_cases"]
    assert BASELINE not in materialized(second)
    assert store.latest_baseline("demo", "pr") == run_id
    assert instance.get_run_by_id(second.run_id).tags["decision"] == "BLOCK"


def dg_outcome_failed():
    import polars as pl

    return pl.col("outcome") == "fail"


def test_only_pass_is_green_a_non_blocking_no_data_or_inconclusive_is_a_warning(demo, instance):
    _, defs, _ = demo
    checks = checks_of(run_job(defs, "demo_pr", instance))
    # The suite's first run has no baseline: NO_DATA that does not block is a failed check, severity WARN.
    no_base = checks[f"{PR_RUN}:no_regression_vs_baseline"]
    assert not no_base.passed and no_base.severity == dg.AssetCheckSeverity.WARN
    assert no_base.description.startswith("NO_DATA")
    for check in checks.values():
        if check.metadata.get("outcome") and check.metadata["outcome"].value != "PASS":
            assert not check.passed, check.check_name


def test_an_uncalibrated_judge_or_an_advisory_only_policy_is_never_promoted(tmp_path, project_env, instance):
    root = copy_project(tmp_path / "proj", suites=("demo",))
    # The PR tier made to run the (never calibrated) frontier judge: it is not called, and cannot count.
    suite = root / "datasets" / "demo" / "suite.yaml"
    suite.write_text(suite.read_text().replace("scorers: [deterministic, cheap_judge]}",
                                               "scorers: [deterministic, cheap_judge, frontier_judge]}", 1))
    store = HistoryStore(root / ".evalplatform" / "history.duckdb")
    result = run_job(build_definitions(root), "demo_pr", instance)
    floor = checks_of(result)[f"{PR_RUN}:pass_rate_at_least_floor"]
    assert not floor.passed and "judge tone_judge is not allowed to gate" in floor.description
    assert "not called" in floor.description
    assert BASELINE not in materialized(result) and store.latest_baseline("demo") is None

    policy = root / "datasets" / "demo" / "policy.yaml"
    text = policy.read_text().replace("severity: blocking", "severity: advisory")
    policy.write_text(text.replace("rules:\n", "advisory_only: true\nrules:\n", 1))
    result = run_job(build_definitions(root), "demo_pr", instance)
    release = checks_of(result)[f"{PR_RUN}:release_decision_passed"]
    assert not release.passed and release.severity == dg.AssetCheckSeverity.ERROR
    assert release.description.startswith("NO_DATA")
    assert BASELINE not in materialized(result) and store.latest_baseline("demo") is None


def test_a_passing_run_off_main_is_not_promoted_and_says_why(demo, instance, monkeypatch):
    _, defs, store = demo
    monkeypatch.setenv("EVALPLATFORM_BRANCH", "feature/new-prompt")
    result = run_job(defs, "demo_pr", instance)
    assert result.success and BASELINE in materialized(result)
    assert store.latest_baseline("demo") is None
    why = _meta(result, BASELINE)["not_promoted"][0]["why"]
    assert "feature/new-prompt" in why and "['main']" in why


def test_bad_input_keeps_its_file_field_and_fix_across_dagster(tmp_path, project_env, instance):
    from evalplatform.errors import InputError
    from evalplatform.request import RunRequest
    from sensors.launch import launch

    root = copy_project(tmp_path / "proj", suites=("demo",))
    cases = root / "datasets" / "demo" / "cases.jsonl"
    first = cases.read_text().splitlines()[0]
    cases.write_text(first + "\n" + first + "\n")
    outcome = launch(build_definitions(root), RunRequest(suite="demo"), instance)
    err = outcome.error.error()
    assert isinstance(err, InputError)
    assert err.file == str(cases) and err.field == "line 2: id" and "duplicate case id" in err.message
    assert not (root / ".evalplatform" / "history.duckdb").exists()


def test_automation_promotes_only_after_passing_gates(demo, instance):
    """Across runs (a scored run materialized from the UI): promotion follows only passing blocking checks."""
    root, defs, store = demo
    key = dg.AssetKey(["demo", "promoted_baseline"])
    cursor = dg.evaluate_automation_conditions(defs=defs, instance=instance).cursor
    for model, expected in (("local/support-v2", 0), ("local/support-v1", 1)):
        # What the UI's "Materialize" does: the asset with its checks, in one in-process run.
        defs.get_implicit_global_asset_job_def().execute_in_process(
            instance=instance, raise_on_error=False, asset_selection=[dg.AssetKey(["demo", "pr_run"])],
            run_config={"ops": {"demo__pr_run": {"config": {"model": model}}}})
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
        cursor = result.cursor
        assert result.get_num_requested(key) == expected, model
