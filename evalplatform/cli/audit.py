"""What `promote`, `rollback` and `baseline` share: who changes a baseline, why, and which tier."""

from __future__ import annotations

import getpass
import os
import socket

from evalplatform.errors import InputError


def actor() -> str:
    """Who is changing a baseline, for the record: $USER (else the login name) at this host."""
    try:
        user = os.environ.get("USER") or getpass.getuser()
    except (KeyError, OSError):  # no login name for this uid (a bare container)
        user = "unknown"
    return f"{user}@{socket.gethostname() or 'unknown-host'}"


def reason_given(reason: str) -> str:
    text = reason.strip()
    if not text:
        raise InputError(None, "--reason", "is empty", "say why, in words: it is kept in the baseline's history")
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
