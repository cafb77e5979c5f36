"""The pipeline against a real local OpenAI-compatible HTTP server: retries, errors, nothing lost."""

from __future__ import annotations

import json

import polars as pl
import pytest

from evalplatform import results as R
from evalplatform.history import HistoryStore
from evalplatform.pipeline import RunOptions, scored_run
from evalplatform.project import Project
from tests.helpers.openai_server import OpenAIServer

BEHAVIOURS = {"ok": 6, "flaky429-1": 3, "always500": 2, "malformed": 1}


@pytest.fixture
def server():
    srv = OpenAIServer(max_lifetime_s=120).start()
    yield srv
    srv.stop()


@pytest.fixture
def project(tmp_path, monkeypatch, server):
    root = tmp_path / "proj"
    suite_dir = root / "datasets" / "http"
    suite_dir.mkdir(parents=True)
    rows = [{"id": f"{b}-{i}", "category": b.split("-")[0], "behaviour": b, "text": f"case {b} {i}"}
            for b, n in BEHAVIOURS.items() for i in range(n)]
    (suite_dir / "cases.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    (suite_dir / "prompt.txt").write_text("{{ behaviour }} {{ text }}\n")
    (suite_dir / "suite.yaml").write_text(f"""
name: http
datasets: [cases.jsonl]
prompt: prompt.txt
target:
  model: openai/mixed
  api_base: {server.base_url}
  api_key_env: TEST_LOCAL_KEY
  max_attempts: 3
  backoff_base_s: 0.01
  backoff_max_s: 0.05
  timeout_s: 10
concurrency: 4
repeats: 2
scorers:
  - {{id: nonempty, type: length, criterion: format, min_chars: 1}}
  - {{id: says_case, type: contains, criterion: correctness, value: "case"}}
gate: {{pass_rate_floor: 0.5}}
tiers: {{pr: {{}}}}
""")
    monkeypatch.setenv("TEST_LOCAL_KEY", "sk-test-local-0123456789abcdef")
    monkeypatch.setenv("EVALPLATFORM_PROJECT", str(root))
    monkeypatch.delenv("EVALPLATFORM_HOME", raising=False)
    return Project(root)


def test_every_case_repeat_scorer_lands_once_with_honest_outcomes(project, server):
    run, record = scored_run(project, RunOptions(suite="http"))
    n_cases = sum(BEHAVIOURS.values())
    assert run.results.height == n_cases * 2 * 2  # cases x repeats x scorers: nothing lost or duplicated
    assert R.validate(run.results) == []
    calls = R.call_rows(run.results)
    by = {b: calls.filter(pl.col("case_id").str.starts_with(b)) for b in BEHAVIOURS}
    assert by["ok"]["attempts"].to_list() == [1] * 12
    # The server answers 429 once per distinct prompt: one repeat of each case retried once.
    flaky = by["flaky429-1"].group_by("case_id").agg(pl.col("attempts").sort())
    assert all(a == [1, 2] for a in flaky["attempts"].to_list())
    assert set(by["always500"]["attempts"].to_list()) == {3}
    assert set(by["malformed"]["attempts"].to_list()) == {1}
    outcome = dict(run.results.group_by(pl.col("case_id").str.extract(r"^(.*)-\d+$")).agg(
        pl.col("outcome").unique()).iter_rows())
    assert outcome["ok"] == ["pass"] and outcome["flaky429-1"] == ["pass"]
    assert outcome["always500"] == ["error"] and outcome["malformed"] == ["error"]
    errors = run.results.filter(pl.col("outcome") == "error")["error"].to_list()
    assert all(e and "sk-test-local" not in e for e in errors)
    # 500s were retried up to the limit, not more: what the server saw.
    assert sum(v for (m, p), v in server.requests.items() if p.startswith("always500")) == 2 * 2 * 3
    assert record["decision"] == "BLOCK"  # 6 of 24 case-repeats errored: never a pass
    floor_rule = record["decision_detail"].rules[0]
    assert floor_rule.outcome == "ERROR" and floor_rule.blocks
    stored = HistoryStore(project.history_path).get_run(run.run_id)
    assert stored["status"] == "complete" and stored["n_error"] == 12
    assert "sk-test-local" not in json.dumps(stored, default=str)
