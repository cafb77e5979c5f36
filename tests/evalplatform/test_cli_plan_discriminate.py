"""The `plan` and `discriminate` verbs: the tables, the exit codes, and a refused rule as one line."""

from __future__ import annotations

import pytest

from evalplatform.cli import main
from evalplatform.pipeline import scored_run
from evalplatform.project import Project
from evalplatform.request import RunRequest
from tests.suite_helpers import make_project


@pytest.fixture
def mini(tmp_path, monkeypatch):
    root = make_project(tmp_path)
    monkeypatch.chdir(root)
    monkeypatch.setenv("EVALPLATFORM_PROJECT", str(root))
    monkeypatch.delenv("EVALPLATFORM_HOME", raising=False)
    return root


def test_plan_prints_every_rule_of_both_tiers_and_exits_0(mini, capsys):
    assert main(["plan", "--suite", "mini"]) == 0
    out = capsys.readouterr().out
    assert "suite mini, tier pr:" in out and "suite mini, tier nightly:" in out
    assert "pass_rate_at_least_floor" in out and "false block" in out and "detects (80%)" in out


def test_plan_refuses_a_blocking_rule_that_cannot_pass_in_one_line(mini, capsys):
    suite = mini / "datasets" / "mini" / "suite.yaml"
    (mini / "datasets" / "mini" / "policy.yaml").write_text(
        "rules:\n  - {id: strict, metric: pass_rate, bound: {min: 0.99}, severity: blocking}\n")
    suite.write_text(suite.read_text() + "policy: policy.yaml\n")
    assert main(["plan", "--suite", "mini", "--tier", "pr"]) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1 and "strict" in err[0] and "policy.yaml" in err[0] and "cases" in err[0]


def test_plan_of_an_unknown_tier_is_exit_2(mini, capsys):
    assert main(["plan", "--suite", "mini", "--tier", "weekly"]) == 2


def test_discriminate_reports_per_fraction_and_stores_the_score(mini, capsys):
    run, _ = scored_run(Project(mini), RunRequest(suite="mini", tier="nightly", repeats=1))
    assert main(["discriminate", "--suite", "mini", "--run", run.run_id, "--fractions", "0.5,1.0", "--draws",
                 "5"]) == 0
    out = capsys.readouterr().out
    assert "0.5" in out and "1.0" in out
    from evalplatform.history import HistoryStore

    assert HistoryStore(Project(mini).history_path).discriminations("mini")


def test_discriminate_with_bad_fractions_is_exit_2(mini, capsys):
    assert main(["discriminate", "--suite", "mini", "--fractions", "0,2"]) == 2
    assert "--fractions" in capsys.readouterr().err


def test_plan_says_a_relative_latency_rule_decides_on_an_interval_and_an_absolute_one_on_a_point(mini, capsys):
    suite = mini / "datasets" / "mini" / "suite.yaml"
    (mini / "datasets" / "mini" / "policy.yaml").write_text(
        "rules:\n"
        "  - {id: floor, metric: pass_rate, bound: {min: 0.5}, severity: blocking}\n"
        "  - {id: slower, metric: p95_latency_ms, bound: {max_increase: 0.25}, severity: advisory, on_missing: no_data}\n"
        "  - {id: slow, metric: p95_latency_ms, bound: {max: 2000}, severity: advisory}\n")
    suite.write_text(suite.read_text() + "policy: policy.yaml\n")
    assert main(["plan", "--suite", "mini", "--tier", "pr"]) == 0
    lines = capsys.readouterr().out.splitlines()
    slower = next(ln for ln in lines if ln.startswith("slower"))
    slow = next(ln for ln in lines if ln.startswith("slow "))
    assert "bootstrap interval over cases against the baseline" in slower and "always decides" not in slower
    assert "point estimate without an interval" in slow
