"""The demo support assistant: one entry point that routes a chat turn through the skills, first match wins."""

from __future__ import annotations

import random
from typing import Any, Callable

from evalplatform.demo import accounts, calendar_skill, grounded, guard, json_reply, pricing
from evalplatform.demo.knowledge import load
from evalplatform.demo.turn import Turn
from evalplatform.demo.versions import VERSIONS

# Order matters: refuse before anything else, honour a requested format, then the precise skills,
# and fall back to retrieval (which always answers, if only with "I don't have information").
SKILLS: tuple[Callable[[Turn], str | None], ...] = (
    guard.reply, json_reply.reply, accounts.reply, calendar_skill.reply, pricing.reply, grounded.reply,
)


def _user_text(messages: list[dict]) -> str:
    for msg in reversed(messages):
        if msg.get("role") == "user":
            content = msg.get("content") or ""
            if isinstance(content, list):  # OpenAI content parts
                content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
            return str(content)
    return ""


def _truncate(text: str, max_tokens: Any) -> str:
    """Like a real model, stop at the token budget (one whitespace-separated word ~ one token here)."""
    if not max_tokens:
        return text
    words = text.split(" ")
    return text if len(words) <= int(max_tokens) else " ".join(words[: int(max_tokens)])


def route(messages: list[dict], params: dict | None = None, version: str = "support-v1") -> tuple[str, str]:
    """The reply to the last user message and the skill that gave it. Deterministic at temperature 0."""
    params = params or {}
    text = _user_text(messages).strip()
    temperature = params.get("temperature") or 0
    rng = random.Random(f"{params.get('seed')}|{text}") if temperature > 0 else None
    turn = Turn(text=text, kb=load(), behaviour=VERSIONS[version], rng=rng)
    for skill in SKILLS:
        out = skill(turn)
        if out is not None:
            return _truncate(out, params.get("max_tokens")), skill.__module__.rsplit(".", 1)[-1]
    return grounded.NO_INFO, "none"


def answer(messages: list[dict], params: dict | None = None, version: str = "support-v1") -> str:
    """The assistant's reply to the last user message. Deterministic at temperature 0."""
    return route(messages, params, version)[0]


def make_app(version: str) -> Callable[[list[dict], dict], str]:
    """The callable the local provider serves for `local/<version>`."""
    if version not in VERSIONS:
        raise KeyError(version)

    def app(messages: list[dict], params: dict | None = None) -> str:
        return answer(messages, params, version=version)

    app.__name__ = f"demo_{version.replace('-', '_')}"
    return app
