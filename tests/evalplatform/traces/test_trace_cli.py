"""The `monitor` and `review` verbs over a real queue: list, label by id (promoting the failure), one-line errors."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from evalplatform.cli import main
from evalplatform.history import HistoryStore
from evalplatform.review import review_list
from tests.evalplatform.traces.test_trace_monitoring import T0, _process, _traffic, setup  # noqa: F401


@pytest.fixture
def cli(setup, monkeypatch):  # noqa: F811
    monkeypatch.chdir(setup.project.root)
    monkeypatch.setenv("EVALPLATFORM_PROJECT", str(setup.project.root))
    _process(setup, "v2.jsonl", _traffic("support-v2", 200, 2, T0, "b"))
    return setup


def test_monitor_shows_the_alerting_release(cli, capsys):
    assert main(["monitor", "--suite", "demo"]) == 0
    assert "dates_in_iso_format" in capsys.readouterr().out


def test_review_lists_labels_by_id_and_promotes_the_failure(cli, capsys):
    assert main(["review", "--suite", "demo", "--list", "--limit", "5"]) == 0
    assert capsys.readouterr().out.strip()
    item = next(i for i in review_list(cli.project, "demo", limit=100)
                if any("iso_dates_only" in r for r in i["reasons"]))
    regression = cli.suite.root / "regression.jsonl"
    before = regression.read_text().count("\n")
    code = main(["review", "--suite", "demo", "--id", item["item_id"], "--label", "fail", "--category", "date-format",
                 "--note", "US date", "--reviewer", "ana", "--field", 'must_contain=["2026-03-06"]',
                 "--field", 'must_not_contain=["03/06/2026"]'])
    assert code == 0, capsys.readouterr().err
    lines = regression.read_text().splitlines()
    assert len(lines) == before + 1 and json.loads(lines[-1])["source_trace_id"] == item["trace_id"]


def test_review_by_id_without_a_label_is_one_line_exit_2(cli, capsys):
    assert main(["review", "--suite", "demo", "--id", "nope"]) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1 and "--label" in err[0]


def test_an_unknown_item_is_one_line_exit_2(cli, capsys):
    assert main(["review", "--suite", "demo", "--id", "nope", "--label", "pass"]) == 2
    assert len([ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]) == 1
