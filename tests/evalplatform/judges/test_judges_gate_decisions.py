"""A judge that may not gate (uncalibrated, refused, or changed since its calibration) never gates a decision:
every rule that would read its rows is ERROR and blocks, in `evalplatform run` and `evalplatform gate --run`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from evalplatform.cli import main
from evalplatform.history import HistoryStore
from evalplatform.policy import evaluate_policy
from tests.evalplatform.policy.builders import frame, policy, rows

REPO = Path(__file__).resolve().parents[3]
NOT_ALLOWED = {"judge": "uncalibrated: never calibrated; run `evalplatform calibrate`"}


def test_rules_reading_a_not_allowed_judge_are_error_and_block():
    df = frame(rows(50, scorer="det"), rows(50, scorer="judge"), rows(50, scorer="weak"))
    p = policy("advisory_scorers: [weak]\nrules:\n"
               "  - {id: floor, metric: pass_rate, bound: {min: 0.5}}\n"
               "  - {id: det_only, metric: pass_rate, bound: {min: 0.5}, select: {scorer: det}}\n"
               "  - {id: judge_named, metric: scorer_pass_rate, bound: {min: 0.5}, select: {scorer: judge}, "
               "severity: advisory}\n"
               "  - {id: weak_named, metric: scorer_pass_rate, bound: {min: 0.5}, select: {scorer: weak}, "
               "severity: advisory}\n")
    allowed = evaluate_policy(p, df)
    assert allowed.overall == "PASS"
    d = evaluate_policy(p, df, judges_not_allowed={**NOT_ALLOWED, "weak": "refused: kappa lower bound 0.1 < 0.4"})
    by_id = {r.rule_id: r for r in d.rules}
    assert by_id["floor"].outcome == "ERROR" and by_id["floor"].blocks
    assert by_id["floor"].reason == "judge judge is not allowed to gate: " + NOT_ALLOWED["judge"]
    assert by_id["det_only"].outcome == "PASS"
    # Naming a judge that may not gate is ERROR even when the judge is advisory (the rule cannot rest on it).
    assert by_id["judge_named"].outcome == "ERROR" and by_id["weak_named"].outcome == "ERROR"
    assert "judge weak is not allowed to gate: refused" in by_id["weak_named"].reason
    assert d.overall == "BLOCK"
    # Only the advisory judge not allowed: the broad rule leaves its rows out and still passes.
    only_weak = evaluate_policy(p, df, judges_not_allowed={"weak": "refused"})
    assert {r.rule_id: r.outcome for r in only_weak.rules}["floor"] == "PASS"


@pytest.fixture
def demo(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "proj"
    shutil.copytree(REPO / "datasets", root / "datasets")
    # The PR tier made to run the LLM tone judge too (the demo's runs only its cheap scorers): the judge gates there.
    suite = root / "datasets" / "demo" / "suite.yaml"
    suite.write_text(suite.read_text().replace("scorers: [deterministic, cheap_judge]}",
                                               "scorers: [deterministic, cheap_judge, frontier_judge]}", 1))
    monkeypatch.chdir(root)
    monkeypatch.setenv("EVALPLATFORM_PROJECT", str(root))
    for name in ("EVALPLATFORM_HOME", "EVALPLATFORM_HISTORY", "GITHUB_STEP_SUMMARY"):
        monkeypatch.delenv(name, raising=False)
    return root


def _run(capsys, root: Path) -> tuple[int, dict]:
    code = main(["run", "--suite", "demo", "--tier", "pr", "--engine", "direct", "--json", "d.json"])
    capsys.readouterr()
    return code, json.loads((root / "d.json").read_text())


def _reasons(decision: dict) -> dict[str, str]:
    return {r["rule_id"]: r["reason"] for r in decision["rules"] if r["outcome"] == "ERROR"}


def test_run_and_gate_run_refuse_an_uncalibrated_then_a_changed_judge(demo, capsys):
    # No calibration of the LLM tone judge: it is not called, every rule that would read it is ERROR, the run blocks.
    code, first = _run(capsys, demo)
    assert code == 1 and first["overall"] == "BLOCK"
    reasons = _reasons(first)
    assert reasons["pass_rate_at_least_floor"].startswith("judge tone_judge is not allowed to gate: uncalibrated")
    assert "tone_corrected_pass_rate" in reasons  # it names the judge
    # The trained judge is calibrated on first use and may gate: its rule is decided, not refused.
    assert "tone_trained_corrected_pass_rate" not in reasons
    # Gating the recorded run again says the same, from the identities the run pinned.
    policy_file = str(demo / "floor.yaml")
    Path(policy_file).write_text("advisory_scorers: [tone_judge_lenient, tone_trained, grounded_judge]\nrules:\n"
                                 "  - {id: floor, metric: pass_rate, bound: {min: 0.7}, errors: exclude}\n")
    assert main(["gate", "--no-record", "--run", first["run_id"], "--policy", policy_file]) == 1
    assert "judge tone_judge is not allowed to gate" in capsys.readouterr().err

    assert main(["calibrate", "--suite", "demo", "--judge", "tone_judge", "--k", "1"]) == 0
    capsys.readouterr()
    code, second = _run(capsys, demo)
    assert second["overall"] == "PASS" and code == 0, _reasons(second)
    # The first run never called the judge: gating it again cannot pass on verdicts it does not have.
    assert main(["gate", "--no-record", "--run", first["run_id"], "--policy", policy_file]) == 1
    assert "it was not called" in capsys.readouterr().err

    # A changed rubric is a new judge identity: its calibration is stale until the judge is calibrated again.
    rubric = demo / "datasets" / "calibration" / "rubrics" / "tone.md"
    rubric.write_text(rubric.read_text().replace("version: 1", "version: 2", 1), encoding="utf-8")
    code, third = _run(capsys, demo)
    assert code == 1 and third["overall"] == "BLOCK"
    stale = _reasons(third)["pass_rate_at_least_floor"]
    assert stale.startswith("judge tone_judge is not allowed to gate: stale: judge changed since its calibration")
    assert HistoryStore(demo / ".evalplatform" / "history.duckdb").get_run(third["run_id"])["decision"] == "BLOCK"
