"""The `expect` of each turn of a conversation case, checked against the reply the target gave at that turn."""

from __future__ import annotations

from typing import Literal

import polars as pl
from pydantic import model_validator

from evalplatform.conversation import CONVERSATION_FIELD, TRACE_COLUMN, load_trace, parse_conversation, replies, \
    turns_of
from evalplatform.scorers.base import ScorerBase, register


@register
class TurnExpectations(ScorerBase):
    """Score = the share of a conversation's turns with an `expect` whose reply meets it (all of them at the
    default threshold 1.0). Applies to conversation cases; a case without one is an error."""

    type: Literal["turn_expectations"] = "turn_expectations"

    @model_validator(mode="after")
    def _whole_conversation(self) -> "TurnExpectations":
        if self.turn != "last":
            raise ValueError("turn_expectations checks every turn that has an expect; remove `turn`")
        return self

    def columns_needed(self) -> list[str]:
        return [CONVERSATION_FIELD]

    def score(self, frame: pl.DataFrame) -> pl.DataFrame:
        traces = frame[TRACE_COLUMN].to_list() if TRACE_COLUMN in frame.columns else [None] * frame.height
        convs = frame[CONVERSATION_FIELD].to_list() if CONVERSATION_FIELD in frame.columns else [None] * frame.height
        scores: list[float | None] = []
        whys: list[str | None] = []
        for conv, trace_text, output in zip(convs, traces, frame["output"].to_list()):
            if conv is None:
                scores.append(None)
                whys.append("the case has no conversation")
                continue
            slots = turns_of(parse_conversation(conv))
            said = replies(load_trace(trace_text), output)
            checked, failed = 0, []
            for k, slot in enumerate(slots):
                if slot.expect is None:
                    continue
                checked += 1
                problems = ["no reply"] if k >= len(said) else slot.expect.problems(said[k])
                if problems:
                    failed.append(f"turn {k + 1}: {', '.join(problems)}")
            if not checked:
                scores.append(None)
                whys.append("no turn of the conversation has an expect")
                continue
            scores.append((checked - len(failed)) / checked)
            whys.append("; ".join(failed) or None)
        return frame.with_columns(pl.Series("score", scores, dtype=pl.Float64),
                                  pl.Series("explanation", whys, dtype=pl.Utf8))
