"""One user turn as the skills see it: the message, the knowledge base, the version's behaviour, and parsers."""

from __future__ import annotations

import datetime as dt
import random
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Sequence

from evalplatform.demo.knowledge import KnowledgeBase
from evalplatform.demo.versions import Behaviour

PLANS = ("free", "basic", "pro", "business")
_PLAN = re.compile(r"\b(free|basic|pro|business)\b(?!\s+days?\b)", re.I)
_ISO = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
_MONTHS = "january february march april may june july august september october november december".split()
# "March 10, 2026" is understood; "10 March 2026" is not (a known gap of the demo, not a bug to hide).
_MONTH_FIRST = re.compile(r"\b(" + "|".join(_MONTHS) + r")\s+(\d{1,2}),?\s+(\d{4})\b", re.I)


def money(x: Decimal | float) -> str:
    return f"${Decimal(str(x)).quantize(Decimal('0.01'), rounding=ROUND_HALF_UP):,}"


def cents(x: Decimal) -> Decimal:
    return x.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


@dataclass
class Turn:
    text: str
    kb: KnowledgeBase
    behaviour: Behaviour
    rng: random.Random | None  # None at temperature 0: fully deterministic phrasing

    @property
    def lower(self) -> str:
        return self.text.lower()

    def has(self, *words: str) -> bool:
        """Any of the regex fragments occurs in the message (case-insensitive)."""
        return any(re.search(w, self.text, re.I) for w in words)

    def pick(self, options: Sequence[str]) -> str:
        """Phrasing choice: the first option at temperature 0, a seeded draw otherwise. Never facts."""
        return options[0] if self.rng is None else self.rng.choice(list(options))

    def plans(self) -> list[str]:
        """Plans named in the message, in order of first mention."""
        seen: list[str] = []
        for m in _PLAN.finditer(self.text):
            p = m.group(1).lower()
            if p not in seen:
                seen.append(p)
        return seen

    def dates(self) -> list[dt.date]:
        found: list[tuple[int, dt.date]] = []
        for m in _ISO.finditer(self.text):
            found.append((m.start(), dt.date(int(m[1]), int(m[2]), int(m[3]))))
        for m in _MONTH_FIRST.finditer(self.text):
            found.append((m.start(), dt.date(int(m[3]), _MONTHS.index(m[1].lower()) + 1, int(m[2]))))
        return [d for _, d in sorted(found)]

    def price(self, plan: str) -> Decimal:
        return Decimal(str(self.kb.facts["price_usd"][plan]))

    def fmt(self, d: dt.date) -> str:
        return self.behaviour.fmt_date(d)
