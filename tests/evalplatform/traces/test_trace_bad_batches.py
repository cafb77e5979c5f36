"""Every kind of bad trace file is quarantined with a report naming the field, never sampled or scored, never lost;
the corrected file dropped again under the same name is read anew and replaces it."""

from __future__ import annotations

import datetime as dt
import gzip
import json

import polars as pl
import pytest

from evalplatform.errors import InputError
from evalplatform.history import HistoryStore
from evalplatform.history.monitoring import MonitoringStore
from evalplatform.project import Project
from evalplatform.traces import pipeline as P
from tests.evalplatform.traces.helpers import monitored_project, otel_tracer, plain_row, write_jsonl


@pytest.fixture
def setup(tmp_path, monkeypatch):
    monkeypatch.delenv("EVALPLATFORM_HOME", raising=False)
    monkeypatch.delenv("EVALPLATFORM_HISTORY", raising=False)
    root = monitored_project(tmp_path / "proj")
    s = P.setup_for(Project(root), "demo")
    s.folder.mkdir(parents=True)
    return s


def _good(n=30):
    return [plain_row(i) for i in range(n)]


def _bad_json(folder):
    rows = "".join(json.dumps(r) + "\n" for r in _good(5))
    (folder / "f.jsonl").write_text(rows + '{"trace_id": "t-x", "input": \n' + rows)
    return "f.jsonl", "line 6", "invalid JSON"


def _missing_column(folder):
    write_jsonl(folder / "f.jsonl", [{k: v for k, v in r.items() if k != "input"} for r in _good()])
    return "f.jsonl", "input", "required column is missing"


def _wrong_types(folder):
    rows = _good()
    rows[3]["latency_ms"] = "fast"
    rows[7]["trace_id"] = 12345
    write_jsonl(folder / "f.jsonl", rows)
    return "f.jsonl", "latency_ms", "wrong type"


def _duplicate_ids(folder):
    rows = _good()
    rows[9]["trace_id"] = rows[2]["trace_id"]
    write_jsonl(folder / "f.jsonl", rows)
    return "f.jsonl", "trace_id", "duplicate"


def _future_timestamps(folder):
    rows = _good()
    rows[4]["timestamp"] = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=2)).isoformat()
    write_jsonl(folder / "f.jsonl", rows)
    return "f.jsonl", "timestamp", "in the future"


def _empty_file(folder):
    (folder / "f.jsonl").write_bytes(b"")
    return "f.jsonl", None, "file is empty"


def _huge_line(folder):
    rows = _good(3)
    rows[1]["input"] = "x" * (2 * 2**20)
    write_jsonl(folder / "f.jsonl", rows)
    return "f.jsonl", "line 2", "over 1 MiB"


def _not_utf8(folder):
    text = json.dumps(plain_row(0)) + "\n" + json.dumps(plain_row(1)).replace("answer", "caf\xe9") + "\n"
    (folder / "f.jsonl").write_bytes(text.encode("latin-1"))
    return "f.jsonl", "line 2", "not valid UTF-8"


def _otlp_without_genai(folder):
    with otel_tracer(folder / "f.jsonl") as tracer:
        tracer.start_span("GET /orders", attributes={"http.request.method": "GET"}).end()
        tracer.start_span("SELECT orders", attributes={"db.system": "postgresql"}).end()
    return "f.jsonl", None, "no GenAI or OpenInference spans"


def _truncated_gzip(folder):
    data = gzip.compress("".join(json.dumps(r) + "\n" for r in _good(200)).encode())
    (folder / "f.jsonl.gz").write_bytes(data[: len(data) // 2])
    return "f.jsonl.gz", "line", "truncated or corrupt gzip"


def _unknown_signal(folder):
    rows = _good()
    rows[5]["signals"] = ["thumbs_down", "angry"]
    write_jsonl(folder / "f.jsonl", rows)
    return "f.jsonl", "signals", "unknown signal"


def _timestamp_without_zone(folder):
    rows = _good()
    rows[0]["timestamp"] = "2026-11-30T10:00:00"
    write_jsonl(folder / "f.jsonl", rows)
    return "f.jsonl", "timestamp", "do not parse"


def _parquet_wrong_type(folder):
    frame = pl.DataFrame(_good()).with_columns(pl.col("latency_ms").cast(pl.Utf8))
    frame.write_parquet(folder / "f.parquet")
    return "f.parquet", "latency_ms", "column has type"


def _not_parquet(folder):
    (folder / "f.parquet").write_text("trace_id,input\n1,hi\n")
    return "f.parquet", None, "cannot read Parquet"


def _reply_missing(folder):
    rows = _good()
    rows[6]["output"] = None
    write_jsonl(folder / "f.jsonl", rows)
    return "f.jsonl", "output", "without output"


BAD = [_bad_json, _missing_column, _wrong_types, _duplicate_ids, _future_timestamps, _empty_file, _huge_line,
       _not_utf8, _otlp_without_genai, _truncated_gzip, _unknown_signal, _timestamp_without_zone, _parquet_wrong_type,
       _not_parquet, _reply_missing]


@pytest.mark.parametrize("make_bad", BAD, ids=[f.__name__.strip("_") for f in BAD])
def test_a_bad_batch_is_quarantined_with_its_report_and_never_scored(setup, make_bad):
    if make_bad is _huge_line:
        setup = P.TraceSetup(setup.project, setup.suite, setup.monitors.model_copy(update={
            "limits": setup.monitors.limits.model_copy(update={"max_line_mib": 1})}), setup.folder,
            setup.policy_file)
    name, field, message = make_bad(setup.folder)
    original = (setup.folder / name).read_bytes()
    store = HistoryStore(setup.project.history_path)
    result = P.ingest(setup, store, name)
    assert result.status == "quarantined"
    text = json.dumps(result.problems) + result.description
    assert message in text, text
    if field:
        assert field in text
    assert str(setup.folder / name) in result.description or result.problems[0].get("stage") == "validate"
    # Never lost: the file is where it was, and a copy sits in the quarantine with its report.
    assert (setup.folder / name).read_bytes() == original
    quarantined = setup.folder / ".quarantine"
    assert (quarantined / result.quarantine_path.split("/")[-1]).read_bytes() == original
    report = json.loads(next(quarantined.glob("*.report.json")).read_text())
    assert report["problems"] and report["fix"]
    # Never sampled or scored, even when someone asks for it directly.
    with pytest.raises(InputError, match="quarantined"):
        P.sample_batch(setup, store, result.batch_id)
    with pytest.raises(InputError, match="quarantined"):
        P.score_sample(setup, store, result.batch_id)
    assert MonitoringStore(store).batch(result.batch_id)["status"] == "quarantined"


def test_a_corrected_file_dropped_again_is_read_and_replaces_the_bad_one(setup):
    store = HistoryStore(setup.project.history_path)
    name, _, _ = _duplicate_ids(setup.folder)
    bad = P.ingest(setup, store, name)
    assert bad.status == "quarantined"
    write_jsonl(setup.folder / name, _good(40))
    import os
    st = (setup.folder / name).stat()
    os.utime(setup.folder / name, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    good = P.ingest(setup, store, name)
    assert good.status == "accepted" and good.batch_id != bad.batch_id and good.n_traces == 40
    sampled = P.sample_batch(setup, store, good.batch_id)
    assert sampled["n_traces"] == 40
    # Dropped a third time with fewer rows: the new batch supersedes the accepted one (no double counting).
    write_jsonl(setup.folder / name, _good(10))
    os.utime(setup.folder / name, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000))
    third = P.ingest(setup, store, name)
    assert third.superseded == [good.batch_id]
    population = MonitoringStore(store).population("demo")
    overall = population.filter((pl.col("scope") == "overall"))["n"].sum()
    assert overall == 10


def test_an_unknown_file_kind_is_refused_by_name(setup):
    from evalplatform.traces.read import read_batch

    (setup.folder / "notes.txt").write_text("hello")
    with pytest.raises(InputError, match="not a trace file kind"):
        read_batch(setup.folder / "notes.txt")
