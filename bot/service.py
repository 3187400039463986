"""The conversation service every channel calls: store, read sentiment, decide an alert, reply, store."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from bot.config import Config
from bot.llm.engine import Engine
from bot.llm.sentiment import Sentiment
from storage.db import Customer, Database, StoredMessage

log = logging.getLogger(__name__)

HISTORY_FETCH_LIMIT = 60  # turns read back before trimming to the token budget


@dataclass(frozen=True)
class Sender:
    """Who wrote, as the channel knows them."""

    channel: str
    external_id: str
    display_name: str | None = None
    username: str | None = None


@dataclass(frozen=True)
class Alert:
    id: int
    reason: str
    label: str
    confidence: float


@dataclass(frozen=True)
class Outcome:
    """What the service did with one customer message."""

    customer: Customer
    message_id: int
    reply: str
    sentiment: Sentiment | None = None
    alert: Alert | None = None
    fallback: bool = False  # the model failed and the customer got chat.fallback_reply


class ConversationService:
    def __init__(self, db: Database, engine: Engine, config: Config):
        self.db, self.engine, self.config = db, engine, config

    async def customer(self, sender: Sender) -> Customer:
        return await self.db.customer(sender.channel, sender.external_id, sender.display_name, sender.username)

    async def handle_text(self, sender: Sender, text: str, external_id: str | None = None) -> Outcome:
        """One customer message in, the reply out; the message is stored before anything can fail."""
        customer = await self.customer(sender)
        message_id = await self.db.add_message(customer.id, "customer", text, external_id=external_id)
        if not text.strip():
            return await self._answer(customer, message_id, self.config.chat.empty_reply)
        model_text = self.engine.truncate(text, self.config.chat.max_message_tokens)
        sentiment = await self._read_sentiment(message_id, model_text)
        alert = await self._maybe_alert(customer, message_id, sentiment)
        history = await self._history_before(customer.id, message_id)
        try:
            reply = await self.engine.reply(history, model_text)
        except Exception:
            log.exception("chat model failed for customer %s; sending the fallback reply", customer.id)
            reply = ""
        fallback = not reply
        if fallback:
            reply = self.config.chat.fallback_reply
        return await self._answer(customer, message_id, reply, sentiment, alert, fallback)

    async def handle_non_text(self, sender: Sender, kind: str, external_id: str | None = None,
                              caption: str | None = None) -> Outcome:
        """A photo, sticker, voice note...: stored as an event (with its caption), answered politely, no model call."""
        customer = await self.customer(sender)
        text = f"[{kind}] {caption}" if caption else f"[{kind}]"
        message_id = await self.db.add_message(customer.id, "customer", text, kind=kind, external_id=external_id)
        return await self._answer(customer, message_id, self.config.telegram.non_text_reply)

    async def reset(self, sender: Sender) -> None:
        await self.db.reset_history((await self.customer(sender)).id)

    async def forget(self, sender: Sender) -> dict[str, int]:
        return await self.db.forget((await self.customer(sender)).id)

    async def recent_turns(self, customer_id: int) -> list[StoredMessage]:
        """The last few turns, for an operator reading an alert."""
        return await self.db.history(customer_id, self.config.alerts.context_turns)

    async def _answer(self, customer: Customer, message_id: int, reply: str,
                      sentiment: Sentiment | None = None, alert: Alert | None = None, fallback: bool = False) -> Outcome:
        await self.db.add_message(customer.id, "bot", reply)
        return Outcome(customer, message_id, reply, sentiment, alert, fallback)

    async def _read_sentiment(self, message_id: int, text: str) -> Sentiment | None:
        try:
            sentiment = await self.engine.sentiment(text)
        except Exception:
            log.exception("sentiment model failed for message %s", message_id)
            return None
        await self.db.set_sentiment(message_id, sentiment.label, sentiment.confidence)
        return sentiment

    async def _maybe_alert(self, customer: Customer, message_id: int, sentiment: Sentiment | None) -> Alert | None:
        """Negative at or above the threshold raises an alert, at most one per customer per cooldown."""
        settings = self.config.alerts
        if sentiment is None or sentiment.label != "negative" or sentiment.confidence < settings.threshold:
            return None
        last = await self.db.last_alert_at(customer.id)
        if last is not None and time.time() - last < settings.cooldown_minutes * 60:
            return None
        reason = "negative message"
        alert_id = await self.db.add_alert(customer.id, message_id, reason, sentiment.label, sentiment.confidence)
        return Alert(alert_id, reason, sentiment.label, sentiment.confidence)

    async def _history_before(self, customer_id: int, message_id: int) -> list[tuple[str, str]]:
        """Past turns, newest kept, within chat.history_tokens (the new message's own tokens count too)."""
        turns = [t for t in await self.db.history(customer_id, HISTORY_FETCH_LIMIT) if t.id < message_id]
        budget = self.config.chat.history_tokens - self.config.chat.max_message_tokens
        kept: list[tuple[str, str]] = []
        for turn in reversed(turns):
            budget -= self.engine.count_tokens(turn.text)
            if budget < 0:
                break
            kept.append((turn.role, turn.text))
        return kept[::-1]
