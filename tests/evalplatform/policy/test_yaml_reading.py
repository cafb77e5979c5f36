"""Every YAML file is read by textio.load_yaml: safe, and a key given twice is bad input, not a silent override."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from evalplatform.errors import InputError
from evalplatform.textio import load_yaml

ROOT = Path(__file__).resolve().parents[3]


def test_every_yaml_reader_goes_through_load_yaml():
    code = [p for folder in ("evalplatform", "assets", "sensors") for p in sorted((ROOT / folder).rglob("*.py"))]
    direct = [str(p.relative_to(ROOT)) for p in code if p.name != "textio.py"
              and re.search(r"yaml\.(safe_load|load|full_load|unsafe_load|safe_load_all|load_all)\b", p.read_text())]
    assert direct == []


def test_a_duplicate_key_names_the_file_the_line_and_the_key():
    with pytest.raises(InputError) as err:
        load_yaml("p.yaml", b"rules:\n  - id: a\n    bound: {min: 0.9}\n    bound: {min: 0.1}\n")
    assert str(err.value).startswith("p.yaml: line 4: bound: duplicate key 'bound' (first on line 3)")


def test_keys_equal_as_values_are_duplicates_and_merge_keys_may_be_overridden():
    with pytest.raises(InputError, match="duplicate key"):
        load_yaml("p.yaml", b"1: a\n1.0: b\n")
    doc = load_yaml("p.yaml", b"base: &b {min: 0.5, max: 0.9}\nrule:\n  <<: *b\n  min: 0.7\n")
    assert doc["rule"] == {"min": 0.7, "max": 0.9}


@pytest.mark.parametrize("depth", [101, 300, 5000])
def test_deep_nesting_is_bad_input_not_a_crash(depth):
    with pytest.raises(InputError, match="nested too deeply") as err:
        load_yaml("deep.yaml", ("a: 1\nb: " + "[" * depth + "]" * depth + "\n").encode())
    assert str(err.value).startswith("deep.yaml: line 2")
    assert load_yaml("ok.yaml", ("a: " + "[" * 99 + "]" * 99 + "\n").encode())["a"] is not None
