"""ResponseCache: stable content keys, corrupt entries as misses, safe concurrent writers, litellm-free hits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from evalplatform.models import CachedResponse, ResponseCache, cache_key

REPO = Path(__file__).resolve().parents[3]
MSGS = [{"role": "user", "content": "hi"}]


def entry(text: str = "hello", latency_ms: float = 12.5) -> CachedResponse:
    return CachedResponse(text=text, tokens_in=1, tokens_out=1, cost_usd=0.0, latency_ms=latency_ms, model="local/x")


def test_key_is_stable_canonical_and_sensitive_to_every_part():
    k = cache_key("local/x", None, MSGS, {"temperature": 0.0, "seed": 1}, 1, 0)
    assert len(k) == 64 and k == cache_key("local/x", None, MSGS, {"seed": 1, "temperature": 0.0}, 1, 0)
    variants = [
        cache_key("local/y", None, MSGS, {"temperature": 0.0, "seed": 1}, 1, 0),
        cache_key("local/x", "http://h/v1", MSGS, {"temperature": 0.0, "seed": 1}, 1, 0),
        cache_key("local/x", None, [{"role": "user", "content": "hi!"}], {"temperature": 0.0, "seed": 1}, 1, 0),
        cache_key("local/x", None, MSGS, {"temperature": 0.5, "seed": 1}, 1, 0),
        cache_key("local/x", None, MSGS, {"temperature": 0.0, "seed": 1}, 2, 0),
        cache_key("local/x", None, MSGS, {"temperature": 0.0, "seed": 1}, 1, 1),
    ]
    assert len(set(variants) | {k}) == len(variants) + 1


def test_put_get_round_trip_sharded_by_key_prefix(tmp_path):
    cache = ResponseCache(tmp_path)
    key = cache.key("local/x", None, MSGS, {}, None, 0)
    assert cache.get(key) is None
    cache.put(key, entry("stored"))
    assert cache.path(key) == tmp_path / key[:2] / f"{key}.json"
    got = cache.get(key)
    assert got.text == "stored" and got.latency_ms == 12.5 and got.created_at
    assert len(cache) == 1 and not list(tmp_path.rglob("*.part"))


@pytest.mark.parametrize("content", [b"", b"{not json", b'{"key": "x", "response": {}}', b"[1, 2]", b"\xff\xfe"])
def test_corrupt_entry_is_a_miss_and_put_overwrites_it(tmp_path, content):
    cache = ResponseCache(tmp_path)
    key = cache.key("local/x", None, MSGS, {}, None, 0)
    cache.path(key).parent.mkdir(parents=True)
    cache.path(key).write_bytes(content)
    assert cache.get(key) is None
    cache.put(key, entry("fixed"))
    assert cache.get(key).text == "fixed"


def test_entry_stored_under_another_key_is_not_served(tmp_path):
    cache = ResponseCache(tmp_path)
    a, b = (cache.key("local/x", None, MSGS, {}, None, r) for r in (0, 1))
    cache.put(a, entry("for a"))
    cache.path(b).parent.mkdir(parents=True, exist_ok=True)
    cache.path(b).write_bytes(cache.path(a).read_bytes())
    assert cache.get(b) is None


@pytest.mark.parametrize("edit", [
    lambda doc: doc["response"].update(text="edited by hand"),
    lambda doc: doc["response"].update(latency_ms=1.0),
    lambda doc: doc["response"].update(text="broken \ud800"),  # json.dumps writes the escape: valid JSON
    lambda doc: doc.pop("sha256"),
])
def test_well_formed_but_edited_entry_is_a_miss(tmp_path, edit):
    cache = ResponseCache(tmp_path)
    key = cache.key("local/x", None, MSGS, {}, None, 0)
    cache.put(key, entry("original"))
    doc = json.loads(cache.path(key).read_text())
    edit(doc)
    cache.path(key).write_text(json.dumps(doc))
    assert cache.get(key) is None
    cache.put(key, entry("fresh"))
    assert cache.get(key).text == "fresh"


def test_keys_that_are_not_hex_digests_are_rejected(tmp_path):
    with pytest.raises(ValueError):
        ResponseCache(tmp_path).get("../../etc/passwd")


_WRITER = textwrap.dedent("""
    import sys
    from evalplatform.models.cache import CachedResponse, ResponseCache
    cache = ResponseCache(sys.argv[1])
    keys = [cache.key("local/x", None, [{"role": "user", "content": str(i)}], {}, None, 0) for i in range(20)]
    for round_ in range(int(sys.argv[3])):
        for k in keys:
            cache.put(k, CachedResponse(text=sys.argv[2] * 20000, latency_ms=1.0, model="local/x"))
""")


def test_two_processes_writing_the_same_entries_leave_only_valid_entries(tmp_path):
    root = tmp_path / "shared-cache"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(root), letter, "15"], env=env)
             for letter in ("a", "b")]
    # Read raw files while both write: a reader must never see a partial file.
    reads = 0
    deadline = time.monotonic() + 30
    while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
        for f in root.glob("??/*.json"):
            try:
                doc = json.loads(f.read_bytes())
            except FileNotFoundError:
                continue
            assert set(doc["response"]["text"]) in ({"a"}, {"b"}) and len(doc["response"]["text"]) == 20000
            reads += 1
    assert [p.wait(timeout=30) for p in procs] == [0, 0]
    cache = ResponseCache(root)
    files = list(root.glob("??/*.json"))
    assert len(files) == 20 and not list(root.rglob("*.part"))
    for f in files:
        assert cache.get(f.stem) is not None
    assert reads > 0


_CACHE_ONLY_RUN = textwrap.dedent("""
    import sys
    from evalplatform.models import CachedResponse, CallRequest, ResponseCache, Target, run_calls_sync
    cache = ResponseCache(sys.argv[1])
    target = Target(model="openai/never-called", api_base="http://127.0.0.1:9/v1", api_key_env="UNSET_KEY_VAR_X")
    reqs = [CallRequest(f"c{i}", 0, [{"role": "user", "content": f"q{i}"}]) for i in range(5)]
    for r in reqs:
        key = cache.key(target.model, target.api_base, target.messages(r.messages), target.params(), None, 0)
        cache.put(key, CachedResponse(text="stored " + r.case_id, latency_ms=321.0, model=target.model))
    results = run_calls_sync(target, reqs, cache=cache)
    assert [r.text for r in results] == [f"stored c{i}" for i in range(5)], results
    assert all(r.cache_hit and r.latency_ms == 321.0 and r.attempts == 0 for r in results)
    assert "litellm" not in sys.modules, "a run served wholly from cache imported litellm"
    print("OK")
""")


def test_run_served_wholly_from_cache_never_imports_litellm(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "UNSET_KEY_VAR_X"}
    env["PYTHONPATH"] = str(REPO)
    out = subprocess.run([sys.executable, "-c", _CACHE_ONLY_RUN, str(tmp_path)], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "OK"


def test_a_full_disk_is_one_warning_with_a_count_and_the_run_goes_on(tmp_path, monkeypatch, caplog):
    import errno
    import logging

    from evalplatform.models import CallRequest, Target, register_app, run_calls_sync

    register_app("cache-full-echo", lambda messages, params: "echo " + messages[-1]["content"])
    cache = ResponseCache(tmp_path / "cache")

    def full(self, key, response):
        raise OSError(errno.ENOSPC, "No space left on device", str(self.path(key)))

    monkeypatch.setattr(ResponseCache, "put", full)
    requests = [CallRequest(f"c{i}", 0, [{"role": "user", "content": f"q{i}"}]) for i in range(7)]
    with caplog.at_level(logging.WARNING):
        results = run_calls_sync(Target(model="local/cache-full-echo"), requests, cache=cache)
    assert [r.text for r in results] == [f"echo q{i}" for i in range(7)]  # a cache is an optimisation
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING and "cache" in r.getMessage()]
    assert len(warnings) == 1, [w.getMessage() for w in warnings]
    message = warnings[0].getMessage()
    assert "7 of 7" in message and "No space left on device" in message
