"""The run summary claims a passed gate only for an explicit PASS."""

from __future__ import annotations

import pytest

from evalplatform.policy import Decision
from evalplatform.report import render_summary
from tests.evalplatform.policy.builders import frame, rows


@pytest.mark.parametrize(("overall", "line"), [
    ("PASS", "RELEASE GATE PASSED"),
    ("BLOCK", "RELEASE GATE BLOCKS this change"),
    ("NO_DATA", "RELEASE GATE DID NOT PASS (NO_DATA)"),
])
def test_only_an_explicit_pass_is_reported_as_passed(overall, line):
    run = {"run_id": "r1", "suite": "demo", "tier": "pr", "target_model": "local/x", "n_cases": 3}
    text = render_summary(run=run, results=frame(rows(3)), history_path="h.duckdb",
                          decision=Decision(overall, [], policy_name="p", inputs={"policy": "p.yaml"}))
    assert line in text.splitlines()
    assert ("RELEASE GATE PASSED" in text) == (overall == "PASS")
