"""Judge assets: one calibration per judge, gated where a suite relies on it, a warning where it is advisory."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import yaml

from assets.resources import REPO_ROOT
from definitions import build_definitions
from evalplatform.history import HistoryStore

SUITE = {
    "name": "judged", "datasets": ["cases.jsonl"], "prompt": "prompt.txt", "target": {"model": "local/support-v1"},
    "scorers": [
        {"id": "tone_judge", "type": "llm_judge", "criterion": "tone", "judge": {"model": "local/judge-rubric"},
         "rubric": "../calibration/rubrics/tone.md"},
        {"id": "tone_lenient", "type": "llm_judge", "criterion": "tone", "judge": {"model": "local/judge-lenient"},
         "rubric": "../calibration/rubrics/tone.md"},
    ],
    "gate": {"pass_rate_floor": 0.5},
}
RUBRIC, LENIENT = "judges/tone_local_judge_rubric", "judges/tone_local_judge_lenient"


def _project(tmp_path: Path, lenient_advisory: bool) -> Path:
    root = tmp_path / "proj"
    shutil.copytree(REPO_ROOT / "datasets" / "calibration", root / "datasets" / "calibration",
                    ignore=shutil.ignore_patterns("*.py"))
    suite_dir = root / "datasets" / "judged"
    suite_dir.mkdir(parents=True)
    (suite_dir / "cases.jsonl").write_text('{"id": "c1", "question": "Hi?"}\n', encoding="utf-8")
    (suite_dir / "prompt.txt").write_text("{{ question }}", encoding="utf-8")
    spec = yaml.safe_load(yaml.safe_dump(SUITE))
    spec["scorers"][1]["advisory"] = lenient_advisory
    (suite_dir / "suite.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    return root


def _run_judges(root: Path, instance):
    result = build_definitions(root).resolve_job_def("judge_nightly_job").execute_in_process(
        instance=instance, raise_on_error=False)
    return result, {e.asset_key.to_user_string(): e for e in result.get_asset_check_evaluations()
                    if e.check_name == "judge_allowed_to_gate"}


def test_a_gating_judge_below_its_floors_fails_its_check_and_an_advisory_one_only_warns(tmp_path, project_env,
                                                                                      instance):
    root = _project(tmp_path, lenient_advisory=False)
    result, allowed = _run_judges(root, instance)
    assert allowed[RUBRIC].passed
    assert not allowed[LENIENT].passed and allowed[LENIENT].severity == dg.AssetCheckSeverity.ERROR
    assert allowed[LENIENT].description.startswith("refused")
    # A failed blocking check stops what depends on the calibrations: the drift step does not run.
    assert not result.success and "judges/judge_drift" not in {
        e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    rows = HistoryStore(root / ".evalplatform" / "history.duckdb").list_calibrations(purpose="calibration")
    assert sorted(r["allowed"] for r in rows) == [False, True]

    advisory = _project(tmp_path / "again", lenient_advisory=True)
    result, allowed = _run_judges(advisory, instance)
    assert result.success
    assert not allowed[LENIENT].passed and allowed[LENIENT].severity == dg.AssetCheckSeverity.WARN
    drift = HistoryStore(advisory / ".evalplatform" / "history.duckdb").list_calibrations(purpose="drift")
    assert len(drift) == 2
