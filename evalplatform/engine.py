"""Runs the PR job of the project's Dagster code location in-process (the code location imports Dagster; we don't)."""

from __future__ import annotations

import importlib
import sys
import warnings

from evalplatform.errors import InfraError, InputError
from evalplatform.pipeline import RunOptions
from evalplatform.project import CODE_LOCATION_ENV, Project, code_location_root


def run_with_dagster(project: Project, opts: RunOptions) -> tuple[str, str]:
    """Materialize dataset -> scored run -> gate -> baseline in-process; returns (run_id, dagster run id).

    Errors raised inside the job come back as the same InputError / InfraError the direct path raises.
    """
    location = code_location_root(project)
    if location is None:
        raise InputError(None, "--engine", f"no Dagster code location (definitions.py) found for {project.root}",
                         f"set {CODE_LOCATION_ENV} to the evalplatform checkout, or use --engine direct")
    root = str(location)
    if root not in sys.path:
        sys.path.insert(0, root)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*is currently in (beta|preview).*")
            jobs = importlib.import_module("sensors.jobs")
    except ImportError as exc:
        raise InfraError(f"{project.definitions_file}: cannot load the code location: {exc}") from None
    with warnings.catch_warnings():
        # Dagster flags data_version and friends as beta on every run; the CLI's output is the summary.
        warnings.filterwarnings("ignore", message=".*is currently in beta.*")
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        return jobs.run_pr_job_in_process(project, opts)
