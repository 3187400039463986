"""Telegram handlers: what they share (the service, who wrote, which chats are whose)."""

from __future__ import annotations

import re
from dataclasses import replace

from telegram import Update, User
from telegram.ext import ContextTypes, filters

from bot.config import Config
from bot.lexicon import spoken_language
from bot.service import ConversationService, Sender
from storage.db import Customer

CHANNEL = "telegram"
SERVICE_KEY = "service"  # where post_init puts the ConversationService in bot_data
OUTBOX_KEY = "outbox"  # the AlertOutbox in bot_data
OPERATORS_KEY = "operators"  # the operator chat's filter in bot_data, following the chat's moves
TOPICS_KEY = "topics"  # the operator chat's customer topics (bot.telegram.topics.Topics) in bot_data

# New messages only: PTB's message filters also match edits and channel posts, which get their own policy.
NEW_MESSAGE = filters.UpdateType.MESSAGE
COMMAND_OR_MENTION = re.compile(r"^/\S+|@\w+")


def service(context: ContextTypes.DEFAULT_TYPE) -> ConversationService:
    return context.bot_data[SERVICE_KEY]


def sender(user: User) -> Sender:
    return Sender(CHANNEL, str(user.id), user.full_name, user.username, app_language(user))


def app_language(user: User) -> str:
    """The language of the user's Telegram app, as far as shopbot's texts go: "zh" (zh-hans, zh-hant...) or "en"."""
    return "zh" if (user.language_code or "").lower().startswith("zh") else "en"


def own_language(update: Update) -> str | None:
    """The language of the update's own words; None when it has none (a command or a mention says nothing)."""
    message = update.effective_message
    words = COMMAND_OR_MENTION.sub("", (message.text or message.caption or "") if message else "")
    return spoken_language(words)  # an order number or "👍" says nothing either


def language_without_history(update: Update) -> str:
    """The language to answer in when their stored messages cannot or need not be asked: the update's own words',
    else their app's (a group pointer; the storage-error reply, when SQLite is what failed)."""
    return own_language(update) or app_language(update.effective_user)


def who(customer: Customer) -> str:
    """How operators see a customer: name and @username, and the channel when it is not Telegram."""
    name = customer.display_name or "(no name)"
    name = f"{name} (@{customer.username})" if customer.username else name
    return name if customer.channel == CHANNEL else f"{name} [{customer.channel}]"  # e.g. [web]: no Telegram chat


def mood(label: str | None, confidence: float | None) -> str:
    """The sentiment read, as operators see it after a customer's name: " (negative 0.80)", or nothing."""
    return f" ({label} {confidence:.2f})" if label else ""


def operator_chat(config: Config) -> filters.Chat:
    """The operator chat; matches nothing when none is configured. One per application: follow_move() updates it."""
    chat_id = config.alerts.operator_chat_id
    return filters.Chat(chat_id=chat_id if chat_id is not None else [])


def customer_chats(operators: filters.Chat) -> filters.BaseFilter:
    """Customers talk to the bot in private chats; the operator's own private chat is not a customer chat."""
    return filters.ChatType.PRIVATE & ~operators


def follow_move(bot_data: dict, to_id: int) -> None:
    """The operator group became a supergroup with a new id: commands, replies, buttons and alerts go there now."""
    operators: filters.Chat = bot_data[OPERATORS_KEY]
    svc: ConversationService = bot_data[SERVICE_KEY]
    operators.chat_ids = to_id
    svc.config = replace(svc.config, alerts=replace(svc.config.alerts, operator_chat_id=to_id))


def message_id(update: Update) -> str:
    """Telegram's message id, kept with the stored message (unique per chat, so per customer)."""
    return str(update.effective_message.message_id)
