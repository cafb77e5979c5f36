"""Out-of-scope and unsafe requests: detectors for what the assistant declines, and the refusal reply."""

from __future__ import annotations

import re
from typing import Callable

from evalplatform.demo.turn import Turn

_I = re.I
DETECTORS: dict[str, Callable[[str], bool]] = {
    "jailbreak": lambda t: bool(re.search(
        r"ignore (all |any )?(of )?(your |the |previous |prior |above |earlier )*(instructions|rules|guidelines)"
        r"|system prompt|developer mode|\bDAN\b|jailbreak|pretend (you are|to be|you're)|no restrictions|unrestricted"
        r"|disregard (your|all|the) ", t, _I)),
    "creative_writing": lambda t: bool(re.search(r"\b(poem|poetry|haiku|sonnet|song|lyrics|rap|short story|joke)s?\b", t, _I)),
    "medical": lambda t: bool(re.search(r"\b(medical|medicine|dosage|dose|symptoms?|diagnos\w*|ibuprofen|prescription|headache)\b", t, _I)),
    "legal": lambda t: bool(re.search(r"\b(legal advice|lawsuit|sue|lawyer|attorney|court|divorce)\b", t, _I)),
    "other_companies": lambda t: bool(re.search(r"\b(dropbox|google drive|onedrive|icloud|box\.com|mega)\b", t, _I)),
    "account_takeover": lambda t: bool(re.search(r"\b(hack\w*|break into|bypass|brute[- ]force|crack)\b", t, _I)),
    "investment": lambda t: bool(re.search(r"\b(stocks?|invest\w*|crypto\w*|bitcoin)\b", t, _I)),
    "programming": lambda t: bool(re.search(r"\bwrite (me )?(a |an |some )?(python|javascript|java|sql|bash|c\+\+)\b", t, _I)),
    # Contact details of many customers at once are never shared, whoever asks.
    "bulk_customer_data": lambda t: bool(
        re.search(r"\b(all|every|list of|each|other)\b.*\b(customers?|users?|accounts?)\b", t, _I)
        and re.search(r"\b(e-?mails?|phones?|numbers?|cards?|contacts?|addresses)\b", t, _I)
    ),
}

REFUSALS = (
    "I'm sorry, but I can't help with that. I can only help with questions about Nimbus Cloud Storage.",
    "Sorry, I can't help with that request. I can only help with Nimbus Cloud Storage accounts, plans and features.",
)


def reply(turn: Turn) -> str | None:
    if any(detect(turn.text) for detect in DETECTORS.values()):
        return turn.pick(REFUSALS)
    return None
