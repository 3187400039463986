"""The one error handler (log first, then a brief, rate-limited note to operators) and token redaction in logs."""

from __future__ import annotations

import logging
import sqlite3
import time
from typing import Callable

from telegram import Chat, Update
from telegram.ext import ContextTypes, filters

from bot.config import Localized
from bot.service import ModelFailed
from bot.telegram.handlers import language_without_history
from bot.telegram.handlers.sending import TelegramUnreachable, send_text

log = logging.getLogger(__name__)

NOTICE_INTERVAL_SECONDS = 600.0  # at most one error note in the operator chat per 10 minutes


class ErrorReporter:
    """PTB error handler: every error is logged; operators hear about them at most once per interval."""

    def __init__(self, operators: filters.Chat, storage_error_reply: Localized,
                 on_update_failed: Callable[[Update], bool] = lambda update: True):
        self.operators = operators  # the operator chat, following its moves
        self.storage_error_reply = storage_error_reply  # told to a customer whose message SQLite could not take
        # Told which update failed (it is handled again later); True the first time, when the customer hears of it.
        self.on_update_failed = on_update_failed
        self._last_notice = float("-inf")
        self._suppressed = 0

    async def __call__(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Log the error with its update; then maybe tell the operator chat (never with details or ids)."""
        where = f"update {update.update_id}" if isinstance(update, Update) else "background work"
        operator_chat_id = next(iter(self.operators.chat_ids), None)
        # A model failure was answered already (the fallback reply): nothing to handle again.
        answered = isinstance(context.error, ModelFailed)
        first = self.on_update_failed(update) if isinstance(update, Update) and not answered else False
        if isinstance(context.error, sqlite3.Error):
            # Expected trouble on a small server, not a bug: one clear line, no traceback, and the bot keeps serving.
            log.error("SQLite failed while handling %s: %s: %s (is the disk full, or another process holding the "
                      "database?)", where, type(context.error).__name__, context.error)
            chat = update.effective_chat if isinstance(update, Update) else None
            if first and chat is not None and chat.type == Chat.PRIVATE and chat.id != operator_chat_id:
                lang = language_without_history(update)  # SQLite cannot say
                await send_text(context.bot, chat.id, self.storage_error_reply.for_lang(lang))
        elif isinstance(context.error, TelegramUnreachable):  # a reply not delivered: the update is handled again
            log.error("Telegram could not be reached to answer %s (%s); it is handled again later", where,
                      context.error)
        elif not answered:  # a model failure was logged where it happened
            log.error("error while handling %s", where, exc_info=context.error)
        if operator_chat_id is None:
            return
        now = time.monotonic()
        if now - self._last_notice < NOTICE_INTERVAL_SECONDS:
            self._suppressed += 1
            return
        self._last_notice = now
        more = f" ({self._suppressed} more since the last note)" if self._suppressed else ""
        self._suppressed = 0
        if answered:  # its text names the cause, never the customer's words
            note = (f"⚙️ The model did not answer ({context.error}): customers get the fallback reply{more}. "
                    "Details are in the bot's log.")
        else:  # the type only: messages can hold customer text or, for InvalidToken, the token itself
            note = f"⚙️ shopbot hit an error: {type(context.error).__name__}{more}. Details are in the bot's log."
        await send_text(context.bot, operator_chat_id, note)


class TokenRedactor(logging.Filter):
    """Replaces the bot token in every record a handler emits (PTB puts it in InvalidToken's message)."""

    def __init__(self, token: str):
        super().__init__()
        self.token = token

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if self.token in message or self.token in (record.exc_text or ""):
            record.msg, record.args = message.replace(self.token, "<token>"), None
            record.exc_text = (record.exc_text or "").replace(self.token, "<token>") or None
        return True


def redact_in_logs(token: str) -> None:
    """Redact the token from every log record as it is made (once per token): whatever any library logs, to
    whichever handler, including handlers added later."""
    make_record = logging.getLogRecordFactory()
    if getattr(make_record, "redacts", None) == token:
        return
    redactor = TokenRedactor(token)

    def redacted_record(*args, **kwargs) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        redactor.filter(record)
        return record

    redacted_record.redacts = token
    logging.setLogRecordFactory(redacted_record)
