"""The code location loads, and its asset graph (keys, deps, groups, checks, automation) matches the snapshot."""

from __future__ import annotations

import json
import os
from pathlib import Path

import dagster as dg

from definitions import defs

SNAPSHOT = Path(__file__).with_name("asset_graph.snapshot.json")


def _labels(cond) -> list[str] | None:
    if cond is None:
        return None
    ops = getattr(cond, "operands", None) or [cond]
    return [op.get_label() or type(op).__name__ for op in ops]


def graph_snapshot() -> dict:
    graph = defs.resolve_asset_graph()
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "deps": sorted(d.to_user_string() for d in node.parent_keys),
            "partitioned": node.partitions_def is not None,
            "automation": _labels(node.automation_condition),
            "checks": sorted(c.name for c in node.check_keys),
        }
    blocking = sorted(
        f"{spec.asset_key.to_user_string()}:{spec.name}"
        for checks_def in defs.asset_checks or [] for spec in checks_def.check_specs if spec.blocking
    )
    jobs = sorted(j.name for j in defs.jobs or [])
    return {"assets": assets, "blocking_checks": blocking, "jobs": jobs,
            "schedules": sorted(s.name for s in defs.schedules or []),
            "sensors": sorted(s.name for s in defs.sensors or [])}


def test_definitions_load():
    dg.Definitions.validate_loadable(defs)
    assert defs.resolve_job_def("pr_eval_job").executor_def.name == "in_process"


def test_asset_graph_matches_snapshot():
    current = graph_snapshot()
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":  # re-record deliberately; review the file in the diff
        SNAPSHOT.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    expected = json.loads(SNAPSHOT.read_text())
    assert current == expected, "the asset graph changed: review, then delete the snapshot to re-record it"


def test_lineage_dataset_to_promoted_baseline():
    snap = graph_snapshot()["assets"]
    assert snap["scored_run"]["deps"] == ["suite_dataset"]
    assert snap["promoted_baseline"]["deps"] == ["judge_calibration", "scored_run"]
    assert snap["judge_calibration"]["deps"] == ["calibration_sets"]
    assert "judge_allowed_to_gate" in snap["judge_calibration"]["checks"]
    assert "pass_rate_at_least_floor" in snap["scored_run"]["checks"]
    assert snap["promoted_baseline"]["automation"] == ["eager", "all_deps_blocking_checks_passed"]
