"""Which judges a project uses: the judge scorers of its suites, keyed by judge name."""

from __future__ import annotations

from evalplatform.errors import InputError
from evalplatform.judges.llm_judge import JudgeScorerBase
from evalplatform.project import Project
from evalplatform.suite import LoadedSuite, load_suite


def judges_in_suite(suite: LoadedSuite) -> list[JudgeScorerBase]:
    return [s for s in suite.spec.scorers if isinstance(s, JudgeScorerBase)]


def project_suites(project: Project) -> list[LoadedSuite]:
    return [load_suite(p) for p in sorted(project.datasets_dir.glob("*/suite.yaml"))]


def project_judges(project: Project, suite: str | None = None) -> list[tuple[str, JudgeScorerBase]]:
    """(suite name, judge scorer) for every judge of the project's suites (or of one suite)."""
    suites = project_suites(project)
    if suite is not None:
        suites = [s for s in suites if s.name == suite]
        if not suites:
            raise InputError(None, "--suite", f"no suite named {suite!r} under {project.datasets_dir}",
                             "see datasets/*/suite.yaml")
    return [(s.name, j) for s in suites for j in judges_in_suite(s)]


def judge_pins(suite: LoadedSuite) -> dict[str, str]:
    """Scorer id -> judge identity key: what a run records in its `judge_pins` provenance."""
    return {j.id: j.identity().key for j in judges_in_suite(suite)}
