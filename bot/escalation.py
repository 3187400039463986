"""Operator handoff, channel-agnostic: escalation rules, takeovers, operator turns and label corrections."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Awaitable, Callable, Protocol

from bot.config import Config
from bot.lexicon import folded
from bot.llm.intents import Intent
from bot.llm.sentiment_scores import Sentiment
from storage.db import Customer, Database, OperatorChatPosts

if TYPE_CHECKING:
    from bot.service import Outcome


HUMAN_REQUEST = "customer asked for a person"
NO_ANSWER = "no answer in the shop's knowledge"
NEGATIVE, VERY_NEGATIVE = "negative message", "very negative message"
INTENT_RULE = "intent {}"  # an intent of alerts.always_alert_intents, e.g. "intent return_refund"
NOT_NEGATIVE = "not_negative"  # the corrected label Dismiss records: the operator says only "not negative"
IDLE, RELEASED = "idle", "released"  # why a takeover ended
# A customer waiting for a person is one operator note per conversation, not one per message: no new
# NO_ANSWER note while their last one is unanswered and younger than this (README, "Without knowledge").
CONVERSATION_SECONDS = 24 * 3600


ShowToCustomer = Callable[[Customer, str], Awaitable[None]]


class Operators(Protocol):
    """The operators as a channel other than theirs sees them (the Telegram operator chat today)."""

    async def alert(self, outcome: "Outcome") -> None:
        """The alert `outcome` raised (stored already: sent from SQLite, retried until the operators have it)."""

    async def relay(self, outcome: "Outcome", text: str) -> None:
        """A taken-over customer's message, passed on: the bot stays quiet."""

    async def forgotten(self, posts: OperatorChatPosts) -> None:
        """A customer used /forget: the operator chat's posts about them are deleted too."""

    async def model_failed(self, error: str) -> None:
        """A customer got chat.fallback_reply because the model failed (`error` names the cause, never their
        words): the operators' rate-limited note, shared with every channel's failures."""


class Handoff:
    """Who escalates, and who has the conversation: the operator or the bot. All state lives in SQLite."""

    def __init__(self, db: Database, config: Config):
        self.db, self.config = db, config
        self._shows: dict[str, ShowToCustomer] = {}  # channel -> how an operator's text reaches its customers
        a = config.alerts
        # Least to most severe: within the cooldown only a more severe rule raises a new alert. An intent alone is
        # the least: what the customer wants matters less than their mood turning, or no answer at all.
        self.in_a_row = f"{a.negatives_in_a_row} negative messages in a row"
        self.intent_rules = {intent: INTENT_RULE.format(intent) for intent in a.always_alert_intents}
        self.rules = [*self.intent_rules.values(), NEGATIVE, self.in_a_row, VERY_NEGATIVE, NO_ANSWER, HUMAN_REQUEST]

    def asks_for_human(self, text: str) -> bool:
        """An explicit request for a person: one of [alerts] human_phrases, in any case and either Chinese script."""
        text = folded(text)
        return any(folded(phrase) in text for phrase in self.config.alerts.human_phrases)

    def calls_person(self, sentiment: Sentiment | None, intent: Intent | None) -> bool:
        """The message alerts the operators by its mood or by asking for a person, cooldown aside ([alerts])."""
        person = {NEGATIVE, VERY_NEGATIVE, self.intent_rules.get("human")}
        return any(rule in person for rule in self._reading_rules(sentiment, intent))

    async def escalation(self, customer_id: int, sentiment: Sentiment | None, human: bool,
                         unanswered: bool = False, intent: Intent | None = None) -> str | None:
        """The most severe rule this message fires that is not held back: a NO_ANSWER note while the customer's
        last one is pending, any other rule within the cooldown of an alert at least as severe."""
        alerts = await self.db.alerts(customer_id)
        now = time.time()
        note_pending = any(a["reason"] == NO_ANSWER and a["answered_at"] is None
                           and now - a["created_at"] < CONVERSATION_SECONDS for a in alerts)
        # A note says the customer waits, not how they feel: it starts no cooldown, so an alert about their mood
        # (something operators don't know yet) still goes out; notes have their own limit, note_pending.
        last = next((a for a in reversed(alerts) if a["reason"] != NO_ANSWER), None)
        recent = last is not None and now - last["created_at"] < self.config.alerts.cooldown_minutes * 60
        for rule in await self._rules_fired(customer_id, sentiment, human, unanswered, intent):
            if rule == NO_ANSWER and note_pending:
                continue  # the operators know this customer waits; their earlier note shows the conversation
            if not (recent and self._severity(last["reason"]) >= self._severity(rule)):
                return rule
        return None

    async def _rules_fired(self, customer_id: int, sentiment: Sentiment | None, human: bool, unanswered: bool,
                           intent: Intent | None) -> list[str]:
        """Every rule this message fires, most severe first."""
        fired = [HUMAN_REQUEST] * human + [NO_ANSWER] * unanswered + self._reading_rules(sentiment, intent)
        # The current message is stored (and labelled) already, so it is the newest of the labels.
        n = self.config.alerts.negatives_in_a_row
        if sentiment is not None and sentiment.label == "negative" and n > 1 and (
                await self.db.recent_labels(customer_id, n) == ["negative"] * n):
            fired.append(self.in_a_row)
        return sorted(fired, key=self._severity, reverse=True)

    def _reading_rules(self, sentiment: Sentiment | None, intent: Intent | None) -> list[str]:
        """The rules the message's own reading fires: its mood and its intent (not the messages before it)."""
        a, fired = self.config.alerts, []
        if sentiment is not None and sentiment.label == "negative":
            if sentiment.confidence >= a.very_negative:
                fired.append(VERY_NEGATIVE)
            if sentiment.confidence >= a.threshold:
                fired.append(NEGATIVE)
        if intent is not None and intent.label in self.intent_rules:
            fired.append(self.intent_rules[intent.label])
        return fired

    def _severity(self, reason: str) -> int:
        return self.rules.index(reason) if reason in self.rules else 0  # reasons from older configs: the least

    # --- takeovers -------------------------------------------------------------------------------

    async def active(self, customer_id: int) -> dict | None:
        """The open takeover, if an operator has this customer's conversation."""
        return await self.db.open_takeover(customer_id)

    async def take_over(self, customer_id: int, operator_id: str, operator_name: str | None) -> tuple[dict, bool]:
        """The operator takes the conversation (no-op if someone has it) and so answers the customer's alerts;
        (takeover, started now)."""
        # Taking over is the operators' answer to a note: the customer's next question after it is a new one.
        await self.db.mark_alerts_answered(customer_id)
        return await self.db.start_takeover(customer_id, operator_id, operator_name)

    async def operator_turn(self, customer_id: int, text: str, kind: str = "text",
                            external_id: str | None = None) -> None:
        """What an operator sent the customer: stored as the shop's turn; counts as activity and answers alerts."""
        await self.db.add_message(customer_id, "operator", text, kind=kind, external_id=external_id)
        await self.db.touch_takeover(customer_id)
        await self.db.mark_alerts_answered(customer_id)

    def reach_customers(self, channel: str, show: ShowToCustomer) -> None:
        """A channel running in this process says how operator replies reach its customers (Telegram copies
        messages itself, attachments included, so it needs none)."""
        self._shows[channel] = show

    def reaches(self, customer: Customer) -> bool:
        """Whether the customer's channel registered a way to show operator replies (runs in this process)."""
        return customer.channel in self._shows

    async def to_customer(self, customer: Customer, text: str) -> None:
        """An operator's text shown to a customer of a channel that reaches() them."""
        await self._shows[customer.channel](customer, text)

    async def notice_once(self, customer_id: int, lang: str) -> str | None:
        """The "a person is handling this chat" notice in `lang`, the first time a taken-over customer writes."""
        told = await self.db.mark_customer_told(customer_id)
        return self.config.handoff.customer_notice.for_lang(lang) if told else None

    async def release(self, customer_id: int, reason: str = RELEASED) -> dict | None:
        """Hand the conversation back to the bot; the takeover that ended, or None if there was none."""
        return await self.db.end_takeover(customer_id, reason)

    async def release_idle(self) -> list[dict]:
        """Hand back every takeover without operator activity for [handoff] idle_minutes; those handed back."""
        cutoff = time.time() - self.config.handoff.idle_minutes * 60
        ended = [await self.release(t["customer_id"], IDLE) for t in await self.db.idle_takeovers(cutoff)]
        return [t for t in ended if t is not None]

    async def dismiss(self, alert_id: int, operator_id: str) -> bool:
        """Dismiss: the alert's message was not negative; a label correction for the evaluation loop (once)."""
        return await self.db.add_label_correction(alert_id, NOT_NEGATIVE, operator_id)
