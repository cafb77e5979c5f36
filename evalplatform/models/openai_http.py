"""The lean transport: OpenAI chat-completions over one pooled aiohttp session, without importing litellm.

It stands in for the `litellm` module inside the call layer (`acompletion`, `completion_cost`), so the
retry loop, the cache, redaction and the infrastructure checks of calls.py are the same for both paths.
Its errors carry the status codes and class names litellm gives the same responses, so retry.classify
sorts them identically; the parity test (tests/evalplatform/models/test_models_transport_parity.py)
sends one suite both ways to a local server and compares them field by field.
"""

from __future__ import annotations

import json
import os
import re
import socket
from typing import Any

from evalplatform.errors import InputError
from evalplatform.models.prices import cost_usd
from evalplatform.models.retry import ClientConfigError, MalformedResponse

TRANSPORTS = ("auto", "litellm", "openai")
DEFAULT_API_BASE = "https://api.openai.com/v1"
# A reply bigger than this is refused rather than buffered: a runaway endpoint must not exhaust memory.
MAX_BODY_BYTES = 64 * 1024 * 1024
# OpenAI's reasoning families: litellm rewrites their parameters (max_completion_tokens, no temperature),
# so `auto` leaves them on litellm rather than duplicating those rules here.
_REASONING = re.compile(r"^(o\d|gpt-5)")
_LOGGERS = ("aiohttp",)


def uses_openai_http(target: Any) -> bool:
    """Whether `target`'s calls take the lean transport: `transport: openai`, or `auto` with an `openai/` model."""
    transport = getattr(target, "transport", "auto")
    if transport == "openai":
        if target.model.startswith("local/"):
            raise InputError(None, "target.transport", f"{target.model} is an in-process app, not an HTTP endpoint",
                             "use transport: auto (or litellm) for local/ models")
        return True
    if transport == "litellm":
        return False
    if not target.model.startswith("openai/"):
        return False
    return target.api_base is not None or not _REASONING.match(target.model.split("/", 1)[1])


def wire_model(model: str) -> str:
    """The model name sent on the wire: the litellm provider prefix (`openai/`, `hosted_vllm/`...) dropped."""
    return model.split("/", 1)[1] if "/" in model else model


# litellm's exception class for each status code (what it raised for the same responses): kept so that
# error texts, and retry.classify's reading of them, do not depend on the transport.
_STATUS_NAMES = {400: "BadRequestError", 401: "AuthenticationError", 404: "NotFoundError", 422: "BadRequestError",
                 429: "RateLimitError", 500: "InternalServerError", 502: "BadGatewayError",
                 503: "ServiceUnavailableError"}
_TIMEOUT_STATUS = frozenset({408, 504})  # litellm raises its Timeout for these: retried as timeouts


class _Headers(dict):
    def get(self, key, default=None):  # HTTP header names are case-insensitive
        return super().get(key.lower(), default)


class _Response:
    def __init__(self, headers: _Headers):
        self.headers = headers


class APIStatusError(Exception):
    """The endpoint answered with an error status; `status_code` and `response.headers` as litellm's errors."""

    def __init__(self, status: int, message: str, headers: _Headers):
        super().__init__(message)
        self.status_code = status
        self.response = _Response(headers)


class APITimeout(TimeoutError):
    """408 or 504 from the endpoint."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status_code = status


_classes: dict[str, type] = {}


def _status_error(status: int, message: str, headers: _Headers) -> Exception:
    if status in _TIMEOUT_STATUS:
        cls = _classes.get("Timeout") or _classes.setdefault("Timeout", type("Timeout", (APITimeout,), {}))
        return cls(status, f"Timeout Error: {message}")
    name = _STATUS_NAMES.get(status, "APIError")
    cls = _classes.get(name) or _classes.setdefault(name, type(name, (APIStatusError,), {}))
    return cls(status, message, headers)


class _Message:
    __slots__ = ("content",)

    def __init__(self, content: Any):
        self.content = content


class _Choice:
    __slots__ = ("message",)

    def __init__(self, message: _Message):
        self.message = message


class _Usage:
    __slots__ = ("prompt_tokens", "completion_tokens")

    def __init__(self, prompt_tokens: Any, completion_tokens: Any):
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = completion_tokens


class ChatResponse:
    """The parts of a chat completion the call layer reads, shaped like litellm's ModelResponse."""

    __slots__ = ("choices", "usage", "model", "_hidden_params")

    def __init__(self, doc: Any, requested: str):
        if not isinstance(doc, dict):
            raise MalformedResponse(f"response body is a JSON {type(doc).__name__}, not an object")
        choices = doc.get("choices")
        first = choices[0] if isinstance(choices, list) and choices else None
        message = first.get("message") if isinstance(first, dict) else None
        if not isinstance(message, dict):
            raise MalformedResponse("response has no choices[0].message")
        self.choices = [_Choice(_Message(message.get("content")))]
        usage = doc.get("usage") if isinstance(doc.get("usage"), dict) else {}
        # litellm records 0 for a reply without usage; the same here, so a cache entry does not depend on the path.
        prompt, completion = usage.get("prompt_tokens") or 0, usage.get("completion_tokens") or 0
        self.usage = _Usage(prompt, completion)
        self.model = doc.get("model") if isinstance(doc.get("model"), str) else requested
        cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens") \
            if isinstance(usage.get("prompt_tokens_details"), dict) else None
        # litellm prices by the model the endpoint says answered, then by the one asked for.
        cost = None
        if isinstance(prompt, int) and isinstance(completion, int):
            for name in dict.fromkeys((self.model, requested)):
                cost = cost_usd(name, prompt, completion, cached if isinstance(cached, int) else 0)
                if cost is not None:
                    break
        self._hidden_params = {"response_cost": cost}


class NotPriced(LookupError):
    """Named like litellm's: the call layer remembers unpriced models by this message."""

    def __init__(self, model: str):
        super().__init__(f"This model isn't mapped yet. model={model}")


def _error_message(raw: bytes) -> str:
    text = raw.decode("utf-8", "replace")
    try:
        doc = json.loads(text)
    except ValueError:
        return f"OpenAIException - {text[:1000]}"
    err = doc.get("error") if isinstance(doc, dict) else None
    if isinstance(err, dict) and err.get("message") is not None:
        return f"OpenAIException - {err['message']}"
    if isinstance(err, str):
        return f"OpenAIException - {err}"
    return f"OpenAIException - {text[:1000]}"


class OpenAIHTTP:
    """One pooled session for one batch of calls (one event loop); `aclose()` when the batch is done."""

    def __init__(self) -> None:
        import aiohttp  # imported here, before any attempt's clock starts

        from evalplatform.models.redact import redact_logs

        self._aiohttp = aiohttp
        self._session: Any = None
        self._proxies: dict[str, str | None] = {}
        redact_logs(_LOGGERS)

    def _client(self) -> Any:
        if self._session is None:
            aiohttp = self._aiohttp
            # limit=0: the call layer's semaphore is the only bound on connections (concurrency may exceed 100).
            connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, socket_factory=_quick_ack_socket)
            # trust_env=False: with it, aiohttp reads the proxy variables and ~/.netrc in a worker thread on
            # every request (a third of a 6,000-call run's CPU); the proxy is looked up once per URL instead.
            self._session = aiohttp.ClientSession(connector=connector, trust_env=False,
                                                  skip_auto_headers=("User-Agent",))
        return self._session

    def _proxy(self, url: str) -> str | None:
        """The HTTP(S)_PROXY that applies to `url` unless NO_PROXY exempts it, as httpx honours them under litellm."""
        if url not in self._proxies:
            import urllib.request
            from urllib.parse import urlsplit

            parts = urlsplit(url)
            proxy = None
            if not urllib.request.proxy_bypass_environment(parts.hostname or ""):
                proxy = urllib.request.getproxies_environment().get(parts.scheme)
            self._proxies[url] = proxy
        return self._proxies[url]

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def acompletion(self, *, model: str, messages: list[dict], timeout: float, api_base: str | None = None,
                          api_key: str | None = None, max_retries: int = 0, **params: Any) -> ChatResponse:
        base = api_base or os.environ.get("OPENAI_BASE_URL") or os.environ.get("OPENAI_API_BASE") or DEFAULT_API_BASE
        key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        if key is None:
            # What the OpenAI SDK refuses before sending under litellm, even for a local endpoint that needs no key.
            raise ClientConfigError("The api_key client option must be set either by passing api_key to the "
                                    "client or by setting the OPENAI_API_KEY environment variable")
        name = wire_model(model)
        url = base.rstrip("/") + "/chat/completions"
        # As the OpenAI SDK under litellm: extra_body's keys join the body, extra_headers are headers.
        extra_headers = params.pop("extra_headers", None) or {}
        params.update(params.pop("extra_body", None) or {})
        body = json.dumps({"model": name, "messages": messages, **params}, ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json", **extra_headers}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        aiohttp = self._aiohttp
        try:
            async with self._client().post(url, data=body, headers=headers, proxy=self._proxy(base),
                                           timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
                raw = await _read(resp)
                status = resp.status
                resp_headers = _Headers((k.lower(), v) for k, v in resp.headers.items()) if status >= 400 else None
        except aiohttp.ClientPayloadError as exc:
            # The connection broke inside the body (a short Content-Length, a reset): a transport
            # failure, as httpx reports it under litellm.
            raise ConnectionError(f"Connection error: incomplete response body ({exc})") from exc
        except aiohttp.InvalidURL as exc:
            raise ClientConfigError(f"invalid api_base URL: {exc}") from None
        except MalformedResponse:
            raise
        except ValueError as exc:
            # aiohttp refusing the request as set up (e.g. credentials in the api_base's userinfo next to an
            # api key): the same on every attempt.
            raise ClientConfigError(f"{type(exc).__name__}: {exc}") from None
        if status >= 400:
            raise _status_error(status, _error_message(raw), resp_headers or _Headers())
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedResponse(f"response body is not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
        return ChatResponse(json.loads(text), name)

    def completion_cost(self, completion_response: ChatResponse) -> float:
        """The cost already computed from the price map; raises NotPriced like litellm when there is none."""
        cost = completion_response._hidden_params.get("response_cost")
        if cost is None:
            raise NotPriced(completion_response.model)
        return cost


_QUICKACK = getattr(socket, "TCP_QUICKACK", None)  # Linux only


class _QuickAckSocket(socket.socket):
    """Acknowledges each read at once. A server that writes a reply's headers and body in two sends without
    TCP_NODELAY (Python's http.server does) otherwise waits out the client's delayed ACK, ~40 ms a call on a
    kept-alive connection: 110 calls/s instead of 153 at 16 x 100 ms against the bench mock."""

    def recv(self, *args: Any) -> bytes:
        data = super().recv(*args)
        self.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
        return data

    def recv_into(self, *args: Any) -> int:
        n = super().recv_into(*args)
        self.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
        return n


def _quick_ack_socket(addr_info: Any) -> socket.socket:
    family, type_, proto, _, _ = addr_info
    if _QUICKACK is None or family not in (socket.AF_INET, socket.AF_INET6):
        return socket.socket(family=family, type=type_, proto=proto)
    sock = _QuickAckSocket(family=family, type=type_, proto=proto)
    sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
    return sock


async def _read(resp: Any) -> bytes:
    length = resp.content_length
    if length is not None and length > MAX_BODY_BYTES:
        raise MalformedResponse(f"response body of {length} bytes is larger than the {MAX_BODY_BYTES} bytes accepted")
    if length is not None:
        return await resp.read()
    chunks, size = [], 0
    async for chunk in resp.content.iter_chunked(1 << 16):
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise MalformedResponse(f"response body is larger than the {MAX_BODY_BYTES} bytes accepted")
        chunks.append(chunk)
    return b"".join(chunks)
