"""The lean OpenAI transport and litellm, sent the same requests by one local server: the same run either way."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from evalplatform.models import CallRequest, ResponseCache, Target, run_calls_sync
from evalplatform.models import openai_http
from tests.helpers.clock import FakeClock
from tests.helpers.openai_server import OpenAIServer, openai_server  # noqa: F401  (fixture)

ROOT = Path(__file__).resolve().parents[3]
KEY_ENV = "EVALPLATFORM_TEST_PARITY_KEY"
KEY = "sk-test-parity-SECRET-0123456789"
PATHS = ("litellm", "openai")
# Every field of a result that must not depend on the transport (latencies and error wording aside).
SAME = ("case_id", "repeat", "text", "tokens_in", "tokens_out", "cost_usd", "cache_hit", "attempts", "error_kind",
        "infra_error")


@pytest.fixture(autouse=True)
def _api_key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)


def target(server, behaviour: str, transport: str, **kw) -> Target:
    defaults = dict(api_base=server.base_url, api_key_env=KEY_ENV, timeout_s=5.0, max_attempts=3,
                    backoff_base_s=0.01, backoff_max_s=0.05, transport=transport)
    defaults.update(kw)
    return Target(model=f"openai/{behaviour}", **defaults)


def ask(prompt: str, case_id: str = "c1", repeat: int = 0) -> CallRequest:
    return CallRequest(case_id, repeat, [{"role": "user", "content": prompt}])


def both(server, behaviour: str, prompt: str, **kw):
    """The same request sent once through each transport: {transport: (result, bodies the server got, waits)}."""
    out = {}
    for path in PATHS:
        server.reset()
        clock = FakeClock()
        [r] = run_calls_sync(target(server, behaviour, path, **kw), [ask(f"{prompt} via {path}")], clock=clock)
        bodies = [dict(b, messages=[{**m, "content": m["content"].replace(f" via {path}", "")} for m in b["messages"]])
                  for b in server.bodies]
        out[path] = (r, bodies, clock.sleeps)
    return out


def fields(r) -> dict:
    d = {f: getattr(r, f) for f in SAME}
    if d["text"]:
        d["text"] = d["text"].rsplit(" via ", 1)[0]
    d["log"] = [(e["attempt"], e["outcome"], e["status"]) for e in r.attempt_log]
    return d


def test_auto_picks_the_lean_path_for_openai_compatible_models_only():
    assert openai_http.uses_openai_http(Target(model="openai/gpt-4o-mini"))
    assert openai_http.uses_openai_http(Target(model="openai/llama3", api_base="http://localhost:11434/v1"))
    assert not openai_http.uses_openai_http(Target(model="openai/o3-mini"))  # litellm rewrites its params
    assert not openai_http.uses_openai_http(Target(model="anthropic/claude-3-5-sonnet"))
    assert not openai_http.uses_openai_http(Target(model="local/support-v1"))
    assert not openai_http.uses_openai_http(Target(model="openai/gpt-4o", transport="litellm"))
    assert openai_http.uses_openai_http(Target(model="hosted_vllm/m", api_base="http://h/v1", transport="openai"))
    with pytest.raises(ValueError, match="local/ models are in-process"):
        Target(model="local/support-v1", transport="openai")


def test_transport_changes_neither_the_dump_nor_the_cache_key():
    a, b = Target(model="openai/x", transport="openai"), Target(model="openai/x", transport="litellm")
    assert a.model_dump(mode="json") == b.model_dump(mode="json") == Target(model="openai/x").model_dump(mode="json")
    assert "transport" not in a.model_dump()


def test_request_body_is_the_same_field_by_field(openai_server):
    out = both(openai_server, "ok", "body check", temperature=0.3, top_p=0.9, seed=7, max_tokens=33,
               system_prompt="be brief",
               extra_params={"stop": ["\n\n"], "top_k": 5, "presence_penalty": 0.5, "logit_bias": {"50256": -100},
                             "extra_body": {"guided_choice": ["a", "b"]}, "response_format": {"type": "json_object"}})
    (_, lite, _), (_, lean, _) = out["litellm"], out["openai"]
    assert len(lite) == len(lean) == 1
    assert lean[0] == lite[0]
    assert lean[0]["messages"][0] == {"role": "system", "content": "be brief"}
    sampled = ("temperature", "top_p", "seed", "max_tokens", "stop", "top_k", "guided_choice")
    assert {k: lean[0][k] for k in sampled} == \
        {"temperature": 0.3, "top_p": 0.9, "seed": 7, "max_tokens": 33, "stop": ["\n\n"], "top_k": 5,
         "guided_choice": ["a", "b"]}


@pytest.mark.parametrize("behaviour", ["ok", "priced", "nousage", "nullcontent", "flaky429-1", "status-429",
                                       "always500", "status-502", "status-503", "status-504", "status-408",
                                       "status-400", "status-401", "status-403", "status-404", "status-422",
                                       "malformed", "cutjson", "badutf8", "truncated", "surrogate", "surrogate400",
                                       "chunked-20000"])
def test_outcome_usage_cost_error_class_and_retries_match(openai_server, behaviour):
    out = both(openai_server, behaviour, f"parity {behaviour}", backoff_base_s=0.0, backoff_max_s=0.0)
    (lite, lite_bodies, lite_waits), (lean, lean_bodies, lean_waits) = out["litellm"], out["openai"]
    assert fields(lean) == fields(lite)
    assert len(lean_bodies) == len(lite_bodies) == lean.attempts  # the retries that reached the wire
    assert lean_waits == lite_waits
    if behaviour == "priced":
        # Billed by the answering model (gpt-4o-mini), 400 of 1000 prompt tokens at the cache-read price.
        assert lean.cost_usd == pytest.approx(lite.cost_usd) and lean.cost_usd == pytest.approx(0.00042)
    if lean.error:
        assert KEY not in lean.error and KEY not in lite.error


def test_timeouts_are_classified_and_retried_alike(openai_server):
    out = both(openai_server, "slow-1.0", "too slow", timeout_s=0.3, max_attempts=2)
    assert fields(out["openai"][0]) == fields(out["litellm"][0])
    assert out["openai"][0].error_kind == "timeout" and out["openai"][0].attempts == 2


def test_connection_refused_is_classified_alike_with_its_cause():
    srv = OpenAIServer(max_lifetime_s=30).start()
    srv.stop()  # the port is now closed
    results = {}
    for path in PATHS:
        [r] = run_calls_sync(target(srv, "ok", path, max_attempts=2), [ask("nobody home")], clock=FakeClock())
        results[path] = r
    assert fields(results["openai"]) == fields(results["litellm"])
    assert results["openai"].error_kind == "connection"
    assert results["openai"].attempt_log[-1]["cause"] == results["litellm"].attempt_log[-1]["cause"] == \
        "connection refused"


def test_a_401_echoing_the_key_and_a_key_in_the_url_are_redacted_on_the_lean_path(openai_server):
    [r] = run_calls_sync(target(openai_server, "unauthorized", "openai"), [ask("who am i")], clock=FakeClock())
    assert r.error_kind == "auth" and r.attempts == 1 and KEY not in r.error and "[REDACTED]" in r.error
    url_key = "sk-in-the-url-SECRET-987654"
    base = openai_server.base_url + f"/keys/{url_key}"  # an unknown route: the 404 quotes the path back
    [r] = run_calls_sync(target(openai_server, "ok", "openai", api_base=base), [ask("key in url")], clock=FakeClock())
    assert r.error_kind == "not_found" and url_key not in r.error
    userinfo = openai_server.base_url.replace("http://", "http://user:pw-SECRET-userinfo@")
    [r] = run_calls_sync(target(openai_server, "ok", "openai", api_base=userinfo), [ask("userinfo")],
                         clock=FakeClock())
    assert r.error_kind == "config" and r.attempts == 1 and "pw-SECRET-userinfo" not in r.error


@pytest.mark.parametrize("first,second", [("litellm", "openai"), ("openai", "litellm")])
def test_a_cache_filled_by_one_transport_serves_the_other(openai_server, tmp_path, first, second):
    cache = ResponseCache(tmp_path / "cache")
    reqs = [ask(f"shared cache {i}", f"c{i}") for i in range(4)]
    filled = run_calls_sync(target(openai_server, "priced", first), reqs, cache=cache)
    openai_server.reset()
    served = run_calls_sync(target(openai_server, "priced", second), reqs, cache=cache)
    assert openai_server.count() == 0
    assert all(r.cache_hit and r.attempts == 0 for r in served)
    assert [(r.text, r.tokens_in, r.tokens_out, r.cost_usd) for r in served] == \
        [(r.text, r.tokens_in, r.tokens_out, r.cost_usd) for r in filled]


def test_a_body_over_the_size_limit_is_refused_not_buffered(openai_server, monkeypatch):
    monkeypatch.setattr(openai_http, "MAX_BODY_BYTES", 4096)
    [r] = run_calls_sync(target(openai_server, "big-100000", "openai"), [ask("huge")], clock=FakeClock())
    assert r.error_kind == "malformed" and r.attempts == 1 and "larger than" in r.error
    [r] = run_calls_sync(target(openai_server, "big-1000", "openai"), [ask("small enough")], clock=FakeClock())
    assert r.ok and len(r.text) == 1000
    # Without a Content-Length (chunked), the limit holds while reading.
    [r] = run_calls_sync(target(openai_server, "chunked-100000", "openai"), [ask("chunked huge")], clock=FakeClock())
    assert r.error_kind == "malformed" and r.attempts == 1 and "larger than" in r.error


def test_server_killed_mid_run_gives_every_request_one_honest_result(tmp_path):
    # A server process killed outright (SIGKILL): its sockets close, pooled connections included.
    code = ("import sys, time\n"
            "from tests.helpers.openai_server import OpenAIServer\n"
            "s = OpenAIServer(max_lifetime_s=60, latency_s=0.05).start()\n"
            "print(s.base_url, flush=True)\n"
            "time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        base = proc.stdout.readline().strip()
        reqs = [ask(f"kill {i}", f"c{i}") for i in range(80)]
        killer = threading.Timer(0.4, proc.kill)
        killer.start()
        t = Target(model="openai/ok", api_base=base, api_key_env=KEY_ENV, max_attempts=2, timeout_s=2.0,
                   backoff_base_s=0.0, backoff_max_s=0.0, transport="openai")
        results = run_calls_sync(t, reqs, concurrency=4, clock=FakeClock())
    finally:
        killer.cancel()
        proc.kill()
        proc.wait(10)
    assert [r.case_id for r in results] == [f"c{i}" for i in range(80)]
    assert any(r.ok for r in results) and any(not r.ok for r in results)
    assert {r.error_kind for r in results if not r.ok} == {"connection"}
    assert all(r.infra_error and r.attempts == 2 for r in results if not r.ok)
    assert all(r.ok == (r.text is not None) for r in results)


def test_concurrent_runs_sharing_one_cache_store_only_whole_entries(openai_server, tmp_path):
    cache = ResponseCache(tmp_path / "cache")
    reqs = [ask(f"race {i}", f"c{i}") for i in range(30)]
    outs: list[list] = []

    def run(path):
        outs.append(run_calls_sync(target(openai_server, "ok", path), reqs, concurrency=8, cache=cache))

    threads = [threading.Thread(target=run, args=(p,)) for p in ("openai", "openai", "litellm")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(outs) == 3 and all(r.ok for out in outs for r in out)
    again = run_calls_sync(target(openai_server, "ok", "openai"), reqs, cache=cache)
    assert all(r.cache_hit for r in again) and [r.text for r in again] == [r.text for r in outs[0]]


def test_the_lean_path_never_imports_litellm_or_the_openai_sdk(openai_server):
    code = (
        "import sys, os\n"
        f"os.environ['{KEY_ENV}'] = '{KEY}'\n"
        "from evalplatform.models import CallRequest, Target, run_calls_sync\n"
        f"t = Target(model='openai/ok', api_base='{openai_server.base_url}', api_key_env='{KEY_ENV}')\n"
        "rs = run_calls_sync(t, [CallRequest('c', 0, [{'role': 'user', 'content': 'hi'}]),\n"
        "                        CallRequest('d', 0, [{'role': 'user', 'content': 'x'}])])\n"
        "t5 = t.model_copy(update={'model': 'openai/always500', 'max_attempts': 1})\n"
        "rs += run_calls_sync(t5, [CallRequest('e', 0, [{'role': 'user', 'content': 'fail'}])])\n"
        "print([r.ok for r in rs], sorted(m for m in ('litellm', 'openai', 'httpx') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[True, True, False] []"


def test_reply_body_sent_as_json_once_and_parsed_once(openai_server):
    # The lean path's request is the canonical JSON of the target's params and messages, nothing else.
    out = both(openai_server, "ok", "plain")
    body = out["openai"][1][0]
    assert set(body) == {"model", "messages", "temperature", "max_tokens"}
    assert json.loads(json.dumps(body)) == out["litellm"][1][0]


def test_no_per_request_work_is_handed_to_threads(openai_server, monkeypatch):
    # With aiohttp's trust_env, every request read the proxy variables and ~/.netrc in a worker thread:
    # a third of a 6,000-call run's CPU. The proxy is now looked up once per URL.
    import asyncio

    handed: list[object] = []
    real = asyncio.BaseEventLoop.run_in_executor

    def counting(self, executor, func, *args):
        handed.append(func)
        return real(self, executor, func, *args)

    monkeypatch.setattr(asyncio.BaseEventLoop, "run_in_executor", counting)
    results = run_calls_sync(target(openai_server, "ok", "openai"), [ask(f"t{i}", f"c{i}") for i in range(40)],
                             concurrency=4)
    assert all(r.ok for r in results)
    assert len(handed) <= 4, handed  # at most the connection setup (address lookup), never once per request


@pytest.mark.parametrize("path", PATHS)
def test_proxy_variables_are_honoured_and_no_proxy_exempts(openai_server, monkeypatch, path):
    proxy = OpenAIServer(max_lifetime_s=60).start()  # answers 404 "no route http://..." to a proxied request
    try:
        monkeypatch.setenv("HTTP_PROXY", proxy.base_url.rsplit("/v1", 1)[0])
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        [r] = run_calls_sync(target(openai_server, "ok", path), [ask("via proxy")], clock=FakeClock())
        assert r.error_kind == "not_found" and "no route http://127.0.0.1" in r.error
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        [r] = run_calls_sync(target(openai_server, "ok", path), [ask("direct")], clock=FakeClock())
        assert r.ok
    finally:
        proxy.stop()


@pytest.mark.skipif(not hasattr(__import__("socket"), "TCP_QUICKACK"), reason="TCP_QUICKACK is Linux-only")
def test_lean_connections_acknowledge_every_read_at_once(openai_server, monkeypatch):
    # http.server writes a reply's headers and body in two sends: without an immediate ACK the body
    # waits out the client's delayed ACK (~40 ms per call on a kept-alive connection).
    import socket

    acks: list[int] = []

    class Spy(openai_http._QuickAckSocket):
        def setsockopt(self, level, option, value):
            if option == socket.TCP_QUICKACK:
                acks.append(value)
            super().setsockopt(level, option, value)

    monkeypatch.setattr(openai_http, "_QuickAckSocket", Spy)
    results = run_calls_sync(target(openai_server, "ok", "openai"), [ask(f"ack {i}", f"c{i}") for i in range(5)],
                             concurrency=1)
    assert all(r.ok for r in results)
    assert len(acks) >= 1 + 5 and set(acks) == {1}  # at connect, then after every read of every reply
