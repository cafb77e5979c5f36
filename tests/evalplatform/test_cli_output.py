"""What the CLI prints carries data (error texts, case tags, reasons, file names): control characters never reach
the terminal raw, off a terminal the output is the plain text CI logs rely on, on one it is drawn by rich."""

from __future__ import annotations

import polars as pl
import pytest

from evalplatform.cli import main
from evalplatform.history import HistoryStore
from evalplatform.policy.evaluate import Decision, RuleResult
from tests.evalplatform.policy.builders import frame, rows

HOSTILE = "\x1b[2J\x1b]0;owned\x07wiped\x08\r"
FLOOR = "rules:\n  - {id: floor, metric: pass_rate, bound: {min: 0.1}}\n"
BOX = set("─│┃━┏┓┗┛┌┐└┘╭╮╰╯├┤┼")


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EVALPLATFORM_PROJECT", str(tmp_path))
    monkeypatch.setenv("EVALPLATFORM_HISTORY", str(tmp_path / "history.duckdb"))
    monkeypatch.delenv("EVALPLATFORM_FORCE_TERMINAL", raising=False)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


def _clean(text: str) -> bool:
    return not any(c in text for c in "\x1b\x07\x08\r")


def _complete(store: HistoryStore, run_id: str, results: pl.DataFrame, overall: str = "PASS",
              model: str = "local/echo") -> None:
    store.begin_run({"run_id": run_id, "suite": "demo", "tier": "pr", "target_model": model})
    rule = RuleResult("floor", "pass_rate", "blocking", overall if overall == "PASS" else "FAIL", overall != "PASS",
                      "ok", {})
    store.complete_run(run_id, results.with_columns(pl.lit(run_id).alias("run_id")), {}, decision={
        "overall": overall, "policy_hash": "p", "inputs": {"run_id": run_id, "policy": "p"},
        "rules": [rule.to_dict()]})


def test_gate_blocked_line_escapes_control_characters(tmp_path, monkeypatch, capsys):
    import evalplatform.policy as policy

    blocked = Decision("BLOCK", [RuleResult("floor", "pass_rate", "blocking", "FAIL", True, f"case {HOSTILE}", {})],
                       "p")
    monkeypatch.setattr(policy, "evaluate_policy", lambda *a, **k: blocked)
    (tmp_path / "r.jsonl").write_text('{"case_id": "a", "outcome": "pass"}\n')
    (tmp_path / "p.yaml").write_text(FLOOR)
    assert main(["gate", "--no-record", "--results", "r.jsonl", "--policy", "p.yaml"]) == 1
    out, err = capsys.readouterr()
    assert "blocked:" in err and "wiped" in err
    assert _clean(out) and _clean(err), repr(err)


def test_history_list_escapes_a_stored_failure_text(tmp_path, capsys):
    store = HistoryStore(tmp_path / "history.duckdb")
    store.begin_run({"run_id": "r1", "suite": "demo", "tier": "pr"})
    store.fail_run("r1", f"crashed {HOSTILE}")
    assert main(["history", "list"]) == 0
    out, err = capsys.readouterr()
    assert "crashed" in out and "wiped" in out
    assert _clean(out) and _clean(err), repr(out)


def test_run_summary_escapes_stored_texts(tmp_path, capsys):
    store = HistoryStore(tmp_path / "history.duckdb")
    results = frame(rows(3, 1, 1, tags=[f"category:cat{HOSTILE}"], error=f"RateLimitError{HOSTILE}",
                         criterion=f"crit{HOSTILE}"))
    _complete(store, "r1", results, overall="BLOCK")
    assert main(["history", "show", "r1"]) == 0
    out, err = capsys.readouterr()
    assert "cat" in out and "crit" in out
    assert _clean(out) and _clean(err), repr(out)


def test_an_error_line_escapes_control_characters(tmp_path, capsys):
    (tmp_path / "p.yaml").write_text(FLOOR)
    assert main(["gate", "--no-record", "--results", f"missing{HOSTILE}.jsonl", "--policy", "p.yaml"]) == 2
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "missing" in lines[0]
    assert _clean(err), repr(err)
