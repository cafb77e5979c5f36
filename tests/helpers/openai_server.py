"""A real OpenAI-compatible HTTP server on 127.0.0.1 whose behaviour is picked by the request's model name.

Models (the part after `openai/` in a litellm model string):
  ok            200 with a deterministic answer and usage
  flaky429-N    429 with Retry-After for the first N requests per distinct prompt, then 200
  always500     500 every time
  slow-S        sleeps S seconds (float) before answering 200: the timeout path
  malformed     200 with a body that is not JSON
  unauthorized  401 whose message quotes the Authorization header back (as real providers do with keys)
  surrogate     200 whose reply text holds a lone surrogate ("\\ud800": valid JSON, invalid Unicode)
  surrogate400  400 whose error message holds a lone surrogate
  judge         200 with a judge verdict {"reasoning": ..., "verdict": "PASS"}; when the judged text contains
                `judge-surrogate` the reply text holds a lone surrogate instead; with `judge-escaped-surrogate`
                the reply is verdict JSON whose reasoning decodes to one (the reply text holds the escape)
  mixed         the behaviour is the first word of the last message ("always500 case-3"), for mixed batches
  status-NNN    that HTTP status with an OpenAI-style error body (429 carries Retry-After: 0)
  badutf8       200 whose body is not valid UTF-8
  truncated     200 whose body stops before its Content-Length, then the connection closes
  cutjson       200 whose whole body (Content-Length right) is JSON cut off mid-object
  chunked-N     200 sent chunked (no Content-Length) with a reply text of N bytes
  priced        200 naming gpt-4o-mini as the answering model, usage with cached prompt tokens (a priced reply)
  nousage       200 without a usage object
  nullcontent   200 whose message content is null
  big-N         200 whose reply text is N bytes long
Any other name answers 200 like `ok`. The server counts requests per (model, prompt) and the peak
number of requests in flight, so tests can check what actually reached the wire.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

RETRY_AFTER_S = 1


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # a handler still sleeping for a timeout test must not delay stop()
    request_queue_size = 256
    allow_reuse_address = True


class OpenAIServer:
    """Start with `start()`, stop with `stop()`; `base_url` is the value for litellm's `api_base`."""

    def __init__(self, max_lifetime_s: float = 300.0, latency_s: float = 0.0):
        self.max_lifetime_s = max_lifetime_s
        self.latency_s = latency_s
        self._lock = threading.Lock()
        self.requests: Counter[tuple[str, str]] = Counter()
        self.bodies: list[dict] = []
        self.in_flight = 0
        self.peak_in_flight = 0
        self._in_flight_by_model: Counter[str] = Counter()
        self._peak_by_model: Counter[str] = Counter()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self._timer: threading.Timer | None = None

    @property
    def base_url(self) -> str:
        assert self._httpd is not None, "server not started"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def start(self) -> "OpenAIServer":
        self._httpd = _Server(("127.0.0.1", 0), _make_handler(self))
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        # A forgotten server must not outlive the test session by much.
        self._timer = threading.Timer(self.max_lifetime_s, self._httpd.shutdown)
        self._timer.daemon = True
        self._timer.start()
        return self

    def stop(self) -> None:
        if self._timer:
            self._timer.cancel()
        if self._httpd:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.bodies.clear()
            self.peak_in_flight = self.in_flight
            self._peak_by_model = Counter(self._in_flight_by_model)

    def count(self, model: str | None = None, prompt: str | None = None) -> int:
        with self._lock:
            return sum(
                n for (m, p), n in self.requests.items()
                if (model is None or m == model) and (prompt is None or p == prompt)
            )

    def peak(self, model: str) -> int:
        """Most requests for `model` in flight at once (handlers of earlier, abandoned calls don't count)."""
        with self._lock:
            return self._peak_by_model[model]

    # called from handler threads
    def _enter(self, model: str, prompt: str, body: dict) -> int:
        with self._lock:
            self.requests[(model, prompt)] += 1
            self.bodies.append(body)
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            self._in_flight_by_model[model] += 1
            self._peak_by_model[model] = max(self._peak_by_model[model], self._in_flight_by_model[model])
            return self.requests[(model, prompt)]

    def _leave(self, model: str) -> None:
        with self._lock:
            self.in_flight -= 1
            self._in_flight_by_model[model] -= 1


def _prompt_of(body: dict) -> str:
    messages = body.get("messages") or []
    return str(messages[-1].get("content", "")) if messages else ""


LONE_SURROGATE = "\ud800"


def _completion(model: str, prompt: str, text: str | None = None) -> dict:
    text = f"answer to: {prompt}" if text is None else text
    return {
        "id": "chatcmpl-local",
        "object": "chat.completion",
        "created": 1700000000,
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {
            "prompt_tokens": len(prompt.split()),
            "completion_tokens": len(text.split()),
            "total_tokens": len(prompt.split()) + len(text.split()),
        },
    }


def _verdict(prompt: str) -> str:
    if "judge-escaped-surrogate" in prompt:
        return '{"reasoning": "looks \\ud800 odd", "verdict": "PASS"}'
    if "judge-surrogate" in prompt:
        return f"{LONE_SURROGATE} not a verdict"
    return json.dumps({"reasoning": "polite and on topic", "verdict": "PASS"})


def _make_handler(server: OpenAIServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # keep pytest output clean
            pass

        def _send(self, status: int, payload: bytes, content_type="application/json", headers=None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(payload)

        def _json(self, status: int, obj: dict, headers=None) -> None:
            self._send(status, json.dumps(obj).encode(), headers=headers)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._json(404, {"error": {"message": f"no route {self.path}"}})
                return
            try:
                body = json.loads(raw)
            except ValueError:
                self._json(400, {"error": {"message": "request body is not JSON"}})
                return
            model, prompt = str(body.get("model", "")), _prompt_of(body)
            nth = server._enter(model, prompt, body)
            try:
                if server.latency_s:
                    time.sleep(server.latency_s)
                behaviour = prompt.split()[0] if model == "mixed" and prompt.split() else model
                self._answer(behaviour, prompt, nth)
            finally:
                server._leave(model)

        def _answer(self, model: str, prompt: str, nth: int) -> None:
            if model.startswith("flaky429-") and nth <= int(model.split("-", 1)[1]):
                self._json(429, {"error": {"message": "rate limited", "type": "rate_limit"}},
                           headers={"Retry-After": str(RETRY_AFTER_S)})
            elif model == "always500":
                self._json(500, {"error": {"message": "internal error", "type": "server_error"}})
            elif model == "unauthorized":
                auth = self.headers.get("Authorization", "")
                self._json(401, {"error": {"message": f"Incorrect API key provided: {auth}", "type": "auth"}})
            elif model == "malformed":
                self._send(200, b"<html>this is not json", content_type="application/json")
            elif model == "surrogate":
                # json.dumps escapes the surrogate as \ud800: the body is valid JSON and valid UTF-8.
                self._json(200, _completion(model, prompt, f"broken {LONE_SURROGATE} reply to: {prompt}"))
            elif model == "surrogate400":
                self._json(400, {"error": {"message": f"bad request {LONE_SURROGATE} here", "type": "invalid"}})
            elif model == "judge":
                self._json(200, _completion(model, prompt, _verdict(prompt)))
            elif model.startswith("status-"):
                status = int(model.split("-", 1)[1])
                self._json(status, {"error": {"message": f"status {status} for you", "type": "test"}},
                           headers={"Retry-After": "0"} if status == 429 else None)
            elif model == "badutf8":
                self._send(200, b'{"choices":[{"message":{"role":"assistant","content":"ab\xff\xfe"}}]}')
            elif model == "truncated":
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "500")
                self.end_headers()
                self.wfile.write(b'{"choices":[{"message":{"role":"assis')
                self.wfile.flush()
                self.close_connection = True
            elif model == "cutjson":
                self._send(200, b'{"choices":[{"message":{"role":"assis')
            elif model.startswith("chunked-"):
                payload = json.dumps(_completion(model, prompt, "y" * int(model.split("-", 1)[1]))).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for i in range(0, len(payload), 8192):
                    part = payload[i:i + 8192]
                    self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
                self.wfile.write(b"0\r\n\r\n")
            elif model == "priced":
                body = _completion("gpt-4o-mini", prompt)
                body["usage"] = {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500,
                                 "prompt_tokens_details": {"cached_tokens": 400}}
                self._json(200, body)
            elif model == "nousage":
                body = _completion(model, prompt)
                del body["usage"]
                self._json(200, body)
            elif model == "nullcontent":
                body = _completion(model, prompt)
                body["choices"][0]["message"]["content"] = None
                self._json(200, body)
            elif model.startswith("big-"):
                self._json(200, _completion(model, prompt, "x" * int(model.split("-", 1)[1])))
            else:
                if model.startswith("slow-"):
                    time.sleep(float(model.split("-", 1)[1]))
                try:
                    self._json(200, _completion(model, prompt))
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

    return Handler


@pytest.fixture(scope="module")
def openai_server():
    """A running OpenAIServer for one test module (import this fixture into the module to use it)."""
    srv = OpenAIServer(max_lifetime_s=180).start()
    try:
        yield srv
    finally:
        srv.stop()
