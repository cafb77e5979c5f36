"""The trace row: one production turn (one trace id) as a row, its columns, and the failure signal vocabulary.

Plain trace files (JSONL or Parquet) hold these rows directly; OTLP JSON files are read into them
(evalplatform.traces.otlp). `datasets/schema/trace.schema.json` is exported from `TraceRow`.
"""

from __future__ import annotations

from typing import Any, Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

# Failure signals a trace can carry. Explicit ones come from the file (a `signals` list, feedback
# events, status); `regenerated` and `rephrased` are also derived from the session (signals.py).
SIGNALS = ("thumbs_down", "regenerated", "rephrased", "empty_retrieval", "error", "abandoned")
FEEDBACK = ("up", "down")
STATUSES = ("ok", "error")
REQUIRED = ("trace_id", "timestamp", "input")

# The typed frame every reader produces (after validation); list columns stay lists.
COLUMNS: dict[str, pl.DataType] = {
    "trace_id": pl.Utf8(),
    "timestamp": pl.Datetime("us", "UTC"),
    "session_id": pl.Utf8(),
    "turn": pl.Int64(),
    "input": pl.Utf8(),
    "output": pl.Utf8(),
    "retrieved_context": pl.List(pl.Utf8()),
    "model": pl.Utf8(),
    "release": pl.Utf8(),
    "service": pl.Utf8(),
    "latency_ms": pl.Float64(),
    "feedback": pl.Utf8(),
    "signals": pl.List(pl.Utf8()),
    "status": pl.Utf8(),
    "error": pl.Utf8(),
    "tags": pl.List(pl.Utf8()),
    "is_regeneration": pl.Boolean(),
}

# What a plain file's value may be, per column, before it is typed: the Great Expectations type check.
# (Python type names of JSON values; Parquet columns are checked by their dtype.)
JSON_TYPES: dict[str, tuple[str, ...]] = {
    "trace_id": ("str",),
    "timestamp": ("str", "int", "float"),
    "session_id": ("str",),
    "turn": ("int",),
    "input": ("str",),
    "output": ("str",),
    "retrieved_context": ("list",),
    "model": ("str",),
    "release": ("str",),
    "service": ("str",),
    "latency_ms": ("int", "float"),
    "feedback": ("str",),
    "signals": ("list",),
    "status": ("str",),
    "error": ("str",),
    "tags": ("list",),
    "is_regeneration": ("bool",),
}


class TraceRow(BaseModel):
    """One row of a plain trace file (JSONL line or Parquet row). Unknown fields are ignored."""

    model_config = ConfigDict(extra="allow")

    trace_id: str = Field(min_length=1, max_length=256, description="Unique per trace (an OTLP trace id, a request id).")
    timestamp: str | float = Field(description="When the turn started: ISO 8601 with a time zone (2026-11-30T10:00:00Z) "
                                                "or seconds since the Unix epoch. Parquet: a timestamp column.")
    session_id: str | None = Field(None, description="The conversation; regenerations and rephrasings are found "
                                                     "within it (the next two turns).")
    turn: int | None = Field(None, description="Position in the session; turns are ordered by timestamp without it.")
    input: str = Field(description="The user's message.")
    output: str | None = Field(None, description="The reply; null only for an errored turn.")
    retrieved_context: list[str] | None = Field(
        None, description="Documents retrieval returned: null when no retrieval ran, [] when it returned nothing "
                          "(the empty_retrieval signal).")
    model: str | None = Field(None, description="The model that answered (litellm string or provider id).")
    release: str | None = Field(None, description="The app release (service.version): monitors restart their "
                                                  "always-valid bound per release.")
    service: str | None = Field(None, description="The app (service.name); a shared folder is split by it.")
    latency_ms: float | None = Field(None, ge=0)
    feedback: Literal["up", "down"] | None = Field(None, description="The user's thumbs; down is a failure signal.")
    signals: list[Literal["thumbs_down", "regenerated", "rephrased", "empty_retrieval", "error", "abandoned"]] | None \
        = Field(None, description="Failure signals the app recorded itself (abandoned sessions, regenerate clicks).")
    status: Literal["ok", "error"] | None = Field(None, description="error: the turn failed (the error signal).")
    error: str | None = Field(None, description="The error message of a failed turn.")
    tags: list[str] | None = Field(None, description='Labels such as "category:dates"; suite scorers select traces '
                                                     "by them as they select cases.")
    is_regeneration: bool | None = Field(None, description="This turn regenerates the previous answer (a "
                                                           "regenerate click): the previous turn gets `regenerated`.")


def empty_frame() -> pl.DataFrame:
    return pl.DataFrame(schema=COLUMNS)


def trace_json_schema() -> dict[str, Any]:
    return TraceRow.model_json_schema()
