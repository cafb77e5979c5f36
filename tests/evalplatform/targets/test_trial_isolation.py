"""Each trial (case, repeat) of a class target gets a fresh instance with its own setup; nothing is shared."""

from __future__ import annotations

import json
import sys

from evalplatform import results as R
from tests.python_targets import case, make_suite, run_suite

STATEFUL = '''
import threading
import time

from evalplatform.targets import TargetResult, ToolCall

CREATED = []
TORN_DOWN = []
_lock = threading.Lock()


class Counter:
    """A stateful agent: it keeps a ledger, which a reused instance would carry into the next trial."""

    def setup(self, case):
        with _lock:
            CREATED.append((case.case_id, case.repeat, id(self)))
        self.ledger = list(case.fields["opening"])  # its own copy of the case's starting state
        case.fields["opening"].append("MUTATED")     # must not reach any other trial

    def __call__(self, case):
        self.ledger.append(f"{case.case_id}/{case.repeat}/turn{case.turn}")
        time.sleep(0.01)  # overlap the trials, so shared state would show
        return TargetResult(output=f"{len(self.ledger)} entries", state={"ledger": self.ledger},
                            tool_calls=[ToolCall(name="write", arguments={"entry": self.ledger[-1]})])

    def teardown(self):
        with _lock:
            TORN_DOWN.append(id(self))
'''


def test_a_stateful_class_target_gets_a_fresh_instance_and_setup_per_case_and_repeat(tmp_path):
    cases = [case(f"c{i}", f"q{i}", opening=["start"]) for i in range(4)]
    cases.append({"id": "conv", "category": "basic", "opening": ["start"], "must_contain": [],
                  "conversation": [{"role": "user", "content": "one"}, {"role": "assistant"},
                                   {"role": "user", "content": "two"}]})
    suite = make_suite(tmp_path, STATEFUL, cases=cases, target={"python": "team_pipeline:Counter"},
                       extra={"concurrency": 8})
    run = run_suite(suite, repeats=3)
    module = sys.modules["team_pipeline"]

    assert sorted((c, r) for c, r, _ in module.CREATED) == sorted((c["id"], r) for c in cases for r in range(3))
    assert sorted(module.TORN_DOWN) == sorted(instance for _, _, instance in module.CREATED)
    calls = R.call_rows(run.results)
    for row in calls.iter_rows(named=True):
        state = json.loads(run.outputs[row["trace_hash"]])["state"]
        prefix = f"{row['case_id']}/{row['repeat']}/"
        if row["case_id"] == "conv":
            # The turns of one trial share its instance: the second turn sees the first.
            assert state["ledger"] == ["start", prefix + "turn0", prefix + "turn1"]
        else:
            # Only this trial's own entry, on the untouched opening state.
            assert state["ledger"] == ["start", prefix + "turn0"], state
