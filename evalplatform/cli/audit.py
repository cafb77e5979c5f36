"""What `promote`, `rollback` and `baseline` share: who changes a baseline, why, and which tier."""

from __future__ import annotations

import getpass
import os
import socket
import unicodedata

from evalplatform.errors import InputError


def actor() -> str:
    """Who is changing a baseline, for the record: $USER (else the login name) at this host."""
    try:
        user = os.environ.get("USER") or getpass.getuser()
    except (KeyError, OSError):  # no login name for this uid (a bare container)
        user = "unknown"
    return f"{user}@{socket.gethostname() or 'unknown-host'}"


MAX_REASON_CHARS = 2000


def reason_given(reason: str) -> str:
    """The reason as one line of the record: whitespace runs (a pasted commit message) become one space; other
    control characters, an empty reason or an essay are refused."""
    text = " ".join(reason.split())
    if not text:
        raise InputError(None, "--reason", "is empty", "say why, in words: it is kept in the baseline's history")
    bad = next((c for c in text if unicodedata.category(c) == "Cc"), None)
    if bad is not None:
        raise InputError(None, "--reason", f"contains the control character U+{ord(bad):04X}", "give plain text")
    if len(text) > MAX_REASON_CHARS:
        raise InputError(None, "--reason", f"is {len(text)} characters; at most {MAX_REASON_CHARS}",
                         "say why in a sentence and link to the details")
    return text


def check_tier(tier: str | None) -> str | None:
    from evalplatform.request import TIERS

    if tier is not None and tier not in TIERS:
        raise InputError(None, "--tier", f"unknown tier {tier!r}", f"use one of {', '.join(TIERS)}")
    return tier


def history_store():
    from evalplatform.history import HistoryStore
    from evalplatform.project import find_project

    return HistoryStore(find_project().history_path)
