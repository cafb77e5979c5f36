"""Bad suite and dataset files: one clear line naming the file and field, exit code 2, nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalplatform.cli import main
from tests.suite_helpers import make_project


def _edit_yaml(root: Path, old: str, new: str) -> None:
    p = root / "datasets" / "mini" / "suite.yaml"
    text = p.read_text()
    assert old in text, old
    p.write_text(text.replace(old, new))


def _write(root: Path, name: str, data: bytes | str) -> None:
    p = root / "datasets" / "mini" / name
    p.write_bytes(data if isinstance(data, bytes) else data.encode())


def _cases(root: Path) -> list[dict]:
    return [json.loads(x) for x in (root / "datasets" / "mini" / "cases.jsonl").read_text().splitlines()]


def _rewrite_cases(root: Path, rows: list[dict]) -> None:
    _write(root, "cases.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n")


BAD = {
    # name: (mutation, text expected in the error line)
    "yaml_syntax": (lambda r: _edit_yaml(r, "concurrency: 4", "concurrency: [4"), "invalid YAML"),
    "unknown_field": (lambda r: _edit_yaml(r, "repeats: 1", "repeats: 1\nrepeets: 2"), "repeets: unknown field"),
    "missing_target": (lambda r: _edit_yaml(r, "target:\n  model: local/echo-upper", "targt:\n  model: local/echo-upper"), "target: required field is missing"),
    "bad_temperature": (lambda r: _edit_yaml(r, "temperature: 0.0", "temperature: 7"), "target.temperature"),
    "bad_scorer_type": (lambda r: _edit_yaml(r, "type: length", "type: lenght"), "scorers[3]"),
    "invalid_regex": (lambda r: _edit_yaml(r, "- {id: short,", "- {id: rx, type: regex, criterion: x, pattern: '(unclosed'}\n  - {id: short,"), "invalid regular expression"),
    "duplicate_scorer_id": (lambda r: _edit_yaml(r, "id: short", "id: has_word"), "duplicate scorer id"),
    "missing_dataset_file": (lambda r: _edit_yaml(r, "path: cases.jsonl", "path: nope.jsonl"), "datasets[0].path"),
    "missing_prompt": (lambda r: _edit_yaml(r, "prompt: prompt.txt", "prompt: nope.txt"), "prompt"),
    "malformed_placeholder": (lambda r: _write(r, "prompt.txt", "Say: {{ text }\n"), "malformed placeholder"),
    "floor_out_of_range": (lambda r: _edit_yaml(r, "pass_rate_floor: 0.5", "pass_rate_floor: 1.5"), "gate.pass_rate_floor"),
    "not_a_mapping": (lambda r: _write(r, "suite.yaml", "- just\n- a list\n"), "must be a YAML mapping"),
    "empty_suite": (lambda r: _write(r, "suite.yaml", ""), "file is empty"),
    "suite_not_utf8": (lambda r: _write(r, "suite.yaml", b"name: mini\xff\n"), "not valid UTF-8"),
    "python_tag_in_yaml": (lambda r: _write(r, "suite.yaml", "name: !!python/object/apply:os.system ['true']\n"), "invalid YAML"),
    "bad_tier_name": (lambda r: _edit_yaml(r, "nightly: {repeats: 2}", "weekly: {repeats: 2}"), "tiers"),
    "malformed_jsonl": (lambda r: _write(r, "cases.jsonl", '{"id": "a", "text": "x", "must_contain": ["X"]}\n{"id": "b",\n'), "cases.jsonl: line 2: invalid JSON"),
    "duplicate_case_id": (lambda r: _rewrite_cases(r, _cases(r) + [_cases(r)[0]]), "duplicate case id 'echo-000'"),
    "duplicate_across_files": (lambda r: _write(r, "regression.jsonl", json.dumps(_cases(r)[0]) + "\n"), "duplicate case id"),
    "empty_case_id": (lambda r: _rewrite_cases(r, [{**_cases(r)[0], "id": "  "}]), "id"),
    "missing_case_id": (lambda r: _rewrite_cases(r, [{k: v for k, v in _cases(r)[0].items() if k != "id"}]), "line 1: id"),
    "bad_severity": (lambda r: _rewrite_cases(r, [{**_cases(r)[0], "severity": "urgent"}]), "severity"),
    "nan_in_dataset": (lambda r: _write(r, "cases.jsonl", '{"id": "a", "text": "x", "must_contain": ["X"], "w": NaN}\n'), "NaN"),
    "empty_dataset": (lambda r: _write(r, "cases.jsonl", b""), "file is empty"),
    "dataset_not_utf8": (lambda r: _write(r, "cases.jsonl", b'{"id": "a", "text": "\xff"}\n'), "not valid UTF-8"),
    "lone_surrogate_in_case": (lambda r: _write(r, "cases.jsonl", '{"id": "a", "text": "x\\ud800", "must_contain": ["X"]}\n'), "line 1: text: not valid Unicode"),
    "duplicate_key_in_case": (lambda r: _write(r, "cases.jsonl", '{"id": "a", "text": "x", "must_contain": ["X"], "text": "y"}\n'), "line 1: duplicate key 'text'"),
    "deeply_nested_case": (lambda r: _write(r, "cases.jsonl", '{"id": "a", "text": "x", "must_contain": ["X"], "w": ' + "[" * 5000 + "]" * 5000 + '}\n'), "line 1: JSON nested too deeply"),
    "row_not_object": (lambda r: _write(r, "cases.jsonl", "[1, 2]\n"), "must be a JSON object"),
    "missing_template_field": (lambda r: _write(r, "prompt.txt", "Say: {{ txt }}\n"), "'txt'"),
    "scorer_field_missing_on_case": (lambda r: _rewrite_cases(r, [{k: v for k, v in c.items() if k != "must_contain"} if c["id"] == "echo-003" else c for c in _cases(r)]), "echo-003"),
    "reserved_field": (lambda r: _rewrite_cases(r, [{**_cases(r)[0], "output": "x"}]), "reserved"),
    "unsupported_format": (lambda r: (_write(r, "cases.txt", "x"), _edit_yaml(r, "path: cases.jsonl", "path: cases.txt")), "unsupported dataset format"),
    # A key given twice would silently replace the first (PyYAML keeps the last): the second `gate:` here
    # lowers the floor the first one set.
    "duplicate_gate": (lambda r: _edit_yaml(r, "tiers:", "gate:\n  pass_rate_floor: 0.0\ntiers:"),
                       "line 24: gate: duplicate key 'gate' (first on line 21)"),
    "duplicate_nested_key": (lambda r: _edit_yaml(r, "  seed: 7\n", "  seed: 7\n  seed: 8\n"), "duplicate key 'seed'"),
    "deeply_nested_yaml": (lambda r: _edit_yaml(r, "repeats: 1", "repeats: 1\nx: " + "[" * 20000 + "]" * 20000),
                           "nested too deeply"),
    # Shallow enough for the YAML parser, too deep for serializing the target's params: refused at load.
    "deep_params": (lambda r: _edit_yaml(r, "  max_tokens: 64\n", "  max_tokens: 64\n  extra_params: {x: "
                                         + "[" * 300 + "]" * 300 + "}\n"), "line 13: YAML nested too deeply"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_input_is_one_clear_line_and_exit_2(name, tmp_path, monkeypatch, capsys):
    root = make_project(tmp_path)
    mutate, expected = BAD[name]
    mutate(root)
    monkeypatch.chdir(root)
    monkeypatch.setenv("EVALPLATFORM_PROJECT", str(root))
    monkeypatch.delenv("EVALPLATFORM_HOME", raising=False)
    code = main(["run", "--suite", "mini", "--engine", "direct"])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert expected in lines[0], lines[0]
    assert "datasets/mini/" in lines[0] or "mini" in lines[0]
    # Nothing written: a bad input never reaches the history.
    assert not (root / ".evalplatform" / "history.duckdb").exists()


def test_usage_errors_exit_2(tmp_path, monkeypatch, capsys):
    root = make_project(tmp_path)
    monkeypatch.setenv("EVALPLATFORM_PROJECT", str(root))
    assert main(["run", "--suite", "nosuch", "--engine", "direct"]) == 2
    assert "no suite named 'nosuch'" in capsys.readouterr().err
    assert main(["run", "--suite", "mini", "--concurrency", "0", "--engine", "direct"]) == 2
    assert main(["run"]) == 2

