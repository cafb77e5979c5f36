"""The code location's resources, built once here (Definitions.merge rejects two builds of one key)."""


from pathlib import Path

import dagster as dg

from evalplatform.history import HistoryStore
from evalplatform.project import Project, find_project

REPO_ROOT = Path(__file__).resolve().parents[1]


class EvalProject(dg.ConfigurableResource):
    """Where suites, the history DuckDB file and the response cache live."""

    root: str = str(REPO_ROOT)

    def project(self) -> Project:
        return find_project(Path(self.root)) if self.root else find_project()

    def store(self) -> HistoryStore:
        return HistoryStore(self.project().history_path)


RESOURCES = {"eval_project": EvalProject()}
