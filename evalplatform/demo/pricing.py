"""Price arithmetic from the help center's prices: proration, seats, savings, discounts, add-ons, outage credits."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Callable

from evalplatform.demo.turn import Turn, cents, money


def proration(turn: Turn) -> tuple[Decimal, str] | None:
    """(charge, explanation) for 'upgrade from A to B on day N of a D-day cycle', else None."""
    plans = turn.plans()
    m = re.search(r"\bday (\d+) of (?:a |an |the |my )?(\d+)[- ]day", turn.text, re.I)
    if len(plans) < 2 or not m:
        return None
    old, new = plans[0], plans[1]
    day, length = int(m.group(1)), int(m.group(2))
    remaining = length - day + 1
    diff = turn.price(new) - turn.price(old)
    charge = cents(diff * remaining / length)
    why = (f"({money(turn.price(new))} - {money(turn.price(old))}) x {remaining} remaining days / {length} days "
           f"in the cycle")
    return charge, why


def _proration(turn: Turn) -> str | None:
    if not turn.has(r"upgrad", r"prorat"):
        return None
    got = proration(turn)
    if got is None:
        return None
    charge, why = got
    return f"The prorated charge is {money(charge)}: {why}."


def _seats(turn: Turn) -> Decimal | None:
    m = re.search(r"\b(\d+)\s+(?:team\s+)?(?:users?|seats?|people|members?|employees?)\b", turn.text, re.I)
    return Decimal(m.group(1)) if m else None


def _business_fee(turn: Turn) -> str | None:
    if "business" not in turn.plans() or not turn.has(r"cost|price|pay|how much|total") or turn.has(r"uptime|credit"):
        return None
    n = _seats(turn)
    if n is None:
        return None
    minimum = Decimal(turn.kb.facts["business_min_users"])
    billed = max(n, minimum)
    per_user = turn.price("business")
    note = f" Business requires a minimum of {minimum} users, so {billed} users are billed." if n < minimum else ""
    if turn.has(r"annual", r"yearly", r"per year", r"a year"):
        months = Decimal(turn.kb.facts["annual_months_charged"])
        return f"Business for {n} users costs {money(per_user * months * billed)} per year on annual billing.{note}"
    return f"Business for {n} users costs {money(per_user * billed)} per month ({money(per_user)} per user).{note}"


def _annual_savings(turn: Turn) -> str | None:
    plans = turn.plans()
    if not plans or not turn.has(r"\bsave", r"saving") or not turn.has(r"annual", r"yearly", r"per year", r"a year"):
        return None
    plan = plans[0]
    months = Decimal(turn.kb.facts["annual_months_charged"])
    monthly = turn.price(plan)
    saving = monthly * 12 - monthly * months
    return (f"On annual billing {plan.title()} costs {money(monthly * months)} per year instead of "
            f"{money(monthly * 12)}, so you save {money(saving)} per year.")


def _student(turn: Turn) -> str | None:
    plans = turn.plans()
    if not plans or not turn.has(r"student", r"teacher", r"education"):
        return None
    plan = plans[0]
    if plan not in ("basic", "pro"):
        return f"The education discount applies only to the Basic and Pro plans, not to {plan.title()}."
    pct = Decimal(turn.kb.facts["student_discount_pct"])
    price = turn.price(plan)
    period = "per month"
    if turn.has(r"annual", r"yearly", r"per year", r"a year"):
        price, period = price * Decimal(turn.kb.facts["annual_months_charged"]), "per year"
    return f"With the {pct}% education discount, {plan.title()} costs {money(price * (100 - pct) / 100)} {period}."


def _add_ons(turn: Turn) -> str | None:
    m = re.search(r"\b(\d+)\s*(?:extra |additional |add-on )*TB\b", turn.text, re.I)
    plans = turn.plans()
    if not m or not plans or not turn.has(r"add-?on", r"extra", r"additional"):
        return None
    plan, blocks = plans[0], int(m.group(1))
    facts = turn.kb.facts
    if plan not in ("pro", "business"):
        return f"Storage add-ons are not available on the {plan.title()} plan; they require Pro or Business."
    if blocks > facts["addon_max_blocks"]:
        return f"You can buy at most {facts['addon_max_blocks']} add-on blocks of 1 TB per account."
    addon = Decimal(str(facts["addon_tb_price_usd"])) * blocks
    base = turn.price(plan)
    seats = _seats(turn)
    if plan == "business" and seats is not None:
        base *= max(seats, Decimal(facts["business_min_users"]))
    return (f"{plan.title()} ({money(base)}) plus {blocks} TB of add-on storage ({money(addon)}) costs "
            f"{money(base + addon)} per month in total.")


def _outage_credit(turn: Turn) -> str | None:
    m = re.search(r"(\d+(?:\.\d+)?)\s*%", turn.text)
    if not m or not turn.has(r"uptime", r"outage", r"downtime"):
        return None
    plans = turn.plans()
    if plans and plans[0] != "business":
        return f"{plans[0].title()} plans do not include an uptime commitment or service credits."
    uptime = Decimal(m.group(1))
    fee_m = re.search(r"\$(\d+(?:\.\d+)?)", turn.text)
    seats = _seats(turn)
    if fee_m:
        fee = Decimal(fee_m.group(1))
    elif seats is not None:
        fee = turn.price("business") * max(seats, Decimal(turn.kb.facts["business_min_users"]))
    else:
        return None
    pct = Decimal(0)
    for floor, credit in turn.kb.facts["sla_credit_tiers"]:
        if uptime < Decimal(str(floor)):
            pct = Decimal(str(credit))
    if pct == 0:
        return f"Uptime of {uptime}% meets the 99.9% commitment, so no credit applies ($0.00)."
    return f"Uptime of {uptime}% earns a {pct}% credit: {money(fee * pct / 100)} on a monthly fee of {money(fee)}."


RULES: tuple[Callable[[Turn], str | None], ...] = (
    _proration, _outage_credit, _add_ons, _student, _annual_savings, _business_fee,
)


def reply(turn: Turn) -> str | None:
    for rule in RULES:
        text = rule(turn)
        if text:
            return text
    return None
