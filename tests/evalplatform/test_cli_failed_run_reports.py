"""A command that ends in bad input (exit 2) or an infrastructure failure (exit 3) rewrites the reports it was
asked for to state the failure; a PASS report from an earlier run is never left behind to mislead CI."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace

import pytest

from evalplatform.cli import main
from evalplatform.errors import InfraError
from evalplatform.policy.evaluate import Decision, RuleResult
from evalplatform.policy.report import render_json, render_junit, render_markdown

GOOD = '{"case_id": "a", "outcome": "pass"}\n'
FLOOR = "rules:\n  - {id: floor, metric: pass_rate, bound: {min: 0.1}}\n"


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EVALPLATFORM_PROJECT", str(tmp_path))
    monkeypatch.setenv("EVALPLATFORM_HISTORY", str(tmp_path / "history.duckdb"))
    monkeypatch.delenv("EVALPLATFORM_DAGSTER_URL", raising=False)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


def _stale_pass_reports(tmp_path: Path) -> list[str]:
    """Reports a previous, passing run left in place."""
    passed = Decision("PASS", [RuleResult("floor", "pass_rate", "blocking", "PASS", False, "ok", {})], "old")
    (tmp_path / "j.xml").write_text(render_junit(passed))
    (tmp_path / "m.md").write_text(render_markdown(passed))
    (tmp_path / "d.json").write_text(render_json(passed))
    return ["--junit", "j.xml", "--markdown", "m.md", "--json", "d.json"]


def _assert_failure_reports(tmp_path: Path, code: int, needle: str) -> None:
    root = ET.parse(tmp_path / "j.xml").getroot()
    cases = list(root.iter("testcase"))
    assert len(cases) == 1
    failure = cases[0].find("failure")
    assert failure is not None and f"exit {code}" in failure.get("message") and needle in failure.get("message")
    assert root.get("failures") == "1"
    markdown = (tmp_path / "m.md").read_text()
    assert "PASS" not in markdown and f"exit {code}" in markdown and needle in markdown
    decision = json.loads((tmp_path / "d.json").read_text())
    assert decision["overall"] != "PASS" and decision["exit_code"] == code and needle in decision["error"]


def _write(tmp_path: Path, name: str, text: str) -> str:
    (tmp_path / name).write_text(text)
    return name


def test_gate_with_bad_input_rewrites_stale_pass_reports(tmp_path, capsys):
    reports = _stale_pass_reports(tmp_path)
    rc = main(["gate", "--no-record", "--results", _write(tmp_path, "r.jsonl", "{broken\n"),
               "--policy", _write(tmp_path, "p.yaml", FLOOR), *reports])
    assert rc == 2
    err = capsys.readouterr().err
    assert len([line for line in err.splitlines() if line.startswith("error:")]) == 1
    _assert_failure_reports(tmp_path, 2, "malformed JSON")


def test_gate_with_an_infrastructure_failure_rewrites_stale_pass_reports(tmp_path, capsys, monkeypatch):
    import evalplatform.policy as policy

    def broken(*args, **kwargs):
        raise InfraError("history.duckdb: database is locked by another process")

    monkeypatch.setattr(policy, "evaluate_policy", broken)
    reports = _stale_pass_reports(tmp_path)
    rc = main(["gate", "--no-record", "--results", _write(tmp_path, "r.jsonl", GOOD),
               "--policy", _write(tmp_path, "p.yaml", FLOOR), *reports])
    assert rc == 3
    capsys.readouterr()
    _assert_failure_reports(tmp_path, 3, "database is locked")


def test_an_unexpected_crash_and_an_interrupt_rewrite_them_too(tmp_path, capsys, monkeypatch):
    import evalplatform.policy as policy

    for exc, needle in ((RuntimeError("boom"), "internal failure"), (KeyboardInterrupt(), "interrupted")):
        def broken(*args, _exc=exc, **kwargs):
            raise _exc

        monkeypatch.setattr(policy, "evaluate_policy", broken)
        reports = _stale_pass_reports(tmp_path)
        rc = main(["gate", "--no-record", "--results", _write(tmp_path, "r.jsonl", GOOD),
                   "--policy", _write(tmp_path, "p.yaml", FLOOR), *reports])
        assert rc == 3
        capsys.readouterr()
        _assert_failure_reports(tmp_path, 3, needle)


@pytest.mark.parametrize("verb", ["run", "ci"])
def test_run_and_ci_with_bad_input_rewrite_stale_pass_reports(tmp_path, capsys, verb):
    reports = _stale_pass_reports(tmp_path)
    rc = main([verb, "--suite", "no-such-suite", "--engine", "direct", *reports])
    assert rc == 2, capsys.readouterr()
    capsys.readouterr()
    _assert_failure_reports(tmp_path, 2, "no-such-suite")


def test_usage_error_rewrites_the_reports_it_names(tmp_path, capsys):
    reports = _stale_pass_reports(tmp_path)
    rc = main(["gate", "--policy", _write(tmp_path, "p.yaml", FLOOR), "--no-such-flag", *reports])
    assert rc == 2
    capsys.readouterr()
    _assert_failure_reports(tmp_path, 2, "no-such-flag")


def test_failure_summary_is_appended_for_github(tmp_path, capsys, monkeypatch):
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    rc = main(["gate", "--no-record", "--results", _write(tmp_path, "r.jsonl", "{broken\n"),
               "--policy", _write(tmp_path, "p.yaml", FLOOR)])
    assert rc == 2
    capsys.readouterr()
    text = summary.read_text()
    assert text.startswith("earlier step\n") and "exit 2" in text and "malformed JSON" in text


def test_an_unwritable_report_path_does_not_add_a_second_error(tmp_path, capsys):
    rc = main(["gate", "--no-record", "--results", _write(tmp_path, "r.jsonl", "{broken\n"),
               "--policy", _write(tmp_path, "p.yaml", FLOOR), "--junit", str(tmp_path / "missing-dir" / "j.xml")])
    assert rc == 2
    err = capsys.readouterr().err
    assert len([line for line in err.splitlines() if line.startswith("error:")]) == 1
    assert "j.xml" in err  # named, as a warning


def test_a_decision_that_is_not_pass_does_not_exit_0(tmp_path, capsys, monkeypatch):
    """Another overall value (NO_DATA) without a blocking rule: the gate must not report success."""
    import evalplatform.policy as policy

    no_data = Decision("NO_DATA", [RuleResult("floor", "pass_rate", "blocking", "NO_DATA", False, "no rows", {})],
                       "p")
    monkeypatch.setattr(policy, "evaluate_policy", lambda *a, **k: no_data)
    rc = main(["gate", "--no-record", "--results", _write(tmp_path, "r.jsonl", GOOD),
               "--policy", _write(tmp_path, "p.yaml", FLOOR), "--markdown", "m.md"])
    assert rc == 1
    assert "**PASS**" not in (tmp_path / "m.md").read_text()
    capsys.readouterr()


def test_run_summary_of_a_decision_that_is_not_pass_does_not_exit_0(tmp_path, capsys):
    from evalplatform.cli.summary import print_summary
    from evalplatform.history import HistoryStore
    from tests.evalplatform.policy.builders import frame, rows
    import polars as pl

    # A real run in a real history whose decision of record is NO_DATA: the summary must not exit 0.
    store = HistoryStore(tmp_path / "history.duckdb")
    store.begin_run({"run_id": "r1", "suite": "demo"})
    store.complete_run("r1", frame(rows(3)).with_columns(pl.lit("r1").alias("run_id")), {}, decision={
        "overall": "NO_DATA", "policy_hash": "p", "inputs": {"run_id": "r1", "policy": "p"},
        "rules": [RuleResult("floor", "pass_rate", "blocking", "NO_DATA", True, "no rows", {}).to_dict()]})
    project = SimpleNamespace(history_path=tmp_path / "history.duckdb")
    assert print_summary(project, "r1", None, {"markdown": "m.md", "junit": None, "json": None}) == 1
    assert "**PASS**" not in (tmp_path / "m.md").read_text()
    capsys.readouterr()
