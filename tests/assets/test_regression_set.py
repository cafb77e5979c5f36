"""The regression set only grows: a case it held may not disappear or change unless retired with a reason and date."""

from __future__ import annotations

import json

import dagster as dg

from definitions import build_definitions
from tests.assets.conftest import copy_project

KEY = dg.AssetKey(["demo", "regression_set"])


def _materialize(root, instance):
    definitions = build_definitions(root)
    result = definitions.get_implicit_global_asset_job_def().execute_in_process(
        instance=instance, asset_selection=[KEY], raise_on_error=False)
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def _rows(path):
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_deleting_or_editing_a_regression_case_fails_until_it_is_retired(tmp_path, project_env, instance):
    root = copy_project(tmp_path / "proj", suites=("demo",))
    regression = root / "datasets" / "demo" / "regression.jsonl"
    checks = _materialize(root, instance)
    assert checks["regression_set_is_append_only"].passed and checks["cases_pass_great_expectations"].passed

    rows = _rows(regression)
    gone, edited = rows[0]["id"], rows[1]["id"]
    rows[1]["question"] += " (edited)"
    _write(regression, rows[1:])
    check = _materialize(root, instance)["regression_set_is_append_only"]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert f"missing: {gone}" in check.description and f"changed: {edited}" in check.description

    # Appending is fine; what was removed or changed stays a failure on every later materialization.
    _write(regression, _rows(regression) + [{**rows[2], "id": "reg-new-001"}])
    assert not _materialize(root, instance)["regression_set_is_append_only"].passed

    suite = root / "datasets" / "demo" / "suite.yaml"
    suite.write_text(suite.read_text() + f"""
retired:
  - {{id: {gone}, reason: "the refund policy it tested was withdrawn", date: 2026-11-30}}
  - {{id: {edited}, reason: "replaced by a clearer wording of the same case", date: 2026-11-30}}
""")
    check = _materialize(root, instance)["regression_set_is_append_only"]
    assert check.passed, check.description
    assert sorted(check.metadata["retired"].value) == sorted([gone, edited])


def test_a_retired_case_is_left_out_of_runs(tmp_path, project_env):
    from evalplatform.runner import load_dataset
    from evalplatform.suite import load_suite

    root = copy_project(tmp_path / "proj", suites=("demo",))
    first = _rows(root / "datasets" / "demo" / "regression.jsonl")[0]["id"]
    suite = root / "datasets" / "demo" / "suite.yaml"
    suite.write_text(suite.read_text() + f'\nretired:\n  - {{id: {first}, reason: "obsolete", date: 2026-11-30}}\n')
    cases = load_dataset(load_suite(suite)).cases
    assert first not in cases["case_id"].to_list()
