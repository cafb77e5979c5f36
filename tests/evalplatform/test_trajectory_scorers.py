"""Outcome graders for agents: final state, required and forbidden tool calls, budgets; order only when asked."""

from __future__ import annotations

import json

import polars as pl
import pytest
from pydantic import TypeAdapter, ValidationError

from evalplatform.scorers.specs import ScorerSpec
from evalplatform.scorers.trajectory import json_subset

SPEC = TypeAdapter(ScorerSpec)


def scorer(**kw):
    return SPEC.validate_python({"id": "s", "criterion": "c", **kw})


def frame(*traces, **columns) -> pl.DataFrame:
    n = len(traces)
    data = {"__row": list(range(n)), "case_id": [f"c{i}" for i in range(n)], "output": ["ok"] * n,
            "trace": [json.dumps(t) if t is not None else None for t in traces],
            "cost_usd": [None] * n, "tokens_in": [None] * n, "tokens_out": [None] * n, "latency_ms": [None] * n}
    data.update(columns)
    return pl.DataFrame(data)


def trace(*calls, state=None, steps=0):
    return {"tool_calls": [{"name": n, "arguments": a} for n, a in calls], "state": state,
            "steps": [{"name": "decide"}] * steps}


def scores(s, f):
    out = s.score(f)
    return out["score"].to_list(), out["explanation"].to_list()


CANCEL_THEN_LOOKUP = trace(("cancel_order", {"order_id": "A1005"}), ("lookup_order", {"order_id": "A1005"}))
LOOKUP_THEN_CANCEL = trace(("lookup_order", {"order_id": "A1005"}), ("cancel_order", {"order_id": "A1005"}))


def test_required_calls_pass_in_any_order_unless_the_suite_says_ordered():
    calls = [{"tool": "lookup_order", "arguments": {"order_id": "{{ order_id }}"}},
             {"tool": "cancel_order", "arguments": {"order_id": "{{ order_id }}"}}]
    f = frame(LOOKUP_THEN_CANCEL, CANCEL_THEN_LOOKUP, order_id=["A1005", "A1005"])
    assert scores(scorer(type="tool_called", calls=calls), f)[0] == [1.0, 1.0]
    ordered, why = scores(scorer(type="tool_called", calls=calls, ordered=True), f)
    assert ordered == [1.0, 0.0] and "no cancel_order(order_id=/{{ order_id }}/) in order" in why[1]


def test_argument_patterns_match_in_full_and_case_fields_are_matched_literally():
    s = scorer(type="tool_called", tool="lookup_order", arguments={"order_id": "{{ order_id }}"})
    f = frame(trace(("lookup_order", {"order_id": "A1005"})), trace(("lookup_order", {"order_id": "A10055"})),
              trace(("lookup_order", {"order_id": "AX005"})), order_id=["A1005", "A1005", "A.005"])
    got, why = scores(s, f)
    assert got == [1.0, 0.0, 0.0]  # a longer id does not match; "." in the case value is not a wildcard
    assert "called 0 time(s), needs 1 (calls: lookup_order)" in why[1]
    regex = scorer(type="tool_called", tool="search", arguments={"q": "(?i)refund.*", "limit": "[0-9]+"})
    assert scores(regex, frame(trace(("search", {"q": "Refund policy", "limit": 5}))))[0] == [1.0]


def test_a_forbidden_tool_fails_only_when_called_with_matching_arguments():
    s = scorer(type="tool_not_called", tool="cancel_order", arguments={"order_id": "{{ order_id }}"})
    f = frame(LOOKUP_THEN_CANCEL, LOOKUP_THEN_CANCEL, trace(), order_id=["A1005", "A1001", "A1005"])
    got, why = scores(s, f)
    assert got == [0.0, 1.0, 1.0] and 'forbidden call cancel_order("order_id": "A1005")' == why[0]
    any_tool = scorer(type="tool_not_called", tool=["lookup_order", "cancel_order"])
    assert scores(any_tool, frame(trace(), CANCEL_THEN_LOOKUP))[0] == [1.0, 0.0]


def test_final_state_equals_subset_and_schema():
    state = {"orders": {"A1005": {"status": "cancelled", "refund_usd": 249.0}, "A1001": {"status": "shipped"}}}
    f = frame(trace(state=state))
    want = {"orders": {"A1005": {"status": "cancelled"}}}
    assert scores(scorer(type="final_state", expected=want), f)[0] == [1.0]
    assert scores(scorer(type="final_state", match="equals", expected=state), f)[0] == [1.0]
    got, why = scores(scorer(type="final_state", match="equals", expected=want), f)
    assert got == [0.0] and why[0] == "final state holds more than expected: orders.A1005.refund_usd"
    wrong = {"orders": {"A1005": {"status": "processing"}}}
    got, why = scores(scorer(type="final_state", expected=wrong), f)
    assert got == [0.0]
    assert why[0] == "final state does not match: orders.A1005.status: expected processing, got cancelled"
    schema = {"type": "object", "required": ["orders"],
              "properties": {"orders": {"type": "object", "maxProperties": 1}}}
    got, why = scores(scorer(type="final_state", match="schema", expected=schema), f)
    assert got == [0.0] and "violates the schema at orders" in why[0]
    per_case = scorer(type="final_state", column="expected_state")
    assert scores(per_case, frame(trace(state=state), expected_state=[json.dumps(want)]))[0] == [1.0]


@pytest.mark.parametrize("expected, actual, ok", [
    ({"a": 1}, {"a": 1.0, "b": 2}, True),
    ({"a": True}, {"a": 1}, False),          # true is not 1
    ([1, 2], [1, 2, 3], False),              # arrays match element by element
    ({"a": None}, {}, False),                # a key that must be there (as null)
    (None, None, True),
])
def test_json_subset(expected, actual, ok):
    assert (json_subset(expected, actual) is None) is ok


def test_budgets_fail_over_limit_and_an_unreported_cost_is_undecided_not_a_pass():
    s = scorer(type="trajectory_budget", max_tool_calls=1, max_steps=3, max_cost_usd=0.01)
    f = frame(trace(("a", {}), steps=3), trace(("a", {}), ("b", {}), steps=4), trace(steps=1),
              cost_usd=[0.001, 0.001, None])
    got, why = scores(s, f)
    assert got == [1.0, 0.0, None]
    assert why[1] == "over budget: 4 steps > 3; 2 tool calls > 1"
    assert "reported no cost" in why[2]


def test_a_row_without_a_trajectory_is_undecided():
    got, why = scores(scorer(type="tool_not_called", tool="x"), frame(None))
    assert got == [None] and "no trajectory" in why[0]


@pytest.mark.parametrize("spec, message", [
    ({"type": "final_state"}, "exactly one of `expected` or `column`"),
    ({"type": "tool_called", "tool": "x", "arguments": {"a": "("}}, "invalid regular expression"),
    ({"type": "tool_called", "tool": "x", "arguments": {"a": "{{ bad"}}, "malformed placeholder"),
    ({"type": "trajectory_budget"}, "at least one of"),
    ({"type": "final_state", "match": "schema", "expected": {"type": 5}}, "invalid JSON Schema"),
])
def test_malformed_grader_specs_are_refused(spec, message):
    with pytest.raises(ValidationError, match=message):
        scorer(**spec)
