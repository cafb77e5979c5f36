"""Infrastructure failures: which failed calls are the endpoint's fault, and when a run is one instead of a verdict."""

from __future__ import annotations

import socket

import pytest
from pydantic import ValidationError

from evalplatform.errors import InfraError
from evalplatform.models import CallRequest, Target, register_app, run_calls_sync
from evalplatform.models.calls import CallResult
from evalplatform.models.infra import check_infrastructure, infrastructure_failure
from evalplatform.models.retry import MalformedResponse, classify
from tests.helpers.clock import FakeClock
from tests.helpers.openai_server import openai_server  # noqa: F401  (fixture)

KEY_ENV = "EVALPLATFORM_TEST_INFRA_KEY"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Status(Exception):
    def __init__(self, status: int):
        super().__init__(f"status {status}")
        self.status_code = status


@pytest.mark.parametrize("exc,kind", [
    (ConnectionRefusedError("[Errno 111] refused"), "connection"),
    (socket.gaierror(-2, "Name or service not known"), "connection"),
    (TimeoutError("slow"), "timeout"),
    (_Status(401), "auth"),
    (_Status(403), "auth"),
    (_Status(404), "not_found"),
    (_Status(429), "rate_limit"),
    (_Status(500), "server_error"),
    (_Status(503), "server_error"),
])
def test_endpoint_failures_are_infrastructure(exc, kind):
    failure = classify(exc)
    assert failure.kind == kind and failure.infra


@pytest.mark.parametrize("exc", [MalformedResponse("reply text is not valid Unicode"), _Status(400),
                                 _Status(422), ValueError("a bug")])
def test_the_models_own_failures_are_not_infrastructure(exc):
    assert not classify(exc).infra


def test_connection_failures_name_their_cause():
    assert "(connection refused)" in classify(ConnectionRefusedError("[Errno 111] refused")).message
    assert "(DNS: Name or service not known)" in classify(socket.gaierror(-2, "Name or service not known")).message


def test_an_unknown_local_app_is_infrastructure_a_failing_one_is_not():
    register_app("infra-raises", lambda m, p: {}["missing"])
    unknown, failing = (run_calls_sync(Target(model=f"local/{name}"), [CallRequest("c", 0, [{"role": "user",
                        "content": "hi"}])])[0] for name in ("infra-no-such-app", "infra-raises"))
    assert unknown.error_kind == "config" and unknown.infra_error
    assert failing.error_kind == "local_app" and not failing.infra_error


def test_a_closed_port_is_a_connection_failure_on_every_attempt(monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-test-infra-0123456789")
    base = f"http://127.0.0.1:{closed_port()}/v1"
    t = Target(model="openai/anything", api_base=base, api_key_env=KEY_ENV, max_attempts=3)
    clock = FakeClock()
    [r] = run_calls_sync(t, [CallRequest("c", 0, [{"role": "user", "content": "hi"}])], clock=clock)
    assert not r.ok and r.infra_error and r.error_kind == "connection"
    assert "connection refused" in r.error and r.attempts == 3 and len(clock.sleeps) == 2
    assert [a["outcome"] for a in r.attempt_log] == ["connection"] * 3


def result(i: int, kind: str | None = None, *, cache_hit: bool = False) -> CallResult:
    from evalplatform.models.retry import INFRA_KINDS

    error = None if kind is None else f"{kind} error: details of call {i}"
    return CallResult(f"c{i}", 0, "text" if kind is None else None, error, 1.0, 1.0, 1, 1, None,
                      cache_hit=cache_hit, attempts=0 if cache_hit else 1, error_kind=kind,
                      infra_error=kind in INFRA_KINDS)


TARGET = Target(model="openai/m", api_base="http://tok3nXYZ@10.0.0.1:8000/v1")


def test_every_call_failing_to_connect_is_target_unreachable_with_the_redacted_endpoint():
    calls = [result(i, "connection") for i in range(200)]
    with pytest.raises(InfraError) as err:
        check_infrastructure(calls, TARGET)
    text = str(err.value)
    assert text.startswith("target unreachable: 200 of 200 calls failed to connect to "
                           "http://[REDACTED]@10.0.0.1:8000/v1")
    assert "tok3nXYZ" not in text and "connection error: details of call 0" in text


def test_unreachable_counts_the_calls_that_went_out_cache_hits_cannot_hide_it():
    calls = [result(i, cache_hit=True) for i in range(90)] + [result(90 + i, "connection") for i in range(10)]
    assert "target unreachable: 10 of 10 calls" in infrastructure_failure(calls, TARGET)


@pytest.mark.parametrize("n_infra,share,fails", [
    (6, 0.5, True), (5, 0.5, False), (6, 0.6, False), (7, 0.6, True), (1, 0.0, True), (0, 0.0, False),
    (10, 1.0, False),
])
def test_share_of_infrastructure_errors_above_the_threshold_fails_the_run(n_infra, share, fails):
    calls = [result(i, "server_error") for i in range(n_infra)] + [result(i + 10) for i in range(10 - n_infra)]
    reason = infrastructure_failure(calls, TARGET.model_copy(update={"max_infra_error_share": share}))
    assert (reason is not None) == fails
    if fails:
        assert f"{n_infra} of 10 calls" in reason and "server_error" in reason
        assert "target.max_infra_error_share" in reason


def test_model_errors_never_count_as_infrastructure():
    calls = [result(i, "malformed") for i in range(9)] + [result(9)]
    assert infrastructure_failure(calls, TARGET) is None
    assert infrastructure_failure([], TARGET) is None


@pytest.mark.parametrize("value", [-0.1, 1.5, float("nan")])
def test_the_threshold_is_a_share_between_0_and_1(value):
    with pytest.raises(ValidationError) as err:
        Target(model="openai/m", max_infra_error_share=value)
    assert "max_infra_error_share" in str(err.value)


def test_the_threshold_defaults_to_half():
    assert Target(model="openai/m").max_infra_error_share == 0.5


def test_503s_after_retries_are_infrastructure_end_to_end(openai_server, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-test-infra-0123456789")
    t = Target(model="openai/always500", api_base=openai_server.base_url, api_key_env=KEY_ENV, max_attempts=2)
    results = run_calls_sync(t, [CallRequest(f"c{i}", 0, [{"role": "user", "content": f"q{i}"}]) for i in range(3)],
                             clock=FakeClock())
    assert all(r.infra_error and r.error_kind == "server_error" and r.attempts == 2 for r in results)
    with pytest.raises(InfraError, match=r"3 of 3 calls \(100%\)"):
        check_infrastructure(results, t)


def test_a_request_the_http_client_refuses_is_a_configuration_error_not_retried(openai_server, monkeypatch):
    # Credentials in the api_base's userinfo next to an api key: the client refuses before sending.
    monkeypatch.setenv(KEY_ENV, "sk-test-infra-0123456789")
    base = openai_server.base_url.replace("http://", "http://tok3n@")
    t = Target(model="openai/ok", api_base=base, api_key_env=KEY_ENV, max_attempts=3)
    [r] = run_calls_sync(t, [CallRequest("c", 0, [{"role": "user", "content": "refused by the client"}])],
                         clock=FakeClock())
    assert r.error_kind == "config" and r.infra_error and r.attempts == 1
    assert r.error.startswith("client configuration: ValueError: Cannot combine AUTHORIZATION header")
    assert openai_server.count("ok", "refused by the client") == 0
