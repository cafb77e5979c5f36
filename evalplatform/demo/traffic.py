"""Realistic production traffic from the demo app, written through the OpenTelemetry SDK as OTLP JSON files.

Each user turn is one trace: an OpenInference CHAIN root span (input.value, output.value, session.id,
tag.tags), a RETRIEVER child span (retrieval.documents.*) for help-center questions, a GenAI `chat` child
span (gen_ai.input.messages / gen_ai.output.messages) and, when the user reacts, a `user_feedback` span
in the same trace with feedback.value. Users behave like users: an answer that misses what they asked
for draws a thumbs-down, a rephrased question or a regenerate click (often), a good one sometimes a
thumbs-up. Needs the `otel` extra (opentelemetry-sdk and the OTLP JSON file exporter); the platform reads
the files without it.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalplatform.demo.app import answer

SERVICE = "nimbus-support"
CASES = Path(__file__).resolve().parents[2] / "datasets" / "demo" / "cases.jsonl"


@dataclass
class TrafficStats:
    turns: int = 0
    sessions: int = 0
    thumbs_down: int = 0
    thumbs_up: int = 0
    rephrased: int = 0
    regenerated: int = 0
    errors: int = 0
    unsatisfied: int = 0


def load_questions(path: Path = CASES) -> list[dict[str, Any]]:
    rows = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
    return [r for r in rows if r.get("question")]


def satisfied(question: dict[str, Any], reply: str) -> bool:
    """What the user would notice: the facts they needed are there and nothing they must not see is."""
    low = reply.lower()
    needs = question.get("must_contain") or []
    forbidden = question.get("must_not_contain") or []
    return all(n.lower() in low for n in needs) and not any(f.lower() in low for f in forbidden)


def _rephrase(text: str, rng: random.Random) -> str:
    lead = rng.choice(["Sorry, let me ask again: ", "To be clear, ", "I mean, ", "Let me rephrase: "])
    return lead + text[0].lower() + text[1:]


def _docs(question: str, category: str) -> list[tuple[str, str]] | None:
    """Retrieval for help-center questions: (article id, first sentence) of the best matches, or None."""
    if category not in ("grounding", "dates", "arithmetic"):
        return None
    from evalplatform.demo.grounded import MIN_ARTICLE_SCORE, retrieve
    from evalplatform.demo.knowledge import load

    return [(a.id, a.sentences[0] if a.sentences else a.title) for a, s in retrieve(load(), question, k=2)
            if s >= MIN_ARTICLE_SCORE]


class _SeededIds:
    """Deterministic trace and span ids (a seeded RNG), so the same seed writes the same traffic."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)

    def generate_span_id(self) -> int:
        return self.rng.getrandbits(64) or 1

    def generate_trace_id(self) -> int:
        return self.rng.getrandbits(128) or 1

    def is_trace_id_random(self) -> bool:
        return True


def write_traffic(path: Path, *, release: str, turns: int, seed: int = 0, start: dt.datetime | None = None,
                  error_rate: float = 0.005, questions: list[dict[str, Any]] | None = None,
                  step_seconds: float = 1.0) -> TrafficStats:
    """Write about `turns` user turns of the demo app at `release` to `path` (OTLP JSON lines)."""
    from opentelemetry.exporter.otlp.json.file import FileSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.trace import SpanKind, Status, StatusCode, set_span_in_context

    rng = random.Random(f"{seed}|{release}")
    questions = questions or load_questions()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    provider = TracerProvider(resource=Resource.create({"service.name": SERVICE, "service.version": release}),
                              id_generator=_SeededIds(rng.getrandbits(32)))
    provider.add_span_processor(BatchSpanProcessor(FileSpanExporter(tmp), max_export_batch_size=512))
    tracer = provider.get_tracer("nimbus.support")
    clock = start or dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=turns * step_seconds + 60)
    stats = TrafficStats()
    model = f"local/{release}"

    def ns(t: dt.datetime) -> int:
        return int(t.timestamp() * 1e9)

    def one_turn(session: str, text: str, category: str, regenerate: bool) -> tuple[str | None, Any, int]:
        nonlocal clock
        stats.turns += 1
        t0 = clock
        clock += dt.timedelta(seconds=step_seconds * (0.5 + rng.random()))
        root = tracer.start_span("support_turn", kind=SpanKind.SERVER, start_time=ns(t0), attributes={
            "openinference.span.kind": "CHAIN", "input.value": text, "session.id": session,
            "tag.tags": [f"category:{category}"], "gen_ai.conversation.id": session})
        if regenerate:
            root.add_event("regenerate", timestamp=ns(t0))
        ctx = set_span_in_context(root)
        docs = _docs(text, category)
        if docs is not None:
            r = tracer.start_span("retrieve", context=ctx, start_time=ns(t0), attributes={
                "openinference.span.kind": "RETRIEVER", "input.value": text})
            for i, (doc_id, content) in enumerate(docs):
                r.set_attribute(f"retrieval.documents.{i}.document.id", doc_id)
                r.set_attribute(f"retrieval.documents.{i}.document.content", content)
            r.end(end_time=ns(t0) + 2_000_000)
        llm = tracer.start_span(f"chat {model}", context=ctx, kind=SpanKind.CLIENT, start_time=ns(t0) + 3_000_000,
                                attributes={"gen_ai.operation.name": "chat", "gen_ai.provider.name": "local",
                                            "gen_ai.request.model": model, "gen_ai.request.temperature": 0.0,
                                            "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [
                                                {"type": "text", "content": text}]}])})
        end = ns(t0) + int(rng.uniform(40, 900) * 1e6)
        reply = None
        if rng.random() < error_rate:
            stats.errors += 1
            llm.set_status(Status(StatusCode.ERROR, "upstream timeout"))
            llm.set_attribute("error.type", "timeout")
            root.set_status(Status(StatusCode.ERROR, "upstream timeout"))
        else:
            reply = answer([{"role": "user", "content": text}], {"temperature": 0.0, "seed": 7, "max_tokens": 400},
                           version=release)
            llm.set_attribute("gen_ai.output.messages", json.dumps([{"role": "assistant", "parts": [
                {"type": "text", "content": reply}], "finish_reason": "stop"}]))
            llm.set_attribute("gen_ai.usage.input_tokens", len(text.split()))
            llm.set_attribute("gen_ai.usage.output_tokens", len(reply.split()))
            root.set_attribute("output.value", reply)
        llm.end(end_time=end - 1_000_000)
        return reply, root, end

    def feedback(root, value: str) -> None:
        at = ns(clock)
        span = tracer.start_span("user_feedback", context=set_span_in_context(root), start_time=at,
                                 attributes={"feedback.value": value})
        span.end(end_time=at + 1000)
        if value == "thumbs_down":
            stats.thumbs_down += 1
        else:
            stats.thumbs_up += 1

    while stats.turns < turns:
        stats.sessions += 1
        session = f"s-{release}-{seed}-{stats.sessions:06d}"
        q = rng.choice(questions)
        text, category = q["question"], q.get("category") or "other"
        reply, root, end = one_turn(session, text, category, regenerate=False)
        ok = reply is not None and satisfied(q, reply)
        follow = rng.random()
        if not ok and follow >= 0.6 and follow < 0.65:
            root.add_event("session.abandoned", timestamp=end)
        root.end(end_time=end)
        if not ok:
            stats.unsatisfied += 1
            if rng.random() < 0.6:
                feedback(root, "thumbs_down")
            if follow < 0.35 and stats.turns < turns:
                stats.rephrased += 1
                _, again, again_end = one_turn(session, _rephrase(text, rng), category, regenerate=False)
                again.end(end_time=again_end)
            elif follow < 0.6 and stats.turns < turns:
                stats.regenerated += 1
                _, again, again_end = one_turn(session, text, category, regenerate=True)
                again.end(end_time=again_end)
        elif rng.random() < 0.25:
            feedback(root, "thumbs_up")
        elif rng.random() < 0.02:
            feedback(root, "thumbs_down")  # some users are never happy
        clock += dt.timedelta(seconds=step_seconds * rng.random())
    provider.shutdown()
    tmp.replace(path)  # the folder only ever sees complete files
    return stats
