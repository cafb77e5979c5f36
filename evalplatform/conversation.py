"""Multi-turn cases: the `conversation` a case holds, the transcript a trial produces, and turn views for scorers.

A conversation is a list of messages. User (and a leading system) messages are played as written;
an assistant message with `content` is fixed history; an assistant message without `content` is a
turn the target plays, optionally with `expect` (what its reply must or must not say). A
conversation that ends with a user message gets one more turn. The trial's transcript (what was
said, with the target's real replies) is kept in the trace, which scorers and judges read.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from evalplatform.textio import check_regex

CONVERSATION_FIELD = "conversation"
TRACE_COLUMN = "trace"
TRACE_HASH_COLUMN = "trace_hash"
# Set by turn views: the transcript before the reply being scored, shown to judges as the input.
JUDGE_INPUT_COLUMN = "__transcript_before"
MAX_MESSAGES = 200


def _as_list(v: str | list[str] | None) -> list[str]:
    if v is None:
        return []
    return [v] if isinstance(v, str) else list(v)


class Expectation(BaseModel):
    """What one assistant turn must (not) say; every condition given must hold."""

    model_config = ConfigDict(extra="forbid")

    contains: str | list[str] | None = Field(None, description="text(s) the reply must contain")
    not_contains: str | list[str] | None = Field(None, description="text(s) the reply must not contain")
    regex: str | None = Field(None, description="a regular expression the reply must match (searched)")
    not_regex: str | None = Field(None, description="a regular expression the reply must not match")
    case_sensitive: bool = False

    @field_validator("regex", "not_regex")
    @classmethod
    def _compiles(cls, v: str | None) -> str | None:
        return check_regex(v) if v is not None else v

    @model_validator(mode="after")
    def _something(self) -> "Expectation":
        if not any((self.contains, self.not_contains, self.regex, self.not_regex)):
            raise ValueError("an expectation needs at least one of contains, not_contains, regex, not_regex")
        return self

    def problems(self, reply: str) -> list[str]:
        """What the reply violates (empty when it meets the expectation)."""
        hay = reply if self.case_sensitive else reply.lower()
        out = []
        for needle in _as_list(self.contains):
            if (needle if self.case_sensitive else needle.lower()) not in hay:
                out.append(f"missing {needle!r}")
        for needle in _as_list(self.not_contains):
            if (needle if self.case_sensitive else needle.lower()) in hay:
                out.append(f"says {needle!r}")
        if self.regex is not None and not _search(self.regex, reply):
            out.append(f"no match for /{self.regex}/")
        if self.not_regex is not None and _search(self.not_regex, reply):
            out.append(f"forbidden match of /{self.not_regex}/")
        return out


def _search(pattern: str, text: str) -> bool:
    # The engine the suite's regex scorer uses (linear time), so a pattern means the same everywhere.
    return bool(pl.select(pl.lit(text).str.contains(pattern)).item())


class ConversationMessage(BaseModel):
    """One message of a case's conversation."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "user", "assistant"]
    content: str | None = Field(None, description="the text; omit it on an assistant message the target plays")
    expect: Expectation | None = Field(None, description="for a played assistant turn: what its reply must say")

    @model_validator(mode="after")
    def _shape(self) -> "ConversationMessage":
        if self.role != "assistant" and not (self.content or "").strip():
            raise ValueError(f"a {self.role} message needs non-empty content")
        if self.expect is not None and (self.role != "assistant" or self.content is not None):
            raise ValueError("expect belongs on an assistant message without content (a turn the target plays)")
        return self

    @property
    def played(self) -> bool:
        return self.role == "assistant" and self.content is None


def check_conversation(messages: list[ConversationMessage]) -> list[ConversationMessage]:
    """The rules a list of messages must follow to be played; ValueError naming the message otherwise."""
    if not messages:
        raise ValueError("a conversation needs at least one user message")
    if len(messages) > MAX_MESSAGES:
        raise ValueError(f"{len(messages)} messages, more than {MAX_MESSAGES}")
    for i, m in enumerate(messages):
        if m.role == "system" and i != 0:
            raise ValueError(f"[{i}]: a system message may only come first")
        if m.played:
            before = next((p for p in reversed(messages[:i]) if p.role != "system"), None)
            if before is None or before.role != "user":
                raise ValueError(f"[{i}]: a played assistant turn must follow a user message")
    if not any(m.role == "user" for m in messages):
        raise ValueError("a conversation needs at least one user message")
    return messages


def parse_conversation(value: Any) -> list[ConversationMessage]:
    """A case's `conversation` cell (JSON text in the cases frame, or a list) as validated messages."""
    if isinstance(value, str):
        value = json.loads(value)
    if not isinstance(value, list):
        raise ValueError("a conversation is a list of messages")
    return check_conversation([ConversationMessage.model_validate(m) for m in value])


def turns_of(conversation: list[ConversationMessage]) -> list[ConversationMessage]:
    """The played turns, in order; a conversation ending with a user message gets a final turn."""
    slots = [m for m in conversation if m.played]
    if conversation[-1].role == "user":
        slots.append(ConversationMessage(role="assistant"))
    return slots


class Player:
    """Walks a conversation: `next_messages()` gives what to send for the next turn, `reply()` records it."""

    def __init__(self, conversation: list[ConversationMessage], system_prompt: str | None):
        self._script = list(conversation)
        self.transcript: list[dict] = []
        if system_prompt and conversation[0].role != "system":
            self.transcript.append({"role": "system", "content": system_prompt})
        self._pos = 0
        self.n_turns = len(turns_of(conversation))
        self.turn = 0

    def next_messages(self) -> list[dict] | None:
        """The messages for the next turn (the transcript so far), or None when the conversation is over."""
        while self._pos < len(self._script) and not self._script[self._pos].played:
            m = self._script[self._pos]
            self.transcript.append({"role": m.role, "content": m.content})
            self._pos += 1
        if self.turn >= self.n_turns:
            return None
        return [dict(m) for m in self.transcript]

    def reply(self, text: str) -> None:
        self.transcript.append({"role": "assistant", "content": text})
        if self._pos < len(self._script) and self._script[self._pos].played:
            self._pos += 1
        self.turn += 1


# -- reading traces ---------------------------------------------------------------------------------


def load_trace(text: str | None) -> dict | None:
    if text is None:
        return None
    doc = json.loads(text)
    return doc if isinstance(doc, dict) else None


def replies(trace: dict | None, output: str | None) -> list[str]:
    """The target's replies, turn by turn (a single-turn text-only call: its one output)."""
    if trace and trace.get("turns"):
        return [str(t.get("output", "")) for t in trace["turns"]]
    return [output] if output is not None else []


def render(messages: list[dict]) -> str:
    """A transcript as text for scorers and judges (system messages left out: they are configuration)."""
    lines = []
    for m in messages:
        if m.get("role") == "system":
            continue
        lines.append(f"{m.get('role')}: {m.get('content') or ''}")
    return "\n\n".join(lines)


def before_turn(trace: dict | None, k: int) -> str | None:
    """The rendered transcript before the target's k-th (0-based) reply; None unless the case is a conversation."""
    if not trace or not trace.get("conversation"):
        return None
    transcript = trace.get("transcript") or []
    seen = -1
    for i, m in enumerate(transcript):
        if m.get("role") == "assistant" and m.get("turn") is not None:
            seen += 1
            if seen == k:
                return render(transcript[:i])
    return render(transcript)


# -- scorers on a given turn or the whole transcript -------------------------------------------------

TurnRef = int | Literal["last", "each", "transcript"]


def turn_view(frame: pl.DataFrame, turn: TurnRef) -> pl.DataFrame:
    """The rows with `output` set to what the scorer addresses (null where it does not exist) and the
    judge's input column; `__view_src` is the frame row each came from ("each": one row per reply)."""
    traces = [load_trace(t) for t in frame[TRACE_COLUMN].to_list()] if TRACE_COLUMN in frame.columns else \
        [None] * frame.height
    outputs = frame["output"].to_list()
    rows: list[int] = []
    texts: list[str | None] = []
    befores: list[str | None] = []
    for i, (trace, out) in enumerate(zip(traces, outputs)):
        said = replies(trace, out)
        if turn == "transcript":
            picked = [(render(trace["transcript"]), None)] if trace and trace.get("transcript") else [(None, None)]
        elif turn == "each":
            picked = [(r, before_turn(trace, k)) for k, r in enumerate(said)]
        elif turn == "last":
            picked = [(out, before_turn(trace, len(said) - 1))]
        else:
            k = int(turn) - 1
            picked = [(said[k], before_turn(trace, k))] if k < len(said) else [(None, None)]
        for text, before in picked:
            rows.append(i)
            texts.append(text)
            befores.append(before)
    base = frame.with_row_index("__view_src")
    view = pl.DataFrame({"__view_src": pl.Series(rows, dtype=pl.UInt32),
                         "__view_output": pl.Series(texts, dtype=pl.Utf8),
                         JUDGE_INPUT_COLUMN: pl.Series(befores, dtype=pl.Utf8)})
    out = view.join(base.drop(*[c for c in (JUDGE_INPUT_COLUMN,) if c in base.columns]), on="__view_src",
                    how="left", maintain_order="left")
    out = out.with_columns(pl.col("__view_output").alias("output")).drop("__view_output")
    if "__row" in out.columns:
        # Scorers key their joins on __row: with one row per reply, each needs its own.
        out = out.with_columns(pl.int_range(pl.len(), dtype=pl.UInt32).alias("__row"))
    return out


def missing_reason(turn: TurnRef) -> str:
    if turn == "transcript":
        return "no transcript was recorded (a single-turn case whose target returned text only)"
    return f"the trial has no assistant turn {turn}"


def score_rows(scorer: Any, frame: pl.DataFrame, context: Any = None) -> pl.DataFrame:
    """`scorer.score_in_run(frame, context)`, on the turn the scorer addresses (`turn:`); rows keep their order.

    A turn that does not exist scores null (an error, never a pass). With `turn: each` a row passes
    only when every reply passes: its score is the lowest, its explanation the first failing turn's; its
    scorer usage (a judge's calls, tokens, cost, latency) is the sum over the turns judged.
    """
    from evalplatform.results import SCORER_USAGE

    def score(rows: pl.DataFrame) -> pl.DataFrame:
        run = getattr(scorer, "score_in_run", None)
        return run(rows, context) if run is not None else scorer.score(rows)

    turn = getattr(scorer, "turn", "last")
    if turn == "last":
        return score(frame)
    view = turn_view(frame, turn)
    present = view.filter(pl.col("output").is_not_null())
    scored = score(present) if present.height else present.with_columns(
        pl.lit(None, dtype=pl.Float64).alias("score"), pl.lit(None, dtype=pl.Utf8).alias("explanation"))
    usage = [c for c in SCORER_USAGE if c in scored.columns]
    scored = scored.with_row_index("__turn_ix").select("__view_src", "__turn_ix", "score", "explanation", *usage)
    rolled = (scored.sort(["__view_src", "score", "__turn_ix"], nulls_last=False)
              .group_by("__view_src", maintain_order=True)
              .agg(pl.col("score").first(), pl.col("explanation").first(),
                   pl.col("score").is_null().any().alias("__undecided"), pl.len().alias("__n"),
                   *[pl.when(pl.col(c).is_not_null().any()).then(pl.col(c).sum()).alias(c) for c in usage]))
    if turn == "each":
        rolled = rolled.with_columns(pl.when(pl.col("__n") > 1).then(
            pl.concat_str([pl.lit("a turn: "), pl.col("explanation")])).otherwise(pl.col("explanation"))
            .alias("explanation"))
    rolled = rolled.with_columns(pl.when(pl.col("__undecided")).then(pl.lit(None, dtype=pl.Float64))
                                 .otherwise(pl.col("score")).alias("score"))
    base = frame.with_row_index("__view_src").drop("score", "explanation", *usage, strict=False)
    out = base.join(rolled.select("__view_src", "score", "explanation", *usage), on="__view_src", how="left",
                    maintain_order="left")
    out = out.with_columns(pl.when(pl.col("score").is_null() & pl.col("explanation").is_null())
                           .then(pl.lit(f"{getattr(scorer, 'id', 'scorer')}: {missing_reason(turn)}"))
                           .otherwise(pl.col("explanation")).alias("explanation"))
    return out.drop("__view_src")


def judge_inputs(frame: pl.DataFrame, input_field: str) -> list[str]:
    """What a judge is shown as the input: the transcript before the judged reply on a multi-turn
    trial (so the judge sees the whole conversation), else the case's `input_field`."""
    fallback = (frame[input_field].cast(pl.Utf8).fill_null("").to_list() if input_field in frame.columns
                else [""] * frame.height)
    if JUDGE_INPUT_COLUMN in frame.columns:
        before = frame[JUDGE_INPUT_COLUMN].to_list()
    elif TRACE_COLUMN in frame.columns:
        before = []
        for text, out in zip(frame[TRACE_COLUMN].to_list(), frame["output"].to_list()):
            trace = load_trace(text)
            before.append(before_turn(trace, len(replies(trace, out)) - 1))
    else:
        return fallback
    return [b if b is not None else f for b, f in zip(before, fallback)]


def is_conversation() -> pl.Expr:
    """Rows of cases that hold a conversation (for "this field is not needed there" checks)."""
    return pl.col(CONVERSATION_FIELD).is_not_null()
