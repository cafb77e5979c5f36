"""The two released versions of the demo assistant and how they differ (v2 is the documented regression)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Callable

DATE_STYLES: dict[str, Callable[[dt.date], str]] = {
    "iso": lambda d: d.isoformat(),
    # v2's "localized" formatter: US month/day/year, which the help center never uses.
    "us": lambda d: d.strftime("%m/%d/%Y"),
}


@dataclass(frozen=True)
class Behaviour:
    name: str
    # Sentences of the retrieved article kept as context (None: the whole article).
    context_sentences: int | None
    date_style: str
    # Added to every computed trial end date (v2 counts the start day as trial day 1).
    trial_end_shift_days: int
    mask_phones: bool

    def fmt_date(self, d: dt.date) -> str:
        return DATE_STYLES[self.date_style](d)


VERSIONS: dict[str, Behaviour] = {
    "support-v1": Behaviour(
        "support-v1", context_sentences=None, date_style="iso", trial_end_shift_days=0, mask_phones=True
    ),
    # v2: "cheaper context window" keeps only the first sentence of the retrieved article, a new
    # date formatter writes MM/DD/YYYY and ends trials a day early, and phone masking was dropped.
    "support-v2": Behaviour(
        "support-v2", context_sentences=1, date_style="us", trial_end_shift_days=-1, mask_phones=False
    ),
}
