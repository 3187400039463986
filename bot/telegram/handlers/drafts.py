"""A reply streamed to a private chat as a Telegram draft while the model writes it, at most once a second."""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress

from telegram import Bot
from telegram.constants import MessageLimit
from telegram.error import RetryAfter, TelegramError

log = logging.getLogger(__name__)

DRAFT_INTERVAL_SECONDS = 1.0  # Telegram animates draft changes; faster updates only add flood-control risk


class DraftStream:
    """`update(text)` from the event loop as the reply grows; a task shows the newest text as a draft.

    A draft is a preview only: the final reply is still sent as a message. Flood control (RetryAfter) pauses
    the drafts for as long as Telegram asks; any other refusal (an old Bot API server, a bad request) ends
    them for this reply, which then simply arrives whole."""

    def __init__(self, bot: Bot, chat_id: int, draft_id: int):
        self.bot, self.chat_id, self.draft_id = bot, chat_id, draft_id
        self._text, self._shown = "", ""
        self._changed = asyncio.Event()
        self._task = asyncio.create_task(self._run())

    def update(self, text: str) -> None:
        self._text = text[: MessageLimit.MAX_TEXT_LENGTH]
        self._changed.set()

    async def close(self) -> None:
        self._task.cancel()
        with suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        while True:
            await self._changed.wait()
            self._changed.clear()
            if self._text == self._shown:
                continue
            try:
                await self.bot.send_message_draft(self.chat_id, self.draft_id, self._text)
                self._shown = self._text
            except RetryAfter as exc:
                seconds = exc.retry_after.total_seconds() if hasattr(exc.retry_after, "total_seconds") \
                    else float(exc.retry_after)
                log.info("draft for chat %s paused %.0f s by flood control", self.chat_id, seconds)
                self._changed.set()  # the newest text is still to show once the wait is over
                await asyncio.sleep(seconds)
                continue
            except TelegramError as exc:
                log.info("drafts for chat %s stopped: %s: %s", self.chat_id, type(exc).__name__, exc)
                return
            await asyncio.sleep(DRAFT_INTERVAL_SECONDS)
