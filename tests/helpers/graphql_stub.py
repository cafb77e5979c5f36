"""A stub Dagster GraphQL server on 127.0.0.1 that can lose answers: for the CI client's retry and idempotency tests.

It answers the few operations the client sends (launch, run status, runs by tag, run events) from an
in-memory list of runs. `slow` maps an operation name to how many of its next requests answer only
after `delay_s` (longer than the client's timeout: the request is lost, though a launch still happens).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class GraphQLStub:
    def __init__(self, delay_s: float = 1.5):
        self.delay_s = delay_s
        self.runs: list[dict] = []
        self.requests: list[str] = []
        self.slow: dict[str, int] = {}
        self.statuses: list[str] = ["SUCCESS"]
        self.headers: list[dict] = []
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                reply, delay = stub.answer(body, dict(self.headers))
                if delay:
                    time.sleep(delay)
                data = json.dumps({"data": reply}).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up on this one
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "GraphQLStub":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _delay(self, op: str) -> float:
        if self.slow.get(op, 0) > 0:
            self.slow[op] -= 1
            return self.delay_s
        return 0.0

    def answer(self, body: dict, headers: dict) -> tuple[dict, float]:
        query, variables = body.get("query", ""), body.get("variables") or {}
        with self._lock:
            self.headers.append(headers)
            if "launchPipelineExecution" in query:
                self.requests.append("launch")
                params = variables["executionParams"]
                tags = {t["key"]: t["value"] for t in params.get("executionMetadata", {}).get("tags", [])}
                run = {"runId": uuid.uuid4().hex, "tags": tags, "config": params.get("runConfigData"),
                       "job": params["selector"].get("pipelineName")}
                self.runs.append(run)
                return {"launchPipelineExecution": {"__typename": "LaunchRunSuccess",
                                                    "run": {"runId": run["runId"]}}}, self._delay("launch")
            if "pipelineRunOrError" in query:
                self.requests.append("status")
                status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
                return {"pipelineRunOrError": {"__typename": "Run", "status": status}}, self._delay("status")
            if "runsOrError" in query:
                self.requests.append("runs")
                found = [{"runId": r["runId"]} for r in self.runs if r["tags"].get(variables["key"]) == variables["value"]]
                return {"runsOrError": {"__typename": "Runs", "results": found}}, self._delay("runs")
            if "logsForRun" in query:
                self.requests.append("events")
                return {"logsForRun": {"__typename": "EventConnection", "cursor": "1", "hasMore": False,
                                       "events": []}}, self._delay("events")
        raise AssertionError(f"unexpected query: {query[:80]}")
