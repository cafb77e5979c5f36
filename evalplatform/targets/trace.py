"""A trial's trace: transcript, replies per turn, tool calls, steps, context and final state, as canonical JSON.

The trace is what outcome graders and judges read. The history stores it like an output: the
canonical JSON text once per sha256 (`outputs`), referenced by the result row's `trace_hash`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from evalplatform.models.calls import CallResult
from evalplatform.models.text import unicode_problem

TRACE_VERSION = 1
# A trace is evidence, not a data dump: one this big is a pipeline returning its whole corpus as context.
MAX_TRACE_BYTES = 4 * 1024 * 1024


@dataclass
class TargetCallResult(CallResult):
    """A CallResult with the trial's trace (None for a single-turn call that returned text only)."""

    trace: dict | None = None


class TraceError(ValueError):
    """The trace cannot be stored as JSON (NaN, an unencodable string, too large)."""


def trace_text(trace: dict) -> str:
    """Canonical JSON of a trace (sorted keys, no whitespace): equal traces give equal text and hash."""
    try:
        text = json.dumps(trace, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TraceError(f"the trace is not JSON: {exc}") from None
    problem = unicode_problem(text)
    if problem:
        raise TraceError(f"the trace is {problem}")
    size = len(text.encode("utf-8"))
    if size > MAX_TRACE_BYTES:
        raise TraceError(f"the trace is {size / 2**20:.1f} MiB, over the {MAX_TRACE_BYTES / 2**20:.0f} MiB limit "
                         "(return less context or fewer steps)")
    return text


def new_trace(conversation: bool) -> dict[str, Any]:
    return {"v": TRACE_VERSION, "conversation": conversation, "transcript": [], "turns": [], "tool_calls": [],
            "steps": [], "state": None}


def add_turn(trace: dict, k: int, messages: list[dict], turn: dict[str, Any]) -> None:
    """Record turn k: the messages it was sent (new ones appended to the transcript) and what it returned."""
    seen = len(trace["transcript"])
    trace["transcript"].extend(dict(m) for m in messages[seen:])
    trace["transcript"].append({"role": "assistant", "content": turn["output"], "turn": k})
    for call in turn.pop("tool_calls", []) or []:
        trace["tool_calls"].append({**call, "turn": k})
    for step in turn.pop("steps", []) or []:
        trace["steps"].append({**step, "turn": k})
    if "state" in turn:
        trace["state"] = turn.pop("state")
    trace["turns"].append({"turn": k, **turn})


def sum_known(values: list[Any]) -> Any:
    """The sum of the values that are known; None when none is (unknown is not zero)."""
    known = [v for v in values if v is not None]
    return sum(known) if known else None
