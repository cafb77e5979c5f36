"""OTLP JSON traces (Collector file exporter, Python SDK's OTLP JSON file exporter) read into trace rows.

One line is one `TracesData` ({"resourceSpans": [...]}), encoded as the OTLP JSON mapping says:
lowerCamelCase keys, hex trace ids, enums as integers, 64-bit integers as strings. Spans are grouped by
trace id, so one conversation turn's spans (agent, retrieval, LLM call, a later feedback span) become one
row. The prompt and reply come from the GenAI semantic conventions (`gen_ai.input.messages` /
`gen_ai.output.messages`, the older `gen_ai.prompt` / `gen_ai.completion` attributes and
`gen_ai.user.message` / `gen_ai.choice` / `gen_ai.content.*` span events) or from OpenInference
(`input.value`, `output.value`, `llm.input_messages.*`, `retrieval.documents.*`). Traces without any GenAI
or OpenInference span (plain HTTP or database traces) are skipped and counted. Only JSON is parsed here:
no OpenTelemetry package is needed at run time.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Iterable

import msgspec
import polars as pl

# -- the OTLP JSON shapes we read (unknown fields are ignored) --------------------------------------


class ArrayValue(msgspec.Struct):
    values: list["AnyValue"] = []


class KeyValueList(msgspec.Struct):
    values: list["KeyValue"] = []


class AnyValue(msgspec.Struct, rename="camel"):
    string_value: str | None = None
    bool_value: bool | None = None
    int_value: int | str | None = None
    double_value: float | str | None = None
    array_value: ArrayValue | None = None
    kvlist_value: KeyValueList | None = None
    bytes_value: str | None = None


class KeyValue(msgspec.Struct):
    key: str = ""
    value: AnyValue | None = None


class Event(msgspec.Struct, rename="camel"):
    time_unix_nano: int | str | None = None
    name: str = ""
    attributes: list[KeyValue] = []


class Status(msgspec.Struct):
    code: int | str | None = None
    message: str | None = None


class Span(msgspec.Struct, rename="camel"):
    trace_id: str = ""
    span_id: str = ""
    parent_span_id: str = ""
    name: str = ""
    start_time_unix_nano: int | str | None = None
    end_time_unix_nano: int | str | None = None
    attributes: list[KeyValue] = []
    events: list[Event] = []
    status: Status | None = None


class ScopeSpans(msgspec.Struct):
    spans: list[Span] = []


class Resource(msgspec.Struct):
    attributes: list[KeyValue] = []


class ResourceSpans(msgspec.Struct, rename="camel"):
    resource: Resource | None = None
    scope_spans: list[ScopeSpans] = []


class TracesData(msgspec.Struct, rename="camel"):
    resource_spans: list[ResourceSpans] | None = None


DECODER = msgspec.json.Decoder(TracesData)


def value_of(v: AnyValue | None) -> Any:
    """An AnyValue as plain Python (int64 strings as int, arrays as lists, kvlists as dicts)."""
    if v is None:
        return None
    if v.string_value is not None:
        return v.string_value
    if v.bool_value is not None:
        return v.bool_value
    if v.int_value is not None:
        try:
            return int(v.int_value)
        except ValueError:
            return None
    if v.double_value is not None:
        try:
            return float(v.double_value)
        except ValueError:
            return None
    if v.array_value is not None:
        return [value_of(x) for x in v.array_value.values]
    if v.kvlist_value is not None:
        return {kv.key: value_of(kv.value) for kv in v.kvlist_value.values}
    return v.bytes_value


def attributes(kvs: Iterable[KeyValue]) -> dict[str, Any]:
    return {kv.key: value_of(kv.value) for kv in kvs}


# -- semantic conventions ------------------------------------------------------------------------

FEEDBACK_EVENTS = {"feedback", "user_feedback", "user.feedback", "gen_ai.user.feedback", "gen_ai.evaluation.result"}
FEEDBACK_KEYS = ("feedback.value", "feedback", "user.feedback", "user_feedback", "gen_ai.evaluation.score.label",
                 "value", "score", "gen_ai.evaluation.score.value")
_DOWN = {"down", "thumbs_down", "thumbsdown", "negative", "bad", "-1", "0", "false", "dislike"}
_UP = {"up", "thumbs_up", "thumbsup", "positive", "good", "1", "true", "like"}
_OI_INDEXED = re.compile(r"^(llm\.(?:input|output)_messages|retrieval\.documents)\.(\d+)\.(.+)$")
_GENAI_MARKERS = ("gen_ai.", "llm.", "openinference.", "input.value", "output.value", "retrieval.documents")
STATUS_ERROR = {2, "2", "STATUS_CODE_ERROR"}


def feedback_value(raw: Any) -> str | None:
    """'up' / 'down' from the many ways apps spell a thumb (strings, +1/-1, booleans, scores 0/1)."""
    if raw is None:
        return None
    if isinstance(raw, bool):
        return "up" if raw else "down"
    if isinstance(raw, (int, float)):
        return "up" if raw > 0 else "down"
    text = str(raw).strip().lower()
    if text in _DOWN:
        return "down"
    if text in _UP:
        return "up"
    return None


def _message_text(content: Any) -> str | None:
    """Text of a message's content: a string, OpenAI content parts, or GenAI `parts`."""
    if content is None:
        return None
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [p.get("content") or p.get("text") for p in content if isinstance(p, dict)]
        texts = [t for t in texts if isinstance(t, str)]
        return "\n".join(texts) if texts else None
    return None


def _messages(raw: Any) -> list[dict]:
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return [{"role": "user", "content": raw}]
    if isinstance(raw, dict):
        raw = [raw]
    return [m for m in raw if isinstance(m, dict)] if isinstance(raw, list) else []


def _last_user_text(raw: Any) -> str | None:
    for m in reversed(_messages(raw)):
        if m.get("role") in (None, "user", "human"):
            text = _message_text(m.get("parts", m.get("content")))
            if text is not None:
                return text
    return None


def _first_reply_text(raw: Any) -> str | None:
    for m in _messages(raw):
        if m.get("role") in (None, "assistant", "model", "ai"):
            inner = m.get("message") if isinstance(m.get("message"), dict) else m
            text = _message_text(inner.get("parts", inner.get("content")))
            if text is not None:
                return text
    return None


def _documents(raw: Any) -> list[str]:
    """GenAI `gen_ai.retrieval.documents`: a JSON array of {id, score, content}; strings are documents too."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return [raw]
    out = []
    for d in raw if isinstance(raw, list) else []:
        if isinstance(d, str):
            out.append(d)
        elif isinstance(d, dict):
            text = d.get("content") or d.get("document.content") or d.get("text") or d.get("id")
            if text is not None:
                out.append(str(text))
    return out


def _truthy(v: Any) -> bool:
    return v is True or (isinstance(v, str) and v.strip().lower() in ("true", "1", "yes"))


def _nanos(v: int | str | None) -> int | None:
    if v is None:
        return None
    try:
        return int(v)
    except ValueError:
        return None


# -- spans to rows -----------------------------------------------------------------------------

# Which span's input/output stands for the turn: the root, then agent/chain spans, then LLM calls.
_RANK_ROOT, _RANK_AGENT, _RANK_LLM, _RANK_OTHER = 0, 1, 2, 3
_SPAN_COLUMNS = {
    "trace_id": pl.Utf8, "rank": pl.Int8, "start": pl.Int64, "end": pl.Int64, "genai": pl.Boolean,
    "input": pl.Utf8, "output": pl.Utf8, "retrieval": pl.Boolean, "docs": pl.Utf8, "model": pl.Utf8,
    "session_id": pl.Utf8, "release": pl.Utf8, "service": pl.Utf8, "feedback": pl.Utf8, "error": pl.Boolean,
    "error_message": pl.Utf8, "tags": pl.Utf8, "regeneration": pl.Boolean, "abandoned": pl.Boolean,
    "turn": pl.Int64, "feedback_only": pl.Boolean,
}
_NAMES = tuple(_SPAN_COLUMNS)
# List fields travel as one text per span (joined by a unit separator) and are split once, in polars.
SEP = "\x1f"


@dataclass
class SpanRows:
    """One tuple per span, turned into a frame every CHUNK spans (Python objects do not pile up)."""

    CHUNK = 250_000
    rows: list[tuple] = field(default_factory=list)
    frames: list[pl.DataFrame] = field(default_factory=list)
    n_spans: int = 0

    def flush(self) -> None:
        if self.rows:
            self.frames.append(pl.DataFrame(self.rows, schema=_SPAN_COLUMNS, orient="row"))
            self.rows = []

    def frame(self) -> pl.DataFrame:
        self.flush()
        return pl.concat(self.frames) if self.frames else pl.DataFrame(schema=_SPAN_COLUMNS)


def add_traces_data(data: TracesData, rows: SpanRows) -> None:
    """Every span of one decoded line, as span rows (the fields each span states about its turn)."""
    for rs in data.resource_spans or ():
        res = attributes(rs.resource.attributes) if rs.resource else {}
        service, release = _str(res.get("service.name")), _str(res.get("service.version"))
        for ss in rs.scope_spans:
            for span in ss.spans:
                rows.rows.append(_span_row(span, service, release))
        if len(rows.rows) >= rows.CHUNK:
            rows.flush()
    rows.n_spans = sum(f.height for f in rows.frames) + len(rows.rows)


_INDEXED_PREFIXES = ("llm.input_messages.", "llm.output_messages.", "retrieval.documents.")


def _span_row(span: Span, service: str | None, release: str | None) -> tuple:
    a: dict[str, Any] = {}
    indexed: dict[str, dict[int, dict[str, Any]]] | None = None
    genai = False
    for kv in span.attributes:
        key, v = kv.key, kv.value
        if v is None:
            continue
        value = v.string_value if v.string_value is not None else value_of(v)
        if not genai and key.startswith(_GENAI_MARKERS):
            genai = True
        if key.startswith(_INDEXED_PREFIXES):
            m = _OI_INDEXED.match(key)
            if m:
                indexed = indexed or {}
                indexed.setdefault(m.group(1), {}).setdefault(int(m.group(2)), {})[m.group(3)] = value
                continue
        a[key] = value
    get = a.get
    oi_kind = get("openinference.span.kind")
    oi_kind = oi_kind.upper() if isinstance(oi_kind, str) else ""
    operation = get("gen_ai.operation.name") or ""
    input_text = get("input.value")
    output_text = get("output.value")
    if not isinstance(input_text, str):
        input_text = None
    if not isinstance(output_text, str):
        output_text = None
    if input_text is None and "gen_ai.input.messages" in a:
        input_text = _last_user_text(a["gen_ai.input.messages"])
    if output_text is None and "gen_ai.output.messages" in a:
        output_text = _first_reply_text(a["gen_ai.output.messages"])
    if input_text is None and "gen_ai.prompt" in a:
        input_text = _last_user_text(a["gen_ai.prompt"])
    if output_text is None and isinstance(get("gen_ai.completion"), str):
        output_text = _first_reply_text(a["gen_ai.completion"]) or a["gen_ai.completion"]
    if indexed:
        msgs = indexed.get("llm.input_messages")
        if input_text is None and msgs:
            users = [m for _, m in sorted(msgs.items()) if m.get("message.role", "user") == "user"]
            input_text = next((m.get("message.content") for m in reversed(users) if m.get("message.content")), None)
        out_msgs = indexed.get("llm.output_messages")
        if output_text is None and out_msgs:
            output_text = next((m.get("message.content") for _, m in sorted(out_msgs.items())
                                if m.get("message.content") is not None), None)
    if input_text is None or output_text is None:
        for key in [k for k in a if k.startswith("gen_ai.prompt.") and k.endswith(".content")]:
            genai = True
            if input_text is None and get(key.replace(".content", ".role"), "user") == "user":
                input_text = a[key]
        if output_text is None and isinstance(get("gen_ai.completion.0.content"), str):
            output_text, genai = a["gen_ai.completion.0.content"], True

    feedback, regeneration, abandoned, error_message = None, False, False, None
    for event in span.events:
        ea = attributes(event.attributes)
        name = event.name
        if name in ("gen_ai.user.message", "gen_ai.content.prompt") and input_text is None:
            input_text = _message_text(ea.get("content")) or ea.get("gen_ai.prompt")
            genai = True
        elif name in ("gen_ai.choice", "gen_ai.content.completion") and output_text is None:
            msg = ea.get("message")
            if isinstance(msg, str):
                try:
                    msg = json.loads(msg)
                except ValueError:
                    msg = {"content": msg}
            output_text = (_message_text(msg.get("content")) if isinstance(msg, dict) else None) \
                or ea.get("message.content") or ea.get("gen_ai.completion")
            genai = True
        elif name in FEEDBACK_EVENTS or name.endswith(".feedback"):
            if name != "gen_ai.evaluation.result" or str(ea.get("gen_ai.evaluation.name", "")).lower() in (
                    "user_feedback", "feedback", "thumbs"):
                feedback = next((f for f in (feedback_value(ea.get(k)) for k in FEEDBACK_KEYS) if f), feedback)
        elif name in ("regenerate", "regeneration", "app.regenerate"):
            regeneration = True
        elif name in ("session.abandoned", "abandoned"):
            abandoned = True
        elif name == "exception" and error_message is None:
            error_message = ea.get("exception.message") or ea.get("exception.type")
    has_feedback_attr = "feedback.value" in a or "user.feedback" in a
    # A span that only carries the user's reaction (sent after the reply) is not part of the turn's timing.
    feedback_only = span.name in ("feedback", "user_feedback") or (has_feedback_attr and not genai)
    if feedback_only or has_feedback_attr:
        feedback = next((f for f in (feedback_value(get(k)) for k in FEEDBACK_KEYS) if f), feedback)
    if "evalplatform.regeneration" in a or "app.regenerate" in a:
        regeneration = regeneration or _truthy(get("evalplatform.regeneration")) or _truthy(get("app.regenerate"))
    if "session.abandoned" in a:
        abandoned = abandoned or _truthy(a["session.abandoned"])

    retrieval = (oi_kind == "RETRIEVER" or operation == "retrieval" or "gen_ai.retrieval.documents" in a
                 or bool(indexed and "retrieval.documents" in indexed))
    docs = None
    if retrieval:
        found = [str(d.get("document.content") or d.get("document.id") or "") for _, d in
                 sorted((indexed or {}).get("retrieval.documents", {}).items())]
        found += _documents(get("gen_ai.retrieval.documents"))
        docs = SEP.join(d.replace(SEP, " ") for d in found)

    status = span.status
    error = status is not None and status.code in STATUS_ERROR
    if error:
        error_message = error_message or status.message or get("error.type") or "error status"
    elif get("error.type"):
        error, error_message = True, str(a["error.type"])

    tags = None
    if "tag.tags" in a or "evalplatform.tags" in a or "evalplatform.category" in a:
        found_tags: list[str] = []
        for key in ("tag.tags", "evalplatform.tags"):
            raw = get(key)
            if isinstance(raw, str):
                raw = [t.strip() for t in raw.split(",")]
            if isinstance(raw, list):
                found_tags += [str(t) for t in raw if t not in (None, "")]
        if get("evalplatform.category"):
            found_tags.append(f"category:{a['evalplatform.category']}")
        tags = SEP.join(found_tags) if found_tags else None

    if not span.parent_span_id:
        rank = _RANK_ROOT
    elif oi_kind in ("AGENT", "CHAIN") or operation in ("invoke_agent", "invoke_workflow"):
        rank = _RANK_AGENT
    elif oi_kind == "LLM" or operation in ("chat", "text_completion", "generate_content"):
        rank = _RANK_LLM
    else:
        rank = _RANK_OTHER
    model = get("gen_ai.request.model") or get("gen_ai.response.model") or get("llm.model_name")
    session = get("gen_ai.conversation.id") or get("session.id")
    turn = get("evalplatform.turn")
    return (span.trace_id.lower(), rank, _nanos(span.start_time_unix_nano), _nanos(span.end_time_unix_nano), genai,
            _str(input_text), _str(output_text), retrieval, docs, _str(model), _str(session), release, service,
            feedback, error, _str(error_message), tags, regeneration, abandoned,
            turn if isinstance(turn, int) and not isinstance(turn, bool) else None, feedback_only)


def _str(v: Any) -> str | None:
    return None if v is None else v if isinstance(v, str) else str(v)


def spans_to_traces(spans: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """One row per trace id that has a GenAI/OpenInference span; returns (rows, traces skipped)."""
    if spans.height == 0:
        return pl.DataFrame(), 0
    ordered = spans.filter(pl.col("trace_id") != "").with_columns(
        pl.when(pl.col("docs") == "").then(pl.lit([], dtype=pl.List(pl.Utf8)))
        .otherwise(pl.col("docs").str.split(SEP)).alias("docs"),
        pl.col("tags").str.split(SEP).alias("tags"),
    ).sort(["trace_id", "rank", "start"], nulls_last=True)

    def first(name: str) -> pl.Expr:
        return pl.col(name).drop_nulls().first().alias(name)

    grouped = ordered.group_by("trace_id", maintain_order=True).agg(
        pl.col("genai").any().alias("genai"),
        pl.col("start").filter(~pl.col("feedback_only")).min().alias("start"),
        pl.col("end").filter(~pl.col("feedback_only")).max().alias("end"),
        first("input"),
        # The turn's reply: the highest-ranked span's output (the root's, else the last LLM call's).
        pl.col("output").drop_nulls().first().alias("output"),
        pl.col("retrieval").any().alias("retrieval"),
        pl.col("docs").drop_nulls().list.explode(keep_nulls=False, empty_as_null=False).alias("docs"),
        first("model"), first("session_id"), first("release"), first("service"), first("turn"),
        pl.col("feedback").drop_nulls().alias("feedbacks"),
        pl.col("error").any().alias("error_status"),
        first("error_message"),
        pl.col("tags").drop_nulls().list.explode(keep_nulls=False, empty_as_null=False)
        .unique(maintain_order=True).alias("tags"),
        pl.col("regeneration").any().alias("is_regeneration"),
        pl.col("abandoned").any().alias("abandoned"),
    )
    skipped = grouped.filter(~pl.col("genai")).height
    kept = grouped.filter(pl.col("genai"))
    rows = kept.select(
        pl.col("trace_id"),
        pl.from_epoch(pl.col("start"), time_unit="ns").dt.cast_time_unit("us").dt.replace_time_zone("UTC")
        .alias("timestamp"),
        pl.col("session_id"), pl.col("turn"), pl.col("input"), pl.col("output"),
        pl.when(pl.col("retrieval")).then(pl.col("docs").list.eval(pl.element().filter(pl.element() != "")))
        .otherwise(pl.lit(None, dtype=pl.List(pl.Utf8))).alias("retrieved_context"),
        pl.col("model"), pl.col("release"), pl.col("service"),
        ((pl.col("end") - pl.col("start")) / 1e6).alias("latency_ms"),
        pl.when(pl.col("feedbacks").list.contains("down")).then(pl.lit("down"))
        .when(pl.col("feedbacks").list.contains("up")).then(pl.lit("up")).otherwise(None).alias("feedback"),
        pl.when(pl.col("abandoned")).then(pl.lit(["abandoned"])).otherwise(pl.lit([], dtype=pl.List(pl.Utf8)))
        .alias("signals"),
        pl.when(pl.col("error_status")).then(pl.lit("error")).otherwise(pl.lit("ok")).alias("status"),
        pl.when(pl.col("error_status")).then(pl.col("error_message")).otherwise(None).alias("error"),
        pl.col("tags"), pl.col("is_regeneration"),
    )
    return rows, skipped
