"""The pipeline against a real local OpenAI-compatible HTTP server: retries, errors, nothing lost."""

from __future__ import annotations

import json

import polars as pl
import pytest

from evalplatform import results as R
from evalplatform.history import HistoryStore
from evalplatform.pipeline import scored_run
from evalplatform.request import RunRequest
from evalplatform.project import Project
from tests.helpers.openai_server import OpenAIServer

BEHAVIOURS = {"ok": 6, "flaky429-1": 3, "always500": 2, "malformed": 1}


@pytest.fixture
def server():
    srv = OpenAIServer(max_lifetime_s=120).start()
    yield srv
    srv.stop()


def write_suite(root, server, rows: list[dict], *, scorers: str = "", target: str = "", name: str = "http"):
    """A project under `root` whose suite `name` calls `openai/mixed` on `server` (behaviour: a case's first word)."""
    suite_dir = root / "datasets" / name
    suite_dir.mkdir(parents=True)
    (suite_dir / "cases.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    (suite_dir / "prompt.txt").write_text("{{ behaviour }} {{ text }}\n")
    (suite_dir / "suite.yaml").write_text(f"""
name: {name}
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
{target}
concurrency: 4
repeats: 2
scorers:
  - {{id: nonempty, type: length, criterion: format, min_chars: 1}}
  - {{id: says_case, type: contains, criterion: correctness, value: "case"}}
{scorers}
gate: {{pass_rate_floor: 0.5}}
tiers: {{pr: {{scorers: [deterministic, llm_judge]}}}}  # the judge's replies are under test on the PR tier
""")
    return suite_dir / "suite.yaml"


@pytest.fixture
def project(tmp_path, monkeypatch, server):
    root = tmp_path / "proj"
    rows = [{"id": f"{b}-{i}", "category": b.split("-")[0], "behaviour": b, "text": f"case {b} {i}"}
            for b, n in BEHAVIOURS.items() for i in range(n)]
    write_suite(root, server, rows)
    monkeypatch.setenv("TEST_LOCAL_KEY", "sk-test-local-0123456789abcdef")
    monkeypatch.setenv("EVALPLATFORM_PROJECT", str(root))
    monkeypatch.delenv("EVALPLATFORM_HOME", raising=False)
    return Project(root)


def test_every_case_repeat_scorer_lands_once_with_honest_outcomes(project, server):
    run, record = scored_run(project, RunRequest(suite="http"))
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


JUDGE = """  - id: tone_judge
    type: llm_judge
    criterion: tone
    input_field: text
    advisory: true  # uncalibrated: a judge that would gate is not called at all
    rubric_text: "PASS when the reply is polite."
    judge: {{model: openai/judge, api_base: "{base}", api_key_env: TEST_LOCAL_KEY, max_attempts: 1}}"""


def test_a_reply_that_is_not_valid_unicode_is_that_calls_error_and_the_run_completes(tmp_path, monkeypatch, server):
    # A lone surrogate ("\\ud800") is valid JSON but cannot be encoded: it once aborted the whole run (exit 3).
    rows = [{"id": f"ok-{i}", "category": "ok", "behaviour": "ok", "text": f"case fine {i}"} for i in range(4)]
    rows += [{"id": "bad-reply", "category": "bad", "behaviour": "surrogate", "text": "case surrogate"},
             {"id": "bad-error", "category": "bad", "behaviour": "surrogate400", "text": "case surrogate in the error"},
             {"id": "bad-judge-reply", "category": "bad", "behaviour": "ok", "text": "case judge-surrogate"},
             {"id": "bad-judge-json", "category": "bad", "behaviour": "ok", "text": "case judge-escaped-surrogate"}]
    root = tmp_path / "proj"
    write_suite(root, server, rows, scorers=JUDGE.format(base=server.base_url))
    monkeypatch.setenv("TEST_LOCAL_KEY", "sk-test-local-0123456789abcdef")
    monkeypatch.setenv("EVALPLATFORM_PROJECT", str(root))
    monkeypatch.delenv("EVALPLATFORM_HOME", raising=False)
    project = Project(root)

    run, record = scored_run(project, RunRequest(suite="http"))

    store = HistoryStore(project.history_path)
    assert store.get_run(run.run_id)["status"] == "complete"
    stored = store.get_results(run.run_id)
    assert stored.height == len(rows) * 2 * 3  # cases x repeats x scorers: nothing lost
    outcome = {(c, s): o for c, s, o in stored.select("case_id", "scorer", "outcome").unique().iter_rows()}
    error = dict(stored.filter(pl.col("outcome") == "error").select(
        pl.concat_str("case_id", pl.lit("/"), "scorer"), "error").unique().iter_rows())
    for scorer in ("nonempty", "says_case", "tone_judge"):
        assert outcome["bad-reply", scorer] == "error"
        assert "not valid Unicode" in error[f"bad-reply/{scorer}"]
        assert outcome["bad-error", scorer] == "error"
        assert "HTTP 400" in error[f"bad-error/{scorer}"]
        assert "\\ud800" in error[f"bad-error/{scorer}"]  # shown escaped, not dropped
        for i in range(4):
            assert outcome[f"ok-{i}", scorer] == "pass"
    # The judge's own reply: unencodable text, or verdict JSON whose reasoning decodes to a lone surrogate.
    for case in ("bad-judge-reply", "bad-judge-json"):
        assert outcome[case, "says_case"] == "pass"
        assert outcome[case, "tone_judge"] == "error"
        assert "unicode" in error[f"{case}/tone_judge"].lower()
    ok = stored.filter(pl.col("case_id") == "ok-0")["output_hash"].unique().to_list()
    assert [store.get_output(h) for h in ok] == ["answer to: ok case fine 0\n"]  # stored in the history
    assert stored.filter(pl.col("case_id") == "bad-reply")["output_hash"].is_null().all()


def test_a_token_in_the_api_base_userinfo_is_stored_nowhere(tmp_path, monkeypatch, server, capsys, caplog):
    import logging

    from evalplatform.cli import main

    token = "gwTok3n77"
    rows = [{"id": f"{b}-0", "category": b, "behaviour": b, "text": f"case {b}"} for b in ("ok", "always500",
                                                                                          "unauthorized")]
    root = tmp_path / "proj"
    suite = write_suite(root, server, rows)
    # The HTTP client refuses credentials in the URL next to an api key: every call fails ("client
    # configuration"), the error texts and the run's failure reason repeat the URL.
    suite.write_text(suite.read_text().replace("http://127.0.0.1", f"http://{token}@127.0.0.1"))
    monkeypatch.setenv("TEST_LOCAL_KEY", "sk-test-local-0123456789abcdef")
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://{token}@127.0.0.1:1/v1")  # lands in the recorded environment
    monkeypatch.setenv("EVALPLATFORM_PROJECT", str(root))
    monkeypatch.delenv("EVALPLATFORM_HOME", raising=False)
    caplog.set_level(logging.DEBUG)

    # As an infrastructure failure (the default threshold): the reason names the endpoint.
    assert main(["run", "--suite", str(suite), "--engine", "direct"]) == 3
    # Scored anyway (threshold 1): error texts, decision and reports.
    suite.write_text(suite.read_text().replace("  timeout_s: 10\n", "  timeout_s: 10\n  max_infra_error_share: 1\n"))
    rc = main(["run", "--suite", str(suite), "--engine", "direct", "--json", str(tmp_path / "decision.json"),
               "--markdown", str(tmp_path / "decision.md"), "--junit", str(tmp_path / "decision.xml")])
    assert rc == 1

    store = HistoryStore(Project(root).history_path)
    runs = {r["status"]: store.get_run(r["run_id"]) for r in store.list_runs(status=None).to_dicts()}
    assert set(runs) == {"failed", "complete"}
    assert "http://[REDACTED]@127.0.0.1:" in runs["failed"]["failure"]
    for run in runs.values():
        assert run["target_params"]["api_base"].startswith("http://[REDACTED]@127.0.0.1:")
        assert "OPENAI_BASE_URL" not in run["provenance"]["environment"]
    stored = json.dumps(list(runs.values()), default=str) + json.dumps(
        store.get_results(runs["complete"]["run_id"]).to_dicts(), default=str)
    out = capsys.readouterr()
    reports = "".join((tmp_path / f).read_text() for f in ("decision.json", "decision.md", "decision.xml"))
    for where, text in {"history": stored, "stdout": out.out, "stderr": out.err, "logs": caplog.text,
                        "reports": reports}.items():
        assert token not in text, where
        assert "sk-test-local" not in text, where


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _down_project(tmp_path, monkeypatch, server, rows, target: str = ""):
    root = tmp_path / "proj"
    suite = write_suite(root, server, rows, target=target)
    monkeypatch.setenv("TEST_LOCAL_KEY", "sk-test-local-0123456789abcdef")
    monkeypatch.setenv("EVALPLATFORM_PROJECT", str(root))
    monkeypatch.delenv("EVALPLATFORM_HOME", raising=False)
    return root, suite


def test_a_dead_endpoint_is_an_infrastructure_failure_not_a_quality_verdict(tmp_path, monkeypatch, server, capsys):
    from evalplatform.cli import main

    rows = [{"id": f"ok-{i}", "category": "ok", "behaviour": "ok", "text": f"case {i}"} for i in range(10)]
    root, suite = _down_project(tmp_path, monkeypatch, server, rows)
    dead = f"http://127.0.0.1:{_closed_port()}/v1"
    suite.write_text(suite.read_text().replace(server.base_url, dead))

    rc = main(["run", "--suite", str(suite), "--engine", "direct"])

    out = capsys.readouterr()
    assert rc == 3
    store = HistoryStore(Project(root).history_path)
    [run] = store.list_runs(status=None).to_dicts()
    stored = store.get_run(run["run_id"])
    assert stored["status"] == "failed" and stored["decision"] is None
    assert f"target unreachable: 20 of 20 calls failed to connect to {dead} (connection refused)" in stored["failure"]
    assert "target unreachable" in out.err
    for verdict in ("PASS", "FAIL", "BLOCK", "regression"):
        assert verdict not in out.out


def test_mostly_failing_calls_are_an_infrastructure_failure_at_the_suites_threshold(tmp_path, monkeypatch, server,
                                                                                   capsys):
    from evalplatform.cli import main

    # 6 of 10 cases always get a 500: 60% of calls failed on the endpoint's side.
    rows = [{"id": f"{b}-{i}", "category": b, "behaviour": b, "text": f"case {i}"}
            for b, n in (("always500", 6), ("ok", 4)) for i in range(n)]
    root, suite = _down_project(tmp_path, monkeypatch, server, rows)
    assert main(["run", "--suite", str(suite), "--engine", "direct"]) == 3
    store = HistoryStore(Project(root).history_path)
    [failed] = store.list_runs(status="failed").to_dicts()
    assert "12 of 20 calls (60%)" in store.get_run(failed["run_id"])["failure"]
    assert "PASS" not in capsys.readouterr().out

    # Settable: at 0.7 the same run is scored (and blocked by its errors, never passed).
    suite.write_text(suite.read_text().replace("  timeout_s: 10\n", "  timeout_s: 10\n  max_infra_error_share: 0.7\n"))
    assert main(["run", "--suite", str(suite), "--engine", "direct"]) == 1
    assert store.list_runs(status="complete").height == 1


def test_every_request_refused_as_malformed_is_a_config_error_not_a_verdict(tmp_path, monkeypatch, server, capsys):
    """A wrong model string or parameter gets 400 on every call: that says nothing about the model's quality."""
    from evalplatform.cli import main

    rows = [{"id": f"bad-{i}", "category": "x", "behaviour": "surrogate400", "text": f"case {i}"} for i in range(5)]
    root, suite = _down_project(tmp_path, monkeypatch, server, rows)
    rc = main(["run", "--suite", str(suite), "--engine", "direct"])
    out = capsys.readouterr()
    assert rc == 2
    lines = [ln for ln in out.err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "refused all 10 requests as bad requests" in lines[0] and "target.model" in lines[0]
    for verdict in ("PASS", "FAIL", "BLOCK"):
        assert verdict not in out.out
    [run] = HistoryStore(Project(root).history_path).list_runs(status=None).to_dicts()
    assert run["status"] == "failed" and run["decision"] is None
