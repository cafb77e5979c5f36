"""OTLP JSON written by the OpenTelemetry SDK's file exporter becomes one trace row per trace id, with the prompt,
reply, retrieval and feedback found under the GenAI and OpenInference conventions."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from opentelemetry.trace import Status, StatusCode, set_span_in_context

from evalplatform.errors import InputError
from evalplatform.traces.read import read_batch
from evalplatform.traces.signals import derive_signals
from evalplatform.traces.validate import validate_batch
from tests.evalplatform.traces.helpers import now, ns, otel_tracer


def _rows(path):
    raw = read_batch(path)
    assert raw.kind == "otlp"
    v = validate_batch(raw)
    assert v.success, v.failed
    return {r["input"]: r for r in derive_signals(v.frame).iter_rows(named=True)}, raw


def test_genai_and_openinference_spans_become_one_row_per_trace(tmp_path):
    path = tmp_path / "traces.jsonl"
    t0 = now() - dt.timedelta(minutes=5)
    with otel_tracer(path) as tracer:
        # GenAI semantic conventions: an agent root, a retrieval span, a chat span with input/output messages.
        root = tracer.start_span("invoke_agent support", start_time=ns(t0), attributes={
            "gen_ai.operation.name": "invoke_agent", "gen_ai.conversation.id": "sess-1"})
        ctx = set_span_in_context(root)
        tracer.start_span("retrieval", context=ctx, start_time=ns(t0), attributes={
            "gen_ai.operation.name": "retrieval",
            "gen_ai.retrieval.documents": json.dumps([{"id": "kb-3", "score": 0.9, "content": "Trials last 14 days."}])
        }).end(end_time=ns(t0) + 1_000_000)
        chat = tracer.start_span("chat local/support-v1", context=ctx, start_time=ns(t0) + 1_000_000, attributes={
            "gen_ai.operation.name": "chat", "gen_ai.request.model": "local/support-v1",
            "gen_ai.input.messages": json.dumps([
                {"role": "system", "parts": [{"type": "text", "content": "be nice"}]},
                {"role": "user", "parts": [{"type": "text", "content": "How long is the trial?"}]}]),
            "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [
                {"type": "text", "content": "The trial lasts 14 days."}], "finish_reason": "stop"}])})
        chat.end(end_time=ns(t0) + 250_000_000)
        root.end(end_time=ns(t0) + 300_000_000)
        # Feedback arrives later, as a span of the same trace.
        tracer.start_span("user_feedback", context=ctx, start_time=ns(t0) + 5_000_000_000,
                          attributes={"feedback.value": "thumbs_down"}).end()
        # OpenInference: input.value / output.value, indexed retrieval documents, session and tags.
        oi = tracer.start_span("support_turn", start_time=ns(t0) + 10**9, attributes={
            "openinference.span.kind": "CHAIN", "input.value": "What does Pro cost?", "output.value": "$20.00",
            "session.id": "sess-2", "tag.tags": ["category:grounding"]})
        r = tracer.start_span("retrieve", context=set_span_in_context(oi), attributes={
            "openinference.span.kind": "RETRIEVER", "retrieval.documents.0.document.id": "kb-1",
            "retrieval.documents.0.document.content": "Pro costs $20.00 per month."})
        r.end()
        oi.end(end_time=ns(t0) + 2 * 10**9)
        # Older GenAI events: the prompt and completion as span events; an error status.
        legacy = tracer.start_span("chat", start_time=ns(t0) + 3 * 10**9, attributes={"gen_ai.system": "openai"})
        legacy.add_event("gen_ai.content.prompt", {"gen_ai.prompt": "Cancel my account"})
        legacy.set_status(Status(StatusCode.ERROR, "upstream timeout"))
        legacy.end(end_time=ns(t0) + 4 * 10**9)
        # A plain HTTP trace (no GenAI span) is not an LLM turn.
        tracer.start_span("GET /health", attributes={"http.request.method": "GET"}).end()
    rows, raw = _rows(path)
    assert set(rows) == {"How long is the trial?", "What does Pro cost?", "Cancel my account"}
    assert raw.info["skipped_traces_without_genai"] == 1
    genai = rows["How long is the trial?"]
    assert genai["output"] == "The trial lasts 14 days."
    assert genai["retrieved_context"] == ["Trials last 14 days."]
    assert genai["session_id"] == "sess-1" and genai["model"] == "local/support-v1"
    assert genai["feedback"] == "down" and genai["signals"] == ["thumbs_down"]
    assert genai["release"] == "support-v1" and genai["service"] == "nimbus-support"
    assert genai["latency_ms"] == pytest.approx(300)  # the turn's own time: the later feedback span is not part of it
    oi = rows["What does Pro cost?"]
    assert oi["output"] == "$20.00" and oi["retrieved_context"] == ["Pro costs $20.00 per month."]
    assert oi["tags"] == ["category:grounding"] and oi["signals"] == []
    failed = rows["Cancel my account"]
    assert failed["status"] == "error" and failed["output"] is None and failed["error"] == "upstream timeout"
    assert failed["signals"] == ["error"]


def test_spans_of_one_trace_split_over_lines_are_one_row(tmp_path):
    path = tmp_path / "split.jsonl"
    with otel_tracer(path) as tracer:  # SimpleSpanProcessor: one line per span
        root = tracer.start_span("turn", attributes={"input.value": "hello", "openinference.span.kind": "CHAIN"})
        child = tracer.start_span("llm", context=set_span_in_context(root), attributes={
            "openinference.span.kind": "LLM", "llm.output_messages.0.message.role": "assistant",
            "llm.output_messages.0.message.content": "hi there"})
        child.end()
        root.end()
    assert len(path.read_text().splitlines()) == 2
    rows, _ = _rows(path)
    assert rows["hello"]["output"] == "hi there"


def test_empty_retrieval_is_a_signal(tmp_path):
    path = tmp_path / "empty.jsonl"
    with otel_tracer(path) as tracer:
        root = tracer.start_span("turn", attributes={"input.value": "Do you sell llamas?", "output.value": "No."})
        tracer.start_span("retrieve", context=set_span_in_context(root),
                          attributes={"openinference.span.kind": "RETRIEVER"}).end()
        root.end()
    rows, _ = _rows(path)
    assert rows["Do you sell llamas?"]["retrieved_context"] == []
    assert rows["Do you sell llamas?"]["signals"] == ["empty_retrieval"]


def test_a_file_of_only_non_genai_traces_is_refused(tmp_path):
    path = tmp_path / "http.jsonl"
    with otel_tracer(path) as tracer:
        tracer.start_span("GET /", attributes={"http.request.method": "GET"}).end()
    with pytest.raises(InputError, match="no GenAI or OpenInference spans"):
        read_batch(path)


def test_the_demo_traffic_generator_writes_what_the_reader_reads(tmp_path):
    from evalplatform.demo.traffic import write_traffic

    stats = write_traffic(tmp_path / "v2.jsonl", release="support-v2", turns=120, seed=3)
    rows, _ = _rows(tmp_path / "v2.jsonl")
    assert len(rows) <= stats.turns  # repeated questions share an input; count traces instead
    raw = read_batch(tmp_path / "v2.jsonl")
    frame = derive_signals(validate_batch(raw).frame)
    assert frame.height == stats.turns
    counts = frame.explode("signals").group_by("signals").len()
    got = dict(counts.iter_rows())
    assert got.get("thumbs_down", 0) == stats.thumbs_down
    assert got.get("rephrased", 0) == stats.rephrased and got.get("regenerated", 0) == stats.regenerated
