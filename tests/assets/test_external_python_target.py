"""A team's own Python pipeline, in a project folder outside the repo, runs through `evalplatform run` on
both engines: the direct path, and Dagster's (the launcher starts from the code location, elsewhere)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from assets.resources import REPO_ROOT
from evalplatform.history import HistoryStore

HANG_GUARD_S = 600

PACKAGE = '''
"""The team's pipeline: a package at the project root."""

from evalplatform.targets import TargetResult, ToolCall


def answer(case):
    from canned_replies import reply  # a module of the suite folder, imported lazily at call time

    text = reply(case.prompt)
    return TargetResult(output=text, tool_calls=[ToolCall(name="kb_search", arguments={"q": case.prompt})],
                        state={"answered": True}, latency_ms=120.0, cost_usd=0.0001)
'''

REPLIES = '''
def reply(question):
    return "Returns are free within 30 days." if "return" in question.lower() else "Shipping takes 2 days."
'''


def _project(tmp_path: Path) -> Path:
    evals = tmp_path / "team-evals"
    suite_dir = evals / "datasets" / "helpdesk"
    suite_dir.mkdir(parents=True)
    (evals / "helpdesk_bot").mkdir()
    (evals / "helpdesk_bot" / "__init__.py").write_text("")
    (evals / "helpdesk_bot" / "pipeline.py").write_text(textwrap.dedent(PACKAGE))
    (suite_dir / "canned_replies.py").write_text(textwrap.dedent(REPLIES))
    (suite_dir / "prompt.txt").write_text("{{ question }}\n")
    cases = [{"id": f"c{i}", "category": "returns" if i % 2 else "shipping",
              "question": "How do returns work?" if i % 2 else "How long is shipping?",
              "must_contain": ["30 days"] if i % 2 else ["2 days"]} for i in range(12)]
    (suite_dir / "cases.jsonl").write_text("".join(json.dumps(c) + "\n" for c in cases))
    suite = {"schema_version": 1, "name": "helpdesk", "datasets": ["cases.jsonl"], "prompt": "prompt.txt",
             "target": {"python": "helpdesk_bot.pipeline:answer", "model": "team-llm-v3"},
             "scorers": [{"id": "facts", "type": "contains", "criterion": "correctness", "column": "must_contain"},
                         {"id": "searched", "type": "tool_called", "criterion": "tool_use", "tool": "kb_search"},
                         {"id": "answered", "type": "final_state", "criterion": "outcome",
                          "expected": {"answered": True}}],
             "gate": {"pass_rate_floor": 0.7}, "tiers": {"pr": {}, "nightly": {}}}
    (suite_dir / "suite.yaml").write_text(yaml.safe_dump(suite, sort_keys=False))
    return evals


def _env(tmp_path: Path, evals: Path) -> dict:
    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text((REPO_ROOT / "dagster.yaml").read_text())
    env = {k: v for k, v in os.environ.items() if k not in ("EVALPLATFORM_HOME", "EVALPLATFORM_HISTORY", "PYTHONPATH")}
    env.update(EVALPLATFORM_PROJECT=str(evals), DAGSTER_HOME=str(home), LITELLM_LOCAL_MODEL_COST_MAP="True")
    return env


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["direct", "dagster"])
def test_a_python_function_in_a_folder_outside_the_repo_runs_through_evalplatform_run(tmp_path, engine):
    evals = _project(tmp_path)
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    out = subprocess.run([sys.executable, "-m", "evalplatform", "run", "--suite", "helpdesk", "--engine", engine],
                         cwd=workdir, env=_env(tmp_path, evals), capture_output=True, text=True, timeout=HANG_GUARD_S)
    assert out.returncode == 0, out.stdout + out.stderr
    assert ("dagster run " in out.stdout) == (engine == "dagster")
    store = HistoryStore(evals / ".evalplatform" / "history.duckdb")
    run = store.latest_run("helpdesk")
    assert run is not None and run["decision"] == "PASS" and bool(run["dagster_run_id"]) == (engine == "dagster")
    assert run["target_model"] == "team-llm-v3"
    params = run["target_params"] if isinstance(run["target_params"], dict) else json.loads(run["target_params"])
    assert params["python"] == "helpdesk_bot.pipeline:answer" and params["code_version"].startswith("sha256:")
    results = store.get_results(run["run_id"])
    assert results["trace_hash"].drop_nulls().len() == results.height
    assert set(results["latency_ms"].unique().to_list()) == {120.0}  # the pipeline's own latency
    trace = json.loads(store.get_output(results["trace_hash"][0]))
    assert trace["tool_calls"][0]["name"] == "kb_search" and trace["state"] == {"answered": True}


def test_an_import_path_that_does_not_resolve_is_one_line_and_exit_2(tmp_path):
    evals = _project(tmp_path)
    suite_file = evals / "datasets" / "helpdesk" / "suite.yaml"
    suite_file.write_text(suite_file.read_text().replace("helpdesk_bot.pipeline:answer", "helpdesk_bot.pipeline:nope"))
    out = subprocess.run([sys.executable, "-m", "evalplatform", "run", "--suite", "helpdesk", "--engine", "direct"],
                         cwd=tmp_path, env=_env(tmp_path, evals), capture_output=True, text=True, timeout=HANG_GUARD_S)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "Traceback" not in out.stderr
    assert "target.python" in out.stderr and "has no attribute 'nope'" in out.stderr
    assert not (evals / ".evalplatform" / "history.duckdb").exists() or \
        HistoryStore(evals / ".evalplatform" / "history.duckdb").latest_run("helpdesk") is None
