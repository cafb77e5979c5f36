"""A suite's two case sets: golden cases and the append-only regression set, each versioned by its content.

The regression set only grows: every case it ever held is remembered in the history (first content hash),
and a case that is later missing or changed is a failure unless the suite retires it explicitly
(`retired:` in suite.yaml, with a reason and a date) — retiring is a recorded act, never a deletion.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import polars as pl

from evalplatform.datasets import Dataset
from evalplatform.history import HistoryStore
from evalplatform.project import Project
from evalplatform.provenance import canonical_json, sha256_text
from evalplatform.suite import LoadedSuite, find_suite, load_suite

KINDS = ("golden", "regression")
REGRESSION_SET = "regression_set"


@dataclass(frozen=True)
class CaseSetView:
    suite: str
    kind: str
    version: str
    members: dict[str, str]          # case id -> case content sha256
    categories: dict[str, int]
    files: list[str]
    retired: list[str] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.members)


def version_of(frame: pl.DataFrame) -> str:
    """The version of a set of cases: sha256 over (id, content hash) pairs, as a dataset's version."""
    return sha256_text(canonical_json(sorted(zip(frame["case_id"].to_list(), frame["case_hash"].to_list()))))


def select(cases: pl.DataFrame, kind: str) -> pl.DataFrame:
    is_regression = pl.col("source") == "regression"
    return cases.filter(is_regression if kind == "regression" else ~is_regression)


def _suite(project: Project, name: str) -> LoadedSuite:
    return load_suite(find_suite(name, project.datasets_dir))


def load_case_set(project: Project, suite_name: str, kind: str, dataset: Dataset | None = None) -> CaseSetView:
    from evalplatform.runner import load_dataset

    suite = _suite(project, suite_name)
    dataset = dataset or load_dataset(suite)
    frame = select(dataset.cases, kind)
    categories = Counter(c or "(none)" for c in (frame["category"].to_list() if "category" in frame.columns
                                                 else [None] * frame.height))
    files = [str(suite.root / d.path) for d in suite.spec.datasets if (d.source == "regression") == (kind == "regression")]
    return CaseSetView(suite.name, kind, version_of(frame), dict(zip(frame["case_id"], frame["case_hash"])),
                       dict(sorted(categories.items())), files,
                       retired=sorted(r.id for r in suite.spec.retired) if kind == "regression" else [])


def great_expectations_check(project: Project, store: HistoryStore, suite_name: str, kind: str) -> dict:
    """The batch expectations on one case set, run once per version and remembered in the history."""
    from evalplatform.dataset_checks import describe_failure, validate_dataset
    from evalplatform.runner import load_dataset

    suite = _suite(project, suite_name)
    frame = select(load_dataset(suite).cases, kind)
    version = version_of(frame)
    if frame.height == 0:
        # An empty regression set is allowed (a new suite); an empty golden set cannot decide anything.
        ok = kind == "regression"
        return {"success": ok, "cached": False, "failed": [],
                "description": "no regression cases yet" if ok else "the suite has no golden cases"}
    check = store.get_dataset_check(version)
    cached = check is not None
    if check is None:
        summary = validate_dataset(frame)
        store.put_dataset_check(version, summary["success"], summary)
        check = {"success": summary["success"], "summary": summary}
    failed = (check.get("summary") or {}).get("failed") or []
    description = (f"{frame.height} cases pass" if check["success"] else
                   "; ".join(f"{f.get('column') or 'table'}: {describe_failure(f)}" for f in failed))
    return {"success": bool(check["success"]), "cached": cached, "failed": failed, "description": description}


def append_only_violations(project: Project, store: HistoryStore, suite_name: str) -> dict:
    """Cases the regression set once held that are now missing or changed (retired ones excepted)."""
    current = load_case_set(project, suite_name, "regression")
    ever = store.case_set_members(current.suite, REGRESSION_SET)
    retired = set(current.retired)
    missing = sorted(cid for cid in ever if cid not in current.members and cid not in retired)
    changed = sorted(cid for cid, h in ever.items()
                     if cid in current.members and current.members[cid] != h and cid not in retired)
    return {"missing": missing, "changed": changed, "retired": sorted(retired & set(ever)), "n_ever_held": len(ever)}
