"""The judge's reply: structured JSON, reasoning before verdict, validated; anything else is an error, not a verdict."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from evalplatform.textio import loads_json


class Verdict(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reasoning: str = Field(min_length=1)
    verdict: Literal["PASS", "FAIL"]


class Preference(BaseModel):
    """A pairwise reply: which of the two responses (A shown first, B second) better meets the rubric."""

    model_config = ConfigDict(extra="forbid")

    reasoning: str = Field(min_length=1)
    winner: Literal["A", "B"]


class ReplyError(ValueError):
    """The reply was not the required JSON object: the outcome is `error`."""


# Chat models often wrap JSON in a ```json fence despite being told not to; that wrapper alone is tolerated.
_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)


def _parse(text: str | None, model: type[BaseModel], first_key: str):
    if text is None or not text.strip():
        raise ReplyError("empty judge reply")
    body = text.strip()
    m = _FENCE.match(body)
    if m:
        body = m.group(1)
    try:
        obj = loads_json(body)  # a verdict given twice is no verdict
    except ValueError as exc:
        raise ReplyError(f"judge reply is not JSON ({getattr(exc, 'msg', exc)}): {body[:80]!r}") from None
    if not isinstance(obj, dict):
        raise ReplyError("judge reply is JSON but not an object")
    try:
        parsed = model.model_validate(obj)
    except ValidationError as err:
        e = err.errors()[0]
        raise ReplyError(f"judge reply field {'.'.join(map(str, e['loc'])) or '?'}: {e['msg']}") from None
    # Reasoning must come first: a verdict written before its reasoning is a rationalisation.
    if next(iter(obj)) != "reasoning":
        raise ReplyError(f"judge reply puts {first_key!r} before 'reasoning'")
    return parsed


def parse_verdict(text: str | None) -> Verdict:
    return _parse(text, Verdict, "verdict")


def parse_preference(text: str | None) -> Preference:
    return _parse(text, Preference, "winner")
