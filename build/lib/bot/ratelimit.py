"""Per-customer rate limit: a sliding one-minute window, and one "please slow down" per burst."""

from __future__ import annotations

import time
from collections import deque
from enum import Enum
from typing import Callable

WINDOW_SECONDS = 60.0


class Verdict(Enum):
    OK = "ok"
    WARN = "warn"  # the first message over the limit: answered with the slow-down note
    DROP = "drop"  # further ones: stored, not answered


class RateLimiter:
    """In memory on purpose: after a restart everyone starts with a clean window, which only errs towards answering."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic):
        self.per_minute, self.clock = per_minute, clock
        self._seen: dict[int, deque[float]] = {}
        self._warned: set[int] = set()

    def check(self, customer_id: int) -> Verdict:
        """Count one message from the customer and say whether it may go to the model."""
        if not self.per_minute:
            return Verdict.OK
        now = self.clock()
        seen = self._seen.setdefault(customer_id, deque())
        while seen and now - seen[0] >= WINDOW_SECONDS:
            seen.popleft()
        if len(seen) < self.per_minute:
            seen.append(now)  # only answered messages use up the window, so a flood ends a minute after it stops
            self._warned.discard(customer_id)
            return Verdict.OK
        if customer_id in self._warned:
            return Verdict.DROP
        self._warned.add(customer_id)
        return Verdict.WARN
