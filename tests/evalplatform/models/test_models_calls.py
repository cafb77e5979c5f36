"""run_calls against a real local OpenAI-compatible server: retries, timeouts, concurrency, cache.

These go through the transport `auto` picks for `openai/...` (the lean one); test_models_transport_parity.py
sends the same requests through litellm too and compares the two.
"""

from __future__ import annotations

import pytest

from evalplatform.errors import InputError
from evalplatform.models import CallRequest, ResponseCache, Target, run_calls_sync
from tests.helpers.clock import FakeClock
from tests.helpers.openai_server import RETRY_AFTER_S, openai_server  # noqa: F401  (fixture)

KEY_ENV = "EVALPLATFORM_TEST_MODEL_KEY"
KEY = "sk-test-Zq8v3SECRETkey0123456789"


@pytest.fixture(autouse=True)
def _api_key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)


def target(server, behaviour: str, **kw) -> Target:
    defaults = dict(api_base=server.base_url, api_key_env=KEY_ENV, timeout_s=5.0, max_attempts=4,
                    backoff_base_s=0.01, backoff_max_s=0.05)
    defaults.update(kw)
    return Target(model=f"openai/{behaviour}", **defaults)


def ask(prompt: str, case_id: str = "c1", repeat: int = 0) -> CallRequest:
    return CallRequest(case_id, repeat, [{"role": "user", "content": prompt}])


def test_success_returns_text_usage_and_one_attempt(openai_server):
    [r] = run_calls_sync(target(openai_server, "ok", seed=7, top_p=0.9), [ask("hello there world")])
    assert r.error is None and r.ok
    assert r.text == "answer to: hello there world"
    assert (r.tokens_in, r.tokens_out) == (3, 5)
    assert r.attempts == 1 and r.cache_hit is False
    assert r.served_ms >= r.latency_ms > 0
    assert r.cost_usd is None  # "openai/ok" has no price: unknown cost, not an error
    body = openai_server.bodies[-1]
    # the sampling params reach the wire as pinned; the SDK was told not to retry
    assert body["seed"] == 7 and body["top_p"] == 0.9 and body["temperature"] == 0.0 and body["max_tokens"] == 512


def test_429_then_success_waits_for_retry_after(openai_server):
    t = target(openai_server, "flaky429-1", backoff_max_s=5.0)
    clock = FakeClock()
    [r] = run_calls_sync(t, [ask("rate limited once")], clock=clock)
    assert r.ok and r.text == "answer to: rate limited once"
    assert r.attempts == 2 and openai_server.count("flaky429-1", "rate limited once") == 2
    first = r.attempt_log[0]
    assert first["status"] == 429 and first["outcome"] == "rate_limit"
    assert first["wait_s"] == pytest.approx(RETRY_AFTER_S)  # the server's Retry-After, not the 10 ms backoff
    assert clock.sleeps == [pytest.approx(RETRY_AFTER_S)]  # waited once, for exactly that
    # served_ms counts the wait; latency_ms is the successful attempt only (the fake clock stands still in it).
    assert r.served_ms == pytest.approx(RETRY_AFTER_S * 1000) and r.latency_ms == 0


def test_429_n_times_then_success_takes_n_plus_one_attempts_and_caps_retry_after(openai_server):
    t = target(openai_server, "flaky429-2", backoff_max_s=0.1)
    [r] = run_calls_sync(t, [ask("rate limited twice")])
    assert r.ok and r.attempts == 3
    assert openai_server.count("flaky429-2", "rate limited twice") == 3
    assert [a["status"] for a in r.attempt_log] == [429, 429, 200]
    assert [a["wait_s"] for a in r.attempt_log[:2]] == [0.1, 0.1]  # Retry-After 1 s capped at backoff_max_s


def test_persistent_500_fails_after_max_attempts(openai_server):
    t = target(openai_server, "always500", max_attempts=3)
    [r] = run_calls_sync(t, [ask("always broken")])
    assert r.text is None and not r.ok
    assert "HTTP 500" in r.error and "after 3 attempts" in r.error
    assert r.attempts == 3 and openai_server.count("always500", "always broken") == 3
    assert [a["status"] for a in r.attempt_log] == [500, 500, 500]
    waits = [a["wait_s"] for a in r.attempt_log]
    assert waits[-1] is None and all(0 < w <= 0.05 for w in waits[:-1])


def test_waits_follow_the_backoff_and_are_the_ones_recorded(openai_server):
    clock = FakeClock()
    t = target(openai_server, "always500", max_attempts=4, backoff_base_s=0.2, backoff_max_s=0.5)
    [r] = run_calls_sync(t, [ask("backoff grows")], clock=clock)
    assert r.attempts == 4 and [a["outcome"] for a in r.attempt_log] == ["server_error"] * 4
    recorded = [a["wait_s"] for a in r.attempt_log]
    assert recorded[-1] is None and recorded[:-1] == [round(w, 4) for w in clock.sleeps]
    # Equal jitter: at least half of each exponential step (0.2, 0.4, then capped at 0.5), never more than it.
    for wait, step in zip(clock.sleeps, [0.2, 0.4, 0.5]):
        assert step / 2 <= wait <= step
    assert r.served_ms == pytest.approx(sum(clock.sleeps) * 1000)


def test_timeout_is_an_error_and_is_retried(openai_server):
    # The server would answer after 3 s: an error result proves each attempt gave up at timeout_s.
    clock = FakeClock()
    t = target(openai_server, "slow-3", timeout_s=0.3, max_attempts=2)
    [r] = run_calls_sync(t, [ask("too slow")], clock=clock)
    assert not r.ok and "timeout" in r.error.lower() and "after 2 attempts" in r.error
    assert r.attempts == 2 and [a["outcome"] for a in r.attempt_log] == ["timeout", "timeout"]
    assert len(clock.sleeps) == 1 and r.attempt_log[0]["wait_s"] == round(clock.sleeps[0], 4)


def test_malformed_body_fails_at_once(openai_server):
    [r] = run_calls_sync(target(openai_server, "malformed"), [ask("bad body")])
    assert not r.ok and "malformed" in r.error
    assert r.attempts == 1 and openai_server.count("malformed", "bad body") == 1


def test_auth_error_is_not_retried_and_the_key_is_redacted(openai_server):
    [r] = run_calls_sync(target(openai_server, "unauthorized"), [ask("who am i")])
    assert r.attempts == 1 and openai_server.count("unauthorized", "who am i") == 1
    assert "HTTP 401" in r.error
    assert KEY not in r.error and KEY[10:20] not in r.error
    assert "[REDACTED]" in r.error


def test_unset_key_env_var_is_an_input_error_naming_the_field(openai_server, monkeypatch):
    monkeypatch.delenv(KEY_ENV)
    with pytest.raises(InputError) as err:
        run_calls_sync(target(openai_server, "ok"), [ask("no key")])
    assert "target.api_key_env" in str(err.value) and KEY_ENV in str(err.value)


def test_mixed_batch_gives_exactly_one_result_per_request_in_order(openai_server):
    behaviours = ["ok", "flaky429-1", "always500", "slow-2", "malformed"]
    requests = [ask(f"{behaviours[i % 5]} mixed-{i}", case_id=f"case-{i // 2}", repeat=i % 2) for i in range(40)]
    seen = []
    t = target(openai_server, "mixed", timeout_s=0.4, max_attempts=2, backoff_max_s=0.05)
    clock = FakeClock()
    results = run_calls_sync(t, requests, concurrency=8, on_result=seen.append, clock=clock)
    assert [(r.case_id, r.repeat) for r in results] == [(q.case_id, q.repeat) for q in requests]
    assert len(seen) == 40 and sorted((r.case_id, r.repeat) for r in seen) == sorted((q.case_id, q.repeat) for q in requests)
    by = {b: [r for q, r in zip(requests, results) if q.messages[0]["content"].startswith(b + " ")] for b in behaviours}
    assert all(len(v) == 8 for v in by.values())
    assert all(r.ok and r.attempts == 1 for r in by["ok"])
    assert all(r.ok and r.attempts == 2 for r in by["flaky429-1"])  # Retry-After capped at 0.05 s
    assert all(not r.ok and r.attempts == 2 for r in by["always500"])
    assert all(not r.ok and "timeout" in r.error.lower() for r in by["slow-2"])
    assert all(not r.ok and r.attempts == 1 for r in by["malformed"])
    for q, r in zip(requests, results):
        assert (r.text is None) != (r.error is None)
        if r.ok:
            assert r.text == "answer to: " + q.messages[0]["content"]
    # One wait before each retry (429, 500 and timeout items, 8 each), none after a final attempt.
    assert len(clock.sleeps) == 24 and all(0 < w <= 0.05 for w in clock.sleeps)
    assert sum(len([a for a in r.attempt_log if a["wait_s"] is not None]) for r in results) == 24


def test_concurrency_cap_is_respected_and_reached(openai_server):
    requests = [ask(f"parallel {i}") for i in range(12)]
    results = run_calls_sync(target(openai_server, "slow-0.25"), requests, concurrency=4)
    assert all(r.ok for r in results)
    assert openai_server.peak("slow-0.25") == 4


def test_concurrency_one_is_serial(openai_server):
    run_calls_sync(target(openai_server, "slow-0.05"), [ask(f"serial {i}") for i in range(4)], concurrency=1)
    assert openai_server.peak("slow-0.05") == 1


# --- cache -------------------------------------------------------------------------------------


def test_identical_rerun_is_served_from_cache_with_original_latency(openai_server, tmp_path):
    cache = ResponseCache(tmp_path / "cache")
    t = target(openai_server, "slow-0.1")
    requests = [ask(f"cached {i}", case_id=f"k{i}") for i in range(3)]
    first = run_calls_sync(t, requests, cache=cache)
    before = openai_server.count("slow-0.1")
    second = run_calls_sync(t, requests, cache=cache)
    assert openai_server.count("slow-0.1") == before  # zero requests on the wire
    for a, b in zip(first, second):
        assert a.cache_hit is False and b.cache_hit is True
        assert b.text == a.text and (b.tokens_in, b.tokens_out) == (a.tokens_in, a.tokens_out)
        assert b.latency_ms == a.latency_ms > 0 and b.attempts == 0 and b.attempt_log == []


def test_changed_param_seed_or_repeat_misses_the_cache(openai_server, tmp_path):
    cache = ResponseCache(tmp_path / "cache")
    base = target(openai_server, "ok", seed=1)
    run_calls_sync(base, [ask("variant", repeat=0)], cache=cache)
    n = openai_server.count("ok", "variant")
    variants = [
        (target(openai_server, "ok", seed=1, temperature=0.7), ask("variant", repeat=0)),
        (target(openai_server, "ok", seed=2), ask("variant", repeat=0)),
        (base, ask("variant", repeat=1)),
        (target(openai_server, "ok", seed=1, system_prompt="be brief"), ask("variant", repeat=0)),
    ]
    for i, (t, req) in enumerate(variants, start=1):
        [r] = run_calls_sync(t, [req], cache=cache)
        assert r.cache_hit is False and openai_server.count("ok", "variant") == n + i
    [again] = run_calls_sync(base, [ask("variant", repeat=0)], cache=cache)
    assert again.cache_hit is True and openai_server.count("ok", "variant") == n + len(variants)


def test_no_cache_calls_every_time(openai_server, tmp_path):
    t = target(openai_server, "ok")
    for expected in (1, 2, 3):
        [r] = run_calls_sync(t, [ask("uncached")], cache=None)
        assert r.cache_hit is False and openai_server.count("ok", "uncached") == expected


def test_errors_are_never_cached(openai_server, tmp_path):
    cache = ResponseCache(tmp_path / "cache")
    t = target(openai_server, "always500", max_attempts=1)
    run_calls_sync(t, [ask("not cached")], cache=cache)
    [r] = run_calls_sync(t, [ask("not cached")], cache=cache)
    assert r.cache_hit is False and openai_server.count("always500", "not cached") == 2
    assert len(cache) == 0


def test_api_base_is_part_of_the_cache_key(openai_server, tmp_path):
    cache = ResponseCache(tmp_path / "cache")
    run_calls_sync(target(openai_server, "ok"), [ask("endpoint")], cache=cache)
    other = target(openai_server, "ok", api_base=openai_server.base_url.replace("127.0.0.1", "localhost"))
    [r] = run_calls_sync(other, [ask("endpoint")], cache=cache)
    assert r.cache_hit is False and openai_server.count("ok", "endpoint") == 2


def test_missing_credentials_fail_at_once_without_reaching_the_server(openai_server, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    [r] = run_calls_sync(target(openai_server, "ok", api_key_env=None), [ask("no credentials")])
    assert not r.ok and r.attempts == 1 and "api_key_env" in r.error
    assert openai_server.count("ok", "no credentials") == 0


# --- replies that cannot be stored --------------------------------------------------------------


def test_reply_with_a_lone_surrogate_is_that_calls_error_and_is_not_cached(openai_server, tmp_path):
    cache = ResponseCache(tmp_path / "cache")
    t = target(openai_server, "mixed")
    bad, good = run_calls_sync(t, [ask("surrogate one", case_id="bad"), ask("ok one", case_id="good")], cache=cache)
    assert good.ok and good.text == "answer to: ok one"
    assert not bad.ok and bad.text is None and bad.attempts == 1  # the model's fault: not retried
    assert "reply text is not valid Unicode (lone surrogate \\ud800 at character 7)" in bad.error
    bad.error.encode("utf-8")
    assert len(cache) == 1  # only the good reply


def test_error_text_holding_a_lone_surrogate_is_escaped_not_dropped(openai_server):
    [r] = run_calls_sync(target(openai_server, "surrogate400"), [ask("bad error body")])
    assert not r.ok and "HTTP 400" in r.error and "\\ud800" in r.error
    r.error.encode("utf-8")  # storable


def test_an_edited_cache_entry_is_never_served_the_model_is_asked_again(openai_server, tmp_path):
    import json

    cache = ResponseCache(tmp_path / "cache")
    t = target(openai_server, "ok")
    [first] = run_calls_sync(t, [ask("edit me")], cache=cache)
    [path] = list((tmp_path / "cache").glob("??/*.json"))
    doc = json.loads(path.read_text())
    doc["response"]["text"] = "a better answer, typed by hand"
    path.write_text(json.dumps(doc))
    [again] = run_calls_sync(t, [ask("edit me")], cache=cache)
    assert again.cache_hit is False and again.text == first.text == "answer to: edit me"
    assert openai_server.count("ok", "edit me") == 2
    [third] = run_calls_sync(t, [ask("edit me")], cache=cache)
    assert third.cache_hit is True and third.text == "answer to: edit me"  # the fresh answer replaced it
