"""A forum topic per customer in the operator chat: made at their first alert (or message), showing their messages,
the bot's replies and alerts; closed at hand-back, reopened by new activity, made again when deleted.

Topic ids live in SQLite (customer_topics), with how far the customer's conversation is shown there: a post that
fails is not lost, it is posted at the next event or by the outbox's retry job. In a plain group, with
[handoff] topic_per_customer = "off", or while Telegram refuses to make topics, everything goes to the main chat
with reply-to threads as before."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from typing import Awaitable, Callable, TypeVar

from telegram import Bot, Chat, InlineKeyboardMarkup, Message
from telegram.error import BadRequest, TelegramError

from bot.service import ConversationService
from bot.telegram.handlers import CHANNEL, mood, who
from bot.telegram.handlers.sending import TopicClosed, TopicGone, copy_message, send_text, topic_error, utf16_len
from storage.db import Customer, StoredMessage

log = logging.getLogger(__name__)

NAME_LIMIT = 128  # Telegram's limit on a topic's name
RETRY_REFUSED_SECONDS = 600.0  # Telegram refused to make a topic (no "Manage topics" right): the main chat till then
SHOW_BATCH = 50  # messages read from SQLite at a time when catching a topic up
NO_TOPIC_NOTE = ("ℹ️ In the main chat, not in a topic of the customer's own: Telegram refused to create one ({reason}). "
                 "Give the bot the \"Manage topics\" admin right (README, \"Operator handoff\").")
RECREATED_NOTE = "♻️ This customer's earlier topic was deleted; their conversation continues here."
T = TypeVar("T")


class NoTopic(Exception):
    """The customer has no topic to post in (topics off, a plain group, Telegram refusing, or none made yet)."""


def _unchanged(exc: BadRequest) -> bool:
    """Telegram's TOPIC_NOT_MODIFIED: closing a closed topic, reopening an open one."""
    return "topic_not_modified" in exc.message.lower()


def topic_name(customer: Customer) -> str:
    """The customer's name, @username, channel and id, within Telegram's 128 characters (the name is cut)."""
    name = customer.display_name or "(no name)"
    name = f"{name} @{customer.username}" if customer.username else name
    tail = f" · {'Telegram' if customer.channel == CHANNEL else customer.channel} {customer.external_id}"
    while utf16_len(name + tail) > NAME_LIMIT and len(name) > 1:
        name = name[:-2] + "…"
    return (name + tail)[:NAME_LIMIT]


class Topics:
    """The operator chat's customer topics: which exist (SQLite), whether the chat is a forum, posting in them."""

    def __init__(self, mode: str):
        self.mode = mode  # [handoff] topic_per_customer
        self.forum = False  # the operator chat has topics on: getChat at start, then the chat on its updates
        self._refused: tuple[float, str] | None = None  # when and why Telegram last refused to make a topic
        self._locks: defaultdict[int, asyncio.Lock] = defaultdict(asyncio.Lock)  # one topic per customer, not two

    @property
    def on(self) -> bool:
        """Customers get topics now."""
        return self.mode != "off" and self.forum and self._refused is None

    def _refusal(self) -> str | None:
        """Why posts that belong in topics go to the main chat, while Telegram refuses to make topics."""
        if self._refused and time.monotonic() - self._refused[0] > RETRY_REFUSED_SECONDS:
            self._refused = None  # the owner may have fixed the rights: try again
        return self._refused[1] if self._refused and self.mode != "off" and self.forum else None

    async def learn(self, bot: Bot, chat_id: int | None) -> None:
        """At start: is the operator chat a forum?"""
        if chat_id is None:
            return
        try:
            self.seen((await bot.get_chat(chat_id)))
        except TelegramError as exc:  # its messages will say (seen); until then the plain workflow
            log.warning("could not read the operator chat %s: %s", chat_id, exc)

    def seen(self, chat: Chat) -> None:
        """The operator chat as an update shows it: topics may have been turned on or off since."""
        forum = bool(chat.is_forum)
        if forum != self.forum:
            log.info("the operator chat %s %s a forum: %s", chat.id, "is" if forum else "is not",
                     "a topic per customer" if forum and self.mode != "off" else "one stream with reply-to threads")
        self.forum = forum

    # --- the customer's topic ------------------------------------------------------------------------

    async def _thread(self, bot: Bot, svc: ConversationService, customer: Customer, create_from: int | None) -> int:
        """The customer's open topic, reopened if closed, made again if deleted; made anew if `create_from` is set
        (their messages up to that id are shown already, in an alert). NoTopic if there is none."""
        self._refusal()
        if not self.on:
            raise NoTopic
        chat_id = svc.config.alerts.operator_chat_id
        topic = await svc.db.topic(chat_id, customer.id)
        if topic is None:
            if create_from is None:
                raise NoTopic
            return await self._create(bot, svc, customer, create_from)
        if topic["closed"]:
            try:
                await bot.reopen_forum_topic(chat_id, topic["thread_id"])
            except BadRequest as exc:
                if isinstance(topic_error(exc), TopicGone):
                    return await self._create(bot, svc, customer, topic["shown_through"], again=True)
                if not _unchanged(exc):  # unchanged: someone reopened it in the app
                    raise
            await svc.db.set_topic_closed(chat_id, customer.id, False)
        return topic["thread_id"]

    async def _create(self, bot: Bot, svc: ConversationService, customer: Customer, shown_through: int,
                      again: bool = False) -> int:
        chat_id = svc.config.alerts.operator_chat_id
        try:
            topic = await bot.create_forum_topic(chat_id, topic_name(customer))
        except BadRequest as exc:  # no "Manage topics" right, or topics turned off: the main chat for a while
            log.warning("Telegram refused to create a topic in the operator chat %s: %s; posting in the main chat",
                        chat_id, exc.message)
            self._refused = (time.monotonic(), exc.message)
            raise NoTopic from exc
        await svc.db.set_topic(chat_id, customer.id, topic.message_thread_id, shown_through)
        if again:  # operators deleted the topic; a new one starts with what they need to carry on
            brief = await svc.brief(customer.id)
            await send_text(bot, chat_id, f"{RECREATED_NOTE}\n\n{brief.text()}", thread_id=topic.message_thread_id)
        return topic.message_thread_id

    async def _send(self, bot: Bot, svc: ConversationService, customer: Customer,
                    send: Callable[[int], Awaitable[T | None]], create_from: int | None) -> T | None:
        """send(thread id) into the customer's topic, mending it (reopened, made again) once if it can't take it.

        None: Telegram did not take it (logged); NoTopic: the customer has no topic, post in the main chat."""
        try:
            for _ in range(2):
                thread = await self._thread(bot, svc, customer, create_from)
                try:
                    return await send(thread)
                except TopicClosed:  # closed in the app: reopened by the next _thread
                    await svc.db.set_topic_closed(svc.config.alerts.operator_chat_id, customer.id, True)
                except TopicGone:
                    log.info("the topic of customer %s was deleted; making it again", customer.id)
                    await self._create(bot, svc, customer, await self._shown_through(svc, customer), again=True)
        except TelegramError as exc:  # Telegram unreachable: the post is retried (outbox, catch_up)
            log.warning("topic of customer %s not reachable: %s", customer.id, exc)
        return None

    async def _shown_through(self, svc: ConversationService, customer: Customer) -> int:
        topic = await svc.db.topic(svc.config.alerts.operator_chat_id, customer.id)
        return topic["shown_through"] if topic else 0

    # --- what operators see -----------------------------------------------------------------------------

    async def post(self, bot: Bot, svc: ConversationService, customer: Customer, text: str, kind: str,
                   markup: InlineKeyboardMarkup | None = None, create_from: int | None = None) -> list[Message] | None:
        """Post to the operator chat about a customer: in their topic (made if `create_from` is set, see _thread),
        or in the main chat threaded under their newest alert. Every piece is remembered as the customer's, so a
        reply to it reaches them. None: Telegram did not take it all (logged)."""
        chat_id = svc.config.alerts.operator_chat_id
        if chat_id is None:
            return None
        try:
            async with self._locks[customer.id]:
                sent = await self._send(bot, svc, customer, lambda thread: send_text(bot, chat_id, text, markup,
                                                                                     thread_id=thread), create_from)
        except NoTopic:
            refusal = self._refusal()
            root = None if kind == "alert" else await svc.db.latest_alert_message(chat_id, customer.id)
            text = f"{NO_TOPIC_NOTE.format(reason=refusal)}\n\n{text}" if refusal and create_from is not None else text
            sent = await send_text(bot, chat_id, text, markup, reply_to=root)
        for piece in sent or []:
            await svc.db.remember_operator_message(piece.chat_id, piece.message_id, customer.id, kind)
        return sent

    async def show(self, bot: Bot, svc: ConversationService, customer: Customer) -> bool:
        """Post the customer's and the bot's messages their topic does not show yet, in order (with "first_message",
        making the topic). False: they have no topic, so the caller relays in the main chat as before."""
        chat_id = svc.config.alerts.operator_chat_id
        if not self.on or chat_id is None:
            return False
        async with self._locks[customer.id]:
            topic = await svc.db.topic(chat_id, customer.id)
            if topic is None and self.mode != "first_message":
                return False
            after = topic["shown_through"] if topic else 0
            while pending := await svc.db.messages_after(customer.id, after, SHOW_BATCH):
                for message in pending:
                    if message.role != "operator":  # an operator's words are in the topic already: they wrote there
                        try:
                            sent = await self._send(bot, svc, customer, lambda thread: self._show_one(
                                bot, chat_id, customer, message, thread), create_from=0)
                        except NoTopic:
                            return False
                        if not sent:  # shown later: at the next event, or by the outbox's retry job
                            return True
                    await svc.db.set_topic_shown(chat_id, customer.id, message.id)
                    after = message.id
        return True

    async def _show_one(self, bot: Bot, chat_id: int, customer: Customer, message: StoredMessage,
                        thread: int) -> list[Message] | None:
        if message.role == "bot":
            return await send_text(bot, chat_id, f"🤖 Bot{' (notice)' if message.kind == 'notice' else ''}: "
                                                 f"{message.text}", thread_id=thread)
        sent = await send_text(bot, chat_id, f"💬 {who(customer)}{mood(message.sentiment, message.confidence)}:\n"
                                             f"{message.text}", thread_id=thread)
        if sent and message.kind not in ("text", "command") and customer.channel == CHANNEL and message.external_id:
            # A photo, voice note...: the line above says what it was; the copy shows it (a failed copy loses nothing).
            await copy_message(bot, chat_id, int(customer.external_id), int(message.external_id), thread_id=thread)
        return sent

    async def catch_up(self, bot: Bot, svc: ConversationService) -> None:
        """The retry job: topics whose posts failed get the missing messages now."""
        if not self.on:
            return
        for customer_id in await svc.db.topics_behind(svc.config.alerts.operator_chat_id):
            customer = await svc.db.customer_by_id(customer_id)
            if customer:
                await self.show(bot, svc, customer)

    async def close(self, bot: Bot, svc: ConversationService, customer: Customer) -> None:
        """Hand-back: the customer's topic is closed; their next message (or alert) reopens it."""
        chat_id = svc.config.alerts.operator_chat_id
        async with self._locks[customer.id]:
            topic = await svc.db.topic(chat_id, customer.id) if chat_id is not None else None
            if topic is None or topic["closed"]:
                return
            try:
                await bot.close_forum_topic(chat_id, topic["thread_id"])
            except BadRequest as exc:  # deleted (made again at the next event) or closed already: either way closed
                if not (topic_error(exc) or _unchanged(exc)):
                    log.warning("could not close the topic of customer %s: %s", customer.id, exc.message)
                    return
            except TelegramError as exc:  # cosmetic: it stays open
                log.warning("could not close the topic of customer %s: %s", customer.id, exc)
                return
            await svc.db.set_topic_closed(chat_id, customer.id, True)
