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


def _forced(monkeypatch, value: str = "1") -> None:
    monkeypatch.setenv("EVALPLATFORM_FORCE_TERMINAL", value)
    monkeypatch.setenv("COLUMNS", "160")


def _runs(store: HistoryStore) -> None:
    _complete(store, "r-one", frame(rows(8, 2)), overall="BLOCK", model="local/model-one")
    _complete(store, "r-two", frame(rows(10)), model="local/model-two")


def test_history_list_off_a_terminal_is_the_plain_table(tmp_path, capsys):
    _runs(HistoryStore(tmp_path / "history.duckdb"))
    assert main(["history", "list"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["run_id", "suite", "tier", "status", "model", "pass", "fail", "error", "decision"]
    assert lines[1].split() == ["r-two", "demo", "pr", "complete", "local/model-two", "10", "0", "0", "PASS"]
    assert lines[2].split() == ["r-one", "demo", "pr", "complete", "local/model-one", "8", "2", "0", "BLOCK"]
    assert not BOX & set(out) and "\x1b" not in out


def test_history_list_on_a_terminal_is_a_rich_table(tmp_path, monkeypatch, capsys):
    _runs(HistoryStore(tmp_path / "history.duckdb"))
    _forced(monkeypatch)
    assert main(["history", "list"]) == 0
    out = capsys.readouterr().out
    assert BOX & set(out), out
    assert "r-one" in out and "local/model-one" in out and "BLOCK" in out


def test_a_real_terminal_gets_rich_and_force_0_gets_plain(tmp_path, monkeypatch, capsys):
    _runs(HistoryStore(tmp_path / "history.duckdb"))
    monkeypatch.setattr("sys.stdout.isatty", lambda: True)
    assert main(["history", "list"]) == 0
    assert BOX & set(capsys.readouterr().out)
    _forced(monkeypatch, "0")
    assert main(["history", "list"]) == 0
    assert not BOX & set(capsys.readouterr().out)


def test_rich_output_escapes_control_characters_too(tmp_path, monkeypatch, capsys):
    store = HistoryStore(tmp_path / "history.duckdb")
    store.begin_run({"run_id": "r1", "suite": "demo", "tier": "pr"})
    store.fail_run("r1", f"crashed {HOSTILE}")
    _forced(monkeypatch)
    assert main(["history", "list"]) == 0
    out = capsys.readouterr().out
    assert BOX & set(out) and "crashed" in out
    assert not any(seq in out for seq in ("\x1b[2J", "\x1b]0;", "\x07", "\x08")), repr(out)


def test_gate_decision_table_plain_and_rich(tmp_path, monkeypatch, capsys):
    (tmp_path / "r.jsonl").write_text("".join(f'{{"case_id": "c{i}", "outcome": "pass"}}\n' for i in range(20)))
    (tmp_path / "p.yaml").write_text(FLOOR)
    argv = ["gate", "--no-record", "--results", "r.jsonl", "--policy", "p.yaml"]
    assert main(argv) == 0
    plain = capsys.readouterr().out
    assert plain.splitlines()[0].split()[:3] == ["rule", "severity", "outcome"] and "decision: PASS" in plain
    assert not BOX & set(plain)
    _forced(monkeypatch)
    assert main(argv) == 0
    drawn = capsys.readouterr().out
    assert BOX & set(drawn) and "floor" in drawn and "decision: PASS" in drawn


def test_run_summary_on_a_terminal_is_drawn_with_rich(tmp_path, monkeypatch, capsys):
    _complete(HistoryStore(tmp_path / "history.duckdb"), "r1", frame(rows(9, 1, tags=["category:math"])))
    _forced(monkeypatch)
    assert main(["history", "show", "r1"]) == 0
    out = capsys.readouterr().out
    assert BOX & set(out) and "local/echo" in out and "math" in out and "RELEASE GATE PASSED" in out


def test_history_show_failures_lists_every_failing_row(tmp_path, capsys):
    results = frame(rows(40, 130, 20, tags=["category:math"], error="RateLimitError: slow down"))
    _complete(HistoryStore(tmp_path / "history.duckdb"), "r1", results, overall="BLOCK", model="local/model-x")
    assert main(["history", "show", "r1", "--failures"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert "r1" in lines[0] and "local/model-x" in lines[0] and "BLOCK" in lines[0]
    assert lines[1].split() == ["case_id", "repeat", "category", "scorer", "criterion", "outcome", "reason"]
    body = lines[2:-1]
    assert len(body) == 150  # every failing and errored row, past the 100 the PR comment shows
    listed = {ln.split()[0] for ln in body}
    assert listed == {f"c{i:05d}" for i in range(40, 190)}
    assert sum("error" in ln.split() and "RateLimitError: slow down" in ln for ln in body) == 20
    assert "150" in lines[-1]


def test_history_show_failures_of_a_run_without_failures_says_so(tmp_path, capsys):
    _complete(HistoryStore(tmp_path / "history.duckdb"), "r1", frame(rows(5)))
    assert main(["history", "show", "r1", "--failures"]) == 0
    assert "no case failed or errored" in capsys.readouterr().out


def test_history_show_failures_on_a_terminal_is_a_rich_table(tmp_path, monkeypatch, capsys):
    _complete(HistoryStore(tmp_path / "history.duckdb"), "r1", frame(rows(5, 3)), overall="BLOCK")
    _forced(monkeypatch)
    assert main(["history", "show", "r1", "--failures"]) == 0
    out = capsys.readouterr().out
    assert BOX & set(out) and all(f"c{i:05d}" in out for i in range(5, 8))


def test_progress_draws_only_on_a_terminal():
    import io
    from types import SimpleNamespace

    from evalplatform.progress import Progress

    call = SimpleNamespace(error=None, cache_hit=True)
    for terminal, drawn in ((False, False), (True, True)):
        stream = io.StringIO()
        bar = Progress(3, stream=stream, terminal=terminal)
        for _ in range(3):
            bar(call)
        assert ("3/3" in stream.getvalue()) == drawn, stream.getvalue()
        assert (bar.done, bar.hits) == (3, 3)


def test_run_shows_a_progress_bar_only_on_a_terminal(tmp_path, monkeypatch, capsys):
    from tests.suite_helpers import make_project

    root = make_project(tmp_path)
    monkeypatch.setenv("EVALPLATFORM_PROJECT", str(root))
    argv = ["run", "--suite", "mini", "--engine", "direct", "--model", "local/echo-upper", "--no-cache"]
    assert main(argv) in (0, 1)
    out, err = capsys.readouterr()
    assert "calls" not in err and not BOX & set(out) and "RELEASE GATE" in out
    _forced(monkeypatch)
    assert main(argv) in (0, 1)
    out, err = capsys.readouterr()
    assert "calls" in err and "━" in err, err
    assert BOX & set(out)


def test_a_run_that_fails_midway_stops_its_progress_bar(tmp_path, monkeypatch, capsys):
    """A live bar hides the terminal's cursor: a run that stops on an error must give it back."""
    from types import SimpleNamespace

    import evalplatform.pipeline as pipeline
    from evalplatform.errors import InfraError
    from tests.suite_helpers import make_project

    root = make_project(tmp_path)
    monkeypatch.setenv("EVALPLATFORM_PROJECT", str(root))
    _forced(monkeypatch)
    bars = []

    def failing(project, request, progress=None, **kwargs):
        bars.append(progress(3))
        bars[-1](SimpleNamespace(error=None, cache_hit=False))
        raise InfraError("provider went away")

    monkeypatch.setattr(pipeline, "scored_run", failing)
    assert main(["run", "--suite", "mini", "--engine", "direct", "--model", "local/echo-upper"]) == 3
    err = capsys.readouterr().err
    assert "provider went away" in err
    assert bars and bars[0]._bar is None
    assert err.rfind("\x1b[?25h") > err.rfind("\x1b[?25l") >= 0, repr(err)  # the cursor is shown again
