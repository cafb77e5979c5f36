"""Judge assets materialized in-process: calibration stored, the gate refuses a below-floor judge, drift warns."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import yaml

from assets.judges import JUDGE_ASSETS, JUDGE_CHECKS
from assets.resources import REPO_ROOT, EvalProject
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


def _materialize(root: Path, instance):
    return dg.materialize([*JUDGE_ASSETS, *JUDGE_CHECKS], instance=instance,
                          resources={"eval_project": EvalProject(root=str(root))}, raise_on_error=False)


def _checks(result) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_a_below_floor_judge_fails_the_blocking_gate_and_an_advisory_one_does_not(tmp_path, monkeypatch):
    monkeypatch.delenv("EVALPLATFORM_PROJECT", raising=False)
    monkeypatch.delenv("EVALPLATFORM_HOME", raising=False)
    monkeypatch.delenv("EVALPLATFORM_HISTORY", raising=False)
    with dg.DagsterInstance.ephemeral() as instance:
        root = _project(tmp_path, lenient_advisory=False)
        result = _materialize(root, instance)
        checks = _checks(result)
        gate = checks["judge_allowed_to_gate"]
        assert not gate.passed and gate.severity == dg.AssetCheckSeverity.ERROR
        assert "judged/tone_lenient refused" in gate.description and "tone_judge " not in gate.description
        # A failed blocking check stops what depends on the calibration: the drift run does not start.
        assert not result.success and "judge_agreement_stable" not in checks
        store = HistoryStore(root / ".evalplatform" / "history.duckdb")
        rows = store.list_calibrations(purpose="calibration")
        assert sorted(r["allowed"] for r in rows) == [False, True]

        advisory = _project(tmp_path / "again", lenient_advisory=True)
        result = _materialize(advisory, instance)
        checks = _checks(result)
        assert result.success and checks["judge_allowed_to_gate"].passed
        assert checks["judge_agreement_stable"].passed  # deterministic judges re-judged: no drift
        drift = HistoryStore(advisory / ".evalplatform" / "history.duckdb").list_calibrations(purpose="drift")
        assert len(drift) == 2
