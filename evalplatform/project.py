"""Where a project's suites, history and cache live (found from the working directory or the environment)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Project:
    root: Path

    @property
    def datasets_dir(self) -> Path:
        return self.root / "datasets"

    @property
    def state_dir(self) -> Path:
        env = os.environ.get("EVALPLATFORM_HOME")
        return Path(env).resolve() if env else self.root / ".evalplatform"

    @property
    def history_path(self) -> Path:
        env = os.environ.get("EVALPLATFORM_HISTORY")
        return Path(env).resolve() if env else self.state_dir / "history.duckdb"

    @property
    def cache_dir(self) -> Path:
        return self.state_dir / "cache"

    @property
    def definitions_file(self) -> Path:
        """The Dagster code location serving this project's suites (see code_location_root)."""
        root = code_location_root(self)
        return (root or self.root) / "definitions.py"

    @property
    def lock_file(self) -> Path:
        return self.root / "requirements.lock"


CODE_LOCATION_ENV = "EVALPLATFORM_CODE_LOCATION"


def code_location_root(project: Project | None = None) -> Path | None:
    """The folder holding the Dagster code location (definitions.py, assets/, sensors/), or None.

    A project folder of its own (EVALPLATFORM_PROJECT: a team's eval repo with only datasets/) is
    served by evalplatform's code location, which is not installed into site-packages: it is found
    from EVALPLATFORM_CODE_LOCATION, the project itself, or the checkout this package runs from.
    """
    env = os.environ.get(CODE_LOCATION_ENV)
    if env:
        return Path(env).resolve()
    candidates = ([project.root] if project is not None else []) + [Path(__file__).resolve().parents[1]]
    for root in candidates:
        if (root / "definitions.py").is_file() and (root / "sensors").is_dir():
            return root
    return None


def find_project(start: Path | None = None) -> Project:
    """EVALPLATFORM_PROJECT, else the nearest folder upward holding workspace.yaml or datasets/."""
    env = os.environ.get("EVALPLATFORM_PROJECT")
    if env:
        return Project(Path(env).resolve())
    here = (start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        if (d / "workspace.yaml").is_file() or (d / "datasets").is_dir():
            return Project(d)
    return Project(here)
