"""Files a suite refers to stay inside its project: absolute paths, `..` and symlinks out of it are refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from evalplatform.cli import main
from tests.suite_helpers import make_project


def _edit(root: Path, old: str, new: str) -> None:
    p = root / "datasets" / "mini" / "suite.yaml"
    text = p.read_text()
    assert old in text, old
    p.write_text(text.replace(old, new))


def _outside(tmp_path: Path, name: str, text: str) -> Path:
    other = tmp_path / "elsewhere"
    other.mkdir(exist_ok=True)
    (other / name).write_text(text)
    return other / name


ESCAPES = {
    "absolute_prompt": (lambda r, t: _edit(r, "prompt: prompt.txt", "prompt: /etc/passwd"), "prompt"),
    "dotdot_prompt": (lambda r, t: _edit(r, "prompt: prompt.txt", f"prompt: ../../../{_outside(t, 'p.txt', 'Say {{ text }}').relative_to(t)}"), "prompt"),
    "symlinked_prompt": (lambda r, t: (os.remove(r / "datasets/mini/prompt.txt"), os.symlink(_outside(t, "p.txt", "Say {{ text }}"), r / "datasets/mini/prompt.txt")), "prompt"),
    "dotdot_dataset": (lambda r, t: _edit(r, "path: cases.jsonl", f"path: {os.path.relpath(_outside(t, 'c.jsonl', '{}'), r / 'datasets/mini')}"), "datasets[0].path"),
    "absolute_rubric": (lambda r, t: _edit(r, "scorers:\n", "scorers:\n  - {id: j, type: llm_judge, criterion: tone, judge: {model: local/echo-upper}, rubric: /etc/hosts}\n"), "scorers[0].rubric"),
    "dotdot_calibration": (lambda r, t: _edit(r, "scorers:\n", f"scorers:\n  - {{id: j, type: llm_judge, criterion: tone, judge: {{model: local/echo-upper}}, rubric_text: 'x', calibration: {os.path.relpath(_outside(t, 'cal.jsonl', '{}'), r / 'datasets/mini')}}}\n"), "scorers[0].calibration"),
    "absolute_policy": (lambda r, t: _edit(r, "repeats: 1", f"repeats: 1\npolicy: {_outside(t, 'policy.yaml', 'rules: []')}"), "policy"),
}


@pytest.mark.parametrize("name", sorted(ESCAPES))
def test_a_path_out_of_the_project_is_refused_in_one_line(name, tmp_path, monkeypatch, capsys):
    root = make_project(tmp_path / "proj")
    mutate, field = ESCAPES[name]
    mutate(root, tmp_path)
    monkeypatch.chdir(root)
    monkeypatch.setenv("EVALPLATFORM_PROJECT", str(root))
    monkeypatch.delenv("EVALPLATFORM_HOME", raising=False)
    code = main(["run", "--suite", "mini", "--engine", "direct"])
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1, err
    assert f"suite.yaml: {field}:" in lines[0] and "outside the project folder" in lines[0], lines[0]
    assert not (root / ".evalplatform" / "history.duckdb").exists()


def test_files_shared_inside_the_project_are_allowed(tmp_path, monkeypatch, capsys):
    root = make_project(tmp_path / "proj")
    shared = root / "datasets" / "shared"
    shared.mkdir()
    (root / "datasets" / "mini" / "prompt.txt").rename(shared / "prompt.txt")
    _edit(root, "prompt: prompt.txt", "prompt: ../shared/prompt.txt")
    monkeypatch.chdir(root)
    monkeypatch.setenv("EVALPLATFORM_PROJECT", str(root))
    monkeypatch.delenv("EVALPLATFORM_HOME", raising=False)
    assert main(["run", "--suite", "mini", "--engine", "direct"]) in (0, 1), capsys.readouterr().err
