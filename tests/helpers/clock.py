"""A fake clock for the retry loop: time moves only when the loop waits, and every wait is recorded."""

from __future__ import annotations

import asyncio

from evalplatform.models.retry import Clock


class FakeClock(Clock):
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)  # still a suspension point, as a real wait is
