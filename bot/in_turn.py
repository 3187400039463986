"""One customer's messages handled one at a time, in arrival order, by any channel (different customers at once)."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from typing import AsyncIterator, Hashable


class InTurn:
    """A FIFO lock per key, made on demand and dropped once nobody holds or awaits it."""

    def __init__(self) -> None:
        self._locks: dict[Hashable, asyncio.Lock] = {}
        self._waiting: Counter[Hashable] = Counter()

    @contextlib.asynccontextmanager
    async def turn(self, key: Hashable) -> AsyncIterator[None]:
        """Wait for `key`'s earlier holders (asyncio.Lock wakes waiters first-in first-out), then hold it."""
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._waiting[key] += 1
        try:
            async with lock:
                yield
        finally:
            self._waiting[key] -= 1
            if not self._waiting[key]:
                del self._waiting[key], self._locks[key]
