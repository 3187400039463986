"""The operator chat as the other channels (the web chat) reach it: their customers' alerts, relayed messages and
model failures."""

from __future__ import annotations

from telegram.ext import Application

from bot.service import ModelFailed, Outcome
from bot.telegram.handlers import OUTBOX_KEY, SERVICE_KEY, TOPICS_KEY
from bot.telegram.handlers.operator import erase_posts
from bot.telegram.handlers.takeover import to_operators
from storage.db import OperatorChatPosts


class TelegramOperators:
    """bot.escalation.Operators over the running Telegram application: the same outbox and threads as Telegram's own."""

    def __init__(self, app: Application):
        self.app = app

    async def alert(self, outcome: Outcome) -> None:
        await self.app.bot_data[OUTBOX_KEY].raised(self.app, outcome.alert)

    async def relay(self, outcome: Outcome, text: str) -> None:
        data = self.app.bot_data
        await to_operators(self.app.bot, data[SERVICE_KEY], data[TOPICS_KEY], outcome, None, text)

    async def forgotten(self, posts: OperatorChatPosts) -> None:
        await erase_posts(self.app.bot, posts)

    async def model_failed(self, error: str) -> None:
        # Through the application's error handler, as a Telegram customer's failure goes: one note per interval.
        await self.app.process_error(None, ModelFailed(error))
