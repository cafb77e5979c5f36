"""Which model-call failures are worth retrying, and how long to wait before the next attempt."""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

from evalplatform.models.local_provider import LocalAppError

RETRYABLE_STATUS = frozenset({408, 429}) | frozenset(range(500, 600))
_MAX_MESSAGE = 1000


class Clock:
    """The retry loop's time: `monotonic()` times attempts, `sleep()` waits out a backoff. Tests pass a
    fake that records the waits, so they assert what was waited for instead of timing it."""

    def monotonic(self) -> float:
        return time.perf_counter()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class MalformedResponse(ValueError):
    """The endpoint answered 200 but the body is not a usable chat completion."""


@dataclass(frozen=True)
class Failure:
    kind: str  # timeout | connection | rate_limit | server_error | malformed | client_error | config | local_app | error
    retryable: bool
    status: int | None
    message: str
    retry_after_s: float | None = None


def _chain(exc: BaseException) -> list[BaseException]:
    """exc and everything it was raised from or during, nearest first (both links: litellm uses both)."""
    out: list[BaseException] = []
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        cur = todo.pop(0)
        if id(cur) in seen:
            continue
        seen.add(id(cur))
        out.append(cur)
        todo.extend(e for e in (cur.__cause__, cur.__context__) if e is not None)
    return out


def _transport_types() -> tuple[type, ...]:
    types: list[type] = [ConnectionError, TimeoutError]
    try:
        import httpx
        types.append(httpx.TransportError)
    except ImportError:  # pragma: no cover - litellm brings httpx
        pass
    try:
        import aiohttp
        types.append(aiohttp.ClientConnectionError)
    except ImportError:  # pragma: no cover
        pass
    return tuple(types)


def _timeout_types() -> tuple[type, ...]:
    types: list[type] = [TimeoutError]
    try:
        import openai
        types.append(openai.APITimeoutError)
    except ImportError:  # pragma: no cover
        pass
    try:
        import httpx
        types.append(httpx.TimeoutException)
    except ImportError:  # pragma: no cover
        pass
    return tuple(types)


def _is_sdk_client_error(exc: BaseException) -> bool:
    try:
        import openai
    except ImportError:  # pragma: no cover
        return False
    return type(exc) is openai.OpenAIError


def _headers(exc: BaseException):
    for h in (getattr(exc, "litellm_response_headers", None), getattr(getattr(exc, "response", None), "headers", None)):
        if h:
            return h
    return None


def retry_after_seconds(headers, now: datetime | None = None) -> float | None:
    """Seconds asked for by `retry-after-ms` or `Retry-After` (seconds or an HTTP date, counted from `now`,
    default the current time); None when absent or junk."""
    if not headers:
        return None
    try:
        ms = headers.get("retry-after-ms")
        if ms is not None:
            return max(0.0, float(ms) / 1000.0)
    except (TypeError, ValueError):
        pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        pass
    try:
        when = parsedate_to_datetime(str(value))
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


def _clean(text: str) -> str:
    # litellm appends a traceback and a "file a bug" notice to wrapped errors; keep the message only.
    text = text.split("\nTraceback (most recent call last)", 1)[0]
    text = text.split("\nThis looks like a bug in LiteLLM", 1)[0]
    text = " ".join(text.split())
    return text[:_MAX_MESSAGE]


def _message(exc: BaseException) -> str:
    name = type(exc).__name__
    text = _clean(str(exc))
    # litellm prefixes "litellm.RateLimitError: RateLimitError: "; the class name is shown once already.
    text = re.sub(rf"^(litellm\.{name}:\s*)?({name}:\s*)?", "", text)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def classify(exc: BaseException) -> Failure:
    chain = _chain(exc)
    status = getattr(exc, "status_code", None)
    status = status if isinstance(status, int) else None

    local = next((e for e in chain if isinstance(e, LocalAppError)), None)
    if local is not None:
        return Failure("local_app", False, None, _clean(str(local)))
    if any(isinstance(e, (MalformedResponse, json.JSONDecodeError)) for e in chain):
        return Failure("malformed", False, status, "malformed response body: " + _message(exc))
    if any(isinstance(e, _timeout_types()) for e in chain):
        return Failure("timeout", True, 408, "timeout: " + _message(exc))
    if any(isinstance(e, _transport_types()) for e in chain):
        return Failure("connection", True, None, "connection error: " + _message(exc))
    sdk = next((e for e in chain if _is_sdk_client_error(e)), None)
    if sdk is not None:
        # Raised by the OpenAI SDK before any request is sent (e.g. missing credentials); litellm
        # relabels it as a 500, but retrying a config problem only delays the same error.
        hint = " (set the target's api_key_env)" if "credential" in str(sdk).lower() else ""
        return Failure("config", False, None, f"client configuration: {_clean(str(sdk))}{hint}")
    if type(exc).__name__ == "APIConnectionError":
        # litellm wraps any exception raised in-process (custom providers, bad params) as a connection
        # error with status 500; without a transport error underneath it is a bug, not a flaky network.
        origin = next((e for e in chain[1:] if not type(e).__module__.startswith(("litellm", "openai"))), exc)
        return Failure("error", False, None, _message(origin))
    if status is not None:
        retryable = status in RETRYABLE_STATUS
        kind = "rate_limit" if status == 429 else "server_error" if status >= 500 else "client_error"
        after = retry_after_seconds(_headers(exc)) if retryable else None
        return Failure(kind, retryable, status, f"HTTP {status} " + _message(exc), after)
    return Failure("error", False, None, _message(exc))


def backoff_s(attempt: int, base_s: float, max_s: float, retry_after_s: float | None = None,
              rng: random.Random | None = None) -> float:
    """Wait after failed attempt number `attempt` (1-based): exponential with jitter, or the server's
    Retry-After when given; never more than max_s."""
    if retry_after_s is not None:
        return min(max_s, retry_after_s)
    ceiling = min(max_s, base_s * (2 ** (attempt - 1)))
    # "Equal jitter": at least half the exponential step, so waits still grow, spread to avoid lockstep.
    return ceiling / 2 + (rng or random).uniform(0, ceiling / 2)
