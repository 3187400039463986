"""Alerts the operator chat could not take (bot removed, 403, outage) stay in SQLite and are retried."""

from __future__ import annotations

import asyncio
import logging
import sqlite3

from telegram import Bot

from bot.handlers.operator import send_alert
from bot.service import Alert, ConversationService, Outcome

log = logging.getLogger(__name__)


class AlertOutbox:
    """Undelivered alerts (alerts.delivered_at IS NULL) are the outbox; one lock so no alert goes out twice."""

    def __init__(self, retry_seconds: float):
        self.retry_seconds = retry_seconds
        self._lock = asyncio.Lock()

    async def deliver(self, bot: Bot, svc: ConversationService, outcome: Outcome, message: str) -> None:
        """A newly raised alert, sent now unless the retry loop has just sent it."""
        async with self._lock:
            if (await svc.db.alert(outcome.alert.id) or {}).get("delivered_at") is None:
                await send_alert(bot, svc, outcome, message)

    async def flush(self, bot: Bot, svc: ConversationService) -> int:
        """Send undelivered alerts oldest first, until one fails (the chat is still unreachable); how many went."""
        sent = 0
        async with self._lock:
            for row in await svc.db.undelivered_alerts():
                customer = await svc.db.customer_by_id(row["customer_id"])
                message = await svc.db.message_text(row["message_id"]) if row["message_id"] else None
                alert = Alert(row["id"], row["reason"], row["label"], row["confidence"])
                if not await send_alert(bot, svc, Outcome(customer, row["message_id"], "", alert=alert), message or ""):
                    break
                sent += 1
        if sent:
            log.info("delivered %s alert(s) from the outbox", sent)
        return sent

    async def run(self, bot: Bot, svc: ConversationService) -> None:
        """At start (alerts left by the last run) and then every retry_seconds, until cancelled."""
        while True:
            try:
                await self.flush(bot, svc)
            except sqlite3.Error as exc:
                log.error("alert outbox: SQLite failed (%s); retrying in %.0f s", exc, self.retry_seconds)
            await asyncio.sleep(self.retry_seconds)
