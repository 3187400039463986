"""Requests of one kind that wait while the model is busy run together, as one batch, when their turn comes."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Awaitable, Callable, Generic, Sequence, TypeVar

R = TypeVar("R")
T = TypeVar("T")


@dataclass(eq=False)
class _Waiting(Generic[R, T]):
    request: R
    result: T | None = None
    error: BaseException | None = None


class Batcher(Generic[R, T]):
    """Each request queues one drain on the engine's thread; a drain runs everything waiting (up to max_size)
    through `batch(requests) -> results` at once.

    The engine's thread runs calls in order, so by the time a request's own drain runs, an earlier drain has
    answered it or it is first in line: every request is answered by its own drain at the latest. Requests of
    one customer never share a batch: a customer's next message is not read before the last one is answered."""

    def __init__(self, run: Callable[[Callable[[], None]], Awaitable[None]],
                 batch: Callable[[Sequence[R]], Sequence[T]], max_size: int):
        self._run, self._batch, self.max_size = run, batch, max_size
        self._waiting: list[_Waiting[R, T]] = []
        self._lock = threading.Lock()  # the event loop adds, the engine's thread takes

    async def __call__(self, request: R) -> T:
        waiting = _Waiting(request)
        with self._lock:
            self._waiting.append(waiting)
        try:
            await self._run(self._drain)
        except BaseException:
            with self._lock:  # still waiting (cancelled, or a timeout before its batch ran): run it for nobody
                if waiting in self._waiting:
                    self._waiting.remove(waiting)
            raise
        if waiting.error is not None:
            raise waiting.error
        return waiting.result

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def _drain(self) -> None:
        """On the engine's thread: answer up to max_size waiting requests with one batch call."""
        with self._lock:
            taken, self._waiting = self._waiting[:self.max_size], self._waiting[self.max_size:]
        if not taken:
            return
        try:
            results = self._batch([w.request for w in taken])
            for waiting, result in zip(taken, results, strict=True):
                waiting.result = result
        except Exception as exc:  # every request of the batch hears of it
            for waiting in taken:
                waiting.error = exc
