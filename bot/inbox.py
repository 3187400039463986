"""Telegram updates kept in SQLite from the moment they are fetched until handled: a crash loses none."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time

from telegram import Update
from telegram.error import InvalidToken, TelegramError
from telegram.ext import Application

from bot.config import Config
from bot.metrics import Metrics
from storage.db import Database

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 60.0


class Inbox:
    """Replaces PTB's Updater: an update is stored before the next getUpdates confirms it to Telegram,
    marked done once every handler has finished with it, and replayed at start if it never was."""

    def __init__(self, config: Config):
        self.config = config
        self.db: Database | None = None  # set by post_init, when the database is open
        self.last_contact: float | None = None  # time.monotonic() Telegram last answered getUpdates or posted
        self.metrics: Metrics | None = None  # set by post_init too; the reply latency is observed here
        self._arrived: dict[int, float] = {}  # update_id -> time.monotonic() it was stored, until handled

    async def replay(self, app: Application) -> int:
        """Queue the updates a killed process fetched but never finished; returns how many."""
        pending = await self.db.inbox_pending()
        for payload in pending:
            update = Update.de_json(json.loads(payload), app.bot)
            self._arrived[update.update_id] = time.monotonic()
            await app.update_queue.put(update)
        if pending:
            log.info("handling %s update(s) left unfinished by the last run", len(pending))
        return len(pending)

    async def poll(self, app: Application, allowed_updates: list[str]) -> None:
        """Long-poll getUpdates until cancelled; network and SQLite failures are retried with backoff."""
        offset, backoff = None, 0.0
        while True:
            try:
                updates = await app.bot.get_updates(offset=offset, timeout=self.config.telegram.poll_timeout,
                                                    allowed_updates=allowed_updates)
                self.last_contact = time.monotonic()
                for update in updates:
                    # Not stored, not confirmed: if this raises, Telegram sends the update again.
                    await self.receive(app, update)
                    offset = update.update_id + 1
                backoff = 0.0
            except InvalidToken:  # revoked while running: retrying can't help (its message holds the token)
                log.error("Telegram rejected the bot token; no more updates are fetched")
                raise
            except (TelegramError, sqlite3.Error) as exc:
                backoff = min(max(backoff * 2, 1.0), MAX_BACKOFF_SECONDS)
                log.error("fetching updates failed (%s: %s); retrying in %.0f s", type(exc).__name__, exc, backoff)
                await asyncio.sleep(backoff)

    async def receive(self, app: Application, update: Update) -> None:
        """Store a fetched or posted update, then queue it for the handlers unless it is a redelivery."""
        if await self.db.inbox_add(update.update_id, json.dumps(update.to_dict())):
            self._arrived[update.update_id] = time.monotonic()
            await app.update_queue.put(update)

    async def done(self, update: object) -> None:
        """Every handler has finished with the update (answered, or failed and reported)."""
        if not isinstance(update, Update) or self.db is None:
            return
        arrived = self._arrived.pop(update.update_id, None)
        if arrived is not None and self.metrics is not None and update.message is not None:
            self.metrics.reply_latency.observe(time.monotonic() - arrived)
        try:
            await self.db.inbox_done(update.update_id)
        except sqlite3.Error as exc:  # it stays pending and is handled again after a restart, idempotently
            log.error("could not mark update %s handled: %s", update.update_id, exc)
