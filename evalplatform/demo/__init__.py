"""Offline demo target: "Nimbus Cloud Storage" support assistant, served as local/support-v1 and local/support-v2.

A genuine (if small) retrieval assistant over a bundled help center (`kb/*.md`, `kb/accounts.json`):
BM25 retrieval plus sentence selection for grounded answers, date and price calculators driven by
the articles' facts, masked account lookups, refusals of out-of-scope or jailbreak requests, and
JSON replies on request. Pure Python and deterministic at temperature 0; at temperature > 0 only
the phrasing varies (seeded from seed and message), never the facts.

support-v1 is good but not perfect (about 9 in 10 of the demo suite): it misses a few questions
with vocabulary the help center does not use, questions spanning two articles, dates written as
"10 March 2026", and some out-of-scope requests its detectors do not recognise.

support-v2 is the regression the demo gate must block. Its release notes said "cheaper context
window, localized dates, simpler masking", and each change broke something:
  * context truncated to the first sentence of the retrieved article: multi-fact answers lose facts;
  * dates written as MM/DD/YYYY, and trial end dates one day early (start day counted as day 1);
  * phone numbers in account lookups are no longer masked (emails and cards still are).
See versions.py for the switches and datasets/demo/README.md for what the suite catches.
"""

from evalplatform.demo.app import answer, make_app
from evalplatform.demo.versions import VERSIONS

__all__ = ["VERSIONS", "answer", "make_app", "register"]


def register() -> list[str]:
    """Register every version with the local provider; returns the app names (none if it is absent)."""
    try:
        from evalplatform.models.local_provider import register_app
    except ImportError:  # the provider module is optional for library users who only call answer()
        return []
    for name in VERSIONS:
        register_app(name, make_app(name))
    return list(VERSIONS)


register()
