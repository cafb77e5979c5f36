"""`category` is optional: a dataset without it runs (nightly), and a tier stratifying by it says which setting needs it."""

from __future__ import annotations

import json

from evalplatform.cli import main
from tests.suite_helpers import make_project


def _drop_category(root) -> None:
    for name in ("cases.jsonl", "regression.jsonl"):
        path = root / "datasets" / "mini" / name
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        path.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "category"}) + "\n" for r in rows))


def _setup(tmp_path, monkeypatch):
    root = make_project(tmp_path)
    _drop_category(root)
    monkeypatch.chdir(root)
    monkeypatch.setenv("EVALPLATFORM_PROJECT", str(root))
    monkeypatch.delenv("EVALPLATFORM_HOME", raising=False)
    return root


def test_a_dataset_without_category_runs_where_nothing_needs_it(tmp_path, monkeypatch, capsys):
    _setup(tmp_path, monkeypatch)
    code = main(["run", "--suite", "mini", "--tier", "nightly", "--engine", "direct"])
    out = capsys.readouterr()
    assert code in (0, 1), out.err
    assert "expect_column" not in out.err


def test_a_tier_stratified_by_a_missing_field_names_the_setting(tmp_path, monkeypatch, capsys):
    root = _setup(tmp_path, monkeypatch)
    code = main(["run", "--suite", "mini", "--tier", "pr", "--engine", "direct"])
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1, err
    assert "tiers.pr.stratify_by" in lines[0] and "'category'" in lines[0] and "unexpected_count" not in lines[0]
    assert lines[0].startswith(f"error: {root / 'datasets' / 'mini' / 'suite.yaml'}")
    assert not (root / ".evalplatform" / "history.duckdb").exists()
