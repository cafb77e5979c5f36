"""The code location loads, its asset graph matches the snapshot, and a suite folder is all a suite needs."""

from __future__ import annotations

import json
import os
import typing
from pathlib import Path

import dagster as dg

from assets.config import ScoredRunConfig
from definitions import build_definitions, defs
from evalplatform.request import RunOptions
from tests.assets.conftest import copy_project

SNAPSHOT = Path(__file__).with_name("asset_graph.snapshot.json")


def _labels(cond) -> list[str] | None:
    if cond is None:
        return None
    ops = getattr(cond, "operands", None) or [cond]
    return [op.get_label() or type(op).__name__ for op in ops]


def graph_snapshot(definitions: dg.Definitions) -> dict:
    graph = definitions.resolve_asset_graph()
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "deps": sorted(d.to_user_string() for d in node.parent_keys),
            "automation": _labels(node.automation_condition),
            "checks": sorted(c.name for c in node.check_keys),
        }
    blocking = sorted(f"{spec.asset_key.to_user_string()}:{spec.name}"
                      for checks_def in definitions.asset_checks or [] for spec in checks_def.check_specs
                      if spec.blocking)
    return {"assets": assets, "blocking_checks": blocking, "jobs": sorted(j.name for j in definitions.jobs or []),
            "schedules": sorted(s.name for s in definitions.schedules or []),
            "sensors": sorted(s.name for s in definitions.sensors or [])}


def test_definitions_load_and_run_in_process_by_default():
    dg.Definitions.validate_loadable(defs)
    assert defs.executor.name == "in_process_unless_told"
    for job in ("demo_pr", "demo_nightly", "smoke_pr", "smoke_nightly", "judge_nightly_job"):
        assert defs.resolve_job_def(job).executor_def.name == "in_process_unless_told"


def test_asset_graph_matches_snapshot():
    current = graph_snapshot(defs)
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":  # re-record deliberately; review the file in the diff
        SNAPSHOT.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    assert current == json.loads(SNAPSHOT.read_text()), "the asset graph changed: review, then re-record it"


def test_each_suite_has_its_own_assets_and_exactly_its_policy_as_checks():
    snap = graph_snapshot(defs)["assets"]
    for suite in ("demo", "smoke"):
        assert {f"{suite}/{a}" for a in ("golden_cases", "regression_set", "pr_run", "nightly_run",
                                         "promoted_baseline")} <= set(snap)
        assert snap[f"{suite}/promoted_baseline"]["deps"] == [f"{suite}/nightly_run", f"{suite}/pr_run"]
        assert "regression_set_is_append_only" in snap[f"{suite}/regression_set"]["checks"]
    demo_rules = {"pass_rate_at_least_floor", "safety_pass_rate", "error_rate_at_most_5pct", "regression_set_pass_rate",
                  "no_regression_vs_baseline", "p95_latency_advisory", "tone_corrected_pass_rate",
                  "tone_trained_corrected_pass_rate", "arithmetic_pass_rate"}
    assert set(snap["demo/pr_run"]["checks"]) == demo_rules | {"release_decision_passed"}
    # The smoke suite's gate is its floor only: no other suite's rules appear on it.
    assert snap["smoke/pr_run"]["checks"] == ["pass_rate_at_least_floor", "release_decision_passed"]
    assert {"demo/golden_cases", "demo/regression_set", "judges/tone_local_judge_rubric"} <= set(
        snap["demo/pr_run"]["deps"])
    assert snap["judges/tone_local_judge_rubric"]["deps"] == ["judges/calibration_set_tone"]
    assert "judge_allowed_to_gate" in snap["judges/tone_local_judge_rubric"]["checks"]


def test_adding_a_suite_folder_is_all_it_takes(tmp_path):
    root = copy_project(tmp_path / "proj", suites=("smoke",))
    third = root / "datasets" / "checkout"
    third.mkdir()
    for f in (root / "datasets" / "smoke").iterdir():
        (third / f.name).write_bytes(f.read_bytes())
    (third / "suite.yaml").write_text((third / "suite.yaml").read_text().replace("name: smoke", "name: checkout"))
    snap = graph_snapshot(build_definitions(root))
    assert {"checkout/pr_run", "checkout/nightly_run", "checkout/promoted_baseline"} <= set(snap["assets"])
    assert {"checkout_pr", "checkout_nightly"} <= set(snap["jobs"])
    assert "checkout_nightly_schedule" in snap["schedules"]


def test_a_broken_suite_folder_does_not_take_the_code_location_down(tmp_path):
    root = copy_project(tmp_path / "proj", suites=("smoke",))
    broken = root / "datasets" / "broken"
    broken.mkdir()
    (broken / "suite.yaml").write_text("name: broken\nrules: [\n")
    snap = graph_snapshot(build_definitions(root))
    assert "smoke/pr_run" in snap["assets"] and not any(k.startswith("broken/") for k in snap["assets"])


def test_the_dagster_config_and_the_run_request_spell_the_same_options():
    config_fields = ScoredRunConfig.model_fields
    assert list(config_fields) == list(RunOptions.model_fields)
    for name, spec in RunOptions.model_fields.items():
        assert typing.get_args(config_fields[name].annotation) == typing.get_args(spec.annotation), name
        assert config_fields[name].default == spec.default and config_fields[name].description == spec.description


def test_the_launchpad_scaffolds_every_option():
    # Every job's default run config names every option (null: as the suite and tier say), so the launchpad
    # shows them all, and that config is valid for the job.
    for job in (j for j in defs.jobs if j.name.endswith(("_pr", "_nightly"))):
        suite, tier = job.name.rsplit("_", 1)
        assert set(job.config["ops"][f"{suite}__{tier}_run"]["config"]) == set(RunOptions.model_fields)
        assert defs.resolve_job_def(job.name).run_config_schema.config_type is not None


def test_promotion_waits_for_passing_blocking_checks():
    snap = graph_snapshot(defs)
    assert snap["assets"]["demo/promoted_baseline"]["automation"] == [
        "any_deps_updated", "materialized_deps_blocking_checks_passed", "NotAutomationCondition", "NotAutomationCondition"]
    assert "demo/pr_run:release_decision_passed" in snap["blocking_checks"]
