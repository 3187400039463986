"""Telegram updates kept in SQLite from the moment they are fetched until handled: a crash loses none."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from collections import Counter

from telegram import Update
from telegram.error import InvalidToken, TelegramError
from telegram.ext import Application, ContextTypes

from bot.config import Config
from bot.metrics import Metrics
from storage.db import Database

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 60.0
MAX_ATTEMPTS = 3  # an update whose handling fails this often in one run is kept, no longer retried
RETRY_SECONDS = 10.0  # wait before handling a failed update again; doubled for each further try


class Inbox:
    """Replaces PTB's Updater: an update is stored before the next getUpdates confirms it to Telegram,
    marked done once every handler has finished with it, and replayed at start if it never was. An update
    whose handler failed is not done: it is handled again later, a bounded number of times."""

    def __init__(self, config: Config):
        self.config = config
        self.db: Database | None = None  # set by post_init, when the database is open
        self.last_contact: float | None = None  # time.monotonic() Telegram last answered getUpdates or posted
        self.metrics: Metrics | None = None  # set by post_init too; the reply latency is observed here
        self._arrived: dict[int, float] = {}  # update_id -> time.monotonic() it was stored, until handled
        self._failed: set[int] = set()  # updates whose handler raised, told by the error handler
        self._attempts: Counter[int] = Counter()  # failed tries per update in this run

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

    def failed(self, update: Update) -> bool:
        """A handler raised while handling the update (the error handler says so before done() is called).

        True on its first failure in this run: the customer is told once, not on every retry."""
        self._failed.add(update.update_id)
        return not self._attempts[update.update_id]

    async def done(self, update: object, app: Application) -> None:
        """Every handler has finished with the update: marked done, or, if one failed, handled again later."""
        if not isinstance(update, Update) or self.db is None:
            return
        update_id = update.update_id
        arrived = self._arrived.pop(update_id, None)
        if arrived is not None and self.metrics is not None and update.message is not None:
            self.metrics.reply_latency.observe(time.monotonic() - arrived)
        try:
            if update_id not in self._failed:
                await self.db.inbox_done(update_id)
                self._attempts.pop(update_id, None)
                return
            self._failed.discard(update_id)
            self._attempts[update_id] += 1
            attempts = self._attempts[update_id]
            if attempts >= MAX_ATTEMPTS:
                del self._attempts[update_id]
                await self.db.inbox_give_up(update_id)
                log.error("update %s failed %s times; kept in the inbox table (failed_at set), tried again at the "
                          "next start", update_id, attempts)
                return
            delay = RETRY_SECONDS * 2 ** (attempts - 1)
            log.warning("update %s failed (try %s of %s); handling it again in %.0f s", update_id, attempts,
                        MAX_ATTEMPTS, delay)
            app.job_queue.run_once(_handle_again, delay, data=update, name=f"update {update_id} again")
        except sqlite3.Error as exc:  # it stays pending and is handled again after a restart, idempotently
            log.error("could not record the end of update %s: %s", update_id, exc)


async def _handle_again(context: ContextTypes.DEFAULT_TYPE) -> None:
    """A JobQueue job: a failed update goes back into the queue, behind what arrived meanwhile."""
    await context.application.update_queue.put(context.job.data)
