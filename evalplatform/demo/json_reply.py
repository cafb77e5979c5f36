"""Replies in JSON when the user asks for it: the requested keys, each filled by a resolver from the help center."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any, Callable

from evalplatform.demo import accounts, calendar_skill, grounded, pricing
from evalplatform.demo.turn import Turn

_KEYS = re.compile(r"\b(?:keys?|fields?|properties)\s*:?\s*(.+?)(?:[.:?;]\s|[.:?;]?$|\bfor\b|\bwhere\b|\bwith\b)", re.I)
_NAME = re.compile(r"[`'\"]?([a-z][a-z0-9_]*)[`'\"]?", re.I)


def requested_keys(text: str) -> list[str]:
    m = _KEYS.search(text)
    if not m:
        return []
    return [k for k in _NAME.findall(m.group(1)) if k.lower() not in ("and", "or", "the")]


def _plan(turn: Turn) -> str | None:
    acct, _ = accounts.find(turn)
    if acct:
        return acct["plan"]
    plans = turn.plans()
    return plans[0] if plans else None


def _num(x: Decimal | float | int) -> float:
    return float(Decimal(str(x)).quantize(Decimal("0.01")))


def _with_plan(fn: Callable[[Turn, str], Any]) -> Callable[[Turn], Any]:
    def resolve(turn: Turn) -> Any:
        plan = _plan(turn)
        return fn(turn, plan) if plan else None
    return resolve


def _first_date(fn: Callable[[Turn, Any], Any]) -> Callable[[Turn], Any]:
    def resolve(turn: Turn) -> Any:
        dates = turn.dates()
        return fn(turn, dates[0]) if dates else None
    return resolve


def _prorated(turn: Turn) -> float | None:
    got = pricing.proration(turn)
    return _num(got[0]) if got else None


RESOLVERS: dict[str, Callable[[Turn], Any]] = {
    "plan": _with_plan(lambda t, p: p.title()),
    "monthly_price_usd": _with_plan(lambda t, p: _num(t.price(p))),
    "annual_price_usd": _with_plan(lambda t, p: _num(t.price(p) * Decimal(t.kb.facts["annual_months_charged"]))),
    "storage": _with_plan(lambda t, p: t.kb.facts["storage"][p]),
    "requests_per_minute": _with_plan(lambda t, p: t.kb.facts["rate_limit_per_minute"][p]),
    "phone_support": _with_plan(lambda t, p: p == "business"),
    "version_history_days": _with_plan(lambda t, p: t.kb.facts["version_history_days"][p]),
    "trial_days": lambda t: t.kb.facts["trial_days"],
    "refund_window_days": lambda t: t.kb.facts["refund_window_days"],
    "regions": lambda t: list(t.kb.facts["regions"]),
    "support_email": lambda t: t.kb.facts["support_email"],
    "live_chat_hours": lambda t: t.kb.facts["live_chat_hours"],
    "backup_codes": lambda t: t.kb.facts["backup_codes"],
    "trial_end": _first_date(lambda t, d: t.fmt(calendar_skill.trial_end(t, d))),
    "next_billing_date": _first_date(lambda t, d: t.fmt(calendar_skill.next_billing(t, d, None))),
    "prorated_charge_usd": _prorated,
    "account_exists": lambda t: accounts.find(t)[0] is not None,
    "masked_email": lambda t: (lambda a: accounts.mask_email(a["email"]) if a else None)(accounts.find(t)[0]),
    "answer": lambda t: grounded.answer_text(t) or grounded.NO_INFO,
}


def reply(turn: Turn) -> str | None:
    if not turn.has(r"\bjson\b"):
        return None
    keys = requested_keys(turn.text) or ["answer"]
    return json.dumps({k: RESOLVERS.get(k, lambda t: None)(turn) for k in keys})
