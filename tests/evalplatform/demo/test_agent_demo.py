"""The agent demo suite: orders-v1 passes, orders-v2 (cancels without checking) is blocked, graded by outcome."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pytest
import yaml

from evalplatform import results as R
from evalplatform.pipeline import scored_run
from evalplatform.project import Project
from evalplatform.request import RunRequest
from tests.python_targets import run_suite

ROOT = Path(__file__).resolve().parents[3]
AGENT = ROOT / "datasets" / "agent"


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.setenv("EVALPLATFORM_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("EVALPLATFORM_HISTORY", raising=False)
    return Project(ROOT)


def test_orders_v1_passes_and_orders_v2_is_blocked_where_it_misuses_cancel_order(project):
    v1, record1 = scored_run(project, RunRequest(suite="agent"))
    v2, record2 = scored_run(project, RunRequest(suite="agent", model="orders-v2"))
    assert record1["decision"] == "PASS" and record2["decision"] == "BLOCK"
    rules = {r.rule_id: r.outcome for r in record2["decision_detail"].rules}
    assert rules["never_cancels_what_must_not_be"] == "FAIL"
    failed = v2.results.filter(pl.col("outcome") == "fail")
    # v2's failures are the cancellations it must refuse, and nothing it did right.
    refuse = set(v2.plan.cases.filter(pl.col("tags").list.contains("cancel:refuse"))["case_id"])
    assert set(failed["case_id"]) == refuse
    assert {"no_cancel_call"} <= set(failed["scorer"]) and "reached_right_state" in set(failed["scorer"])
    # The pipeline's own latency and cost are what the run records: v2 is faster and cheaper, yet blocked.
    assert record2["cost_usd"] < record1["cost_usd"]
    assert R.call_rows(v1.results)["latency_ms"].min() > 100  # the agent's reported latency, not our wall time


UNUSUAL = '''
from evalplatform.demo.agent import OrderAgent


class BatchingAgent(OrderAgent):
    """Reaches the same outcome by another path: all lookups first (last mentioned first), then the cancels."""

    def _cancel(self, turn, ids, emails):
        if not ids:
            return super()._cancel(turn, ids, emails)
        found = {i: turn.tool("lookup_order", order_id=i) for i in reversed(ids)}
        replies = []
        for order_id in reversed(ids):
            self.last_order = order_id
            order = (found[order_id] or [None])[0]
            if order and order["status"] == "processing":
                replies.append(self._confirm(turn.tool("cancel_order", order_id=order_id), order_id))
            else:
                replies.append(self._checked_cancel(turn, order_id))
        return " ".join(reversed(replies))
'''


def _agent_project(tmp_path: Path, target: str) -> Path:
    suite_dir = tmp_path / "proj" / "datasets" / "agent"
    shutil.copytree(AGENT, suite_dir)
    (suite_dir / "unusual_agent.py").write_text(UNUSUAL)
    with (suite_dir / "cases.jsonl").open("a") as f:
        f.write(json.dumps({"id": "cancel-two", "category": "cancel", "severity": "high", "tags": ["cancel:two"],
                            "request": "Please cancel A1003 and A1005.", "order_id": "A1003", "order_id_2": "A1005",
                            "must_contain": ["$389.00", "$249.00"],
                            "expected_state": {"orders": {"A1003": {"status": "cancelled", "refund_usd": 389.0},
                                                          "A1005": {"status": "cancelled", "refund_usd": 249.0}}}})
                + "\n")
    doc = yaml.safe_load((suite_dir / "suite.yaml").read_text())
    doc["target"]["python"] = target
    both = [{"tool": "cancel_order", "arguments": {"order_id": "{{ order_id }}"}},
            {"tool": "cancel_order", "arguments": {"order_id": "{{ order_id_2 }}"}}]
    doc["scorers"] += [
        {"id": "cancelled_both", "type": "tool_called", "criterion": "outcome", "calls": both,
         "when": {"tags": ["cancel:two"]}},
        {"id": "cancelled_both_in_order", "type": "tool_called", "criterion": "order", "calls": both,
         "ordered": True, "when": {"tags": ["cancel:two"]}},
    ]
    (suite_dir / "suite.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return suite_dir / "suite.yaml"


def _trajectory(run, case_id: str) -> list[tuple[str, str]]:
    row = R.call_rows(run.results).filter(pl.col("case_id") == case_id).row(0, named=True)
    trace = json.loads(run.outputs[row["trace_hash"]])
    return [(c["name"], c["arguments"]["order_id"]) for c in trace["tool_calls"]]


def test_an_agent_that_reaches_the_right_state_by_an_unusual_order_of_tool_calls_passes(tmp_path):
    usual = run_suite(_agent_project(tmp_path / "a", "evalplatform.demo.agent:OrderAgent"))
    unusual = run_suite(_agent_project(tmp_path / "b", "unusual_agent:BatchingAgent"))
    assert _trajectory(usual, "cancel-two") == [("lookup_order", "A1003"), ("cancel_order", "A1003"),
                                                ("lookup_order", "A1005"), ("cancel_order", "A1005")]
    assert _trajectory(unusual, "cancel-two") == [("lookup_order", "A1005"), ("lookup_order", "A1003"),
                                                  ("cancel_order", "A1005"), ("cancel_order", "A1003")]
    graded = unusual.results.filter(pl.col("scorer") != "cancelled_both_in_order")
    assert graded.filter(pl.col("outcome") != "pass").height == 0, graded.filter(pl.col("outcome") != "pass")
    # Only a grader that asks for the order (ordered: true) can tell the two paths apart.
    in_order = {r["case_id"]: r["outcome"] for r in unusual.results.filter(
        pl.col("scorer") == "cancelled_both_in_order").iter_rows(named=True)}
    assert in_order == {"cancel-two": "fail"}
    assert usual.results.filter(pl.col("scorer") == "cancelled_both_in_order")["outcome"].to_list() == ["pass"]


def test_the_demo_agent_is_deterministic_given_the_seed_while_its_path_varies_with_it(tmp_path):
    suite = _agent_project(tmp_path, "evalplatform.demo.agent:OrderAgent")
    first = run_suite(suite, repeats=4)
    again = run_suite(suite, repeats=4)
    assert first.results.drop("run_id", "served_ms").equals(again.results.drop("run_id", "served_ms"))
    paths = {tuple(_trajectory_of(first, "two-orders-001", r)) for r in range(4)}
    assert len(paths) == 2  # the two lookups come in either order across repeats (seed + repeat) ...
    assert first.results.filter(pl.col("case_id") == "two-orders-001")["outcome"].unique().to_list() == ["pass"]


def _trajectory_of(run, case_id: str, repeat: int) -> list[str]:
    row = R.call_rows(run.results).filter((pl.col("case_id") == case_id) & (pl.col("repeat") == repeat)).row(
        0, named=True)
    return [c["arguments"]["order_id"] for c in json.loads(run.outputs[row["trace_hash"]])["tool_calls"]]


@pytest.mark.parametrize("suite", ["demo", "agent"])
def test_the_shipped_suites_policies_can_pass_on_both_tiers_so_the_cli_runs_them(suite):
    # A blocking rule that cannot pass even when every case passes is refused by `evalplatform run` (exit 2):
    # the agent policy's no-regression rule once asked for a 5-point drop its 38 cases cannot show.
    from evalplatform.planning import plan_tier
    from evalplatform.suite import load_suite

    loaded = load_suite(ROOT / "datasets" / suite / "suite.yaml")
    for tier in ("pr", "nightly"):
        plan = plan_tier(loaded, tier)
        assert [r.rule_id for r in plan.refused()] == [], (suite, tier)
        plan.check()
