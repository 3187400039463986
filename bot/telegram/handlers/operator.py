"""The operator chat: alerts about negative customers, and commands that only work there (/stats)."""

from __future__ import annotations

import asyncio
import itertools
import logging
import statistics
from collections import Counter
from datetime import datetime, timedelta, tzinfo

from telegram import Bot, Message, Update
from telegram.error import BadRequest, TelegramError
from telegram.ext import BaseHandler, CommandHandler, ContextTypes, MessageHandler, filters

from bot.brief import Brief
from bot.knowledge import MatchKind
from bot.service import ConversationService, Outcome
from bot.telegram import chart
from bot.telegram.handlers import CHANNEL, NEW_MESSAGE, SERVICE_KEY, csat, follow_move, service, who
from bot.telegram.handlers.sending import TopicGone, send_text, topic_error, topic_of
from bot.telegram.handlers.takeover import alert_buttons, tell
from bot.telegram.topics import Topics
from bot.unanswered import counts_text
from storage.db import OperatorChatPosts

log = logging.getLogger(__name__)

CHART_DAYS = 14
DELETE_BATCH = 100  # the most message ids one deleteMessages call takes
FORGOTTEN_NOTE = ("🗑 A customer used /forget: everything the bot stored about them is deleted, and so are its posts "
                  "about them here (their topic, alerts and relayed messages).")
TURN_PREVIEW_CHARS = 300  # each past turn in an alert is cut to this; the new message is shown whole
OPERATOR_HELP = ("This is the operator chat: alerts about unhappy customers arrive here (in a forum: each customer "
                 "in a topic of their own, with their messages and the bot's replies).\n"
                 "Write in a customer's topic, or reply to an alert or to a customer's message, to answer them as "
                 "the shop: the bot then stays silent for that customer until Hand back.\n"
                 "Take over - handle the customer yourself; Dismiss - the message was not negative\n"
                 "/release (in the customer's topic, or as a reply to their message) - hand them back to the bot\n"
                 "/stats - today's numbers and a chart of the last 14 days")


def alert_text(outcome: Outcome, message: str, turns: list, brief: Brief) -> str:
    """Who, what they wrote, how negative, the handoff brief and the conversation so far, as plain text.

    Plain text (no parse mode), like every operator-chat message: the customer's and the model's words need no
    escaping and can't break the markup; long alerts are split at line breaks by send_text."""
    c, a = outcome.customer, outcome.alert
    lines = [f"⚠️ Alert #{a.id}: {a.reason}",
             f"Customer: {who(c)}, {'Telegram' if c.channel == CHANNEL else c.channel} id {c.external_id}",
             f"Sentiment: {a.label} {a.confidence:.2f}" if a.label else "Sentiment: not read",
             "", brief.text(), "", "Message:", message]
    others = [t for t in turns if t.id != outcome.message_id]  # the bot's answer to it included
    if others:
        lines += ["", "Recent turns:"]
        for turn in others:
            text = turn.text if len(turn.text) <= TURN_PREVIEW_CHARS else turn.text[:TURN_PREVIEW_CHARS] + "…"
            lines.append(f"{turn.role}: {text}")
    return "\n".join(lines)


def digest_text(held: list[dict], customers: dict, zone: tzinfo) -> str:
    """The opening digest: the alerts held while the shop was closed, one line each; the alerts themselves follow."""
    lines = [f"☀️ Open again. {len(held)} alert{'s' * (len(held) != 1)} came in while the shop was closed; each "
             "follows below with its buttons:"]
    for a in held:
        at = datetime.fromtimestamp(a["created_at"], zone).strftime("%a %H:%M")
        text = a["text"] or ""
        quote = f": “{text[:80]}{'…' * (len(text) > 80)}”" if text else ""
        lines.append(f"• #{a['id']} {at} {who(customers[a['customer_id']])} - {a['reason']}{quote}")
    return "\n".join(lines)


async def send_alert(bot: Bot, svc: ConversationService, topics: Topics, outcome: Outcome,
                     message: str) -> list[Message] | None:
    """Post the alert, with its buttons, to the operator chat (the customer's topic, made now if they have none);
    marked delivered only once Telegram has all of it.

    Every piece is remembered as the customer's: an operator's reply to any of them reaches the customer."""
    chat_id = svc.config.alerts.operator_chat_id
    if chat_id is None:
        log.warning("alert #%s not sent: no [alerts] operator_chat_id configured", outcome.alert.id)
        return None
    c = outcome.customer
    text = alert_text(outcome, message, await svc.recent_turns(c.id), await svc.brief(c.id))
    # The alert shows the conversation up to its message; a new topic shows what follows (the bot's reply...).
    sent = await topics.post(bot, svc, c, text, "alert", alert_buttons(outcome.alert.id, c.id),
                             create_from=outcome.message_id)
    if sent:
        await svc.db.mark_alert_delivered(outcome.alert.id)
        await topics.show(bot, svc, c)
    else:  # stays undelivered in SQLite (delivered_at IS NULL), where a later retry can find it
        log.error("alert #%s for customer %s could not be delivered to the operator chat",
                  outcome.alert.id, outcome.customer.id)
    return sent


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes} min {seconds} s" if minutes else f"{seconds} s"


def csat_text(ratings: list[int]) -> str:
    """Average, count and distribution of CSAT ratings, 5 first: "4.2 average of 5 ratings (5★ 3, 4★ 1, ...)"."""
    if not ratings:
        return "no ratings yet"
    spread = ", ".join(f"{n}★ {ratings.count(n)}" for n in reversed(csat.RATINGS))
    return f"{statistics.mean(ratings):.1f} average of {len(ratings)} rating{'s' * (len(ratings) != 1)} ({spread})"


def stats_text(stats: dict, handoff: dict, ratings: list[int], intents: dict[str, int],
               knowledge: dict[str, int]) -> str:
    waits = handoff["answer_waits"]
    wait = _duration(statistics.median(waits)) if waits else "no alert answered yet"
    wants = ", ".join(f"{intent} {count}" for intent, count in intents.items()) or "none read yet"
    kinds = Counter({MatchKind(kind): n for kind, n in knowledge.items()})
    # Only with knowledge: without it no message is looked up, and the line would say nothing
    questions = f"Shop questions: {counts_text(kinds)}\n" if kinds else ""
    return (f"Today so far:\n"
            f"Customers: {stats['customers']}\n"
            f"Messages: {stats['messages']}\n"
            f"Negative: {stats['negative_share']:.0%}\n"
            f"CSAT after hand-back: {csat_text(ratings)}\n"
            f"Intents: {wants}\n"
            f"{questions}"
            f"Alerts: {stats['alerts_delivered']} sent of {stats['alerts']} raised\n"
            f"Alert to first operator answer (reply or Take over, median): {wait}\n"
            f"Label corrections (Dismiss): {handoff['corrections']}\n"
            f"Open takeovers now: {handoff['open_takeovers']}")


async def erase_posts(bot: Bot, posts: OperatorChatPosts) -> None:
    """/forget: the customer's topics (with every message in them) and the bot's other posts about them leave the
    operator chats, and operators are told why a topic went. What Telegram refuses to delete (a message over 48 hours
    old outside a topic, no right to delete topics) stays, and is logged."""
    for chat_id, thread_id in posts.topics:
        try:
            await bot.delete_forum_topic(chat_id, thread_id)
        except BadRequest as exc:
            if not isinstance(topic_error(exc), TopicGone):  # an admin deleted it already: nothing left to do
                log.warning("could not delete a forgotten customer's topic in chat %s: %s", chat_id, exc.message)
        except TelegramError as exc:
            log.warning("could not delete a forgotten customer's topic in chat %s: %s", chat_id, exc)
    for chat_id, group in itertools.groupby(posts.messages, key=lambda post: post[0]):
        ids = [message_id for _, message_id in group]
        for start in range(0, len(ids), DELETE_BATCH):  # messages inside a deleted topic are gone: Telegram skips them
            try:
                await bot.delete_messages(chat_id, ids[start:start + DELETE_BATCH])
            except TelegramError as exc:
                log.warning("could not delete a forgotten customer's messages in chat %s: %s", chat_id, exc)
    for chat_id in sorted({chat_id for chat_id, _ in posts.topics + posts.messages}):
        await send_text(bot, chat_id, FORGOTTEN_NOTE)


def day_starts(midnight: datetime, days: int) -> list[float]:
    """The unix times of the local midnights that start the `days` days up to `midnight`'s, and of the next one:
    local wall-clock days (a zoneinfo or naive local datetime), so a day across a DST change has 23 or 25 hours."""
    return [(midnight + timedelta(days=n)).timestamp() for n in range(1 - days, 2)]


async def stats(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/stats: today's numbers since midnight (the shop's, with [hours]), then a chart of the last 14 days."""
    svc, chat_id, thread = service(context), update.effective_chat.id, topic_of(update.effective_message)
    shop_zone = svc.hours.tz if svc.config.hours else None  # None: naive, the server's own zone and its DST rules
    midnight = datetime.now(shop_zone).replace(hour=0, minute=0, second=0, microsecond=0)
    numbers = await svc.db.stats_since(midnight.timestamp())
    handoff = await svc.db.handoff_stats(midnight.timestamp())
    ratings_today = await svc.db.csat_ratings(midnight.timestamp())
    intents = await svc.db.intent_counts(midnight.timestamp())
    knowledge = await svc.db.knowledge_match_counts(midnight.timestamp())
    await tell(context.bot, update.effective_message, stats_text(numbers, handoff, ratings_today, intents, knowledge))
    starts = day_starts(midnight, CHART_DAYS)
    days = await svc.db.daily_counts(starts)
    ratings = await svc.db.daily_ratings(starts)
    try:  # operators would rather look than read; the numbers went out already if this fails
        png = await asyncio.to_thread(chart.daily_png, days, ratings, midnight.date())  # ~0.3 s, off the loop
        await context.bot.send_photo(chat_id, png, caption=chart.caption(days, ratings), message_thread_id=thread)
    except TelegramError as exc:
        log.warning("the /stats chart was not sent: %s", exc)


async def operator_help(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/start or /help in the operator chat: what happens here."""
    await tell(context.bot, update.effective_message, OPERATOR_HELP)


async def moved(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """The operator group became a supergroup: followed, see record_move. Telegram says so twice, "moved to" in the
    old group and "moved from" in the new supergroup (the operator chat too once the first was followed)."""
    chat_id, message = update.effective_chat.id, update.effective_message
    old, new = ((chat_id, message.migrate_to_chat_id) if message.migrate_to_chat_id
                else (message.migrate_from_chat_id, chat_id))
    if await service(context).db.chat_moved_to(old) != new:  # the second notice of a move followed already
        await record_move(context.bot_data, old, new)


async def record_move(bot_data: dict, old: int, new: int) -> None:
    """The operator group became a supergroup (a new chat id): followed now, and after restarts (SQLite)."""
    await bot_data[SERVICE_KEY].db.add_chat_migration(old, new)
    follow_move(bot_data, new)
    log.warning("the operator chat %s became supergroup %s: followed; set [alerts] operator_chat_id = %s when "
                "convenient", old, new, new)


def handlers(operators: filters.Chat) -> list[BaseHandler]:
    here = NEW_MESSAGE & operators
    return [
        MessageHandler(here & filters.StatusUpdate.MIGRATE, moved),
        CommandHandler("stats", stats, filters=here),
        CommandHandler(["start", "help"], operator_help, filters=here),
    ]
