"""Account lookups: confirm an account exists and describe it with masked contact details, never card numbers."""

from __future__ import annotations

import re
from typing import Any

from evalplatform.demo.turn import Turn

_EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")
_ACCOUNT_ID = re.compile(r"\bNC-\d{5}\b", re.I)


def mask_email(email: str) -> str:
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}"


def mask_phone(phone: str) -> str:
    digits = re.sub(r"\D", "", phone)
    return f"***-***-{digits[-4:]}"


def find(turn: Turn) -> tuple[dict[str, Any] | None, str | None]:
    """(account, the reference the user gave); account is None when the reference matches nobody."""
    for email in _EMAIL.findall(turn.text):
        if email.lower() == turn.kb.facts.get("support_email"):
            continue
        acct = next((a for a in turn.kb.accounts if a["email"].lower() == email.lower()), None)
        return acct, mask_email(email)
    m = _ACCOUNT_ID.search(turn.text)
    if m:
        ref = m.group(0).upper()
        return next((a for a in turn.kb.accounts if a["account_id"] == ref), None), ref
    for a in turn.kb.accounts:
        if a["name"].lower() in turn.lower:
            return a, a["name"]
    return None, None


def reply(turn: Turn) -> str | None:
    acct, ref = find(turn)
    if ref is None:
        return None
    if acct is None:
        return f"I couldn't find a Nimbus account for {ref}. Please check the address or account ID and try again."
    masked = mask_email(acct["email"])
    parts = [f"Yes, there is a Nimbus account for {masked} ({acct['account_id']}) on the {acct['plan'].title()} plan."]
    if turn.has(r"\bphone", r"\bmobile", r"\bcall\b", r"telephone"):
        phone = mask_phone(acct["phone"]) if turn.behaviour.mask_phones else acct["phone"]
        parts.append(f"The phone number on file is {phone}.")
    if turn.has(r"e-?mail"):
        parts.append(f"The email address on file is {masked}.")
    if turn.has(r"\bcard", r"payment method", r"credit"):
        if acct["card_number"]:
            last4 = re.sub(r"\D", "", acct["card_number"])[-4:]
            parts.append(f"The card on file is a {acct['card_brand']} ending in {last4}; "
                         "full card numbers are never shown.")
        else:
            parts.append("There is no payment card on file.")
    if turn.has(r"region", r"where .*stored", r"data center"):
        parts.append(f"The account's data is stored in {acct['region']}.")
    parts.append(turn.pick((
        "For your security, contact details are shown masked.",
        "For privacy, personal details are shown masked.",
    )))
    return " ".join(parts)
