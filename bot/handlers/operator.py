"""The operator chat: alerts about negative customers, and commands that only work there (/stats)."""

from __future__ import annotations

import logging
from datetime import datetime

from telegram import Bot, Message, Update
from telegram.ext import BaseHandler, CommandHandler, ContextTypes

from bot.config import Config
from bot.handlers import NEW_MESSAGE, operator_chat, service
from bot.handlers.sending import send_text
from bot.service import ConversationService, Outcome

log = logging.getLogger(__name__)

TURN_PREVIEW_CHARS = 300  # each past turn in an alert is cut to this; the new message is shown whole
OPERATOR_HELP = ("This is the operator chat: alerts about unhappy customers arrive here.\n"
                 "/stats - today's customers, messages, negative share and alerts")


def alert_text(outcome: Outcome, message: str, turns: list) -> str:
    """Who, what they wrote, how negative, and the conversation so far, as plain text."""
    c, a = outcome.customer, outcome.alert
    who = c.display_name or "(no name)"
    if c.username:
        who += f" (@{c.username})"
    lines = [f"⚠️ Alert #{a.id}: {a.reason}",
             f"Customer: {who}, Telegram id {c.external_id}",
             f"Sentiment: {a.label} {a.confidence:.2f}",
             "", "Message:", message]
    others = [t for t in turns if t.id != outcome.message_id]  # the bot's answer to it included
    if others:
        lines += ["", "Recent turns:"]
        for turn in others:
            text = turn.text if len(turn.text) <= TURN_PREVIEW_CHARS else turn.text[:TURN_PREVIEW_CHARS] + "…"
            lines.append(f"{turn.role}: {text}")
    return "\n".join(lines)


async def send_alert(bot: Bot, svc: ConversationService, outcome: Outcome, message: str) -> list[Message] | None:
    """Post the alert to the operator chat; it is marked delivered only once Telegram has all of it."""
    chat_id = svc.config.alerts.operator_chat_id
    if chat_id is None:
        log.warning("alert #%s not sent: no [alerts] operator_chat_id configured", outcome.alert.id)
        return None
    turns = await svc.recent_turns(outcome.customer.id)
    sent = await send_text(bot, chat_id, alert_text(outcome, message, turns))
    if sent:
        await svc.db.mark_alert_delivered(outcome.alert.id)
    else:  # stays undelivered in SQLite (delivered_at IS NULL), where a later retry can find it
        log.error("alert #%s for customer %s could not be delivered to the operator chat",
                  outcome.alert.id, outcome.customer.id)
    return sent


def stats_text(stats: dict) -> str:
    return (f"Today so far:\n"
            f"Customers: {stats['customers']}\n"
            f"Messages: {stats['messages']}\n"
            f"Negative: {stats['negative_share']:.0%}\n"
            f"Alerts: {stats['alerts_delivered']} sent of {stats['alerts']} raised")


async def stats(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/stats: today's numbers since local midnight."""
    midnight = datetime.now().astimezone().replace(hour=0, minute=0, second=0, microsecond=0)
    numbers = await service(context).db.stats_since(midnight.timestamp())
    await send_text(context.bot, update.effective_chat.id, stats_text(numbers))


async def operator_help(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/start or /help in the operator chat: what happens here."""
    await send_text(context.bot, update.effective_chat.id, OPERATOR_HELP)


def handlers(config: Config) -> list[BaseHandler]:
    here = NEW_MESSAGE & operator_chat(config)
    return [
        CommandHandler("stats", stats, filters=here),
        CommandHandler(["start", "help"], operator_help, filters=here),
    ]
