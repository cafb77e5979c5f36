"""Date questions answered from the help center's day counts: trial ends, billing dates, deadlines."""

from __future__ import annotations

import calendar
import datetime as dt
import re
from typing import Callable

from evalplatform.demo.turn import Turn

_DAYS_LEFT = (r"how many days", r"days (are )?(left|remaining)", r"days do i (still )?have")


def add_months(d: dt.date, months: int) -> dt.date:
    """Same day of month, clamped to the month's last day (the billing-dates rule)."""
    y, m = divmod(d.month - 1 + months, 12)
    y, m = d.year + y, m + 1
    return dt.date(y, m, min(d.day, calendar.monthrange(y, m)[1]))


def trial_end(turn: Turn, start: dt.date) -> dt.date:
    return start + dt.timedelta(days=turn.kb.facts["trial_days"] + turn.behaviour.trial_end_shift_days)


def next_billing(turn: Turn, start: dt.date, after: dt.date | None) -> dt.date:
    step = 12 if turn.has(r"annual", r"yearly", r"\byear") else 1
    k = 1
    while True:
        # Always from the original start date: clamping must not drift (Jan 31 -> Feb 28 -> Mar 31).
        d = add_months(start, step * k)
        if after is None or d > after:
            return d
        k += 1


def _deadline(turn: Turn, event: str, base: dt.date, days: int, what: str) -> str:
    """Answer 'when' with the date, or 'how many days left' (given today's date) with a count."""
    end = base + dt.timedelta(days=days)
    dates = turn.dates()
    if len(dates) >= 2 and turn.has(*_DAYS_LEFT):
        left = (end - dates[1]).days
        if left < 0:
            return f"The {days}-day window after the {event} has already closed."
        return f"You have {left} days left: {what} {days} days after the {event}."
    if len(dates) >= 2 and turn.has(r"\bstill\b", r"too late", r"\bis it\b"):
        ok = dates[1] <= end
        verdict = "Yes, that is still within" if ok else "No, that is outside"
        return f"{verdict} the window: {what} on {turn.fmt(end)}, {days} days after the {event}."
    return f"{what[0].upper()}{what[1:]} on {turn.fmt(end)}, {days} days after the {event} on {turn.fmt(base)}."


def _trial(turn: Turn, d: list[dt.date]) -> str | None:
    if not turn.has(r"\btrial"):
        return None
    end = trial_end(turn, d[0])
    if len(d) >= 2 and turn.has(*_DAYS_LEFT):
        return f"You have {(end - d[1]).days} days of your free trial left; it ends on {turn.fmt(end)}."
    days = turn.kb.facts["trial_days"]
    return f"Your free trial ends on {turn.fmt(end)}, {days} days after it started on {turn.fmt(d[0])}."


def _refund(turn: Turn, d: list[dt.date]) -> str | None:
    if not turn.has(r"refund"):
        return None
    return _deadline(turn, "purchase", d[0], turn.kb.facts["refund_window_days"], "the refund window closes")


def _account_deletion(turn: Turn, d: list[dt.date]) -> str | None:
    if not (turn.has(r"delet") and turn.has(r"\baccount")):
        return None
    return _deadline(turn, "deletion request", d[0], turn.kb.facts["deletion_grace_days"], "the deletion becomes final")


def _trash(turn: Turn, d: list[dt.date]) -> str | None:
    if not turn.has(r"\btrash", r"deleted (a |the |my )?(file|folder|photo|document)"):
        return None
    what = "the file is permanently removed from the trash"
    return _deadline(turn, "deletion", d[0], turn.kb.facts["trash_days"], what)


def _export(turn: Turn, d: list[dt.date]) -> str | None:
    if not turn.has(r"export"):
        return None
    return _deadline(turn, "link was emailed", d[0], turn.kb.facts["export_link_days"], "the download link expires")


def _share_link(turn: Turn, d: list[dt.date]) -> str | None:
    if not (turn.has(r"\blink") and turn.has(r"expir")):
        return None
    plans = turn.plans()
    facts = turn.kb.facts
    if "free" in plans:
        days = facts["free_link_expiry_days"]
    else:
        m = re.search(r"(\d+)[- ]day", turn.text)
        if not m:
            return None
        days = int(m.group(1))
        if days > facts["max_link_expiry_days"]:
            most = facts["max_link_expiry_days"]
            return f"Share links can expire after at most {most} days, so a {days}-day expiry is not possible."
    return f"The share link expires on {turn.fmt(d[0] + dt.timedelta(days=days))}, {days} days after it was created."


def _failed_payment(turn: Turn, d: list[dt.date]) -> str | None:
    if not (turn.has(r"payment|charge") and turn.has(r"fail|declin")):
        return None
    days = turn.kb.facts["payment_retry_days"]
    end = d[0] + dt.timedelta(days=days)
    return (f"Nimbus retries the charge for {days} days; if it still fails, the account moves to the Free plan "
            f"on {turn.fmt(end)}.")


def _outage_credit_deadline(turn: Turn, d: list[dt.date]) -> str | None:
    if not (turn.has(r"credit") and turn.has(r"outage|uptime|downtime")):
        return None
    month_end = d[0].replace(day=calendar.monthrange(d[0].year, d[0].month)[1])
    days = turn.kb.facts["sla_claim_days"]
    end = month_end + dt.timedelta(days=days)
    return (f"You must request the credit by {turn.fmt(end)}, {days} days after the end of the affected month "
            f"({turn.fmt(month_end)}).")


def _billing(turn: Turn, d: list[dt.date]) -> str | None:
    if not turn.has(r"\bbill", r"renew", r"charged", r"invoice", r"payment date"):
        return None
    after = d[1] if len(d) >= 2 else None
    nxt = next_billing(turn, d[0], after)
    return f"Your next billing date is {turn.fmt(nxt)}."


# Most specific first: a refund question can also mention billing.
RULES: tuple[Callable[[Turn, list[dt.date]], str | None], ...] = (
    _trial, _refund, _account_deletion, _trash, _export, _share_link, _failed_payment, _outage_credit_deadline,
    _billing,
)


def reply(turn: Turn) -> str | None:
    dates = turn.dates()
    if not dates:
        return None
    for rule in RULES:
        text = rule(turn, dates)
        if text:
            return text
    return None
