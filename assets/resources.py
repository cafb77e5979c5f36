"""The code location's resources, built once here (Definitions.merge rejects two builds of one key)."""


import os
from pathlib import Path

import dagster as dg

from evalplatform.history import HistoryStore
from evalplatform.project import Project

REPO_ROOT = Path(__file__).resolve().parents[1]
# The project whose datasets/ this code location serves: EVALPLATFORM_PROJECT when set (a team's
# own eval repo using this code location), else this repository. Partitions come from here too.
PROJECT_ROOT = Path(os.environ["EVALPLATFORM_PROJECT"]).resolve() if os.environ.get("EVALPLATFORM_PROJECT") \
    else REPO_ROOT


class EvalProject(dg.ConfigurableResource):
    """Where suites, the history DuckDB file and the response cache live."""

    root: str = str(PROJECT_ROOT)

    def project(self) -> Project:
        return Project(Path(self.root))

    def store(self) -> HistoryStore:
        return HistoryStore(self.project().history_path)

    def reading(self):
        """A block whose history reads share one connection (HistoryStore.shared_reads): a step's helpers each
        make their own store, and opening the file costs ~15 ms a time."""
        return self.store().shared_reads()


RESOURCES = {"eval_project": EvalProject()}
