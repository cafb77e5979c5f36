"""Runs a RunRequest through the project's Dagster code location, as a program of its own.

The library never imports the code location (definitions.py, assets/, sensors/): it starts the code
location's launcher (`python -m sensors.launch`) with the request as JSON and reads back a RunOutcome, the
way it would talk to any other program. The launcher executes the suite's job in-process against
DAGSTER_HOME's instance; errors come back typed, keeping their file, field and fix.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable

from evalplatform.errors import InfraError, InputError
from evalplatform.project import CODE_LOCATION_ENV, Project, code_location_root
from evalplatform.request import RunOutcome, RunRequest

# A hang guard only (a run's own calls have their timeouts): EVALPLATFORM_RUN_TIMEOUT_S overrides it.
DEFAULT_RUN_TIMEOUT_S = 6 * 3600.0

# Set by the code location's warm launcher (sensors/launch_server.py) in the process it forked for one command:
# the request's job then runs in this very process instead of a launcher program of its own.
IN_PROCESS_LAUNCHER: Callable[[RunRequest], RunOutcome] | None = None


def run_timeout_s() -> float:
    return float(os.environ.get("EVALPLATFORM_RUN_TIMEOUT_S", DEFAULT_RUN_TIMEOUT_S))


def run_with_dagster(project: Project, request: RunRequest) -> RunOutcome:
    """Materialize the suite's tier job (cases -> scored run -> checks -> baseline); returns the outcome.

    Raises the InputError / InfraError the run raised inside Dagster (rebuilt from its record).
    """
    if IN_PROCESS_LAUNCHER is not None:
        outcome = IN_PROCESS_LAUNCHER(request)
        if outcome.error is not None:
            raise outcome.error.error()
        return outcome
    location = code_location_root(project)
    if location is None:
        raise InputError(None, "--engine", f"no Dagster code location (definitions.py) found for {project.root}",
                         f"set {CODE_LOCATION_ENV} to the evalplatform checkout, or use --engine direct")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(location), env.get("PYTHONPATH")]))
    env["EVALPLATFORM_PROJECT"] = str(project.root)
    timeout = run_timeout_s()
    with tempfile.TemporaryDirectory(prefix="evalplatform-launch-") as tmp:
        out = Path(tmp) / "outcome.json"
        try:
            proc = subprocess.run([sys.executable, "-m", "sensors.launch", "--out", str(out)],
                                  input=request.model_dump_json(), text=True, cwd=location, env=env,
                                  timeout=timeout)
        except subprocess.TimeoutExpired:
            raise InfraError(f"the Dagster launcher did not finish within {timeout:g} s "
                             "(EVALPLATFORM_RUN_TIMEOUT_S)") from None
        if not out.is_file():
            raise InfraError(f"the Dagster launcher ({location}/sensors/launch.py) exited {proc.returncode} "
                             "without an outcome")
        outcome = RunOutcome.model_validate_json(out.read_text(encoding="utf-8"))
    if outcome.error is not None:
        raise outcome.error.error()
    return outcome
