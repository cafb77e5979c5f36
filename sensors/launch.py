"""The in-process launcher: one RunRequest through its suite's job, in this process, against DAGSTER_HOME's instance.

`evalplatform run` (Dagster engine) starts it as a program, `python -m sensors.launch --out FILE`, with the
RunRequest as JSON on stdin, and reads back a RunOutcome from FILE: the library never imports the code
location, and errors keep their file, field and fix across the boundary (as ErrorRecord).
"""


import argparse
import datetime as dt
import os
import sys
import warnings
from pathlib import Path

from evalplatform.errors import EvalPlatformError, InfraError, InputError
from evalplatform.request import ErrorRecord, RunOutcome, RunRequest


def _step_error(result) -> EvalPlatformError | None:
    """The first failed step's error: our typed record when the step carried one, else the failure in one line."""
    from assets.suite_assets import error_from_failure_metadata

    for event in result.all_events:
        if event.event_type_value != "STEP_FAILURE":
            continue
        data = event.step_failure_data
        if data.user_failure_data is not None:
            err = error_from_failure_metadata(dict(data.user_failure_data.metadata or {}))
            if err is not None:
                return err
        info = data.error
        names = []
        while info is not None:
            names.append(info.cls_name or "")
            if info.cls_name == "DagsterAssetCheckFailedError":
                break  # a blocking gate failed: a decision, not an error
            info = info.cause
        if "DagsterAssetCheckFailedError" in names:
            continue
        text = (data.error.message or "").strip().splitlines() if data.error else []
        return InfraError(f"step {event.step_key} failed: {text[-1] if text else 'no message'}")
    return None


def launch(defs, request: RunRequest, instance) -> RunOutcome:
    """Execute the request's job in-process; the outcome names the history's run or carries the error."""
    from assets.config import run_config_for
    from assets.suite_assets import TIERS

    suites = {}
    for job in defs.jobs or []:
        tags = getattr(job, "tags", None) or {}
        if tags.get("suite") and tags.get("tier") in TIERS:
            suites[(tags["suite"], tags["tier"])] = job.name
    job_name = suites.get((request.suite, request.tier))
    if job_name is None:
        known = sorted({s for s, _ in suites})
        raise InputError(None, "--suite", f"{request.suite!r} is not a suite of this code location "
                         f"({', '.join(known) or 'none'})", "put it under datasets/NAME/suite.yaml, or use --engine direct")
    job = defs.resolve_job_def(job_name)
    op_name = f"{request.suite.replace('-', '_')}__{request.tier}_run"
    run_config = {
        **run_config_for(op_name, request.options()),
        # The CLI prints its own summary; Dagster's event log stays complete in the instance (and the UI).
        "loggers": {"console": {"config": {"log_level": os.environ.get("EVALPLATFORM_DAGSTER_LOG_LEVEL", "CRITICAL")}}},
    }
    tags = {"suite": request.suite, "tier": request.tier, "evalplatform/cli": "run",
            "started": dt.datetime.now(dt.timezone.utc).isoformat()}
    if request.model:
        tags["model"] = request.model
    result = job.execute_in_process(run_config=run_config, instance=instance, raise_on_error=False, tags=tags)
    err = _step_error(result)
    if err is not None:
        return RunOutcome(dagster_run_id=result.run_id, error=ErrorRecord.of(err))
    run_key = f"{request.suite}/{request.tier}_run"
    mats = [e for e in result.all_events if e.event_type_value == "ASSET_MATERIALIZATION"
            and e.asset_key.to_user_string() == run_key]
    if not mats:
        return RunOutcome(dagster_run_id=result.run_id, error=ErrorRecord.of(
            InfraError(f"dagster run {result.run_id} produced no scored run")))
    run_id = mats[-1].event_specific_data.materialization.metadata["history_run_id"].value
    return RunOutcome(run_id=run_id, dagster_run_id=result.run_id)


def _terminal_progress() -> None:
    """Dagster redirects file descriptor 2 into its compute logs inside a step: keep the terminal for the bar."""
    if not sys.stderr.isatty():
        return
    from evalplatform import pipeline
    from evalplatform.progress import Progress

    terminal = os.fdopen(os.dup(sys.stderr.fileno()), "w", buffering=1)
    pipeline.DEFAULT_PROGRESS = lambda total: Progress(total, stream=terminal)


def launch_request(request: RunRequest) -> RunOutcome:
    """The request through its job against the CLI's instance, in this process; errors come back in the outcome."""
    try:
        _terminal_progress()
        from sensors.instance import cli_instance

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*is currently in (beta|preview).*")
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            from definitions import defs

            with cli_instance() as instance:
                return launch(defs, request, instance)
    except EvalPlatformError as err:
        return RunOutcome(error=ErrorRecord.of(err))
    except Exception as exc:  # one line for the caller, never a traceback it cannot place
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return RunOutcome(error=ErrorRecord(kind="infra", message=f"launcher failed: {type(exc).__name__}: {first}"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sensors.launch", description=__doc__)
    parser.add_argument("--out", required=True, help="file to write the RunOutcome (JSON) to")
    args = parser.parse_args(argv)
    out = Path(args.out)
    try:
        request = RunRequest.model_validate_json(sys.stdin.read())
    except ValueError as exc:
        outcome = RunOutcome(error=ErrorRecord(kind="infra", message=f"launcher got no valid request: {exc}"))
    else:
        outcome = launch_request(request)
    out.write_text(outcome.model_dump_json(), encoding="utf-8")
    return 0


if __name__ == "__main__":
    # Leave without the interpreter's teardown of Dagster and the rest (~0.8 s, and DuckDB's bindings report
    # their module-level objects as "leaked" on the way out): output flushed, exit code kept.
    from evalplatform.cli import _exit_now

    code = main()
    _exit_now(code)
    sys.exit(code)
