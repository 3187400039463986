"""/healthz for the Telegram bot: bot/monitoring.py's checks, and whether Telegram's updates still reach it."""

from __future__ import annotations

import time

from telegram.error import TelegramError
from telegram.ext import Application

from bot.config import Config
from bot.monitoring import Monitor
from bot.telegram.handlers import SERVICE_KEY
from bot.telegram.inbox import Inbox
from bot.telegram.webhook import delivery_trouble

# getUpdates answers at least every poll_timeout seconds even when nobody writes; this much longer is a stall.
POLL_STALL_MARGIN_SECONDS = 60
WEBHOOK_CHECK_SECONDS = 30  # getWebhookInfo is asked at most this often, however often /healthz is


class TelegramMonitor(Monitor):
    """The Monitor of a running Application: its service, and a stall in receiving updates as a problem too."""

    def __init__(self, app: Application, config: Config, inbox: Inbox):
        super().__init__(config, lambda: app.bot_data.get(SERVICE_KEY))
        self.app, self.inbox = app, inbox
        self._started = time.monotonic()
        self._webhook_checked: tuple[float, str | None] = (float("-inf"), None)

    async def channel_problems(self) -> list[str]:
        """Updates not arriving from Telegram, as one line."""
        updates = await self._updates_trouble()
        return [f"updates: {updates}"] if updates else []

    async def _updates_trouble(self) -> str | None:
        """Polling: getUpdates silent too long; webhook: what Telegram says of its posts here (asked now and then)."""
        if self.config.telegram.mode == "polling":
            last = self.inbox.last_contact or self._started
            silent = time.monotonic() - last
            if silent > self.config.telegram.poll_timeout + POLL_STALL_MARGIN_SECONDS:
                return f"no answer from Telegram to getUpdates for {silent:.0f} s"
            return None
        checked_at, trouble = self._webhook_checked
        if time.monotonic() - checked_at >= WEBHOOK_CHECK_SECONDS:
            try:
                trouble = await delivery_trouble(self.app.bot, self.config.telegram.webhook_url)
            except TelegramError as exc:
                trouble = f"cannot ask Telegram about the webhook: {exc}"
            self._webhook_checked = (time.monotonic(), trouble)
        return trouble
