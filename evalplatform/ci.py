"""CI's entry point to a running Dagster deployment: launch the tier's job over GraphQL, wait, read the gates.

Launch and status go through dagster-graphql's client; the reads it has no method for (check
evaluations, runs by tag, re-execution) through the gql client it is built on, with the same
transport settings. Reads are idempotent and retried on timeouts and dropped connections; a launch
carries a client-generated key (a run tag), so a launch retried after a lost answer finds the run
it already started instead of starting a second one. Time comes from an injectable clock.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Protocol
from urllib.parse import urlsplit

from evalplatform.errors import InfraError, InputError
from evalplatform.models.redact import redact

if TYPE_CHECKING:
    from evalplatform.request import RunRequest

LOCATION = "evalplatform"
REPOSITORY = "__repository__"
TERMINAL = ("SUCCESS", "FAILURE", "CANCELED")
LAUNCH_KEY_TAG = "evalplatform/launch_key"
TOKEN_ENV = "EVALPLATFORM_DAGSTER_TOKEN"

_REEXECUTE = """mutation($p: ReexecutionParams!) { launchRunReexecution(reexecutionParams: $p) { __typename
  ... on LaunchRunSuccess { run { runId } }
  ... on PythonError { message } } }"""

_RUNS_BY_TAG = """query($key: String!, $value: String!) {
  runsOrError(filter: {tags: [{key: $key, value: $value}]}) { __typename
    ... on Runs { results { runId } } ... on PythonError { message } } }"""

_LOGS = """query($id: ID!, $after: String) { logsForRun(runId: $id, afterCursor: $after) { __typename
  ... on EventConnection { cursor hasMore events { __typename
    ... on AssetCheckEvaluationEvent { evaluation { checkName success severity description metadataEntries { label
        ... on FloatMetadataEntry { floatValue } ... on IntMetadataEntry { intValue }
        ... on TextMetadataEntry { text } ... on BoolMetadataEntry { boolValue }
        ... on JsonMetadataEntry { jsonString } ... on MarkdownMetadataEntry { mdStr } } } }
    ... on ExecutionStepFailureEvent { stepKey error { message className cause { message className } }
        failureMetadata { metadataEntries { label ... on JsonMetadataEntry { jsonString } } } } } }
  ... on PythonError { message } } }"""


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


@dataclass
class GateOutcome:
    name: str
    passed: bool
    severity: str
    metadata: dict = field(default_factory=dict)
    description: str = ""


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


class Transient(Exception):
    """A request that may succeed when sent again: a timeout, a dropped connection, a 5xx."""


def _classify(exc: BaseException, url: str) -> Exception:
    """A failed request as Transient (retry it) or as the InfraError / InputError the CLI reports."""
    import requests
    from gql.transport.exceptions import TransportServerError

    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, (requests.exceptions.Timeout, requests.exceptions.ConnectionError, TimeoutError,
                              ConnectionError)):
            return Transient(f"cannot reach the Dagster server ({type(cause).__name__})")
        if isinstance(cause, TransportServerError):
            code = getattr(cause, "code", None)
            if code in (401, 403):
                return InfraError(f"{url}: HTTP {code}: the Dagster server refused the credentials "
                                  f"(set {TOKEN_ENV} to a valid token)")
            if code is not None and code >= 500:
                return Transient(f"HTTP {code} from the Dagster server")
            return InfraError(f"{url}: HTTP {code} from the Dagster server")
        cause = cause.__cause__ or cause.__context__
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return InfraError(f"{url}: GraphQL request failed: {redact(first)[:300]}")


class DagsterCiClient:
    """Launch, wait and read gates on a Dagster webserver (or Dagster+ behind a token).

    Args:
        url: the webserver, e.g. http://127.0.0.1:3000 (a path prefix is kept).
        token: a bearer token; default: $EVALPLATFORM_DAGSTER_TOKEN. Never logged.
        timeout_s: per request.
        attempts: how often an idempotent request (or a keyed launch) is sent before giving up.
        clock: time source for backoff and waiting (tests inject one).
    """

    def __init__(self, url: str, *, token: str | None = None, timeout_s: float = 30.0, attempts: int = 5,
                 clock: Clock | None = None):
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InputError(None, "--url", f"not an http(s) URL: {redact(url)!r}", "e.g. http://127.0.0.1:3000")
        self.url = redact(url.rstrip("/"))
        self.graphql_url = f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}/graphql"
        token = token if token is not None else os.environ.get(TOKEN_ENV)
        headers = {"Authorization": f"Bearer {token}"} if token else None
        from dagster_graphql import DagsterGraphQLClient
        from gql import Client
        from gql.transport.requests import RequestsHTTPTransport

        self._dagster = DagsterGraphQLClient(parts.hostname, port_number=parts.port, use_https=parts.scheme == "https",
                                             timeout=max(1, int(timeout_s)), headers=headers,
                                             path_prefix=parts.path.rstrip("/"))
        self._gql = Client(transport=RequestsHTTPTransport(url=self.graphql_url, use_json=True, timeout=timeout_s,
                                                           headers=headers, retries=0))
        self.attempts = max(1, attempts)
        self.clock: Clock = clock or SystemClock()
        # (request, attempt, outcome) for every request sent: what tests and debugging read.
        self.attempt_log: list[dict[str, Any]] = []

    # -- transport ---------------------------------------------------------------------------

    def _send(self, name: str, fn: Callable[[], Any], on_transient: Callable[[], Any] | None = None) -> Any:
        """Send a request, retrying transient failures with backoff; `on_transient` may find a result instead."""
        delay = 0.5
        for attempt in range(1, self.attempts + 1):
            try:
                out = fn()
                self.attempt_log.append({"request": name, "attempt": attempt, "outcome": "ok"})
                return out
            except (InfraError, InputError):
                raise
            except Exception as exc:  # transport and GraphQL client failures, classified below
                err = exc if isinstance(exc, Transient) else _classify(exc, self.url)
                if not isinstance(err, Transient):
                    self.attempt_log.append({"request": name, "attempt": attempt, "outcome": str(err)})
                    raise err from None
                self.attempt_log.append({"request": name, "attempt": attempt, "outcome": f"transient: {err}"})
                if on_transient is not None:
                    found = on_transient()
                    if found is not None:
                        self.attempt_log.append({"request": name, "attempt": attempt, "outcome": "found"})
                        return found
                if attempt == self.attempts:
                    raise InfraError(f"{self.url}: {err} after {attempt} attempts") from None
                self.clock.sleep(delay)
                delay = min(delay * 2, 8.0)
        raise AssertionError("unreachable")

    def _query(self, query: str, variables: dict[str, Any]) -> dict:
        from gql import gql

        return self._gql.execute(gql(query), variable_values=variables)

    # -- operations --------------------------------------------------------------------------

    def launch(self, job: str, partition: str | None, run_config: dict, tags: dict[str, str]) -> str:
        """Launch `job` once: a retry after a lost answer returns the run the first attempt started."""
        from dagster_graphql import DagsterGraphQLClientError

        key = uuid.uuid4().hex
        all_tags = {**tags, LAUNCH_KEY_TAG: key, **({"dagster/partition": partition} if partition else {})}

        def submit() -> str:
            try:
                return self._dagster.submit_job_execution(job, repository_location_name=LOCATION,
                                                          repository_name=REPOSITORY, run_config=run_config,
                                                          tags=all_tags)
            except DagsterGraphQLClientError as exc:
                kind = exc.args[0] if exc.args else ""
                body = exc.args[1] if len(exc.args) > 1 else getattr(exc, "body", None)
                if kind in ("RunConfigValidationInvalid", "PipelineConfigValidationInvalid"):
                    messages = "; ".join(e.get("message", "") for e in body or []) if isinstance(body, list) else body
                    raise InputError(None, "run config", f"the server refused the run config: {messages}"[:400],
                                     "is the server running this checkout's code location?") from None
                if kind in ("PipelineNotFoundError", "JobNotFoundError", "InvalidSubsetError"):
                    raise InputError(None, "--url", f"{self.url} has no job {job!r} in location {LOCATION!r}: "
                                     f"{body or kind}") from None
                if kind == "UnauthorizedError":
                    raise InfraError(f"{self.url}: not authorised to launch runs ({body})") from None
                if kind and kind.endswith("Error") and exc.__cause__ is None:
                    raise InfraError(f"{self.url}: launch failed: {kind}: {str(body or '')[:300]}") from None
                raise

        return self._send("launch", submit, on_transient=lambda: self.find_by_launch_key(key))

    def find_by_launch_key(self, key: str) -> str | None:
        """The run a launch with this key started, if the server has one."""
        out = self._send("runs by launch key",
                         lambda: self._query(_RUNS_BY_TAG, {"key": LAUNCH_KEY_TAG, "value": key})["runsOrError"])
        if out.get("__typename") != "Runs":
            raise InfraError(f"{self.url}: cannot list runs: {out.get('message', out.get('__typename'))}")
        results = out.get("results") or []
        return results[0]["runId"] if results else None

    def reexecute(self, parent_run_id: str, strategy: str = "ALL_STEPS") -> str:
        out = self._send("re-execute", lambda: self._query(
            _REEXECUTE, {"p": {"parentRunId": parent_run_id, "strategy": strategy}})["launchRunReexecution"])
        if out["__typename"] != "LaunchRunSuccess":
            raise InfraError(f"re-execution failed: {out['__typename']}: {(out.get('message') or '')[:300]}")
        return out["run"]["runId"]

    def status(self, run_id: str) -> str:
        from dagster_graphql import DagsterGraphQLClientError

        def read() -> str:
            try:
                return self._dagster.get_run_status(run_id).value
            except DagsterGraphQLClientError as exc:
                if exc.__cause__ is None:
                    raise InfraError(f"run {run_id}: {exc.args[0] if exc.args else exc}: "
                                     f"{exc.args[1] if len(exc.args) > 1 else ''}".strip()) from None
                raise

        return self._send("status", read)

    def wait(self, run_id: str, timeout_s: float, poll_s: float = 0.5) -> str:
        deadline = self.clock.monotonic() + timeout_s
        while True:
            status = self.status(run_id)
            if status in TERMINAL:
                return status
            if self.clock.monotonic() > deadline:
                raise InfraError(f"run {run_id} still {status} after {timeout_s:.0f} s"
                                 + (" (queued runs need the dagster daemon: use `dagster dev`)"
                                    if status == "QUEUED" else ""))
            self.clock.sleep(poll_s)

    def outcomes(self, run_id: str) -> tuple[list[GateOutcome], list[dict]]:
        gates, failures, cursor = [], [], None
        for _ in range(1000):  # bounded pagination
            out = self._send("events", lambda: self._query(_LOGS, {"id": run_id, "after": cursor})["logsForRun"])
            if out["__typename"] != "EventConnection":
                raise InfraError(f"run {run_id}: cannot read its events: {out.get('message', '')}")
            for e in out["events"]:
                if e["__typename"] == "AssetCheckEvaluationEvent":
                    ev = e["evaluation"]
                    meta = {m["label"]: next((v for k, v in m.items() if k != "label"), None)
                            for m in ev["metadataEntries"]}
                    if meta.get("applies") is False:
                        continue  # a rule of another suite's policy: not a gate of this run
                    gates.append(GateOutcome(ev["checkName"], ev["success"], ev["severity"], meta,
                                             ev.get("description") or ""))
                elif e["__typename"] == "ExecutionStepFailureEvent":
                    entries = ((e.get("failureMetadata") or {}).get("metadataEntries")) or []
                    record = next((m.get("jsonString") for m in entries if m["label"] == "evalplatform_error"), None)
                    failures.append({"step": e["stepKey"], "record": record, **(e.get("error") or {})})
            cursor = out["cursor"]
            if not out["hasMore"]:
                break
        return gates, failures


def job_name(suite: str, tier: str) -> str:
    """The code location's job for a suite's tier (see assets/suite_assets.py)."""
    return f"{suite.replace('-', '_')}_{tier}"


def submit_and_wait(url: str, request: "RunRequest", *, timeout_s: float, tags: dict[str, str] | None = None,
                    client: DagsterCiClient | None = None) -> CiResult:
    """Launch the request's job with its options as the scored run's config, wait, read the gates."""
    client = client or DagsterCiClient(url)
    op = f"{request.suite.replace('-', '_')}__{request.tier}_run"
    run_config = {"ops": {op: {"config": request.options().model_dump(mode="json")}}}
    t0 = client.clock.monotonic()
    run_id = client.launch(job_name(request.suite, request.tier), None, run_config,
                           {"suite": request.suite, "tier": request.tier, **(tags or {})})
    status = client.wait(run_id, timeout_s)
    gates, failures = client.outcomes(run_id)
    return CiResult(run_id, status, gates, failures, client.clock.monotonic() - t0)


def user_error(failures: list[dict]) -> Exception | None:
    """A failed step's error as the InputError / InfraError it was (file, field and fix kept), so the exit code
    and the one line match the in-process run; a failed gate is not an error."""
    from evalplatform.request import ErrorRecord

    for f in failures:
        if f.get("record"):
            return ErrorRecord.model_validate_json(f["record"]).error()
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
