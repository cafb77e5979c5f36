"""A decision passes only on evidence: at least one blocking rule had data and passed (or the policy says
allow_empty), and a policy that cannot block is refused unless it says advisory_only."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from evalplatform.cli import main
from evalplatform.errors import InputError
from evalplatform.policy import evaluate_policy
from evalplatform.policy.report import render_junit, render_markdown, render_table
from tests.evalplatform.policy.builders import frame, policy, rows

NOTHING_SELECTED = ("  - {id: pii, metric: pass_rate, bound: {min: 0.5}, select: {tags: {any: ['category:pii']}}, "
                    "on_missing: no_data, no_data: pass}\n")


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EVALPLATFORM_HISTORY", str(tmp_path / "history.duckdb"))
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


def test_rules_that_selected_nothing_decide_no_data_which_is_not_a_pass():
    d = evaluate_policy(policy("rules:\n" + NOTHING_SELECTED), frame(rows(10)))
    assert d.overall == "NO_DATA" and d.blocked and not d.passed
    # The rule that had no evidence blocks, so every reader of single rules stops the change too.
    assert d.rules[0].outcome == "NO_DATA" and d.rules[0].blocks
    assert "no blocking rule had data and passed" in d.rules[0].reason
    assert "decision: NO_DATA" in render_table(d) and "decision: PASS" not in render_table(d)
    assert "**NO\\_DATA**" in render_markdown(d)  # Markdown-escaped underscore
    suite = ET.fromstring(render_junit(d).split("\n", 1)[1]).find("testsuite")
    assert suite.get("failures") == "1"


def test_inconclusive_rules_that_do_not_block_are_not_evidence_either():
    p = policy("rules:\n  - {id: floor, metric: pass_rate, bound: {min: 0.9}, inconclusive: pass}\n")
    assert evaluate_policy(p, frame(rows(9, 1))).overall == "NO_DATA"


def test_one_blocking_rule_with_data_that_passed_makes_a_pass():
    p = policy("rules:\n  - {id: floor, metric: pass_rate, bound: {min: 0.5}}\n" + NOTHING_SELECTED)
    d = evaluate_policy(p, frame(rows(40)))
    assert d.overall == "PASS" and d.passed and not d.rules[1].blocks


def test_allow_empty_passes_without_evidence_and_says_so():
    d = evaluate_policy(policy("allow_empty: true\nrules:\n" + NOTHING_SELECTED), frame(rows(10)))
    assert d.overall == "PASS" and not d.rules[0].blocks
    assert any("allow_empty: true" in w for w in d.warnings)
    assert "allow_empty: true" in render_table(d)


@pytest.mark.parametrize(("text", "needle"), [
    ("rules:\n  - {id: lat, metric: p95_latency_ms, bound: {max: 900}, severity: advisory}\n",
     "no rule is blocking"),
    ("advisory_only: true\nrules:\n  - {id: floor, metric: pass_rate, bound: {min: 0.5}}\n",
     "advisory_only: true, but rule floor is blocking"),
])
def test_a_policy_that_cannot_block_is_refused_unless_it_says_advisory_only(text, needle):
    with pytest.raises(InputError, match=needle):
        policy(text)


def test_an_advisory_only_policy_reports_but_never_passes_without_allow_empty():
    rule = "  - {id: floor, metric: pass_rate, bound: {min: 0.5}, severity: advisory}\n"
    d = evaluate_policy(policy("advisory_only: true\nrules:\n" + rule), frame(rows(40)))
    assert d.overall == "NO_DATA" and d.rules[0].outcome == "PASS" and not d.rules[0].blocks
    assert "advisory_only" in render_table(d)
    suite = ET.fromstring(render_junit(d).split("\n", 1)[1]).find("testsuite")
    assert suite.get("failures") == "1"
    assert evaluate_policy(policy("advisory_only: true\nallow_empty: true\nrules:\n" + rule),
                           frame(rows(40))).overall == "PASS"


def test_gate_exits_1_on_no_data_and_0_only_when_the_policy_allows_empty(tmp_path, capsys):
    results = tmp_path / "r.jsonl"
    results.write_text("".join(json.dumps({"case_id": f"c{i}", "outcome": "pass"}) + "\n" for i in range(10)))
    strict = tmp_path / "strict.yaml"
    strict.write_text("rules:\n" + NOTHING_SELECTED)
    assert main(["gate", "--results", str(results), "--policy", str(strict), "--json", "d.json"]) == 1
    out, err = capsys.readouterr()
    assert "decision: NO_DATA" in out and "rule pii: NO_DATA" in err
    assert json.loads((tmp_path / "d.json").read_text())["overall"] == "NO_DATA"
    allowed = tmp_path / "allowed.yaml"
    allowed.write_text("allow_empty: true\nrules:\n" + NOTHING_SELECTED)
    assert main(["gate", "--no-record", "--results", str(results), "--policy", str(allowed)]) == 0
    assert "allow_empty: true" in capsys.readouterr().out
    lone = tmp_path / "advisory.yaml"
    lone.write_text("rules:\n  - {id: floor, metric: pass_rate, bound: {min: 0.5}, severity: advisory}\n")
    assert main(["gate", "--no-record", "--results", str(results), "--policy", str(lone)]) == 2
    assert "advisory.yaml: policy: no rule is blocking" in capsys.readouterr().err


def test_the_plans_warnings_are_printed_with_the_decision():
    from evalplatform.policy.evaluate import Decision, RuleResult
    from evalplatform.policy.report import render_table

    d = Decision("PASS", [RuleResult("floor", "pass_rate", "blocking", "PASS", False, "ok", {})], "p",
                 warnings=["plan: rule floor: blocks a no-change re-run 12% of the time on the pr tier (20 cases)"])
    text = render_table(d)
    assert "warning: plan: rule floor: blocks a no-change re-run 12% of the time" in text
