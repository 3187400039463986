"""Customers in private chats: commands, text through the service, non-text, edits; groups get a pointer."""

from __future__ import annotations

import logging
import time
from typing import Callable

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, MessageEntity, Update
from telegram.error import TelegramError
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, ContextTypes, MessageHandler, filters

from bot.config import Localized
from bot.service import ModelFailed, Outcome
from bot.telegram.handlers import (CHANNEL, NEW_MESSAGE, OUTBOX_KEY, customer_chats, language_without_history,
                                   message_id, own_language, sender, service, who)
from bot.telegram.handlers.drafts import DraftStream
from bot.telegram.handlers.operator import erase_posts
from bot.telegram.handlers.sending import deliver_text, send_text, typing
from bot.telegram.handlers.takeover import to_operators, topics

log = logging.getLogger(__name__)

FORGET_YES, FORGET_NO = "forget:yes", "forget:no"
# Checked in this order: an animation also carries a document, a venue also a location.
NON_TEXT_KINDS = ("photo", "sticker", "voice", "video_note", "video", "animation", "audio", "document",
                  "venue", "location", "contact", "poll", "dice", "game", "story", "invoice")
CUSTOMER_COMMANDS = ["start", "help", "reset", "forget", "human"]
QUEUE_NOTICE_INTERVAL = 300.0  # seconds: one place-in-line notice per chat, not one per queued message


async def _say(update: Update, context: ContextTypes.DEFAULT_TYPE, text: str, markup=None) -> None:
    await send_text(context.bot, update.effective_chat.id, text, markup)


def _texts(context: ContextTypes.DEFAULT_TYPE):
    return service(context).config.telegram


async def _wording(update: Update, context: ContextTypes.DEFAULT_TYPE) -> Callable[[Localized], str]:
    """How a configured text reaches this customer: in the language of the update's own words (else of their last
    text, else their app's) and in the Chinese script they write."""
    stored_language, script = await service(context).sender_wording(sender(update.effective_user))
    lang = own_language(update) or stored_language
    return lambda text: script.written(text.for_lang(lang))


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/start: the shop's welcome."""
    await _say(update, context, (await _wording(update, context))(_texts(context).welcome))


async def help_(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/help, and any command the bot doesn't know (operator commands look exactly like unknown ones here)."""
    await _say(update, context, (await _wording(update, context))(_texts(context).help))


async def reset(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/reset: replies stop using the earlier conversation (nothing is deleted)."""
    worded = await _wording(update, context)
    await service(context).reset(sender(update.effective_user))
    await _say(update, context, worded(_texts(context).reset_reply))


async def forget(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/forget: ask to confirm with two buttons; nothing is deleted yet."""
    texts, worded = _texts(context), await _wording(update, context)
    buttons = InlineKeyboardMarkup([[InlineKeyboardButton(worded(texts.forget_yes), callback_data=FORGET_YES),
                                     InlineKeyboardButton(worded(texts.forget_no), callback_data=FORGET_NO)]])
    await _say(update, context, worded(texts.forget_confirm), buttons)


async def forget_answer(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A press on /forget's buttons: delete everything about whoever pressed, or nothing; say which."""
    query, texts = update.callback_query, _texts(context)
    await query.answer()
    worded = await _wording(update, context)  # before the deletion: the answer is in the words they used
    posts = None
    if query.data == FORGET_YES:
        counts, posts = await service(context).forget(sender(query.from_user))
        answer = worded(texts.forget_done).format(messages=counts["messages"], alerts=counts["alerts"])
    else:
        answer = worded(texts.forget_cancelled)
    try:  # editing also removes the buttons, so a second press can't arrive
        await query.edit_message_text(answer)
    except TelegramError as exc:  # e.g. pressed twice before the edit landed: the deletion itself is done
        log.info("could not edit the /forget question in chat %s: %s", update.effective_chat.id, exc)
    if posts:
        await erase_posts(context.bot, posts)


def _with_sentiment(outcome: Outcome, show: bool) -> str:
    s = outcome.sentiment
    return f"{outcome.reply}\n\n({s.label} {s.confidence:.2f})" if show and s else outcome.reply


async def _answer(context: ContextTypes.DEFAULT_TYPE, chat_id: int, outcome: Outcome, text: str) -> None:
    """Send the service's reply and record that Telegram has it (so a redelivery is not answered twice).

    Nothing is sent when the reply is empty: over the rate limit, or a redelivered message answered already. When
    Telegram cannot be reached, TelegramUnreachable fails the update: it is handled again later, and its stored
    reply is sent then (no new model call), without the pieces of a long one Telegram took before the outage."""
    if not outcome.reply:
        return
    svc = service(context)

    async def piece_sent(pieces: int) -> None:
        await svc.mark_pieces_sent(outcome, pieces)

    # A replay's text lacks the sentiment label the first try showed: the split cuts from the front, so only the
    # last piece can differ, and the pieces Telegram has are the same. [] back: all of the reply had arrived.
    if await deliver_text(context.bot, chat_id, text, skip=outcome.pieces_sent, on_piece=piece_sent) is not None:
        await svc.mark_sent(outcome)


async def _queue_notice(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """When many batches of customers are ahead in the model's queue, say so, at most once per chat per interval."""
    svc, texts = service(context), _texts(context)
    ahead = svc.waiting_for_model()
    batches_ahead = -(-ahead // svc.config.model.batch_size)  # the model answers up to batch_size customers at once
    last = context.chat_data.get("queue_notice_at", float("-inf"))
    if texts.queue_notice_at and batches_ahead >= texts.queue_notice_at and time.monotonic() - last > QUEUE_NOTICE_INTERVAL:
        context.chat_data["queue_notice_at"] = time.monotonic()
        worded = await _wording(update, context)  # only here: most messages get no notice
        await send_text(context.bot, update.effective_chat.id, worded(texts.queue_notice).format(position=ahead + 1))


async def text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A customer's text: through the service with "typing…" shown, the reply back, an alert to operators."""
    svc, message, chat_id = service(context), update.effective_message, update.effective_chat.id
    await _queue_notice(update, context)
    async with typing(context.bot, chat_id):
        # The reply grows in a draft while the model writes it; the draft id is the customer's message id.
        drafts = DraftStream(context.bot, chat_id, message.message_id) if svc.config.telegram.stream_drafts else None
        try:
            outcome = await svc.handle_text(sender(update.effective_user), message.text, message_id(update),
                                            on_partial=drafts.update if drafts else None)
        finally:
            if drafts:
                await drafts.close()
    # Both sends swallow Telegram failures: a customer who blocked the bot still raises the alert.
    await _answer(context, chat_id, outcome, _with_sentiment(outcome, svc.config.telegram.show_sentiment))
    await _to_operators(context, outcome, message)
    if outcome.model_error:
        raise ModelFailed(outcome.model_error)  # answered already; the error handler tells operators (rate-limited)


async def _to_operators(context: ContextTypes.DEFAULT_TYPE, outcome: Outcome, message: Message) -> None:
    """The alert the message raised; the message and the bot's answer in the customer's topic, or the message
    relayed while an operator has the conversation."""
    if outcome.alert:
        await context.bot_data[OUTBOX_KEY].raised(context.application, outcome.alert)
    await to_operators(context.bot, service(context), topics(context), outcome, message)


async def human(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/human: the customer asks for a person; operators get an alert saying so."""
    outcome = await service(context).request_human(sender(update.effective_user), message_id(update))
    await _answer(context, update.effective_chat.id, outcome, outcome.reply)
    await _to_operators(context, outcome, update.effective_message)


async def non_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A photo, sticker, voice note, file, location...: stored as an event, answered politely."""
    message = update.effective_message
    kind = next((k for k in NON_TEXT_KINDS if getattr(message, k, None)), "attachment")
    outcome = await service(context).handle_non_text(sender(update.effective_user), kind, message_id(update),
                                                     caption=message.caption, answer=not _album_seen(context, message))
    await _answer(context, update.effective_chat.id, outcome, outcome.reply)
    await _to_operators(context, outcome, message)


def _album_seen(context: ContextTypes.DEFAULT_TYPE, message: Message) -> bool:
    """The message is a later piece of the album just answered: Telegram sends an album as one message per photo or
    file, but the customer sent one thing and gets one reply. Their chat goes in order, so the pieces come together."""
    seen = message.media_group_id is not None and context.chat_data.get("album") == message.media_group_id
    context.chat_data["album"] = message.media_group_id
    return seen


async def edited(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """An edited message is not re-read (its reply went out already); the customer is told to resend. While an
    operator has the conversation the bot stays quiet: the operator sees the new wording instead."""
    svc, message = service(context), update.effective_message
    customer = await svc.db.existing_customer(CHANNEL, str(update.effective_user.id))  # an edit stores nobody
    if customer and await svc.handoff.active(customer.id):
        await topics(context).post(context.bot, svc, customer, f"✏️ {who(customer)} edited a message:\n"
                                   f"{message.text or message.caption or '[attachment]'}", "relay")
        return
    note = (await _wording(update, context))(_texts(context).edited_reply)
    if note:
        await _say(update, context, note)


async def group_pointer(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A command or a mention of the bot in a group: one line pointing to a private chat, nothing stored."""
    message = update.effective_message
    note = _texts(context).group_reply.for_lang(language_without_history(update))
    # How an owner finds the id for [alerts] operator_chat_id: /start@thebot in the group, then read the log.
    log.info("group chat %s (%s) called the bot", update.effective_chat.id, update.effective_chat.title)
    mentioned = f"@{context.bot.username}".lower() in (message.text or "").lower()
    if note and (mentioned or message.text.startswith("/")):
        await _say(update, context, f"{note}\nhttps://t.me/{context.bot.username}")


async def unknown_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A button press no other handler takes (forged or outdated data): answered so the client stops waiting."""
    log.info("ignored button %r from user %s", update.callback_query.data, update.callback_query.from_user.id)
    await update.callback_query.answer()


def handlers(operators: filters.Chat) -> list[BaseHandler]:
    mine, new = customer_chats(operators), NEW_MESSAGE & customer_chats(operators)
    groups = NEW_MESSAGE & filters.ChatType.GROUPS & ~operators
    return [
        CommandHandler("start", start, filters=new),
        CommandHandler("help", help_, filters=new),
        CommandHandler("reset", reset, filters=new),
        CommandHandler("forget", forget, filters=new),
        CommandHandler("human", human, filters=new),
        CallbackQueryHandler(forget_answer, pattern=f"^({FORGET_YES}|{FORGET_NO})$"),
        MessageHandler(new & filters.TEXT & ~filters.COMMAND, text),
        MessageHandler(new & filters.COMMAND, help_),
        MessageHandler(new & filters.ATTACHMENT, non_text),
        # Telegram reports each move of a shared live location as an edit: nothing the customer wrote changed.
        MessageHandler(filters.UpdateType.EDITED_MESSAGE & mine & ~filters.LOCATION, edited),
        CommandHandler(CUSTOMER_COMMANDS, group_pointer, filters=groups),
        MessageHandler(groups & filters.Entity(MessageEntity.MENTION), group_pointer),
        CallbackQueryHandler(unknown_button),  # last: every handler before it had its chance
    ]
