"""Running the real bot Application against the fake Bot API server, for the Telegram tests and the bench."""

from __future__ import annotations

import asyncio
import time
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import AsyncIterator

from bot.config import Config
from bot.service import ConversationService
from bot.telegram.app import build_application, serving
from bot.telegram.handlers import SERVICE_KEY
from testkit import free_port
from testkit.fakes.bot_api import FakeBotApi

TOKEN = "123456:AAH-fake-secret-token-never-logged"
OPERATORS = -100200300  # the operator group



def over_fake(config: Config, fake: FakeBotApi, mode: str = "polling", **alerts) -> Config:
    """`config` pointed at the fake server, with the token set and the operator group configured.

    mode "webhook": the fake posts updates to a webhook on a free local port instead of answering getUpdates."""
    port = free_port()
    telegram = replace(config.telegram, base_url=f"{fake.url}/bot", base_file_url=f"{fake.url}/file/bot",
                       poll_timeout=1, mode=mode, webhook_listen=f"127.0.0.1:{port}",
                       webhook_url=f"http://127.0.0.1:{port}/telegram-updates")
    return replace(config, telegram_token=fake.token, telegram=telegram,
                   alerts=replace(config.alerts, operator_chat_id=OPERATORS, **alerts))


@asynccontextmanager
async def running_bot(config: Config, engine) -> AsyncIterator[ConversationService]:
    """The Application serving until the block ends; yields its service (for reading SQLite)."""
    app = build_application(config, engine)
    async with serving(app, config):
        yield app.bot_data[SERVICE_KEY]


def sent_texts(fake: FakeBotApi, chat_id: int) -> list[str]:
    return [m.get("text") for m in fake.sent_messages(chat_id)]


async def replies(fake: FakeBotApi, chat_id: int, count: int = 1, timeout: float = 20.0) -> list[str]:
    """Wait until the bot has sent `count` messages to chat_id; their texts, in order."""
    await fake.wait_for(lambda c: c.method == "sendMessage" and c.status == 200 and c.params["chat_id"] == chat_id,
                        timeout, count=count)
    return sent_texts(fake, chat_id)


async def linked(svc: ConversationService, message: dict) -> dict:
    """`message` (in the operator chat) once the bot has linked it to its customer.

    The link is stored right after Telegram accepts the message; an operator a few milliseconds faster than
    that would reply to an unknown message, so the tests reply only once it is there, as a person would."""
    deadline = time.monotonic() + 10
    while await svc.db.customer_for_operator_message(OPERATORS, message["message_id"]) is None:
        assert time.monotonic() < deadline, f"operator-chat message {message['message_id']} never linked"
        await asyncio.sleep(0.02)
    return message
