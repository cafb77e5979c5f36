"""The dataset-change sensor requests one PR run per new dataset version, and nothing when nothing changed."""

from __future__ import annotations

import json
import shutil

import dagster as dg

from assets.resources import REPO_ROOT, EvalProject
from sensors.dataset_changes import dataset_change_sensor


def _tick(root, cursor=None):
    ctx = dg.build_sensor_context(cursor=cursor, resources={"eval_project": EvalProject(root=str(root))})
    return dataset_change_sensor(ctx)


def test_new_and_changed_datasets_trigger_the_pr_tier_once(tmp_path):
    root = tmp_path / "proj"
    shutil.copytree(REPO_ROOT / "datasets", root / "datasets")
    first = _tick(root)
    assert sorted(r.partition_key for r in first.run_requests) == ["demo", "smoke"]
    assert all(r.tags["tier"] == "pr" for r in first.run_requests)
    again = _tick(root, first.cursor)
    assert not again.run_requests and "no dataset changed" in again.skip_reason.skip_message
    cases = root / "datasets" / "smoke" / "cases.jsonl"
    rows = [json.loads(x) for x in cases.read_text().splitlines()]
    rows[0]["question"] += " (reworded)"
    cases.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    changed = _tick(root, again.cursor)
    assert [r.partition_key for r in changed.run_requests] == ["smoke"]
    assert changed.run_requests[0].run_key != next(r.run_key for r in first.run_requests if r.partition_key == "smoke")


def test_a_broken_suite_is_reported_not_run(tmp_path):
    root = tmp_path / "proj"
    shutil.copytree(REPO_ROOT / "datasets", root / "datasets")
    (root / "datasets" / "smoke" / "cases.jsonl").write_text('{"id": "x"}\n{"id": "x"}\n')
    result = _tick(root)
    assert [r.partition_key for r in result.run_requests] == ["demo"]
