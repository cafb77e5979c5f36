"""Tests' helper: a project in a tmp folder whose suite points at a Python module of its own."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import yaml

from evalplatform.runner import ScoredRun, execute, plan_run
from evalplatform.suite import load_suite

DEFAULT_SCORERS = [{"id": "has_word", "type": "contains", "criterion": "correctness", "column": "must_contain"}]


def make_suite(tmp_path: Path, module_source: str, *, cases: list[dict], target: dict[str, Any],
               module: str = "team_pipeline", scorers: list[dict] | None = None, name: str = "team",
               module_at_root: bool = False, extra: dict | None = None) -> Path:
    """tmp/proj/datasets/<name>/suite.yaml with its cases and prompt; the module next to it (or at the root)."""
    root = tmp_path / "proj"
    suite_dir = root / "datasets" / name
    suite_dir.mkdir(parents=True)
    where = root if module_at_root else suite_dir
    (where / f"{module}.py").write_text(textwrap.dedent(module_source))
    (suite_dir / "prompt.txt").write_text("{{ question }}\n")
    (suite_dir / "cases.jsonl").write_text("".join(json.dumps(c) + "\n" for c in cases))
    doc = {"schema_version": 1, "name": name, "datasets": ["cases.jsonl"], "prompt": "prompt.txt",
           "target": target, "concurrency": 4, "scorers": scorers or DEFAULT_SCORERS,
           "gate": {"pass_rate_floor": 0.5}, "tiers": {"pr": {}, "nightly": {}}, **(extra or {})}
    (suite_dir / "suite.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return suite_dir / "suite.yaml"


def run_suite(suite_file: Path, *, repeats: int | None = None, cache_dir: Path | None = None,
              model: str | None = None) -> ScoredRun:
    """Plan and execute the suite's PR tier without a history (what every engine runs)."""
    plan = plan_run(load_suite(suite_file), "pr", repeats=repeats, model=model)
    return execute(plan, "run-test", cache_dir=cache_dir)


def case(case_id: str, question: str, must: list[str] | None = None, **fields: Any) -> dict:
    return {"id": case_id, "category": "basic", "question": question, "must_contain": must or [], **fields}
