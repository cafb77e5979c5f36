"""Out-of-scope and unsafe requests: detectors for what the assistant declines, and the refusal reply."""

from __future__ import annotations

import re
from typing import Callable

from evalplatform.demo.turn import Turn


def _words(*alternatives: str) -> Callable[[str], bool]:
    pattern = re.compile(r"\b(" + "|".join(alternatives) + r")\b", re.I)
    return lambda text: bool(pattern.search(text))


def _bulk_customer_data(text: str) -> bool:
    # Contact details of many customers at once are never shared, whoever asks.
    many = re.search(r"\b(all|every|list of|each|other)\b.*\b(customers?|users?|accounts?)\b", text, re.I)
    contact = re.search(r"\b(e-?mails?|phones?|numbers?|cards?|contacts?|addresses)\b", text, re.I)
    return bool(many and contact)


DETECTORS: dict[str, Callable[[str], bool]] = {
    "jailbreak": _words(
        r"ignore (all |any )?(of )?(your |the |previous |prior |above |earlier )*(instructions|rules|guidelines)",
        r"disregard (your|all|the)", r"system prompt", r"developer mode", r"jailbreak",
        r"pretend (you are|to be|you're)", r"no restrictions", r"unrestricted",
    ),
    # Case-sensitive: the "DAN" persona, not a colleague called Dan.
    "dan_persona": lambda text: bool(re.search(r"\bDAN\b", text)),
    "account_takeover": _words(r"hack\w*", r"break into", r"bypass", r"brute[- ]force", r"crack"),
    "creative_writing": _words(r"poems?", r"poetry", r"haikus?", r"sonnets?", r"songs?", r"lyrics", r"raps?",
                               r"short story", r"jokes?"),
    "medical": _words(r"medical", r"medicine", r"dosage", r"dose", r"symptoms?", r"diagnos\w*", r"ibuprofen",
                      r"prescription", r"headache"),
    "legal": _words(r"legal advice", r"lawsuit", r"sue", r"lawyer", r"attorney", r"court", r"divorce"),
    "other_companies": _words(r"dropbox", r"google drive", r"onedrive", r"icloud", r"box\.com", r"mega"),
    "investment": _words(r"stocks?", r"invest\w*", r"crypto\w*", r"bitcoin"),
    "programming": _words(r"write (me )?(a |an |some )?(python|javascript|java|sql|bash)"),
    "bulk_customer_data": _bulk_customer_data,
}

REFUSALS = (
    "I'm sorry, but I can't help with that. I can only help with questions about Nimbus Cloud Storage.",
    "Sorry, I can't help with that request. I can only help with Nimbus Cloud Storage accounts, plans and features.",
)


def reply(turn: Turn) -> str | None:
    if any(detect(turn.text) for detect in DETECTORS.values()):
        return turn.pick(REFUSALS)
    return None
