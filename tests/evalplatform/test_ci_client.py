"""The CI client over real HTTP: idempotent reads retried, a keyed launch never starts a second run, no wall clock."""

from __future__ import annotations

import pytest

from evalplatform.ci import LAUNCH_KEY_TAG, DagsterCiClient, submit_and_wait
from evalplatform.errors import InfraError
from tests.helpers.graphql_stub import GraphQLStub


class FakeClock:
    """Time that moves only when slept: the client's backoff and waiting, observed without waiting."""

    def __init__(self):
        self.now = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _client(stub: GraphQLStub, clock: FakeClock, **kw) -> DagsterCiClient:
    return DagsterCiClient(stub.url, timeout_s=0.5, clock=clock, **kw)


def test_a_launch_whose_answer_is_lost_is_not_launched_twice():
    with GraphQLStub() as stub:
        stub.slow["launch"] = 1  # the server starts the run but the answer arrives after the client's timeout
        clock = FakeClock()
        client = _client(stub, clock)
        run_id = client.launch("pr_eval_job", "demo", {"ops": {}}, {"tier": "pr"})
        assert stub.requests.count("launch") == 1 and len(stub.runs) == 1
        assert run_id == stub.runs[0]["runId"]
        assert stub.runs[0]["tags"][LAUNCH_KEY_TAG] and stub.runs[0]["tags"]["dagster/partition"] == "demo"
        launch_log = [a for a in client.attempt_log if a["request"] == "launch"]
        assert launch_log[0]["outcome"].startswith("transient") and launch_log[-1]["outcome"] == "found"


def test_a_lost_launch_that_never_started_is_sent_again_with_the_same_key():
    with GraphQLStub() as stub:
        stub.slow["launch"] = 1
        clock = FakeClock()
        client = _client(stub, clock)
        original = stub.answer

        def drop_first_launch(body, headers):  # the first launch never reaches the run storage
            reply, delay = original(body, headers)
            if "launchPipelineExecution" in body["query"] and stub.requests.count("launch") == 1:
                stub.runs.clear()
            return reply, delay

        stub.answer = drop_first_launch
        run_id = client.launch("pr_eval_job", "demo", {"ops": {}}, {})
        assert stub.requests.count("launch") == 2 and [r["runId"] for r in stub.runs] == [run_id]
        assert clock.sleeps == [0.5]


def test_status_reads_are_retried_on_timeouts_with_backoff():
    with GraphQLStub() as stub:
        stub.slow["status"] = 2
        stub.statuses = ["STARTED", "STARTED", "STARTED", "SUCCESS"]  # the two lost answers use one each
        clock = FakeClock()
        client = _client(stub, clock)
        assert client.wait("r1", timeout_s=60, poll_s=1.0) == "SUCCESS"
        status_log = [a["outcome"] for a in client.attempt_log if a["request"] == "status"]
        assert status_log[:3] == ["transient: cannot reach the Dagster server (ReadTimeout)"] * 2 + ["ok"]
        assert clock.sleeps == [0.5, 1.0, 1.0]  # two backoffs, then one poll interval


def test_reads_give_up_after_the_attempt_budget_as_infrastructure():
    with GraphQLStub() as stub:
        stub.slow["status"] = 10
        clock = FakeClock()
        client = _client(stub, clock, attempts=3)
        with pytest.raises(InfraError, match="after 3 attempts"):
            client.status("r1")
        assert clock.sleeps == [0.5, 1.0]


def test_waiting_is_bounded_by_the_injected_clock():
    with GraphQLStub() as stub:
        stub.statuses = ["QUEUED"]
        clock = FakeClock()
        with pytest.raises(InfraError, match="still QUEUED after 3 s.*daemon"):
            _client(stub, clock).wait("r1", timeout_s=3, poll_s=1.0)


def test_every_run_option_and_the_token_reach_the_server(monkeypatch):
    from evalplatform.request import RunRequest

    monkeypatch.setenv("EVALPLATFORM_DAGSTER_TOKEN", "s3cret-token")
    with GraphQLStub() as stub:
        clock = FakeClock()
        request = RunRequest(suite="demo", tier="nightly", model="local/x", repeats=2, no_cache=True, concurrency=3,
                             seed=11, budget_usd=2.5, max_calls=400)
        res = submit_and_wait(stub.url, request, timeout_s=10, client=_client(stub, clock))
        assert res.status == "SUCCESS"
        run = stub.runs[0]
        assert run["job"] == "demo_nightly" and run["tags"]["suite"] == "demo" and run["tags"]["tier"] == "nightly"
        assert run["config"] == {"ops": {"demo__nightly_run": {"config": {
            "model": "local/x", "repeats": 2, "no_cache": True, "concurrency": 3, "seed": 11, "budget_usd": 2.5,
            "max_calls": 400}}}}
        assert all(h.get("Authorization") == "Bearer s3cret-token" for h in stub.headers)
