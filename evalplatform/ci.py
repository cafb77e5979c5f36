"""CI's entry point to a running Dagster deployment: submit the PR job over GraphQL, wait, read the gates."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

from evalplatform.errors import InfraError, InputError

LOCATION = "evalplatform"
REPOSITORY = "__repository__"
TERMINAL = ("SUCCESS", "FAILURE", "CANCELED")

_LAUNCH = """mutation($p: ExecutionParams!) { launchRun(executionParams: $p) { __typename
  ... on LaunchRunSuccess { run { runId } }
  ... on PythonError { message }
  ... on RunConfigValidationInvalid { errors { message } }
  ... on InvalidSubsetError { message }
  ... on PipelineNotFoundError { message }
  ... on UnauthorizedError { message } } }"""

_REEXECUTE = """mutation($p: ReexecutionParams!) { launchRunReexecution(reexecutionParams: $p) { __typename
  ... on LaunchRunSuccess { run { runId } }
  ... on PythonError { message } } }"""

_STATUS = "query($id: ID!) { runOrError(runId: $id) { __typename ... on Run { status } ... on PythonError { message } } }"

_LOGS = """query($id: ID!, $after: String) { logsForRun(runId: $id, afterCursor: $after) { __typename
  ... on EventConnection { cursor hasMore events { __typename
    ... on AssetCheckEvaluationEvent { evaluation { checkName success severity metadataEntries { label
        ... on FloatMetadataEntry { floatValue } ... on IntMetadataEntry { intValue }
        ... on TextMetadataEntry { text } ... on BoolMetadataEntry { boolValue } } } }
    ... on ExecutionStepFailureEvent { stepKey error { message className cause { message className } } } } }
  ... on PythonError { message } } }"""


@dataclass
class GateOutcome:
    name: str
    passed: bool
    severity: str
    metadata: dict = field(default_factory=dict)


@dataclass
class CiResult:
    run_id: str
    status: str
    gates: list[GateOutcome]
    failures: list[dict]
    elapsed_s: float

    @property
    def blocking_failed(self) -> list[GateOutcome]:
        return [g for g in self.gates if not g.passed and g.severity == "ERROR"]


class DagsterClient:
    """Minimal GraphQL client (stdlib only): the CLI must not need Dagster installed to call a server."""

    def __init__(self, url: str, timeout_s: float = 30.0):
        self.url = url.rstrip("/") + "/graphql"
        self.timeout_s = timeout_s

    def query(self, query: str, variables: dict | None = None) -> dict:
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        req = urllib.request.Request(self.url, data=body, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                doc = json.load(resp)
        except urllib.error.HTTPError as exc:
            detail = ""
            try:
                detail = json.load(exc).get("errors", [{}])[0].get("message", "")[:300]
            except (ValueError, AttributeError, IndexError, OSError):
                pass
            raise InfraError(f"{self.url}: HTTP {exc.code} from the Dagster server {detail}".strip()) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            raise InfraError(f"{self.url}: cannot reach the Dagster server ({reason})") from None
        except ValueError:
            raise InfraError(f"{self.url}: the server did not answer with JSON") from None
        if doc.get("errors"):
            raise InfraError(f"{self.url}: GraphQL error: {doc['errors'][0].get('message', '')[:300]}")
        return doc["data"]

    def launch(self, job: str, partition: str, run_config: dict, tags: dict[str, str]) -> str:
        params = {
            "selector": {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY, "jobName": job},
            "runConfigData": run_config,
            "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in
                                           {"dagster/partition": partition, **tags}.items()]},
        }
        out = self.query(_LAUNCH, {"p": params})["launchRun"]
        kind = out["__typename"]
        if kind == "LaunchRunSuccess":
            return out["run"]["runId"]
        if kind == "RunConfigValidationInvalid":
            raise InputError(None, "run config", "; ".join(e["message"] for e in out["errors"])[:400])
        if kind in ("PipelineNotFoundError", "InvalidSubsetError"):
            raise InputError(None, "--job", out.get("message", kind))
        raise InfraError(f"launch failed: {kind}: {(out.get('message') or '')[:300]}")

    def reexecute(self, parent_run_id: str, strategy: str = "ALL_STEPS") -> str:
        out = self.query(_REEXECUTE, {"p": {"parentRunId": parent_run_id, "strategy": strategy}})
        out = out["launchRunReexecution"]
        if out["__typename"] != "LaunchRunSuccess":
            raise InfraError(f"re-execution failed: {out['__typename']}: {(out.get('message') or '')[:300]}")
        return out["run"]["runId"]

    def wait(self, run_id: str, timeout_s: float, poll_s: float = 0.5) -> str:
        deadline = time.monotonic() + timeout_s
        while True:
            out = self.query(_STATUS, {"id": run_id})["runOrError"]
            status = out.get("status")
            if status is None:
                raise InfraError(f"run {run_id}: {out['__typename']}: {out.get('message', '')}")
            if status in TERMINAL:
                return status
            if time.monotonic() > deadline:
                raise InfraError(f"run {run_id} still {status} after {timeout_s:.0f} s"
                                 + (" (queued runs need the dagster daemon: use `dagster dev`)" if status == "QUEUED" else ""))
            time.sleep(poll_s)

    def outcomes(self, run_id: str) -> tuple[list[GateOutcome], list[dict]]:
        gates, failures, cursor = [], [], None
        for _ in range(1000):  # bounded pagination
            out = self.query(_LOGS, {"id": run_id, "after": cursor})["logsForRun"]
            if out["__typename"] != "EventConnection":
                raise InfraError(f"run {run_id}: cannot read its events: {out.get('message', '')}")
            for e in out["events"]:
                if e["__typename"] == "AssetCheckEvaluationEvent":
                    ev = e["evaluation"]
                    meta = {m["label"]: next((v for k, v in m.items() if k != "label"), None)
                            for m in ev["metadataEntries"]}
                    if meta.get("applies") is False:
                        continue  # a rule of another suite's policy: not a gate of this run
                    gates.append(GateOutcome(ev["checkName"], ev["success"], ev["severity"], meta))
                elif e["__typename"] == "ExecutionStepFailureEvent":
                    failures.append({"step": e["stepKey"], **(e.get("error") or {})})
            cursor = out["cursor"]
            if not out["hasMore"]:
                break
        return gates, failures


def submit_and_wait(url: str, suite: str, *, tier: str, model: str | None, timeout_s: float,
                    tags: dict[str, str] | None = None) -> CiResult:
    client = DagsterClient(url)
    job = "nightly_eval_job" if tier == "nightly" else "pr_eval_job"
    t0 = time.monotonic()
    run_config = {"ops": {"scored_run": {"config": {"tier": tier, "model": model}}}}
    run_id = client.launch(job, suite, run_config, {"tier": tier, **(tags or {})})
    status = client.wait(run_id, timeout_s)
    gates, failures = client.outcomes(run_id)
    return CiResult(run_id, status, gates, failures, time.monotonic() - t0)


def user_error(failures: list[dict]) -> Exception | None:
    """A failed step whose cause is our InputError / InfraError, as that error (so the exit code matches)."""
    for f in failures:
        err = f
        while err:
            name = err.get("className") or ""
            text = (err.get("message") or "").strip().splitlines()
            line = text[-1] if text else ""
            if ": " in line and line.split(": ", 1)[0].endswith(name):
                line = line.split(": ", 1)[1]
            if name == "InputError":
                return InputError(None, None, line)
            if name == "InfraError":
                return InfraError(line)
            if name == "DagsterAssetCheckFailedError":
                break
            err = err.get("cause")
    return None
