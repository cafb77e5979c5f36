"""The demo agent's two releases ("models"): how each decides, and what each costs and takes per decision.

orders-v1 checks an order's status before it cancels anything: only an order still being prepared may
be cancelled. orders-v2 is a newer, faster and cheaper release whose notes say "one round trip less
per cancellation": it calls cancel_order straight away and trusts the backend to refuse what policy
forbids. The backend does not: it stops a parcel already on its way, for a fee. That is the defect the
agent suite must catch, by grading the outcome (the orders' final state) and the forbidden call.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Brain:
    name: str
    verify_before_cancel: bool
    think_ms: float          # latency of one decision, before seeded jitter
    usd_per_1k_in: float     # simulated prices, to make cost a measured quantity
    usd_per_1k_out: float


BRAINS: dict[str, Brain] = {
    "orders-v1": Brain("orders-v1", verify_before_cancel=True, think_ms=240.0, usd_per_1k_in=0.00015,
                       usd_per_1k_out=0.0006),
    "orders-v2": Brain("orders-v2", verify_before_cancel=False, think_ms=160.0, usd_per_1k_in=0.0001,
                       usd_per_1k_out=0.0004),
}
DEFAULT = "orders-v1"


def brain_for(model: str | None) -> Brain:
    name = (model or DEFAULT).rsplit("/", 1)[-1]
    if name not in BRAINS:
        raise LookupError(f"no agent release {model!r} (known: {', '.join(BRAINS)})")
    return BRAINS[name]
