"""Run a batch of chat calls against one target: bounded concurrency, our own retry loop, a response cache.

litellm is imported lazily, on the first cache miss: a run served wholly from the cache never pays
its ~3 s import. Every request yields exactly one CallResult, in request order; a failed call is a
result with `error` set (secrets redacted), never an exception.
"""

from __future__ import annotations

import asyncio
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Coroutine

from evalplatform.errors import InputError
from evalplatform.models import local_provider, openai_http
from evalplatform.models.cache import CachedResponse, ResponseCache
from evalplatform.models.redact import redact, redact_logs, remember_secret
from evalplatform.models.retry import Clock, Failure, MalformedResponse, backoff_s, classify
from evalplatform.models.target import Target
from evalplatform.models.text import unicode_problem

log = logging.getLogger(__name__)

_LITELLM_LOGGERS = ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "litellm")
# Loggers that may carry a request's URL (userinfo included), headers or key: redacted before any handler.
_CLIENT_LOGGERS = (*_LITELLM_LOGGERS, "openai", "httpx", "httpcore", "aiohttp")


@dataclass
class CallRequest:
    case_id: str
    repeat: int
    messages: list[dict]


@dataclass
class CallResult:
    case_id: str
    repeat: int
    text: str | None
    error: str | None
    latency_ms: float | None      # the model's latency as first measured (kept on a cache hit)
    served_ms: float              # what this run spent getting the answer (about 0 on a cache hit)
    tokens_in: int | None
    tokens_out: int | None
    cost_usd: float | None        # None when the model has no known price
    cache_hit: bool
    attempts: int                 # model attempts made by this run (0 on a cache hit)
    attempt_log: list[dict] = field(default_factory=list)
    error_kind: str | None = None  # the last attempt's failure kind (retry.Failure.kind), None on success
    infra_error: bool = False      # failed for the endpoint's reasons (retry.INFRA_KINDS), not the model's

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class _Answer:
    text: str
    tokens_in: int | None
    tokens_out: int | None
    cost_usd: float | None
    latency_ms: float


def _load_litellm():
    # Without this, importing litellm fetches the price map from GitHub (and hangs offline).
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True  # the only switch for its "Give Feedback / Get Help" prints
    if os.environ.get("LITELLM_LOG", "").upper() not in ("DEBUG", "INFO"):
        for name in _LITELLM_LOGGERS:
            logging.getLogger(name).setLevel(logging.CRITICAL)
    local_provider.install()
    _warm_up()
    redact_logs(_CLIENT_LOGGERS)
    return litellm


# Modules litellm and the OpenAI SDK import on the first OpenAI-compatible call (~0.4-0.6 s here).
# Imported before any attempt's clock starts; otherwise that cost lands in the latency_ms of the
# whole first wave of calls (p95 of a 200-call run at 100 ms mock latency was 0.5-1.0 s).
_FIRST_CALL_MODULES = ("openai.resources.chat.completions", "litellm.llms.openai.openai", "litellm.proxy._types")


def _warm_up() -> None:
    import importlib

    for name in _FIRST_CALL_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:  # another litellm/openai layout: the first call simply pays for it
            pass


def _parse(resp: Any) -> tuple[str, int | None, int | None]:
    try:
        content = resp.choices[0].message.content
    except (AttributeError, IndexError, TypeError, KeyError) as exc:
        raise MalformedResponse("response has no choices[0].message") from exc
    if content is not None and not isinstance(content, str):
        raise MalformedResponse(f"message content is {type(content).__name__}, expected text")
    # JSON's "\ud800" decodes to a lone surrogate: such a reply cannot be hashed, cached or stored,
    # so it is this call's error here rather than a crash of the whole run later.
    problem = unicode_problem(content) if content else None
    if problem:
        raise MalformedResponse(f"reply text is {problem}")
    usage = getattr(resp, "usage", None)
    tokens_in = getattr(usage, "prompt_tokens", None)
    tokens_out = getattr(usage, "completion_tokens", None)
    return content or "", tokens_in, tokens_out


# Models litellm has no price for: the price map does not change within a process, and the
# failing lookup (with its exception) ran on every call of a 6,000-call run.
_UNPRICED: set[str] = set()


def _cost(litellm: Any, resp: Any, model: str | None = None) -> float | None:
    # A missing price must never turn a good answer into an error: unknown cost is None.
    try:
        cost = (getattr(resp, "_hidden_params", None) or {}).get("response_cost")
        if cost is None:
            if model in _UNPRICED:
                return None
            cost = litellm.completion_cost(completion_response=resp)
        return float(cost)
    except Exception as exc:
        # Only "no price for this model" is remembered; any other failure is retried on the next call.
        if model is not None and (type(exc).__name__ == "ModelNotMappedError" or "isn't mapped" in str(exc)):
            _UNPRICED.add(model)
        return None


async def _attempt(litellm: Any, target: Target, messages: list[dict], api_key: str | None) -> Any:
    kwargs: dict[str, Any] = dict(target.params())
    if target.api_base:
        kwargs["api_base"] = target.api_base
    if api_key is not None:
        kwargs["api_key"] = api_key
    # max_retries=0: the OpenAI SDK must not retry behind our back. litellm's own retry wrapper (it
    # needs tenacity and resets a litellm global) and its response cache are never used.
    call = litellm.acompletion(model=target.model, messages=messages, timeout=target.timeout_s, max_retries=0, **kwargs)
    # Backstop for providers that ignore `timeout` (in-process handlers, a stuck transport).
    backstop = target.timeout_s + min(5.0, 0.1 * target.timeout_s + 0.5)
    try:
        return await asyncio.wait_for(call, backstop)
    except TimeoutError:
        raise TimeoutError(f"no answer within {backstop:.2f} s (timeout_s={target.timeout_s})") from None


async def _call_with_retries(litellm: Any, target: Target, messages: list[dict], api_key: str | None,
                             clock: Clock) -> tuple[_Answer | Failure, list[dict]]:
    attempt_log: list[dict] = []
    for attempt in range(1, target.max_attempts + 1):
        t0 = clock.monotonic()
        try:
            resp = await _attempt(litellm, target, messages, api_key)
            text, tokens_in, tokens_out = _parse(resp)
        except Exception as exc:
            failure = classify(exc)
            entry = {"attempt": attempt, "outcome": failure.kind, "status": failure.status,
                     "exception": type(exc).__name__, "elapsed_ms": round((clock.monotonic() - t0) * 1000, 3),
                     "wait_s": None, "cause": failure.cause}
            attempt_log.append(entry)
            if not failure.retryable or attempt == target.max_attempts:
                return failure, attempt_log
            wait = backoff_s(attempt, target.backoff_base_s, target.backoff_max_s, failure.retry_after_s)
            entry["wait_s"] = round(wait, 4)
            await clock.sleep(wait)
            continue
        latency_ms = (clock.monotonic() - t0) * 1000
        attempt_log.append({"attempt": attempt, "outcome": "ok", "status": 200, "exception": None,
                            "elapsed_ms": round(latency_ms, 3), "wait_s": None, "cause": None})
        return _Answer(text, tokens_in, tokens_out, _cost(litellm, resp, target.model), latency_ms), attempt_log
    raise AssertionError("unreachable: max_attempts >= 1")


def _api_key(target: Target) -> str | None:
    if target.api_key_env and target.api_key_env not in os.environ:
        raise InputError(None, "target.api_key_env",
                         f"environment variable {target.api_key_env} is not set",
                         f"export {target.api_key_env}=<your key> or remove api_key_env")
    key = target.api_key()
    remember_secret(key)
    return key


def _for_repeat(target: Target, repeat: int) -> Target:
    """Repeat r samples with seed + r: with one seed for all, a provider that honours seeds would
    return the same answer every repeat, and repeats would measure nothing."""
    if target.seed is None or repeat == 0:
        return target
    return target.model_copy(update={"seed": target.seed + repeat})


async def run_calls(target: Target, requests: list[CallRequest], *, concurrency: int = 8,
                    cache: ResponseCache | None = None,
                    on_result: Callable[[CallResult], None] | None = None,
                    clock: Clock | None = None, budget: Any = None) -> list[CallResult]:
    """One CallResult per request, in request order. `cache=None` means no reads and no writes.

    `budget` (an evalplatform.budget.Budget, shared by a run's target and judge calls) admits each model call;
    once it refuses, the call is not made and its result is the error "budget exhausted" (cache hits are free).

    `on_result` is called as each result becomes final (cache hits first, then calls as they finish).
    `clock` times attempts and waits out backoffs (default: the real one).
    Raises InputError only for config problems found before any call (an unset api key env var).
    """
    clock = clock or Clock()
    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency}")
    params = target.params()
    sent = [target.messages(r.messages) for r in requests]
    keys = [cache.key(target.model, target.api_base, m, params, target.seed, r.repeat) if cache is not None else None
            for r, m in zip(requests, sent)]
    results: list[CallResult | None] = [None] * len(requests)

    def finish(i: int, result: CallResult) -> None:
        results[i] = result
        if on_result is not None:
            on_result(result)

    misses: list[int] = []
    for i, req in enumerate(requests):
        t0 = clock.monotonic()
        hit = cache.get(keys[i]) if cache is not None else None
        if hit is None:
            misses.append(i)
            continue
        finish(i, CallResult(req.case_id, req.repeat, hit.text, None, hit.latency_ms,
                             (clock.monotonic() - t0) * 1000, hit.tokens_in, hit.tokens_out, hit.cost_usd,
                             cache_hit=True, attempts=0, attempt_log=[]))

    if misses:
        api_key = _api_key(target)
        # The lean transport stands in for the litellm module (same acompletion / completion_cost).
        litellm = openai_http.OpenAIHTTP() if openai_http.uses_openai_http(target) else _load_litellm()
        # Held across an item's retries and backoff waits: under rate limiting, a waiting item keeps
        # its slot, so the whole batch slows down instead of piling more requests onto the endpoint.
        sem = asyncio.Semaphore(concurrency)
        cache_failures: list[str] = []
        cache_writes = 0

        async def one(i: int) -> None:
            nonlocal cache_writes
            req = requests[i]
            async with sem:
                if budget is not None and not budget.admit():
                    finish(i, CallResult(req.case_id, req.repeat, None, "budget exhausted", None, 0.0, None, None,
                                         None, cache_hit=False, attempts=0, error_kind="budget"))
                    return
                t0 = clock.monotonic()
                outcome, attempt_log = await _call_with_retries(litellm, _for_repeat(target, req.repeat),
                                                                sent[i], api_key, clock)
                served_ms = (clock.monotonic() - t0) * 1000
            if budget is not None:
                budget.spend(0.0 if isinstance(outcome, Failure) else outcome.cost_usd)
            if isinstance(outcome, Failure):
                error = redact(f"{outcome.message} (after {len(attempt_log)} attempt"
                               f"{'s' if len(attempt_log) != 1 else ''})", secrets=[api_key])
                finish(i, CallResult(req.case_id, req.repeat, None, error, None, served_ms, None, None, None,
                                     cache_hit=False, attempts=len(attempt_log), attempt_log=attempt_log,
                                     error_kind=outcome.kind, infra_error=outcome.infra))
                return
            if cache is not None:
                cache_writes += 1
                try:
                    cache.put(keys[i], CachedResponse(text=outcome.text, tokens_in=outcome.tokens_in,
                                                      tokens_out=outcome.tokens_out, cost_usd=outcome.cost_usd,
                                                      latency_ms=outcome.latency_ms, model=target.model))
                except (OSError, ValueError) as exc:  # a full disk, a read-only dir: the answer stands
                    cache_failures.append(redact(f"{type(exc).__name__}: {exc}"))
            finish(i, CallResult(req.case_id, req.repeat, outcome.text, None, outcome.latency_ms, served_ms,
                                 outcome.tokens_in, outcome.tokens_out, outcome.cost_usd,
                                 cache_hit=False, attempts=len(attempt_log), attempt_log=attempt_log))

        try:
            async with asyncio.TaskGroup() as tg:
                for i in misses:
                    tg.create_task(one(i))
        except BaseExceptionGroup as group:
            # Only a caller's on_result can raise here; surface its exception, not the group.
            raise group.exceptions[0] from None
        finally:
            # Said once, with a count: a full disk made one warning per answer, hundreds before the error.
            if cache_failures:
                log.warning("response cache: %d of %d writes failed (first: %s); those answers were kept, not cached",
                            len(cache_failures), cache_writes, cache_failures[0])
            if isinstance(litellm, openai_http.OpenAIHTTP):
                await litellm.aclose()

    assert all(r is not None for r in results)
    return results  # type: ignore[return-value]


def run_sync(make: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    """Run the coroutine `make()` from synchronous code (CLI, Dagster ops), inside a running event loop too."""
    try:
        asyncio.get_running_loop()
        in_loop = True
    except RuntimeError:
        in_loop = False
    # Not inside the `except` above: an exception being handled leaks into the __context__ of errors
    # raised during the run and hides the causes that retry classification looks for.
    if not in_loop:
        return asyncio.run(make())
    # Already inside a loop (a notebook, an async host): run on a private loop in a worker thread.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()


def run_calls_sync(target: Target, requests: list[CallRequest], **kwargs: Any) -> list[CallResult]:
    """`run_calls` from synchronous code (CLI, Dagster ops); works inside a running event loop too."""
    return run_sync(lambda: run_calls(target, requests, **kwargs))
