"""Text mutators a suite may list to measure its discrimination: each turns a model output into a worse one."""

from __future__ import annotations

import re
from typing import Callable

_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def truncate_half(text: str) -> str:
    """The first half of the words: an answer cut short (a smaller context window, a max_tokens too low)."""
    words = text.split()
    return " ".join(words[: len(words) // 2])


def drop_digits(text: str) -> str:
    """Every digit removed: prices, dates and counts lost."""
    return re.sub(r"\d", "", text)


def drop_first_sentence(text: str) -> str:
    """The first sentence removed: the answer's lead fact lost (a reply of one sentence becomes empty)."""
    parts = _SENTENCE.split(text.strip(), maxsplit=1)
    return parts[1] if len(parts) > 1 else ""


def empty_reply(text: str) -> str:
    """Nothing at all: the easiest mutant to catch (kept as a floor for the others)."""
    return ""


MUTATORS: dict[str, Callable[[str], str]] = {
    "truncate_half": truncate_half,
    "drop_digits": drop_digits,
    "drop_first_sentence": drop_first_sentence,
    "empty_reply": empty_reply,
}
