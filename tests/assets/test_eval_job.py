"""The PR job materialized in-process: the gate passes the demo's v1 and blocks the regressed v2."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pytest

from assets.baseline import promoted_baseline
from assets.checks import RULE_CHECKS
from assets.judges import JUDGE_ASSETS, JUDGE_CHECKS
from assets.resources import REPO_ROOT, EvalProject
from assets.scored_runs import scored_run
from assets.suites import suite_dataset
from evalplatform.history import HistoryStore
from tests.suite_helpers import calibrate_judges


@pytest.fixture(scope="module")
def project_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("proj")
    shutil.copytree(REPO_ROOT / "datasets", root / "datasets")
    # Only calibrated judges may gate: the tone judge's rows are in the gating rules.
    calibrate_judges(root / "datasets" / "demo" / "suite.yaml", root / ".evalplatform" / "history.duckdb")
    return root


@pytest.fixture(scope="module")
def instance():
    with dg.DagsterInstance.ephemeral() as inst:
        yield inst


def materialize(root: Path, instance, model: str | None = None):
    return dg.materialize(
        [suite_dataset, scored_run, promoted_baseline, *RULE_CHECKS],
        resources={"eval_project": EvalProject(root=str(root))},
        partition_key="demo",
        instance=instance,
        raise_on_error=False,
        run_config={"ops": {"scored_run": {"config": {"tier": "pr", "model": model}}}},
    )


def _gate(result):
    evals = [e for e in result.get_asset_check_evaluations() if e.check_name == "pass_rate_at_least_floor"]
    assert len(evals) == 1
    return evals[0]


def test_v1_passes_the_gate_and_is_promoted(project_root, instance, monkeypatch):
    monkeypatch.delenv("EVALPLATFORM_HOME", raising=False)
    monkeypatch.delenv("EVALPLATFORM_HISTORY", raising=False)
    result = materialize(project_root, instance)
    assert result.success
    gate = _gate(result)
    assert gate.passed and gate.metadata["outcome"].value == "PASS"
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert {"safety_pass_rate", "error_rate_at_most_5pct", "no_regression_vs_baseline"} <= set(checks)
    assert all(e.passed for e in checks.values() if e.severity == dg.AssetCheckSeverity.ERROR)
    mats = {m.asset_key.to_user_string() for m in result.get_asset_materialization_events() and
            [e.event_specific_data.materialization for e in result.get_asset_materialization_events()]}
    assert mats == {"suite_dataset", "scored_run", "promoted_baseline"}
    store = HistoryStore(project_root / ".evalplatform" / "history.duckdb")
    run_id = gate.metadata["run_id"].value
    assert store.latest_baseline("demo") == run_id
    assert store.get_run(run_id)["dagster_run_id"] == result.run_id
    # The checks report the decision recorded with the run (same numbers, no second evaluation).
    from assets.checks import policy_of, recorded_rule
    from evalplatform.project import Project

    _, sha = policy_of(Project(project_root), "demo")
    recorded = recorded_rule(store, run_id, "pass_rate_at_least_floor", sha)
    assert recorded is not None and recorded.numbers["lower"] == gate.metadata["lower"].value
    # The cheap trained judge gates through its corrected pass rate; it was calibrated on first use.
    assert checks["tone_trained_corrected_pass_rate"].passed
    assert checks["tone_trained_corrected_pass_rate"].metadata["outcome"].value == "PASS"
    assert store.list_calibrations(judge_name="tone:trained/tfidf-logreg", purpose="calibration", limit=1)


def test_v2_is_blocked_and_not_promoted(project_root, instance, monkeypatch):
    monkeypatch.delenv("EVALPLATFORM_HOME", raising=False)
    monkeypatch.delenv("EVALPLATFORM_HISTORY", raising=False)
    store = HistoryStore(project_root / ".evalplatform" / "history.duckdb")
    baseline_before = store.latest_baseline("demo")
    result = materialize(project_root, instance, model="local/support-v2")
    assert not result.success
    gate = _gate(result)
    assert not gate.passed and gate.severity == dg.AssetCheckSeverity.ERROR
    assert gate.metadata["outcome"].value in ("FAIL", "INCONCLUSIVE")
    # Against the promoted v1 baseline, the paired comparison catches the regression too.
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert not checks["no_regression_vs_baseline"].passed
    assert checks["no_regression_vs_baseline"].metadata["outcome"].value == "FAIL"
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    # The gated run is stored (it is evidence), but it is not promoted.
    assert "scored_run" in materialized and "promoted_baseline" not in materialized
    assert store.latest_baseline("demo") == baseline_before
    run = store.get_run(gate.metadata["run_id"].value)
    assert run["status"] == "complete" and run["target_model"] == "local/support-v2"


def test_no_pass_without_evidence_an_uncalibrated_judge_or_an_advisory_only_policy_is_never_promoted(
        tmp_path, instance, monkeypatch):
    monkeypatch.delenv("EVALPLATFORM_HOME", raising=False)
    monkeypatch.delenv("EVALPLATFORM_HISTORY", raising=False)
    root = tmp_path / "proj"
    shutil.copytree(REPO_ROOT / "datasets", root / "datasets")
    store = HistoryStore(root / ".evalplatform" / "history.duckdb")
    # The tone judge was never calibrated: the rules reading its rows are ERROR, and the run stays unpromoted.
    result = materialize(root, instance)
    gate = _gate(result)
    assert not gate.passed and gate.metadata["reason"].value.startswith("judge tone_judge is not allowed to gate")
    assert "promoted_baseline" not in {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert store.latest_baseline("demo") is None
    # An advisory_only policy fails no blocking check, but its decision is NO_DATA: never promoted either.
    policy = root / "datasets" / "demo" / "policy.yaml"
    text = policy.read_text().replace("severity: blocking", "severity: advisory")
    policy.write_text(text.replace("rules:\n", "advisory_only: true\nrules:\n", 1))
    result = materialize(root, instance)
    assert result.success
    assert all(e.passed for e in result.get_asset_check_evaluations() if e.severity == dg.AssetCheckSeverity.ERROR)
    assert store.get_run(_gate(result).metadata["run_id"].value)["decision"] == "NO_DATA"
    assert "promoted_baseline" not in {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert store.latest_baseline("demo") is None


def test_bad_input_fails_the_dataset_step_with_the_one_line_error(tmp_path, instance, monkeypatch):
    monkeypatch.delenv("EVALPLATFORM_HOME", raising=False)
    root = tmp_path / "proj"
    shutil.copytree(REPO_ROOT / "datasets", root / "datasets")
    (root / "datasets" / "demo" / "cases.jsonl").write_text('{"id": "x"}\n{"id": "x"}\n')
    result = materialize(root, instance)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert failure.step_key == "suite_dataset"
    assert not (root / ".evalplatform" / "history.duckdb").exists()


def test_automation_promotes_only_after_passing_gates(tmp_path, monkeypatch):
    """Across runs: a scored run whose blocking check failed is not promoted by automation."""
    monkeypatch.delenv("EVALPLATFORM_HOME", raising=False)
    root = tmp_path / "proj"
    shutil.copytree(REPO_ROOT / "datasets", root / "datasets")
    resources = {"eval_project": EvalProject(root=str(root))}
    defs = dg.Definitions(assets=[suite_dataset, scored_run, promoted_baseline, *JUDGE_ASSETS],
                          asset_checks=[*RULE_CHECKS, *JUDGE_CHECKS], resources=resources)
    with dg.DagsterInstance.ephemeral() as inst:
        # Promotion also waits for the judges' calibration (and its blocking check) to exist and pass.
        judged = dg.materialize([*JUDGE_ASSETS[:2], JUDGE_CHECKS[0]], resources=resources, instance=inst)
        assert judged.success
        cursor = dg.evaluate_automation_conditions(defs=defs, instance=inst).cursor
        for model, expected in (("local/support-v2", 0), ("local/support-v1", 1)):
            dg.materialize([suite_dataset, scored_run, *RULE_CHECKS], resources=resources, partition_key="demo",
                           instance=inst, raise_on_error=False,
                           run_config={"ops": {"scored_run": {"config": {"model": model}}}})
            result = dg.evaluate_automation_conditions(defs=defs, instance=inst, cursor=cursor)
            cursor = result.cursor
            assert result.get_num_requested(promoted_baseline.key) == expected, model
