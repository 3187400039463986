"""CSAT in Telegram: the 1-5 rating a customer is asked for once after a hand-back, and their tap on it."""

from __future__ import annotations

import logging
import re
from typing import Callable

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import TelegramError
from telegram.ext import BaseHandler, CallbackQueryHandler, ContextTypes

from bot.config import LanguageSettings
from bot.service import ConversationService
from bot.telegram.handlers import CHANNEL, service
from bot.telegram.handlers.sending import send_text
from storage.db import Customer, Rated

log = logging.getLogger(__name__)

RATINGS = range(1, 6)
# csat:<survey id>:<rating>. Callback data is whatever a client sends: anything else under csat: is answered, ignored.
RATING_DATA = re.compile(r"^csat:(\d{1,18}):([1-5])$")


async def _wording(svc: ConversationService, customer_id: int) -> tuple[LanguageSettings, Callable[[str], str]]:
    """The texts of the customer's language, and how they reach them: in the Chinese script they write, as every
    other text the bot sends (the shop wrote them in one)."""
    lang, script = await svc.wording(customer_id)
    return svc.config.knowledge.languages[lang], script.written


def rating_buttons(survey_id: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton(str(n), callback_data=f"csat:{survey_id}:{n}")
                                  for n in RATINGS]])


async def ask_rating(bot: Bot, svc: ConversationService, customer: Customer) -> None:
    """After a hand-back: the customer is asked once (per takeover) for a 1-5 rating, in their language.

    Telegram customers only: the web chat shows no buttons (README, "CSAT")."""
    if not svc.config.csat.enabled or customer.channel != CHANNEL:
        return
    takeover = await svc.db.last_ended_takeover(customer.id)
    survey_id = await svc.db.add_csat_survey(customer.id, takeover["id"]) if takeover else None
    if survey_id is None:  # asked about this hand-back already
        return
    texts, written = await _wording(svc, customer.id)
    await send_text(bot, int(customer.external_id), written(texts.csat_question), rating_buttons(survey_id))


async def rated(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A tap on a rating button: stored once and thanked (the buttons go); a second or forged tap changes nothing."""
    query, svc = update.callback_query, service(context)
    data = RATING_DATA.match(query.data or "")
    customer = await svc.db.existing_customer(CHANNEL, str(query.from_user.id))
    result = (await svc.db.rate_csat(int(data[1]), customer.id, int(data[2]))
              if data and customer else Rated.UNKNOWN)
    if result is Rated.UNKNOWN:  # forged, or the customer's data was deleted (/forget) since
        log.warning("ignored rating button %r from user %s", query.data, query.from_user.id)
        await query.answer()
        return
    texts, written = await _wording(svc, customer.id)
    await query.answer(written(texts.csat_thanks if result is Rated.RECORDED else texts.csat_already))
    try:  # the question becomes the thanks: no buttons left to tap again
        await query.edit_message_text(written(texts.csat_thanks))
    except TelegramError as exc:  # e.g. tapped twice before the first edit landed
        log.info("could not edit the rating question for customer %s: %s", customer.id, exc)


def handlers() -> list[BaseHandler]:
    return [CallbackQueryHandler(rated, pattern=r"^csat:")]
