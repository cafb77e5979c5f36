"""Which model-call failures are worth retrying, and how long to wait before the next attempt."""

from __future__ import annotations

import asyncio
import json
import random
import re
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

from evalplatform.models.local_provider import LocalAppError, UnknownAppError

RETRYABLE_STATUS = frozenset({408, 429}) | frozenset(range(500, 600))
# Failures of the endpoint, not of the model's answer: unreachable, refused credentials, no such
# model or route (404), overloaded or broken after retries, too slow, or set up wrongly. A run made
# mostly of these measures the infrastructure, so it is reported as an infrastructure failure.
INFRA_KINDS = frozenset({"connection", "timeout", "auth", "not_found", "rate_limit", "server_error", "config"})
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


class ClientConfigError(Exception):
    """The client refused to send the request as set up (no credentials, a bad URL): retrying cannot help."""


@dataclass(frozen=True)
class Failure:
    # timeout | connection | auth | not_found | rate_limit | server_error | config   (infrastructure)
    # malformed | client_error | local_app | error                                     (the model's or a bug)
    kind: str
    retryable: bool
    status: int | None
    message: str
    retry_after_s: float | None = None
    cause: str | None = None  # under a connection error: "connection refused", "DNS: ...", "TLS: ..."

    @property
    def infra(self) -> bool:
        return self.kind in INFRA_KINDS


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
    import socket
    import ssl

    types: list[type] = [ConnectionError, TimeoutError, socket.gaierror, ssl.SSLError]
    # Client libraries count only when loaded: their errors cannot occur otherwise (see _timeout_types).
    httpx, aiohttp = sys.modules.get("httpx"), sys.modules.get("aiohttp")
    if httpx is not None:
        types.append(httpx.TransportError)
    if aiohttp is not None:
        types.append(aiohttp.ClientConnectionError)
    return tuple(types)


def _timeout_types() -> tuple[type, ...]:
    types: list[type] = [TimeoutError]
    # Only when already loaded: an exception cannot come from a module no one imported, and importing
    # the SDK here would put its ~0.5 s on the first failure of a run that never used it (the lean path).
    openai = sys.modules.get("openai")
    if openai is not None:
        types.append(openai.APITimeoutError)
    httpx = sys.modules.get("httpx")
    if httpx is not None:
        types.append(httpx.TimeoutException)
    return tuple(types)


def _is_sdk_client_error(exc: BaseException) -> bool:
    openai = sys.modules.get("openai")
    return openai is not None and type(exc) is openai.OpenAIError


def _is_sdk_connection_error(exc: BaseException) -> bool:
    openai = sys.modules.get("openai")
    return openai is not None and type(exc) is openai.APIConnectionError


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


def _connection_cause(chain: list[BaseException]) -> str | None:
    """What actually failed under a connection error, in a few words: litellm and the SDKs say only
    "Connection error." and keep the refused socket, the DNS miss or the TLS failure underneath."""
    import socket
    import ssl

    for exc in reversed(chain):  # the innermost cause is the most specific
        if isinstance(exc, ConnectionRefusedError):
            return "connection refused"
        if isinstance(exc, socket.gaierror):
            return f"DNS: {exc.strerror or exc}"
        if isinstance(exc, ssl.SSLError):
            return f"TLS: {_clean(exc.reason or str(exc))}"
        if isinstance(exc, ConnectionResetError):
            return "connection reset"
    return None


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


def _undecodable(exc: BaseException, chain: list[BaseException]) -> bool:
    """A reply body that is not valid UTF-8. litellm keeps only the decoder's message (as a 500), so
    the text is the evidence there; a corrupt body is the same on every retry, like truncated JSON."""
    if any(isinstance(e, UnicodeDecodeError) for e in chain):
        return True
    return "codec can't decode byte" in str(exc) and type(exc).__module__.startswith("litellm")


_STATUS_KINDS = {401: "auth", 403: "auth", 407: "auth", 404: "not_found", 408: "timeout", 429: "rate_limit"}


def classify(exc: BaseException) -> Failure:
    chain = _chain(exc)
    status = getattr(exc, "status_code", None)
    status = status if isinstance(status, int) else None

    local = next((e for e in chain if isinstance(e, LocalAppError)), None)
    if local is not None:
        # No such app is a target that does not exist (set up wrongly); an app that raised is the model failing.
        kind = "config" if isinstance(local, UnknownAppError) else "local_app"
        return Failure(kind, False, None, _clean(str(local)))
    if any(isinstance(e, (MalformedResponse, json.JSONDecodeError)) for e in chain) or _undecodable(exc, chain):
        # No status: the body came with a 200; litellm's wrapper relabels it 500, which is not what was sent.
        return Failure("malformed", False, None, "malformed response body: " + _message(exc))
    config = next((e for e in chain if isinstance(e, ClientConfigError)), None)
    if config is not None:
        hint = " (set the target's api_key_env)" if "api_key" in str(config).lower() else ""
        return Failure("config", False, None, f"client configuration: {_clean(str(config))}{hint}")
    if any(isinstance(e, _timeout_types()) for e in chain):
        return Failure("timeout", True, 408, "timeout: " + _message(exc))
    if any(isinstance(e, _transport_types()) for e in chain):
        cause = _connection_cause(chain)
        return Failure("connection", True, None,
                       f"connection error{f' ({cause})' if cause else ''}: " + _message(exc), cause=cause)
    sdk = next((e for e in chain if _is_sdk_client_error(e)), None)
    if sdk is not None:
        # Raised by the OpenAI SDK before any request is sent (e.g. missing credentials); litellm
        # relabels it as a 500, but retrying a config problem only delays the same error.
        hint = " (set the target's api_key_env)" if "credential" in str(sdk).lower() else ""
        return Failure("config", False, None, f"client configuration: {_clean(str(sdk))}{hint}")
    sdk_conn = next((e for e in chain if _is_sdk_connection_error(e)), None)
    if sdk_conn is not None and sdk_conn.__cause__ is not None:
        # The SDK's "Connection error." over an exception that is no transport failure (those were
        # handled above): the HTTP client refused the request as set up, e.g. credentials in the
        # api_base's userinfo together with an api key. Every retry would fail the same way.
        return Failure("config", False, None, f"client configuration: {_message(sdk_conn.__cause__)}")
    if type(exc).__name__ == "APIConnectionError":
        # litellm wraps any exception raised in-process (custom providers, bad params) as a connection
        # error with status 500; without a transport error underneath it is a bug, not a flaky network.
        origin = next((e for e in chain[1:] if not type(e).__module__.startswith(("litellm", "openai"))), exc)
        return Failure("error", False, None, _message(origin))
    if status is not None:
        retryable = status in RETRYABLE_STATUS
        kind = _STATUS_KINDS.get(status) or ("server_error" if status >= 500 else "client_error")
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
