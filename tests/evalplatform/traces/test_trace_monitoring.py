"""Monitors weight the sample by its inclusion probabilities, alert on the always-valid bound per release, keep their
values over time; reviewed failures go to the regression set (append only) and the next PR tier runs them."""

from __future__ import annotations

import datetime as dt
import io
import json
import os

import polars as pl
import pytest

from evalplatform.errors import InputError
from evalplatform.history import HistoryStore
from evalplatform.history.monitoring import MonitoringStore
from evalplatform.monitoring import freshness, monitor_report, update_monitors
from evalplatform.project import Project
from evalplatform.review import apply_label, review_list, walk
from evalplatform.traces import pipeline as P
from evalplatform.traces.coverage import coverage_audit
from tests.evalplatform.traces.helpers import monitored_project, plain_row, write_jsonl

T0 = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=3)


@pytest.fixture
def setup(tmp_path, monkeypatch):
    monkeypatch.delenv("EVALPLATFORM_HOME", raising=False)
    monkeypatch.delenv("EVALPLATFORM_HISTORY", raising=False)
    root = monitored_project(tmp_path / "proj")
    s = P.setup_for(Project(root), "demo")
    s.folder.mkdir(parents=True)
    return s


def _traffic(release: str, n: int, fail_every: int, start: dt.datetime, prefix: str) -> list[dict]:
    """Date answers; every `fail_every`-th one writes a US date and draws a thumbs-down (flagged and failing)."""
    rows = []
    for i in range(n):
        bad = i % fail_every == 0
        rows.append(plain_row(i, trace_id=f"{prefix}-{i:05d}", release=release, session_id=None,
                              timestamp=(start + dt.timedelta(seconds=i)).isoformat(),
                              input=f"When does my trial end if it started on day {i}?",
                              output="Your trial ends on 03/06/2026." if bad else "Your trial ends on 2026-03-06.",
                              feedback="down" if bad else None, tags=["category:dates"]))
    return rows


def _process(setup, name, rows):
    store = HistoryStore(setup.project.history_path)
    write_jsonl(setup.folder / name, rows)
    batch = P.ingest(setup, store, name)
    assert batch.status == "accepted", batch.description
    P.sample_batch(setup, store, batch.batch_id)
    P.score_sample(setup, store, batch.batch_id)
    return update_monitors(setup, store, batch.batch_id)


def _latest(setup, slo_id, segment):
    values = MonitoringStore(HistoryStore(setup.project.history_path)).monitor_values("demo", latest_only=True)
    return values.filter((pl.col("slo_id") == slo_id) & (pl.col("segment") == segment)).row(0, named=True)


def test_the_weighted_estimate_corrects_the_oversampled_flagged_traces(setup):
    # 2,000 traces, 1 in 10 failing and flagged: flagged ones are all sampled, the rest at 10%.
    _process(setup, "v1.jsonl", _traffic("support-v1", 2000, 10, T0, "a"))
    row = _latest(setup, "dates_in_iso_format", "support-v1")
    assert row["n_population"] == 2000
    assert abs(row["estimate"] - 0.9) < 0.03, row       # the population's pass rate
    assert row["naive"] < 0.65                           # the unweighted sample's is far lower
    assert row["lower"] <= 0.9 <= row["upper"] and row["av_lower"] <= 0.9 <= row["av_upper"]
    assert row["av_lower"] <= row["estimate"] <= row["av_upper"]
    assert row["status"] in ("OK", "WATCH")


def test_a_release_that_breaks_dates_alerts_and_the_values_are_kept_over_time(setup):
    first = _process(setup, "v1.jsonl", _traffic("support-v1", 600, 50, T0, "a"))
    assert first["segment"] == "support-v1" and not first["alerts"]
    later = T0 + dt.timedelta(hours=1)
    summary = _process(setup, "v2.jsonl", _traffic("support-v2", 600, 2, later, "b"))
    assert summary["segment"] == "support-v2"
    assert sorted(a["slo_id"] for a in summary["alerts"]) == ["dates_in_iso_format", "overall_pass_rate"]
    assert summary["blocking_alert"] is True
    alert = _latest(setup, "dates_in_iso_format", "support-v2")
    assert alert["status"] == "ALERT" and alert["av_upper"] < 0.90
    assert _latest(setup, "dates_in_iso_format", "support-v1")["status"] != "ALERT"  # v1's own bound holds
    history = MonitoringStore(HistoryStore(setup.project.history_path)).monitor_values("demo")
    assert history["computed_at"].n_unique() == 2
    report = monitor_report(setup.project, "demo", history=3)
    assert "ALERT   support-v2      dates_in_iso_format" in report and "current release: support-v2" in report


def _queued_date_failure(setup):
    _process(setup, "v2.jsonl", _traffic("support-v2", 200, 2, T0, "b"))
    items = review_list(setup.project, "demo", limit=100)
    return next(i for i in items if any("iso_dates_only" in r for r in i["reasons"]))


def test_a_labelled_failure_is_appended_and_the_next_pr_tier_runs_it(setup):
    from evalplatform.case_sets import append_only_violations, load_case_set
    from evalplatform.runner import plan_run

    item = _queued_date_failure(setup)
    regression = setup.suite.root / "regression.jsonl"
    before = regression.read_bytes()
    with pytest.raises(InputError, match="must_contain"):
        apply_label(setup.project, "demo", item["item_id"], "fail", category="date-format", reviewer="ana")
    assert regression.read_bytes() == before  # nothing written
    store = HistoryStore(setup.project.history_path)
    view = load_case_set(setup.project, "demo", "regression")
    store.record_case_set("demo", "regression_set", view.version, view.members)
    result = apply_label(setup.project, "demo", item["item_id"], "fail", category="date-format", note="US date",
                         reviewer="ana", fields={"must_contain": ["2026-03-06"], "must_not_contain": ["03/06/2026"]})
    after = regression.read_bytes()
    assert after.startswith(before) and after.count(b"\n") == before.count(b"\n") + 1
    case = json.loads(after.decode().splitlines()[-1])
    assert case["id"] == result.case_id and case["source"] == "regression"
    assert case["source_trace_id"] == item["trace_id"] and case["failure_category"] == "date-format"
    assert case["reviewer"] == "ana" and case["note"] == "US date" and case["reviewed_at"]
    assert "output" not in case and case["observed_output_sha256"]
    assert append_only_violations(setup.project, store, "demo")["missing"] == []
    plan = plan_run(setup.suite, "pr")
    assert result.case_id in plan.cases["case_id"].to_list()
    with pytest.raises(InputError, match="already in the regression set"):
        apply_label(setup.project, "demo", item["item_id"], "pass")
    fresh = freshness(MonitoringStore(store), "demo")
    assert fresh["n"] == 1 and fresh["p95_s"] is not None and fresh["p95_s"] > 0
    assert "Freshness (flagged -> in the regression set): P95" in monitor_report(setup.project, "demo")


def test_promotion_refuses_a_file_without_a_final_newline_and_is_idempotent(setup):
    from evalplatform.traces.promote import append_case, build_case

    item = _queued_date_failure(setup)
    regression = setup.suite.root / "regression.jsonl"
    regression.write_bytes(regression.read_bytes().rstrip(b"\n"))
    fields = {"must_contain": ["2026-03-06"], "must_not_contain": ["03/06/2026"]}
    with pytest.raises(InputError, match="does not end with a newline"):
        apply_label(setup.project, "demo", item["item_id"], "fail", category="date-format", fields=fields)
    assert review_list(setup.project, "demo", status="labelled") == []  # refused before anything was recorded
    regression.write_bytes(regression.read_bytes() + b"\n")
    # A crash after the append and before the history recorded it: the retry finds the line and adds none.
    mstore = MonitoringStore(HistoryStore(setup.project.history_path))
    row = build_case(setup, mstore.trace("demo", item["trace_id"]), category="date-format", note=None,
                     reviewer="ana", fields=fields)
    append_case(setup, row)
    size = regression.stat().st_size
    result = apply_label(setup.project, "demo", item["item_id"], "fail", category="date-format", fields=fields)
    assert result.already_promoted and regression.stat().st_size == size


def test_the_terminal_walker_labels_from_scripted_input(setup):
    _process(setup, "v2.jsonl", _traffic("support-v2", 100, 2, T0, "b"))
    script = io.StringIO("pass\nlooks fine\n"            # first item: pass, with a note
                         "fail\ndate-format\nUS dates after v2\nmissed it\n"
                         '["2026-03-06"]\n["03/06/2026"]\n'  # the fields the case needs
                         "quit\n")
    out = io.StringIO()
    results = walk(setup.project, "demo", stdin=script, stdout=out, reviewer="bo", limit=5)
    assert [r.label for r in results] == ["pass", "fail"]
    assert results[1].case_id and results[1].category == "date-format"
    text = out.getvalue()
    assert "why:" in text and "reply:" in text and "appended to" in text
    labelled = review_list(setup.project, "demo", status="labelled")
    assert {i["reviewer"] for i in labelled} == {"bo"} and {i["note"] for i in labelled} == {"looks fine", "missed it"}


def test_coverage_flags_categories_without_cases_and_thin_ones(setup):
    _process(setup, "v2.jsonl", _traffic("support-v2", 100, 2, T0, "b"))
    items = [i for i in review_list(setup.project, "demo", limit=100) if i["reasons"]]
    apply_label(setup.project, "demo", items[0]["item_id"], "fail", category="tone", promote=False)
    audit = coverage_audit(setup, HistoryStore(setup.project.history_path))
    assert not audit["passed"] and audit["severity"] == "WARN" and "no regression case for tone" in audit["description"]
    fields = {"must_contain": ["2026-03-06"], "must_not_contain": ["03/06/2026"]}
    apply_label(setup.project, "demo", items[1]["item_id"], "fail", category="tone", fields=fields)
    audit = coverage_audit(setup, HistoryStore(setup.project.history_path))
    assert audit["severity"] == "ERROR" and "fewer than 2 case(s) for tone (1)" in audit["description"]
    apply_label(setup.project, "demo", items[2]["item_id"], "fail", category="tone", fields=fields)
    audit = coverage_audit(setup, HistoryStore(setup.project.history_path))
    assert audit["passed"], audit


def test_bad_review_input_is_one_clear_error(setup):
    _process(setup, "v2.jsonl", _traffic("support-v2", 50, 2, T0, "b"))
    item = review_list(setup.project, "demo")[0]
    for kwargs, match in (({"label": "maybe"}, "unknown label"), ({"label": "fail"}, "needs its failure category"),
                          ({"label": "fail", "category": "Bad Name!"}, "not a category name")):
        label = kwargs.pop("label")
        with pytest.raises(InputError, match=match):
            apply_label(setup.project, "demo", item["item_id"], label, **kwargs)
    with pytest.raises(InputError, match="no review item"):
        apply_label(setup.project, "demo", "nope", "pass")
    assert os.path.exists(setup.project.history_path)
