"""Running the web chat (alone, or beside the real Telegram app over the fake Bot API) for the web tests."""

from __future__ import annotations

import asyncio
import json
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import AsyncIterator

import aiohttp

from bot.channels.web.server import WebChat, serving_web
from bot.config import Config
from bot.service import ConversationService
from bot.telegram.app import build_application, serving, web_alongside
from bot.telegram.handlers import SERVICE_KEY
from storage.db import Database
from testkit import free_port

SECRET = "test-secret-" + "x" * 40



def for_web(config: Config, **web) -> Config:
    """`config` with the web chat on a free port of 127.0.0.1 and the cookie secret set."""
    return replace(config, web=replace(config.web, listen=f"127.0.0.1:{free_port()}", **web), web_secret=SECRET)


@asynccontextmanager
async def running_web(config: Config, engine) -> AsyncIterator[WebChat]:
    """The web chat alone (no Telegram: alerts wait in SQLite) over a real service and database."""
    db = await Database.open(config.storage.path)
    try:
        service = ConversationService(db, engine, config)
        await service.start()
        async with serving_web(service, config) as chat:
            yield chat
    finally:
        await db.close()


@asynccontextmanager
async def running_both(config: Config, engine) -> AsyncIterator[tuple[WebChat, ConversationService]]:
    """The Telegram app over the fake Bot API and the web chat beside it, sharing one service, as `shopbot run`."""
    app = build_application(config, engine)
    async with serving(app, config), web_alongside(app, config) as chat:
        yield chat, app.bot_data[SERVICE_KEY]


class EventStream:
    """A visitor's server-sent events, read in the background: (event, data) pairs as they arrive."""

    def __init__(self, session: aiohttp.ClientSession, url: str):
        self.session, self.url = session, url
        self.events: list[tuple[str, dict]] = []
        self._arrived = asyncio.Event()
        self._task: asyncio.Task | None = None

    async def __aenter__(self) -> "EventStream":
        self._response = await self.session.get(self.url + "api/events")
        assert self._response.status == 200, await self._response.text()
        self._task = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc) -> None:
        self._task.cancel()
        self._response.close()

    async def _read(self) -> None:
        event, data = "message", ""
        async for raw in self._response.content:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data = line[6:]
            elif not line and data:
                self.events.append((event, json.loads(data)))
                self._arrived.set()
                event, data = "message", ""

    async def wait_for(self, name: str, count: int = 1, timeout: float = 10.0) -> list[dict]:
        """The data of the first `count` events called `name`, waiting for them if need be."""
        async def enough() -> list[dict]:
            while len(found := [d for e, d in self.events if e == name]) < count:
                self._arrived.clear()
                await self._arrived.wait()
            return found[:count]

        return await asyncio.wait_for(enough(), timeout)
