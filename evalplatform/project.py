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
        return self.root / "definitions.py"

    @property
    def lock_file(self) -> Path:
        return self.root / "requirements.lock"


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
