"""Operator takeovers in Telegram: alert buttons, replies (or messages in a customer's topic) copied to customers,
relays, /release, idle hand-back."""

from __future__ import annotations

import logging

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.error import TelegramError
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, ContextTypes, MessageHandler, filters

from bot.config import Config
from bot.service import ConversationService, Outcome
from bot.telegram.handlers import CHANNEL, NEW_MESSAGE, TOPICS_KEY, mood, service, who
from bot.telegram.handlers.csat import ask_rating
from bot.telegram.handlers.sending import TopicClosed, TopicGone, copy_message, send_text, topic_of
from bot.telegram.topics import Topics
from storage.db import Customer

log = logging.getLogger(__name__)

TAKE, DISMISS, RELEASE = "take", "dismiss", "release"
# handoff:take:<customer id>, handoff:dismiss:<alert id>, handoff:release:<customer id>
CALLBACK_PATTERN = rf"^handoff:({TAKE}|{DISMISS}|{RELEASE}):\d+$"
MAX_IDLE_CHECK_SECONDS = 30.0  # idle takeovers are looked for this often (more often for short timeouts)
RELEASE_USAGE = ("Send /release as a reply to one of the customer's messages here (or to their alert), or in their "
                 "topic.")


def _button(text: str, action: str, number: int) -> InlineKeyboardButton:
    return InlineKeyboardButton(text, callback_data=f"handoff:{action}:{number}")


def alert_buttons(alert_id: int, customer_id: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[_button("Take over", TAKE, customer_id), _button("Dismiss", DISMISS, alert_id)]])


def topics(context: ContextTypes.DEFAULT_TYPE) -> Topics:
    return context.bot_data[TOPICS_KEY]


async def _customer_of(svc: ConversationService, message: Message) -> Customer | None:
    """The customer an operator-chat message is about: the one whose alert, relay or note it replies to, else the
    one whose topic it is in; None for anything else (operators talking among themselves)."""
    replied = message.reply_to_message
    customer_id = replied and await svc.db.customer_for_operator_message(replied.chat_id, replied.message_id)
    if not customer_id and message.is_topic_message and message.message_thread_id:
        customer_id = await svc.db.customer_for_topic(message.chat_id, message.message_thread_id)
    return await svc.db.customer_by_id(customer_id) if customer_id else None


async def to_operators(bot: Bot, svc: ConversationService, topics: Topics, outcome: Outcome,
                       message: Message | None, text: str | None = None) -> None:
    """A customer's message and the bot's answer, for operators: in the customer's topic when they have one; else,
    while an operator has the conversation, relayed in the main chat under their alert (the bot stays quiet).
    `message`: the channel's own (Telegram: copied if not text); `text`: another channel's."""
    if await topics.show(bot, svc, outcome.customer) or not outcome.relayed:
        return
    if message is None or message.text:
        await _relay_text(bot, svc, topics, outcome, text or message.text)
        return
    c = outcome.customer
    header = await topics.post(bot, svc, c, f"💬 {who(c)} sent:", "relay")
    if header:  # a photo, voice note...: copied as it is, under a line saying whose it is
        chat_id, header_id = header[-1].chat_id, header[-1].message_id
        copied = await copy_message(bot, chat_id, message.chat_id, message.message_id, reply_to=header_id)
        if copied:
            await svc.db.remember_operator_message(chat_id, copied.message_id, c.id, "relay")


async def _relay_text(bot: Bot, svc: ConversationService, topics: Topics, outcome: Outcome, text: str) -> None:
    c, s = outcome.customer, outcome.sentiment
    await topics.post(bot, svc, c, f"💬 {who(c)}{mood(s.label, s.confidence) if s else ''}:\n{text}", "relay")


async def _taken_over(bot: Bot, svc: ConversationService, topics: Topics, customer: Customer, operator: str) -> None:
    """The note that an operator has the customer now, with the handoff brief and the Hand back button."""
    minutes = svc.config.handoff.idle_minutes
    where = "Write in this topic" if topics.on else "Reply to their messages here"
    text = (f"🧑‍💼 {operator} is handling {who(customer)} now; the bot stays silent for them. {where} to answer. "
            f"Hand back when done (it happens by itself after {minutes:g} min without an operator reply).\n\n"
            f"{(await svc.brief(customer.id)).text()}")
    await topics.post(bot, svc, customer, text, "note", InlineKeyboardMarkup([[_button("Hand back", RELEASE, customer.id)]]))


async def _handed_back(bot: Bot, svc: ConversationService, topics: Topics, customer: Customer, why: str) -> None:
    """The customer is the bot's again (/release, Hand back, idle): operators are told, the customer's topic
    closes, the customer is asked for a rating."""
    await topics.post(bot, svc, customer, f"🤖 {who(customer)} is back with the bot ({why}).", "note")
    await topics.close(bot, svc, customer)
    await ask_rating(bot, svc, customer)


async def tell(bot: Bot, message: Message, text: str) -> None:
    """A short answer to an operator's message, under it (and in its topic, in a forum; in the main chat when that
    topic is closed or gone)."""
    try:
        await send_text(bot, message.chat_id, text, reply_to=message.message_id, thread_id=topic_of(message))
    except (TopicClosed, TopicGone):  # not reopened: an answer to an operator is no news about the customer
        await send_text(bot, message.chat_id, text)


async def operator_reply(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A reply to an alert, relay or note in the operator chat, or a message in a customer's topic: copied to that
    customer as the shop; takes over."""
    svc, message, operator = service(context), update.effective_message, update.effective_user
    customer = await _customer_of(svc, message)
    if customer is None:
        return  # a reply to anything else: operators talking among themselves
    copied = None
    if customer.channel != CHANNEL:
        if not await _reaches_other_channel(context.bot, svc, customer, message):
            return  # nothing can reach the customer: the bot keeps the conversation
    else:
        copied = await copy_message(context.bot, int(customer.external_id), message.chat_id, message.message_id)
        if copied is None:  # nothing reached the customer: the bot keeps the conversation
            await tell(context.bot, message, f"⚠️ Not delivered to {who(customer)}: Telegram refused it (they may "
                        "have blocked the bot).")
            return
    _, started = await svc.handoff.take_over(customer.id, str(operator.id), operator.full_name)
    if started:
        await _taken_over(context.bot, svc, topics(context), customer, operator.full_name)
    text = message.text or message.caption or "[attachment]"
    kind = "text" if message.text else "attachment"  # only text turns go into the history the model reads
    await svc.handoff.operator_turn(customer.id, text, kind, str(copied.message_id) if copied else None)
    if customer.channel != CHANNEL:  # shown once stored: a page reconnecting meanwhile catches up from the history
        await svc.handoff.to_customer(customer, text)


async def _reaches_other_channel(bot: Bot, svc: ConversationService, customer: Customer, message: Message) -> bool:
    """Whether an operator's reply can reach a customer of another channel (the web chat: text only, shown by that
    channel when it runs in this process); if not, the operator is told why."""
    if not message.text:
        await tell(bot, message, f"⚠️ Not delivered to {who(customer)}: only text reaches {customer.channel} "
                    "customers. Please write it as a message.")
        return False
    if not svc.handoff.reaches(customer):
        log.warning("operator reply to customer %s not delivered: the %s channel is not running here",
                    customer.id, customer.channel)
        await tell(bot, message, f"⚠️ Not delivered to {who(customer)}: the {customer.channel} chat is not "
                    "running in this bot.")
        return False
    return True


async def release(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/release in reply to a customer's message, alert or note: that customer goes back to the bot."""
    svc, message = service(context), update.effective_message
    customer = await _customer_of(svc, message)
    if customer is None:
        await tell(context.bot, message, RELEASE_USAGE)
    elif await svc.handoff.release(customer.id) is None:
        await tell(context.bot, message, f"The bot has {who(customer)} already.")
    else:
        await _handed_back(context.bot, svc, topics(context), customer, f"by {update.effective_user.full_name}")


async def button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Take over, Dismiss, Hand back: honoured only when pressed in the operator chat (checked by chat id)."""
    query, svc = update.callback_query, service(context)
    chat_id = query.message.chat.id if query.message else None
    if chat_id is None or chat_id != svc.config.alerts.operator_chat_id:
        # Callback data is whatever a client sends: a customer could forge an operator action.
        log.warning("refused %r from user %s in chat %s: not the operator chat",
                    query.data, query.from_user.id, chat_id)
        await query.answer("Not available here.")
        return
    _, action, number = query.data.split(":")
    operator, number = query.from_user, int(number)
    # SQLite gives a forgotten customer's numbers (customer, alert) to the next ones: the button's message must
    # still be the customer's (/forget deletes that link with the rest) or it would act on someone else.
    owner = await svc.db.customer_for_operator_message(chat_id, query.message.message_id)
    customer = await svc.db.customer_by_id(owner) if owner else None
    if customer is None:
        await query.answer("This customer's data was deleted.")
    elif action == DISMISS:
        recorded = await svc.handoff.dismiss(number, str(operator.id))
        await query.answer("Recorded: not negative. Thank you." if recorded else "Already recorded.")
    elif action == TAKE:
        takeover, started = await svc.handoff.take_over(customer.id, str(operator.id), operator.full_name)
        await query.answer("You have this customer now." if started
                           else f"{takeover['operator_name']} is handling this customer already.")
        if started:
            await _taken_over(context.bot, svc, topics(context), customer, operator.full_name)
    elif await svc.handoff.release(customer.id) is None:
        await query.answer("The bot has this customer already.")
    else:
        await query.answer("Handed back to the bot.")
        await _handed_back(context.bot, svc, topics(context), customer, f"by {operator.full_name}")
        try:  # the note's button has done its job
            await query.edit_message_reply_markup(None)
        except TelegramError as exc:
            log.info("could not remove the Hand back button: %s", exc)


def idle_check_seconds(config: Config) -> float:
    """How often idle takeovers are looked for: often enough for short timeouts."""
    return min(MAX_IDLE_CHECK_SECONDS, config.handoff.idle_minutes * 60 / 4)


async def hand_back_idle(context: ContextTypes.DEFAULT_TYPE) -> None:
    """A JobQueue job: takeovers idle for [handoff] idle_minutes go back to the bot, and operators are told."""
    svc = service(context)
    for takeover in await svc.handoff.release_idle():
        customer = await svc.db.customer_by_id(takeover["customer_id"])
        if customer:
            await _handed_back(context.bot, svc, topics(context), customer, f"no operator reply for {svc.config.handoff.idle_minutes:g} min")


def handlers(operators: filters.Chat) -> list[BaseHandler]:
    here = NEW_MESSAGE & operators
    return [
        CallbackQueryHandler(button, pattern=CALLBACK_PATTERN),  # from any chat, so a forged press is refused
        CommandHandler("release", release, filters=here),
        # In a forum every message in a topic replies to the topic's first message: matched by REPLY too.
        MessageHandler(here & (filters.REPLY | filters.IS_TOPIC_MESSAGE) & ~filters.COMMAND & ~filters.StatusUpdate.ALL,
                       operator_reply),
    ]
