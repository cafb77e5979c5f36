"""The offline `local/<app>` provider: served in-process through litellm, no network, no key."""

from __future__ import annotations

import sys
import textwrap
import time

import pytest

from evalplatform.models import CallRequest, ResponseCache, Target, register_app, run_calls_sync
from evalplatform.models import local_provider

seen_params: list[dict] = []


def _echo(messages: list[dict], params: dict) -> str:
    seen_params.append(params)
    return "echo: " + messages[-1]["content"]


def _broken(messages: list[dict], params: dict) -> str:
    raise KeyError("missing field")


def _sleepy(messages: list[dict], params: dict) -> str:
    time.sleep(1.0)
    return "late"


register_app("echo", _echo)
register_app("broken", _broken)
register_app("sleepy", _sleepy)


def ask(text: str, repeat: int = 0) -> CallRequest:
    return CallRequest("case-1", repeat, [{"role": "user", "content": text}])


def test_local_echo_works_offline_with_word_count_usage_and_zero_cost():
    [r] = run_calls_sync(Target(model="local/echo", seed=11, temperature=0.3), [ask("three little words")])
    assert r.ok and r.text == "echo: three little words"
    assert (r.tokens_in, r.tokens_out) == (3, 4)
    assert r.cost_usd == 0.0 and r.attempts == 1
    assert seen_params[-1]["seed"] == 11 and seen_params[-1]["temperature"] == 0.3


def test_system_prompt_reaches_the_app_and_counts_as_input():
    got = []
    register_app("record", lambda m, p: got.append(m) or "ok")
    [r] = run_calls_sync(Target(model="local/record", system_prompt="be kind"), [ask("hi")])
    assert got[-1][0] == {"role": "system", "content": "be kind"}
    assert r.tokens_in == 3


def test_unknown_app_is_a_clear_permanent_error_naming_known_apps():
    [r] = run_calls_sync(Target(model="local/no-such-app", max_attempts=4), [ask("hi")])
    assert not r.ok and r.attempts == 1
    assert "unknown app 'no-such-app'" in r.error
    assert "echo" in r.error and "register_app" in r.error
    assert "Traceback" not in r.error


def test_failing_app_is_an_error_result_not_retried():
    [r] = run_calls_sync(Target(model="local/broken"), [ask("hi")])
    assert not r.ok and r.attempts == 1
    assert "local app 'broken' failed" in r.error and "KeyError" in r.error


def test_backstop_timeout_fires_for_a_provider_that_ignores_timeout():
    [r] = run_calls_sync(Target(model="local/sleepy", timeout_s=0.1, max_attempts=1), [ask("hi")])
    # The app would answer after 1 s: an error naming the backstop (0.1 s + 0.51 s) proves it was abandoned there.
    assert not r.ok and "timeout" in r.error.lower() and "no answer within 0.61 s" in r.error


def test_unknown_app_triggers_one_import_of_the_demo_module(tmp_path, monkeypatch):
    (tmp_path / "fake_demo_apps.py").write_text(textwrap.dedent("""
        from evalplatform.models.local_provider import register_app
        register_app("lazy-demo", lambda messages, params: "from the demo")
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(local_provider, "DEMO_MODULE", "fake_demo_apps")
    monkeypatch.setattr(local_provider, "_demo_tried", False)
    try:
        [r] = run_calls_sync(Target(model="local/lazy-demo"), [ask("hi")])
        assert r.ok and r.text == "from the demo"
    finally:
        sys.modules.pop("fake_demo_apps", None)


def test_missing_demo_module_is_not_an_error_by_itself(monkeypatch):
    monkeypatch.setattr(local_provider, "DEMO_MODULE", "evalplatform_no_such_demo_module")
    monkeypatch.setattr(local_provider, "_demo_tried", False)
    [r] = run_calls_sync(Target(model="local/still-unknown"), [ask("hi")])
    assert "unknown app 'still-unknown'" in r.error


def test_sync_litellm_completion_uses_the_local_provider_too():
    from evalplatform.models.calls import _load_litellm

    litellm = _load_litellm()
    resp = litellm.completion(model="local/echo", messages=[{"role": "user", "content": "sync path"}], max_retries=0)
    assert resp.choices[0].message.content == "echo: sync path"
    assert resp.usage.prompt_tokens == 2


def test_repeats_are_cached_as_distinct_samples(tmp_path):
    calls = []
    register_app("counter", lambda m, p: calls.append(1) or f"sample {len(calls)}")
    cache = ResponseCache(tmp_path)
    reqs = [ask("same prompt", repeat=k) for k in range(3)]
    first = run_calls_sync(Target(model="local/counter"), reqs, cache=cache)
    again = run_calls_sync(Target(model="local/counter"), reqs, cache=cache)
    assert len(calls) == 3 and len({r.text for r in first}) == 3
    assert [r.text for r in again] == [r.text for r in first] and all(r.cache_hit for r in again)


def test_corrupt_cache_entry_is_a_miss_and_is_overwritten(tmp_path):
    cache = ResponseCache(tmp_path)
    target = Target(model="local/echo")
    req = ask("repair me")
    [r] = run_calls_sync(target, [req], cache=cache)
    key = cache.key(target.model, None, target.messages(req.messages), target.params(), None, 0)
    cache.path(key).write_text('{"key": "' + key + '", "response": {"text": "trunc')
    [again] = run_calls_sync(target, [req], cache=cache)
    assert again.cache_hit is False and again.text == r.text
    assert cache.get(key).text == r.text


def test_register_app_rejects_bad_names():
    with pytest.raises(ValueError):
        register_app("a/b", _echo)
    with pytest.raises(ValueError):
        register_app("", _echo)
