"""Who a web visitor is (a signed cookie, no login) and the live event streams of their open pages."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
from collections import defaultdict
from typing import Callable

COOKIE = "shopbot_visitor"
COOKIE_MAX_AGE = 365 * 24 * 3600  # a returning visitor finds their conversation for a year
STREAM_QUEUE = 256  # events kept for a page that stopped reading; beyond it its stream ends (it reconnects)


class VisitorCookies:
    """A visitor id and its HMAC-SHA256 under the server's secret: a forged or edited cookie names nobody."""

    def __init__(self, secret: str):
        self._key = secret.encode()

    @staticmethod
    def new_id() -> str:
        return secrets.token_urlsafe(18)  # 144 random bits

    def sign(self, visitor: str) -> str:
        return f"{visitor}.{self._mac(visitor)}"

    def visitor(self, cookie: str | None) -> str | None:
        """The visitor id a cookie carries, if its signature is ours."""
        visitor, _, mac = (cookie or "").partition(".")
        return visitor if visitor and hmac.compare_digest(mac, self._mac(visitor)) else None

    def _mac(self, visitor: str) -> str:
        digest = hmac.new(self._key, visitor.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")


class LiveStreams:
    """Each visitor's open pages (tabs, the widget) as queues of server-sent events; every page gets every event."""

    def __init__(self) -> None:
        self._queues: dict[str, set[asyncio.Queue]] = defaultdict(set)
        self._hang_ups: dict[asyncio.Queue, Callable[[], None]] = {}

    def open(self, visitor: str, hang_up: Callable[[], None]) -> asyncio.Queue:
        """A new page's queue; `hang_up` closes its connection should the page stop reading."""
        queue: asyncio.Queue = asyncio.Queue(STREAM_QUEUE)
        self._queues[visitor].add(queue)
        self._hang_ups[queue] = hang_up
        return queue

    def close(self, visitor: str, queue: asyncio.Queue) -> None:
        """The page's stream ended."""
        self._queues[visitor].discard(queue)
        self._hang_ups.pop(queue, None)
        if not self._queues[visitor]:
            del self._queues[visitor]

    def send(self, visitor: str, event: str, data: dict) -> int:
        """Queue an event for every open page of the visitor; how many pages will see it."""
        frame = f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()
        queues = self._queues.get(visitor, set())
        for queue in list(queues):
            try:
                queue.put_nowait(frame)
            except asyncio.QueueFull:  # a page that stopped reading
                queues.discard(queue)
                self._drop(queue)
        return len(queues)

    def _drop(self, queue: asyncio.Queue) -> None:
        """Hang up on a page that stopped reading: its browser reconnects and catches up from the history. Only
        ending its stream would not do: its handler may be stuck writing to it (TCP pushes back)."""
        _end(queue, drop_all=True)
        self._hang_ups.pop(queue)()

    def end_all(self) -> None:
        """Shutting down: every stream ends (pages reconnect to the next server)."""
        for queues in self._queues.values():
            for queue in queues:
                _end(queue)


def _end(queue: asyncio.Queue, drop_all: bool = False) -> None:
    """The end marker after what the page has not read yet (all of it dropped, or just enough to make room)."""
    while queue.full() or (drop_all and not queue.empty()):
        queue.get_nowait()
    queue.put_nowait(None)
