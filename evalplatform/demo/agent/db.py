"""The simulated order database behind the demo agent's tools: a fresh copy per trial, nothing shared."""

from __future__ import annotations

import copy
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

DATA = Path(__file__).with_name("orders.json")
# What the warehouse charges to stop a parcel already on its way (the backend allows it; policy does not).
INTERCEPT_FEE_USD = 15.00


class ToolError(Exception):
    """A tool refused the call; the agent sees the message, as it would see an API's error."""


@lru_cache(maxsize=1)
def _seed_data() -> dict:
    return json.loads(DATA.read_text(encoding="utf-8"))


class OrderDB:
    """Orders by id. Reads return copies, so a caller cannot change the database behind the tools' back."""

    def __init__(self, overrides: dict[str, dict] | None = None):
        data = copy.deepcopy(_seed_data())
        self.today: str = data["today"]
        self._orders: dict[str, dict] = {o["id"]: o for o in data["orders"]}
        for order_id, changes in (overrides or {}).items():
            self._orders.setdefault(order_id, {"id": order_id}).update(changes)

    def lookup(self, order_id: str | None = None, email: str | None = None) -> list[dict]:
        if not order_id and not email:
            raise ToolError("give order_id or email")
        found = [o for o in self._orders.values()
                 if (order_id is None or o["id"] == str(order_id).strip().upper())
                 and (email is None or o.get("email") == str(email).strip().lower())]
        return copy.deepcopy(sorted(found, key=lambda o: o.get("placed", ""), reverse=True))

    def cancel(self, order_id: str) -> dict:
        """Cancel an order as the backend does: it stops a shipped parcel for a fee; only delivery is final."""
        order = self._orders.get(str(order_id).strip().upper())
        if order is None:
            raise ToolError(f"no order {order_id}")
        if order["status"] == "cancelled":
            raise ToolError(f"order {order['id']} is already cancelled")
        if order["status"] == "delivered":
            raise ToolError(f"order {order['id']} was delivered; start a return instead")
        fee = INTERCEPT_FEE_USD if order["status"] == "shipped" else 0.0
        order.update(status="cancelled", refund_usd=round(order["total_usd"] - fee, 2))
        if fee:
            order["intercept_fee_usd"] = fee
        return copy.deepcopy(order)

    def snapshot(self) -> dict[str, Any]:
        """The final state graders compare: each order's status and money movements."""
        keep = ("status", "refund_usd", "intercept_fee_usd")
        return {"orders": {i: {k: o[k] for k in keep if k in o} for i, o in sorted(self._orders.items())}}
