"""The exported JSON Schemas in datasets/schema/ are current, and the demo suite validates against them."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from evalplatform.schemas import available, render

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", available())
def test_committed_schema_is_current(name):
    committed = ROOT / "datasets" / "schema" / f"{name}.schema.json"
    assert committed.exists(), f"run `evalplatform schema` to export {committed.name}"
    assert committed.read_text() == render(name), f"{committed.name} is stale: run `evalplatform schema`"


def test_demo_suite_validates_against_exported_schema():
    schema = json.loads(render("suite"))
    doc = yaml.safe_load((ROOT / "datasets" / "demo" / "suite.yaml").read_text())
    jsonschema.validate(doc, schema)
