"""Alerts go to the operator chat from an outbox in SQLite, sent off the customers' path and retried until delivered."""

from __future__ import annotations

import asyncio
import logging

from telegram.ext import Application, ContextTypes

from bot.service import Alert, ConversationService, Outcome
from bot.telegram.handlers import SERVICE_KEY, TOPICS_KEY
from bot.telegram.handlers.operator import record_move, send_alert

log = logging.getLogger(__name__)

NO_OPERATOR_CHAT = "no operator chat configured"  # alerts.not_sent: raised while [alerts] operator_chat_id = 0


class AlertOutbox:
    """Undelivered alerts (alerts.delivered_at IS NULL) are the outbox; one sender at a time, so none goes twice.

    A customer's handler only stores the alert and wakes the sender: a slow or rate-limited operator chat
    (groups take 20 messages a minute) never holds up anyone's reply."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._again = False  # an alert arrived while a pass was running: one more pass

    async def raised(self, app: Application, alert: Alert) -> None:
        """A new alert is stored: send it soon, without waiting for it."""
        svc: ConversationService = app.bot_data[SERVICE_KEY]
        if svc.config.alerts.operator_chat_id is None:
            # Kept for /stats, never sent: configuring the chat later must not flood it with stale alerts.
            await svc.db.mark_alert_not_sent(alert.id, NO_OPERATOR_CHAT)
            return
        self._again = True
        if not self._lock.locked():
            app.create_task(self.flush(app), name="alert outbox")  # an exception reaches the error handler

    async def job(self, context: ContextTypes.DEFAULT_TYPE) -> None:
        """The JobQueue's retry: at start (alerts left by the last run) and every [alerts] outbox_retry_seconds;
        then the customer topics whose posts failed."""
        await self.flush(context.application)
        await context.bot_data[TOPICS_KEY].catch_up(context.bot, context.bot_data[SERVICE_KEY])

    async def flush(self, app: Application) -> int:
        """Send undelivered alerts oldest first, until one fails (the chat is still unreachable); how many went."""
        svc: ConversationService = app.bot_data[SERVICE_KEY]
        sent = 0
        self._again = True
        async with self._lock:
            while self._again:
                self._again = False
                for row in await svc.db.undelivered_alerts():
                    customer = await svc.db.customer_by_id(row["customer_id"])
                    if customer is None:  # deleted by /forget since the list was read; its alerts went with it
                        continue
                    message = await svc.db.message_text(row["message_id"]) if row["message_id"] else None
                    alert = Alert(row["id"], row["reason"], row["label"], row["confidence"])
                    operators = svc.config.alerts.operator_chat_id
                    pieces = await send_alert(app.bot, svc, app.bot_data[TOPICS_KEY],
                                              Outcome(customer, row["message_id"], "", alert=alert), message or "")
                    if not pieces:
                        self._again = False
                        break
                    sent += 1
                    if pieces[-1].chat_id != operators:  # Telegram answered ChatMigrated and send_text followed it
                        await record_move(app.bot_data, operators, pieces[-1].chat_id)
        if sent:
            log.info("delivered %s alert(s) from the outbox", sent)
        return sent
