"""Alerts go to the operator chat from an outbox in SQLite, sent off the customers' path and retried until delivered."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone

from telegram.ext import Application, ContextTypes

from bot.service import Alert, ConversationService, Outcome
from bot.telegram.handlers import SERVICE_KEY, TOPICS_KEY
from bot.telegram.handlers.operator import digest_text, record_move, send_alert
from bot.telegram.handlers.sending import send_text

log = logging.getLogger(__name__)

NO_OPERATOR_CHAT = "no operator chat configured"  # alerts.not_sent: raised while [alerts] operator_chat_id = 0
DIGEST_CHECK_SECONDS = 60.0  # with [hours] alerts_outside_hours = "digest": the opening is noticed this soon


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
            if await self._holding(svc) or not await self._digest(app, svc):
                return 0
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

    @staticmethod
    async def _holding(svc: ConversationService) -> bool:
        """Outside business hours with alerts_outside_hours = "digest": alerts wait in SQLite for the opening."""
        hours = svc.config.hours
        if hours is None or hours.alerts_outside_hours != "digest" or svc.hours.is_open(datetime.now(timezone.utc)):
            return False
        if held := await svc.db.hold_undelivered_alerts():
            log.info("holding %s alert(s) for the digest at the next opening", held)
        return True

    @staticmethod
    async def _digest(app: Application, svc: ConversationService) -> bool:
        """Open again: one message listing the alerts held while closed, then they go back in the outbox to follow
        it one by one (with their buttons). False when the operator chat did not take it: they stay held."""
        held = await svc.db.held_alerts()
        if not held:
            return True
        customers = {row["customer_id"]: await svc.db.customer_by_id(row["customer_id"]) for row in held}
        held = [row for row in held if customers[row["customer_id"]] is not None]  # not deleted by /forget
        if held and not await send_text(app.bot, svc.config.alerts.operator_chat_id,
                                        digest_text(held, customers, svc.hours.tz)):
            return False
        await svc.db.release_held_alerts([row["id"] for row in held])
        return True
