"""The operator chat as the other channels (the web chat) reach it: their customers' alerts and relayed messages."""

from __future__ import annotations

from telegram.ext import Application

from bot.service import Outcome
from bot.telegram.handlers import OUTBOX_KEY, SERVICE_KEY
from bot.telegram.handlers.takeover import relay_text


class TelegramOperators:
    """bot.escalation.Operators over the running Telegram application: the same outbox and threads as Telegram's own."""

    def __init__(self, app: Application):
        self.app = app

    async def alert(self, outcome: Outcome) -> None:
        await self.app.bot_data[OUTBOX_KEY].raised(self.app, outcome.alert)

    async def relay(self, outcome: Outcome, text: str) -> None:
        await relay_text(self.app.bot, self.app.bot_data[SERVICE_KEY], outcome, text)
