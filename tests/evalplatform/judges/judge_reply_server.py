"""A real OpenAI-compatible HTTP server on 127.0.0.1 that answers like a judge, scripted by the model name.

tests/helpers/openai_server.py only echoes prompts; judges need structured replies. Models:
  keyword        reads the nonce the prompt states, extracts the RESPONSE block with it, and answers
                 {"reasoning", "verdict"}: FAIL when the block contains "bad", else PASS
  verdict-first  valid fields, but the verdict before the reasoning
  prose          the bare word PASS (what an injected instruction would make a naive judge say)
  not-json       {"reasoning": ... truncated
  first-wins     pairwise: always prefers A (pure position bias)
  fair           pairwise: prefers the block containing "better"
Request bodies are kept in `bodies` so tests can inspect exactly what the judge was sent.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

NONCE = re.compile(r"use nonce ([0-9a-f]+)\.")


def block(text: str, tag: str) -> str | None:
    m = NONCE.search(text)
    if not m:
        return None
    n = re.escape(m.group(1))
    found = re.search(rf"<<<{tag}-{n}\n(.*?)\n{tag}-{n}>>>", text, re.DOTALL)
    return found.group(1) if found else None


def reply_for(model: str, user: str) -> str:
    if model == "keyword":
        resp = block(user, "RESPONSE")
        if resp is None:
            return "no fenced response found"
        verdict = "FAIL" if "bad" in resp else "PASS"
        return json.dumps({"reasoning": f"graded {len(resp)} characters of fenced response", "verdict": verdict})
    if model == "verdict-first":
        return json.dumps({"verdict": "PASS", "reasoning": "decided first"})
    if model == "prose":
        return "PASS"
    if model == "not-json":
        return '{"reasoning": "cut off'
    if model == "first-wins":
        return json.dumps({"reasoning": "A reads better", "winner": "A"})
    if model == "fair":
        a = block(user, "A") or ""
        return json.dumps({"reasoning": "compared", "winner": "A" if "better" in a else "B"})
    return json.dumps({"reasoning": "default", "verdict": "PASS"})


class JudgeReplyServer:
    def __init__(self):
        self.bodies: list[dict] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                with server._lock:
                    server.bodies.append(body)
                model = str(body.get("model", ""))
                user = next((m["content"] for m in reversed(body["messages"]) if m["role"] == "user"), "")
                text = reply_for(model, user)
                payload = json.dumps({
                    "id": "chatcmpl-judge", "object": "chat.completion", "created": 1700000000, "model": model,
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                 "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
                }).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def start(self) -> "JudgeReplyServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@pytest.fixture(scope="module")
def judge_server():
    srv = JudgeReplyServer().start()
    try:
        yield srv
    finally:
        srv.stop()
