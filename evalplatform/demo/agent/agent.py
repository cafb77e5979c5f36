"""The order-desk agent: a class target (fresh instance, database and memory per trial) with two tools.

Tools: lookup_order(order_id | email) and cancel_order(order_id). Each user turn runs the agent loop:
decide, call a tool, read its result, ..., reply. The agent remembers within a conversation (the
order it last talked about, a cancellation waiting for an order number) and nothing across trials.
Deterministic given the seed: the seed picks phrasing, the order of independent lookups and the
simulated latency jitter; never the facts.
"""

from __future__ import annotations

import json
import random
import re
from typing import Any

from evalplatform.demo.agent.brains import Brain, brain_for
from evalplatform.demo.agent.db import OrderDB, ToolError
from evalplatform.targets import CaseInput, Step, TargetResult, ToolCall

_ORDER_ID = re.compile(r"\b[Aa]\d{4}\b")
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_CANCEL = re.compile(r"\bcancel", re.I)
_STATUS = re.compile(r"\b(where|status|track|tracking|arriv|deliver|shipped|when)", re.I)
_TOOL_MS = {"lookup_order": 40.0, "cancel_order": 120.0}

OUT_OF_SCOPE = "I can only help with orders: where they are, tracking, and cancellations."
ASK_ORDER = "Sure. What is the order number (or the email address you ordered with)?"


def _words(value: Any) -> int:
    text = value if isinstance(value, str) else json.dumps(value)
    return len(text.split())


class _Turn:
    """One user turn of the agent loop, with what it did and what it cost."""

    def __init__(self, agent: "OrderAgent", case: CaseInput):
        self.agent, self.case = agent, case
        self.rng = random.Random(f"{case.seed}|{case.case_id}|{case.turn}")
        self.calls: list[ToolCall] = []
        self.steps: list[Step] = []
        self.tokens_in = self.tokens_out = 0
        self.latency_ms = 0.0
        self.context_words = sum(_words(m.get("content") or "") for m in case.messages)

    def decide(self, action: str, detail: Any) -> None:
        """A decision of the model: its tokens (context so far in, the action out) and its latency."""
        brain: Brain = self.agent.brain
        out = _words(detail) + 4
        self.tokens_in += self.context_words
        self.tokens_out += out
        ms = brain.think_ms * (0.8 + 0.4 * self.rng.random())
        self.latency_ms += ms
        self.steps.append(Step(name="decide", action=action, latency_ms=round(ms, 1)))
        self.context_words += out

    def tool(self, name: str, **arguments: Any) -> Any:
        self.decide(name, arguments)
        db = self.agent.db
        self.latency_ms += _TOOL_MS[name]
        try:
            result = db.lookup(**arguments) if name == "lookup_order" else db.cancel(**arguments)
        except ToolError as exc:
            self.calls.append(ToolCall(name=name, arguments=arguments, error=str(exc)))
            self.context_words += _words(str(exc))
            return exc
        self.calls.append(ToolCall(name=name, arguments=arguments, result=result))
        self.context_words += _words(result)
        return result

    def reply(self, text: str) -> TargetResult:
        if self.calls:  # phrasing only; the facts never vary
            text = self.rng.choice(("", "", "Thanks for your patience. ")) + text
        self.decide("reply", text)
        brain = self.agent.brain
        cost = self.tokens_in / 1000 * brain.usd_per_1k_in + self.tokens_out / 1000 * brain.usd_per_1k_out
        return TargetResult(output=text, tool_calls=self.calls, steps=self.steps, state=self.agent.db.snapshot(),
                            tokens_in=self.tokens_in, tokens_out=self.tokens_out, cost_usd=round(cost, 8),
                            latency_ms=round(self.latency_ms, 1))


def describe(order: dict) -> str:
    head = f"Order {order['id']} ({order['item']})"
    status = order["status"]
    if status == "shipped":
        return (f"{head} shipped on {order['shipped']} and should arrive by {order['eta']}. "
                f"Tracking number: {order['tracking']}.")
    if status == "delivered":
        return f"{head} was delivered on {order['delivered']}."
    if status == "processing":
        return f"{head} is being prepared; it has not shipped yet."
    return f"{head} was cancelled; a refund of ${order.get('refund_usd', 0):.2f} was issued."


class OrderAgent:
    """The demo agent as a Python target: `evalplatform.demo.agent:OrderAgent`, release from case.model."""

    def setup(self, case: CaseInput) -> None:
        self.brain = brain_for(case.model)
        self.db = OrderDB(case.fields.get("db_overrides"))
        self.last_order: str | None = None     # the order this conversation is about
        self.pending: str | None = None        # an intent waiting for an order number

    def teardown(self) -> None:
        self.db = None  # type: ignore[assignment]

    def __call__(self, case: CaseInput) -> TargetResult:
        turn = _Turn(self, case)
        text = case.prompt
        ids = list(dict.fromkeys(m.upper() for m in _ORDER_ID.findall(text)))
        emails = list(dict.fromkeys(e.lower() for e in _EMAIL.findall(text)))
        intent = "cancel" if _CANCEL.search(text) else "status" if _STATUS.search(text) else None
        if intent is None and (ids or emails):
            intent = self.pending or "status"
        if intent is None:
            return turn.reply(OUT_OF_SCOPE)
        if not ids and not emails:
            if intent == "status" and self.last_order:
                ids = [self.last_order]
            else:
                self.pending = intent
                return turn.reply(ASK_ORDER)
        self.pending = None
        if intent == "status":
            return turn.reply(self._status(turn, ids, emails))
        return turn.reply(self._cancel(turn, ids, emails))

    def _status(self, turn: _Turn, ids: list[str], emails: list[str]) -> str:
        found: dict[str, dict] = {}
        missing = []
        # Independent lookups in a seeded order: the path varies with the seed, the outcome does not.
        for order_id in turn.rng.sample(ids, len(ids)):
            result = turn.tool("lookup_order", order_id=order_id)
            if isinstance(result, list) and result:
                found[order_id] = result[0]
            else:
                missing.append(order_id)
        for email in emails:
            result = turn.tool("lookup_order", email=email)
            for order in result if isinstance(result, list) else []:
                found.setdefault(order["id"], order)
            if not result or isinstance(result, ToolError):
                missing.append(email)
        parts = [describe(found[i]) for i in sorted(found)]
        parts += [f"I couldn't find an order for {m}. Could you check it?" for m in missing]
        if found:
            self.last_order = sorted(found)[-1] if len(found) > 1 else next(iter(found))
        return " ".join(parts)

    def _cancel(self, turn: _Turn, ids: list[str], emails: list[str]) -> str:
        if not ids:
            orders = turn.tool("lookup_order", email=emails[0])
            if not isinstance(orders, list) or not orders:
                return f"I couldn't find any order for {emails[0]}."
            ids = [orders[0]["id"]]  # the most recent order (the tool lists the newest first)
        replies = []
        for order_id in ids:
            self.last_order = order_id
            if self.brain.verify_before_cancel:
                replies.append(self._checked_cancel(turn, order_id))
            else:
                replies.append(self._optimistic_cancel(turn, order_id))
        return " ".join(replies)

    def _checked_cancel(self, turn: _Turn, order_id: str) -> str:
        found = turn.tool("lookup_order", order_id=order_id)
        if not isinstance(found, list) or not found:
            return f"I couldn't find an order {order_id}. Could you check the number?"
        order = found[0]
        if order["status"] == "processing":
            return self._confirm(turn.tool("cancel_order", order_id=order_id), order_id)
        if order["status"] == "shipped":
            return (f"I can't cancel order {order_id}: it already shipped on {order['shipped']}. Once it arrives "
                    "you can return it for a refund.")
        if order["status"] == "delivered":
            return f"I can't cancel order {order_id}: it was delivered on {order['delivered']}. You can start a return."
        return f"Order {order_id} is already cancelled; a refund of ${order.get('refund_usd', 0):.2f} was issued."

    def _optimistic_cancel(self, turn: _Turn, order_id: str) -> str:
        return self._confirm(turn.tool("cancel_order", order_id=order_id), order_id)

    @staticmethod
    def _confirm(result: Any, order_id: str) -> str:
        if isinstance(result, ToolError):
            return f"I couldn't cancel order {order_id}: {result}."
        return (f"Done: order {order_id} ({result['item']}) is cancelled and ${result['refund_usd']:.2f} will be "
                "refunded to your original payment method.")
