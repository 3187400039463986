"""Sending to Telegram: plain text split to the size limit, copies, retries that can't duplicate, and "typing…"."""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager, suppress
from functools import partial
from typing import AsyncIterator, Awaitable, Callable, TypeVar

import httpx
from telegram import Bot, InlineKeyboardMarkup, Message, MessageId, ReplyParameters
from telegram.constants import ChatAction, MessageLimit
from telegram.error import BadRequest, ChatMigrated, Forbidden, NetworkError, TelegramError

log = logging.getLogger(__name__)

TYPING_REFRESH_SECONDS = 4.0  # Telegram shows "typing…" for 5 s
SEND_RETRIES = 3  # for failures where the message surely was not delivered (RetryAfter: the rate limiter's job)
RETRY_BACKOFF_SECONDS = 1.0  # doubled after each attempt
# httpx failures that happen before the request reaches Telegram: retrying them can't send twice.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
T = TypeVar("T")
# How Telegram says a forum topic was deleted: sending to it (tdlib/telegram-bot-api #472, #596), or closing or
# reopening it (MTProto's TOPIC_ID_INVALID; TOPIC_DELETED from clients that name it so).
_TOPIC_GONE = ("message thread not found", "topic_id_invalid", "topic_deleted")


class TelegramUnreachable(Exception):
    """Telegram did not take a message after every retry (server errors, or the request never left): nothing was
    delivered, so the same text can be sent again later."""


class TopicGone(Exception):
    """The forum topic a message was meant for was deleted."""


class TopicClosed(Exception):
    """The forum topic a message was meant for is closed (someone closed it in the app)."""


def topic_error(exc: BadRequest) -> Exception | None:
    """TopicGone or TopicClosed when that is what Telegram's refusal says; None for any other."""
    text = exc.message.lower()
    if any(words in text for words in _TOPIC_GONE):
        return TopicGone(exc.message)
    return TopicClosed(exc.message) if "topic_closed" in text else None


def topic_of(message: Message) -> int | None:
    """The forum topic a message was sent in (None: the main chat, or no forum)."""
    return message.message_thread_id if message.is_topic_message else None


def utf16_len(text: str) -> int:
    # Telegram counts message length in UTF-16 code units: an emoji outside the BMP counts twice.
    return len(text.encode("utf-16-le")) // 2


def _fitting_prefix(text: str, limit: int) -> int:
    """How many characters of `text` fit in `limit` UTF-16 units."""
    units = 0
    for i, char in enumerate(text):
        units += 2 if ord(char) > 0xFFFF else 1
        if units > limit:
            return i
    return len(text)


def split_text(text: str, limit: int = MessageLimit.MAX_TEXT_LENGTH) -> list[str]:
    """Pieces of at most `limit` UTF-16 units, cut at a paragraph, line or word break where there is one."""
    parts = []
    while utf16_len(text) > limit:
        cut = _fitting_prefix(text, limit)
        window = text[:cut]
        brk = max(window.rfind("\n\n"), window.rfind("\n"), window.rfind(" "))
        if brk < cut // 2:  # no break in the second half: a hard cut beats a tiny piece
            brk = cut
        parts.append(text[:brk].rstrip())
        text = text[brk:].lstrip()
    parts.append(text)
    return [p for p in parts if p.strip()]


def _worth_retrying(exc: NetworkError) -> bool:
    """Telegram answered with a server error, or the request never left: either way nothing was delivered.

    A read timeout is not retried: Telegram may already have delivered the message, and a duplicate reply
    is worse than a late log line."""
    return not isinstance(exc, BadRequest) and (exc.__cause__ is None or isinstance(exc.__cause__, _NOT_SENT))


def _reply(message_id: int | None) -> ReplyParameters | None:
    # Still sent if the message replied to was deleted meanwhile.
    return ReplyParameters(message_id, allow_sending_without_reply=True) if message_id else None


async def send_text(bot: Bot, chat_id: int, text: str, reply_markup: InlineKeyboardMarkup | None = None,
                    reply_to: int | None = None, thread_id: int | None = None) -> list[Message] | None:
    """Send `text` as plain text (no parse mode, so model output can't break it), split if long; into forum topic
    `thread_id` if given.

    Returns the messages sent, or None when Telegram did not take all of it (logged here, never raised:
    the caller's stored data is already safe and the bot must keep serving everyone else). Raises TopicGone or
    TopicClosed when the topic cannot take it: the caller can mend the topic and send again."""
    try:
        return await deliver_text(bot, chat_id, text, reply_markup, reply_to, thread_id)
    except TelegramUnreachable:
        return None


async def deliver_text(bot: Bot, chat_id: int, text: str, reply_markup: InlineKeyboardMarkup | None = None,
                       reply_to: int | None = None, thread_id: int | None = None, *, skip: int = 0,
                       on_piece: Callable[[int], Awaitable[None]] | None = None) -> list[Message] | None:
    """send_text for a caller that can send again later: raises TelegramUnreachable where send_text gives None
    because Telegram could not be reached (None still when it refused: blocked, a bad request).

    A long text goes in pieces: the first `skip` are left out (Telegram has them from an earlier try), and
    `on_piece(pieces Telegram has)` is awaited after each piece that more follow, so the caller can record how far
    it got and a later try sends only the rest."""
    parts = split_text(text)
    sent: list[Message] = []
    for i in range(skip, len(parts)):
        last = i == len(parts) - 1
        markup = reply_markup if last else None  # buttons go under the last piece
        send = partial(bot.send_message, text=parts[i], reply_markup=markup, reply_parameters=_reply(reply_to),
                       message_thread_id=thread_id)
        message = await _retrying(chat_id, send)
        if message is None:
            return None
        sent.append(message)
        chat_id = message.chat_id  # follows a group's migration to a supergroup
        if on_piece and not last:  # after the last piece the caller marks the whole text sent
            await on_piece(i + 1)
    return sent


async def copy_message(bot: Bot, chat_id: int, from_chat_id: int, message_id: int,
                       reply_to: int | None = None, thread_id: int | None = None) -> MessageId | None:
    """Copy a message to chat_id (into forum topic `thread_id`), with send_text's retries and None on failure.

    A copy, unlike a forward, carries no "forwarded from" header, so it works whatever the sender's privacy settings."""
    try:
        return await _retrying(chat_id, partial(bot.copy_message, from_chat_id=from_chat_id, message_id=message_id,
                                                reply_parameters=_reply(reply_to), message_thread_id=thread_id))
    except TelegramUnreachable:
        return None


async def _retrying(chat_id: int, send: Callable[[int], Awaitable[T]]) -> T | None:
    """`send(chat_id)`, retried while nothing can have been delivered; None (logged) when it did not go through, and
    TelegramUnreachable when every retry failed that way."""
    delay = RETRY_BACKOFF_SECONDS
    for attempt in range(SEND_RETRIES + 1):
        try:
            return await send(chat_id)
        except Forbidden:
            log.info("chat %s blocked the bot or removed it; message not sent", chat_id)
            return None
        except ChatMigrated as exc:
            log.warning("chat %s became supergroup %s: update the config; sending there", chat_id, exc.new_chat_id)
            chat_id = exc.new_chat_id
        except BadRequest as exc:  # nothing was delivered; only a topic's state is worth telling the caller
            mendable = topic_error(exc)
            if mendable:
                raise mendable from exc
            log.warning("message to chat %s not sent: %s: %s", chat_id, type(exc).__name__, exc)
            return None
        except NetworkError as exc:
            worth_retrying = _worth_retrying(exc)
            if not worth_retrying or attempt == SEND_RETRIES:
                log.warning("message to chat %s not sent: %s: %s", chat_id, type(exc).__name__, exc)
                if worth_retrying:  # every try failed before Telegram had it: the caller may send it later
                    raise TelegramUnreachable(f"{type(exc).__name__}: {exc}") from exc
                return None  # it may have been delivered: never sent again
            log.info("sending to chat %s failed (%s); retrying in %.0f s", chat_id, exc, delay)
            await asyncio.sleep(delay)
            delay *= 2
        except TelegramError as exc:  # RetryAfter after the rate limiter's own retries, and the rest
            log.warning("message to chat %s not sent: %s: %s", chat_id, type(exc).__name__, exc)
            return None
    return None


@asynccontextmanager
async def typing(bot: Bot, chat_id: int) -> AsyncIterator[None]:
    """Show "typing…" in the chat for as long as the block runs."""

    async def keep_typing() -> None:
        while True:
            try:
                await bot.send_chat_action(chat_id, ChatAction.TYPING)
            except TelegramError as exc:  # cosmetic: never worth failing or delaying a reply for
                log.debug("typing indicator for chat %s failed: %s", chat_id, exc)
            await asyncio.sleep(TYPING_REFRESH_SECONDS)

    task = asyncio.create_task(keep_typing())
    try:
        yield
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
