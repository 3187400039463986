"""Webhook mode: Telegram posts updates to PTB's webhook server; each is stored before Telegram gets its 200."""

from __future__ import annotations

import logging
import secrets
import sqlite3
import time
from contextlib import asynccontextmanager
from typing import AsyncIterator
from urllib.parse import urlsplit

from telegram import Bot, Update
from telegram.error import BadRequest
from telegram.ext import Application, Updater

from bot.config import Config, ConfigError, listen_address
from bot.telegram.inbox import Inbox

log = logging.getLogger(__name__)

# Telegram posts one update at a time and waits for its answer: per-chat order is kept from the network on, and
# an answer takes one SQLite insert (the model's work happens after it), so one connection is plenty.
MAX_CONNECTIONS = 1
# Telegram's own record of its last failed post; older errors were followed by successes or are stale.
DELIVERY_ERROR_WINDOW_SECONDS = 300


class _StoringQueue:
    """Where PTB's webhook handler puts each posted update: into SQLite first, then the handlers' queue.

    The handler answers 200 only after put() returns; if storing raises, Telegram gets a 500 and posts again."""

    def __init__(self, inbox: Inbox, app: Application):
        self._inbox, self._app = inbox, app

    async def put(self, update: Update) -> None:
        self._inbox.last_contact = time.monotonic()
        try:
            await self._inbox.receive(self._app, update)
        except sqlite3.Error as exc:
            log.error("storing posted update %s failed (%s: %s); Telegram posts it again",
                      update.update_id, type(exc).__name__, exc)
            raise


@asynccontextmanager
async def receiving(app: Application, config: Config, inbox: Inbox, allowed_updates: list[str]) -> AsyncIterator[None]:
    """Serve the webhook (and tell Telegram where it is) while the block runs; stop taking posts on the way out."""
    host, port = listen_address("telegram.webhook_listen", config.telegram.webhook_listen)
    updater = Updater(app.bot, _StoringQueue(inbox, app))  # type: ignore[arg-type]  # duck-typed: only put()
    await updater.initialize()
    try:
        # A new secret at every start: only the Telegram we just registered with can post to us.
        await updater.start_webhook(listen=host, port=port, url_path=urlsplit(config.telegram.webhook_url).path.lstrip("/"),
                                    webhook_url=config.telegram.webhook_url, secret_token=secrets.token_urlsafe(32),
                                    allowed_updates=allowed_updates, max_connections=MAX_CONNECTIONS)
    except BadRequest as exc:  # not https, a port Telegram does not post to, a host it cannot resolve: for the owner
        raise ConfigError("telegram.webhook_url", f"Telegram refused it: {exc.message}") from None
    except OSError as exc:
        raise ConfigError("telegram.webhook_listen", f"cannot listen on {host}:{port}: {exc.strerror}") from None
    try:
        yield
    finally:
        # Not updater.shutdown(): it would close the bot's HTTP client while handlers still send replies.
        await updater.stop()


async def delivery_trouble(bot: Bot, url: str) -> str | None:
    """Why Telegram cannot deliver to our webhook at `url` now (set elsewhere, or its last error), or None."""
    info = await bot.get_webhook_info()
    if info.url != url:  # another copy with this token set its own webhook, or deleted it to poll: none come here
        now = info.url or "deleted (updates wait for getUpdates)"
        return f"Telegram no longer posts to {url}: its webhook is {now}"
    recent = info.last_error_date is not None and time.time() - info.last_error_date.timestamp() < DELIVERY_ERROR_WINDOW_SECONDS
    if recent and info.pending_update_count:
        return f"Telegram cannot post to {info.url}: {info.last_error_message} ({info.pending_update_count} waiting)"
    return None
