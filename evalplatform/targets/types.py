"""What a Python target receives (CaseInput) and may return (TargetResult): typed records, not dicts."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class CaseInput(BaseModel):
    """One turn of one trial, as the target function sees it.

    `messages` are the rendered messages: the target's system prompt, then the transcript so far,
    ending with the user's message for this turn. `fields` are the case's fields (a fresh copy per
    trial: changing them affects nothing else). `seed` is the target's seed plus the repeat index, so
    repeats sample differently while a re-run of the same repeat is reproducible.
    """

    model_config = ConfigDict(frozen=True)

    case_id: str
    messages: list[dict[str, Any]]
    fields: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    repeat: int = 0
    seed: int | None = None
    turn: int = Field(0, description="0-based index of the assistant turn being played")
    model: str | None = Field(None, description="the target's `model:` setting (what --model overrides)")
    params: dict[str, Any] = Field(default_factory=dict)

    @property
    def prompt(self) -> str:
        """The text of the last user message (the question of a single-turn case)."""
        for msg in reversed(self.messages):
            if msg.get("role") == "user":
                content = msg.get("content")
                if isinstance(content, list):  # OpenAI content parts
                    return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
                return str(content or "")
        return ""


class ToolCall(BaseModel):
    """A tool the target called: its name, arguments and (when known) what it returned."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    arguments: dict[str, Any] = Field(default_factory=dict)
    result: Any = None
    error: str | None = None
    id: str | None = None

    @field_validator("arguments", mode="before")
    @classmethod
    def _arguments_json(cls, v: Any) -> Any:
        # OpenAI-style tool calls carry their arguments as a JSON string.
        if isinstance(v, str):
            try:
                v = json.loads(v) if v.strip() else {}
            except ValueError:
                raise ValueError("arguments is a string that is not a JSON object") from None
        if v is None:
            return {}
        return v


class Step(BaseModel):
    """An intermediate step of a pipeline (retrieve, rerank, plan, ...): free data under a name."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(min_length=1)
    latency_ms: float | None = Field(None, ge=0, allow_inf_nan=False)


class TargetResult(BaseModel):
    """What a Python target returns for a turn; plain text is the same as TargetResult(output=text).

    Everything but `output` is optional: say what you know. `latency_ms` is the pipeline's own
    measure (default: the time the call took); `tokens_*` and `cost_usd` feed the cost rules.
    """

    model_config = ConfigDict(extra="forbid")

    output: str
    context: list[Any] = Field(default_factory=list, description="retrieved context (passages, document ids)")
    tool_calls: list[ToolCall] = Field(default_factory=list)
    steps: list[Step] = Field(default_factory=list)
    state: Any = Field(None, description="the final state (JSON), for outcome graders")
    tokens_in: int | None = Field(None, ge=0)
    tokens_out: int | None = Field(None, ge=0)
    cost_usd: float | None = Field(None, ge=0, allow_inf_nan=False)
    latency_ms: float | None = Field(None, ge=0, allow_inf_nan=False)
