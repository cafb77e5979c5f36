"""Calibration numbers, the gate on judges, correction, drift, calibration-set validation and the trained judge."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pytest

from evalplatform.errors import InputError
from evalplatform.history import HistoryStore
from evalplatform.judges import (
    GateFloors, LLMJudge, TrainedJudge, calibrate_judge, calibration_metrics, corrected_pass_rate, gate_reasons,
    gate_status, latest_calibration, load_calibration_set, store_report,
)
from evalplatform.judges.drift import compare_verdicts, drift_against_previous

REPO = Path(__file__).resolve().parents[3]
VECTORS = REPO / "tests" / "fixtures" / "stats" / "reference_vectors.json"
RUBRICS = REPO / "datasets" / "calibration" / "rubrics"


def verdict_lists(table):
    """Labels and verdicts realising a [[FAIL/FAIL, FAIL/PASS], [PASS/FAIL, PASS/PASS]] table."""
    (tp, fp), (fn, tn) = table
    labels = ["FAIL"] * tp + ["PASS"] * fp + ["FAIL"] * fn + ["PASS"] * tn
    verdicts = ["FAIL"] * (tp + fp) + ["PASS"] * (fn + tn)
    return labels, verdicts


def test_metrics_match_a_hand_computed_confusion_matrix():
    labels, verdicts = verdict_lists([[40, 15], [10, 135]])
    m = calibration_metrics(labels + ["PASS"], verdicts + [None])
    assert m["table"] == [[40, 15], [10, 135]] and m["n"] == 200 and m["n_error"] == 1
    assert m["agreement"] == pytest.approx(175 / 200)
    assert m["fail_recall"] == pytest.approx(0.8) and m["tnr"] == m["fail_recall"]
    assert m["fail_precision"] == pytest.approx(40 / 55) and m["fail_f1"] == pytest.approx(80 / 105)
    assert m["tpr"] == pytest.approx(135 / 150)
    assert m["fail_recall_ci"][0] == pytest.approx(0.67, abs=0.01) and m["fail_recall_ci"][1] == pytest.approx(0.89, abs=0.01)
    assert m["fail_recall_lb"] > m["fail_recall_ci"][0]        # one-sided bound is tighter than the two-sided one
    assert m["kappa_lb"] > m["kappa_ci"][0]


def _vectors():
    data = json.loads(VECTORS.read_text())
    return {v["name"]: v for v in (data["vectors"] if isinstance(data, dict) else data)}


def test_agreement_and_correction_match_the_reference_vectors():
    vec = _vectors()
    for name in ("agreement_stats_judge200", "agreement_stats_always_pass_judge"):
        v = vec[name]
        m = calibration_metrics(*verdict_lists(v["inputs"]["table_judge_rows_human_cols"]))
        for key in ("kappa", "se_kappa", "ac1", "pabak"):
            assert m[key] == pytest.approx(v["expected"][key], abs=v["tolerance"])
    v = vec["rogan_gladen_delta_ci"]["inputs"]
    out = corrected_pass_rate(v["judge_pass"], v["n_test"], v["judge_pass_on_human_pass"] / v["m_human_pass"],
                              v["judge_fail_on_human_fail"] / v["m_human_fail"], v["m_human_pass"], v["m_human_fail"])
    exp = vec["rogan_gladen_delta_ci"]["expected"]
    assert out["status"] == "ok" and out["estimate"] == pytest.approx(exp["theta"], abs=1e-9)
    assert out["ci"] == pytest.approx(exp["ci"], abs=1e-6)
    assert out["ci_lee2025"] == pytest.approx(vec["lee2025_adjusted_ci"]["expected"], abs=1e-9)
    v = vec["judge_drift_mcnemar_b3_c2"]
    before = {f"i{k}": ("PASS", "PASS") for k in range(3)} | {f"j{k}": ("PASS", "FAIL") for k in range(2)}
    now = {f"i{k}": ("PASS", "FAIL") for k in range(3)} | {f"j{k}": ("PASS", "PASS") for k in range(2)}
    drift = compare_verdicts(before, now)
    assert (drift["worse"], drift["better"]) == (3, 2)
    assert drift["p_exact"] == pytest.approx(v["expected"]["p_exact"]) and drift["p_midp"] == pytest.approx(
        v["expected"]["p_midp"])
    assert not drift["drifted"]


def test_correction_is_refused_for_a_judge_near_chance():
    out = corrected_pass_rate(90, 100, sensitivity=0.95, specificity=0.2, n_pos=100, n_neg=60)
    assert out["status"] == "refused" and out["raw_rate"] == 0.9 and "chance" in out["reason"]


def test_an_always_pass_judge_is_refused_although_its_raw_agreement_is_high():
    labels, verdicts = verdict_lists([[0, 0], [60, 940]])
    m = calibration_metrics(labels, verdicts)
    assert m["agreement"] == 0.94
    reasons = gate_reasons(m, GateFloors())
    assert any("FAIL-recall" in r for r in reasons) and any("kappa" in r for r in reasons)
    good = calibration_metrics(*verdict_lists([[56, 5], [4, 935]]))
    assert gate_reasons(good, GateFloors()) == []
    assert gate_reasons(calibration_metrics(*verdict_lists([[20, 0], [0, 980]])), GateFloors()) == [
        "only 20 human-FAIL items (need 50)"]


def _project(tmp_path: Path, monkeypatch) -> Path:
    (tmp_path / "datasets" / "demo").mkdir(parents=True)
    # A suite's files stay inside its project: the judges' labels and rubrics are copied in.
    shutil.copytree(REPO / "datasets" / "calibration", tmp_path / "datasets" / "calibration")
    monkeypatch.setenv("EVALPLATFORM_HOME", str(tmp_path / "state"))
    return tmp_path / "datasets" / "demo"


def _judge(suite_dir: Path, model: str, criterion: str = "tone") -> LLMJudge:
    j = LLMJudge(id=f"{criterion}_{model.split('-')[-1]}", criterion=criterion, judge={"model": model},
                 rubric=f"../calibration/rubrics/{criterion}.md", calibration=f"../calibration/{criterion}.jsonl")
    j.check_files(suite_dir, suite_dir / "suite.yaml", "scorers[0]")
    return j


def test_demo_judges_calibrate_store_and_gate(tmp_path, monkeypatch):
    suite_dir = _project(tmp_path, monkeypatch)
    store = HistoryStore(tmp_path / "h.duckdb")
    rubric, lenient = _judge(suite_dir, "local/judge-rubric"), _judge(suite_dir, "local/judge-lenient")
    good = calibrate_judge(rubric, cache_dir=None)
    bad = calibrate_judge(lenient, cache_dir=None)
    assert good.metrics["n"] == 160 and good.metrics["m_human_fail"] == 64
    assert good.allowed and good.self_consistency == 1.0
    assert not bad.allowed and bad.metrics["fail_recall"] == 0.0 and bad.metrics["agreement"] == 0.6
    for report in (good, bad):
        store_report(store, report)
    stored = latest_calibration(store, good.identity_key)
    assert stored["judge_fail_human_fail"] == good.metrics["table"][0][0] and stored["allowed"]
    assert store.get_judge_verdicts(stored["calibration_id"]).height == 160
    assert gate_status(store, rubric).status == "allowed"
    refused = gate_status(store, lenient)
    assert refused.status == "refused" and refused.reasons
    # A changed rubric is a new identity: the old calibration no longer lets the judge gate.
    edited = suite_dir / "tone.md"
    edited.write_text((RUBRICS / "tone.md").read_text().replace("version: 1", "version: 2"), encoding="utf-8")
    changed = LLMJudge(**{**rubric.model_dump(exclude={"type"}), "rubric": str(edited)})
    changed.check_files(suite_dir, suite_dir / "suite.yaml", "scorers[0]")
    stale = gate_status(store, changed)
    assert stale.status == "stale" and "changed since" in stale.reasons[0]


def test_drift_compares_a_fresh_judgment_with_the_previous_one(tmp_path, monkeypatch):
    suite_dir = _project(tmp_path, monkeypatch)
    store = HistoryStore(tmp_path / "h.duckdb")
    rubric = _judge(suite_dir, "local/judge-rubric")
    store_report(store, calibrate_judge(rubric, self_consistency_k=1))
    again = calibrate_judge(rubric, purpose="drift", self_consistency_k=1)
    store_report(store, again)
    same = drift_against_previous(store, again)
    assert same["n"] == 160 and same["worse"] == same["better"] == 0 and not same["drifted"]
    # A later judge version that stops catching failures is flagged on the same frozen items.
    worse = calibrate_judge(_judge(suite_dir, "local/judge-lenient"), purpose="drift", self_consistency_k=1)
    worse.judge_name = again.judge_name
    store_report(store, worse)
    drift = drift_against_previous(store, worse)
    assert drift["drifted"] and drift["identity_changed"] and drift["by_class"]["FAIL"]["worse"] > 0


@pytest.mark.parametrize("line, field", [
    ('{"id": "a", "criterion": "tone", "input": "q", "output": "o", "label": "MAYBE", "critique": "c"}', "line 2: label"),
    ('{"id": "a", "criterion": "tone", "input": "q", "output": "o", "label": "PASS"}', "line 2: critique"),
    ('{"id": "x", "criterion": "tone", "input": "q", "output": "o", "label": "PASS", "critique": "c", "n": 1}', "line 2: n"),
    ("{not json", "line 2"),
    ('{"id": "ok", "criterion": "tone", "input": "q", "output": "o", "label": "PASS", "critique": "c"}', "line 2: id"),
    # A label given twice is no label (json.loads would keep the last one silently).
    ('{"id": "b", "criterion": "tone", "input": "q", "output": "o", "label": "FAIL", "critique": "c", "label": "PASS"}',
     "line 2: invalid JSON (duplicate key 'label')"),
    ('{"id": "b", "x": ' + "[" * 100000 + "]" * 100000 + "}", "line 2: invalid JSON (JSON nested too deeply)"),
])
def test_bad_calibration_files_name_file_line_and_field(tmp_path, line, field):
    first = '{"id": "ok", "criterion": "tone", "input": "q", "output": "o", "label": "FAIL", "critique": "rude"}'
    path = tmp_path / "tone.jsonl"
    path.write_text(first + "\n" + line + "\n", encoding="utf-8")
    with pytest.raises(InputError) as err:
        load_calibration_set(path)
    assert str(err.value).startswith(f"{path}: {field}")


def test_committed_calibration_sets_are_valid_and_fail_heavy():
    for criterion in ("groundedness", "tone"):
        cal = load_calibration_set(REPO / "datasets" / "calibration" / f"{criterion}.jsonl", criterion)
        assert len(cal.items) >= 120 and cal.n_fail / len(cal.items) >= 0.35


def test_trained_judge_is_deterministic_versioned_and_scores_a_whole_column(tmp_path, monkeypatch):
    suite_dir = _project(tmp_path, monkeypatch)
    j = TrainedJudge(id="tone_cheap", criterion="tone", calibration="../calibration/tone.jsonl")
    j.check_files(suite_dir, suite_dir / "suite.yaml", "scorers[0]")
    report = calibrate_judge(j)
    assert report.method.startswith("stratified 5-fold") and report.metrics["n"] == 160
    assert report.metrics["fail_recall"] > 0.6 and report.self_consistency == 1.0
    assert calibrate_judge(j).metrics["table"] == report.metrics["table"]       # fixed random_state
    saved = list((tmp_path / "state" / "judges").glob("tone-*.joblib"))
    assert len(saved) == 1 and saved[0].name[5:21] == j.identity().prompt_sha256[:16]
    frame = pl.DataFrame({"question": ["How much is Pro?"] * 2,
                          "output": ["Pro costs $20.00 per month. Happy to help!",
                                     "OBVIOUSLY PRO COSTS $20.00. READ THE HELP CENTER. Stop asking me."]})
    scored = j.score(frame)
    assert scored["score"][0] > 0.5 > scored["score"][1]
    assert scored["explanation"][0].startswith(f"[judge {j.identity().key}] P(PASS) = ")
    other = TrainedJudge(id="t", criterion="tone", C=1.0, calibration=j.calibration)
    other.check_files(suite_dir, suite_dir / "suite.yaml", "scorers[1]")
    assert other.identity().key != j.identity().key
