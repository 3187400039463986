"""The Telegram application: wired in one function, run by long polling until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections import Counter
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, AsyncIterator, Awaitable, Callable

from telegram import BotCommand, BotCommandScopeAllPrivateChats, BotCommandScopeChat, Update
from telegram.error import InvalidToken, NetworkError, TelegramError
from telegram.ext import AIORateLimiter, Application, BaseUpdateProcessor

from bot.config import TOKEN_ENV, Config, ConfigError
from bot import retention
from bot.handlers import OUTBOX_KEY, SERVICE_KEY, customer, handoff, operator
from bot.handlers.errors import ErrorReporter, redact_in_logs
from bot.inbox import Inbox
from bot.llm.engine import Engine
from bot.outbox import AlertOutbox
from bot.service import ConversationService
from storage.db import Database

if TYPE_CHECKING:
    from bot.channels.web.server import WebChat

log = logging.getLogger(__name__)

# Updates waiting for their chat's lock hold a slot, so the bound is high: one chatty customer must not
# use up the slots another customer's /start needs. Real work is bounded anyway: the engine runs one
# model call at a time.
MAX_CONCURRENT_UPDATES = 1024
RATE_LIMIT_RETRIES = 3  # AIORateLimiter waits out a 429's retry_after and tries again this often
# Updates the bot acts on; #5 and #6 add what they need. Channel posts and reactions are not fetched.
ALLOWED_UPDATES = [Update.MESSAGE, Update.EDITED_MESSAGE, Update.CALLBACK_QUERY]
INBOX_KEY = "inbox"  # bot_data: the Inbox that fetches updates (serving() starts it)
CUSTOMER_MENU = [BotCommand("help", "what I can do"), BotCommand("reset", "start a fresh conversation"),
                 BotCommand("forget", "delete what the bot stored about you"),
                 BotCommand("human", "ask for a person from the shop")]
OPERATOR_MENU = [BotCommand("stats", "today's numbers"),
                 BotCommand("release", "reply to a customer's message: hand them back to the bot")]


class PerChatProcessor(BaseUpdateProcessor):
    """Updates of one chat run strictly in arrival order; different chats run concurrently."""

    def __init__(self, max_concurrent_updates: int, after: Callable[[object], Awaitable[None]]):
        super().__init__(max_concurrent_updates)
        self._after = after  # told when an update is finished with, whatever its handlers did
        self._locks: dict[int, asyncio.Lock] = {}
        self._waiting: Counter[int] = Counter()  # to drop a chat's lock once nobody holds or awaits it

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        chat = update.effective_chat if isinstance(update, Update) else None
        if chat is None:
            try:
                await coroutine
            finally:
                await self._after(update)
            return
        # asyncio.Lock wakes waiters first-in first-out, and PTB starts update tasks in update order.
        lock = self._locks.setdefault(chat.id, asyncio.Lock())
        self._waiting[chat.id] += 1
        try:
            async with lock:
                try:
                    await coroutine
                finally:
                    await self._after(update)
        finally:
            self._waiting[chat.id] -= 1
            if not self._waiting[chat.id]:
                del self._waiting[chat.id], self._locks[chat.id]

    async def initialize(self) -> None:
        """Nothing to set up: locks are made per chat on demand."""

    async def shutdown(self) -> None:
        """Nothing to free: Application.stop() already waited for running updates."""


def build_application(config: Config, engine: Engine | None = None) -> Application:
    """The whole bot, in order: client, lifecycle, handlers, error handler. `engine`: reuse a loaded one."""
    if not config.telegram_token:
        raise ConfigError(TOKEN_ENV, "not set: create a bot with @BotFather and export its token")
    # httpx logs every request URL at INFO and PTB the API URL at DEBUG: both contain the token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    redact_in_logs(config.telegram_token)

    # 1. The client: token from the environment, Bot API location from [telegram], flood limits
    #    respected (and 429s retried) by AIORateLimiter, chats served concurrently but each in order,
    #    updates fetched by the Inbox (stored before Telegram is told they arrived) instead of PTB's Updater.
    inbox = Inbox(config)
    app = (
        Application.builder()
        .token(config.telegram_token)
        .base_url(config.telegram.base_url)
        .base_file_url(config.telegram.base_file_url)
        .rate_limiter(AIORateLimiter(max_retries=RATE_LIMIT_RETRIES))
        .concurrent_updates(PerChatProcessor(MAX_CONCURRENT_UPDATES, after=inbox.done))
        .updater(None)
        .build()
    )
    app.bot_data[INBOX_KEY] = inbox
    app.bot_data[OUTBOX_KEY] = AlertOutbox(config.alerts.outbox_retry_seconds)

    # 2. Lifecycle: the database and the model are opened before the first update, closed after the last.
    async def post_init(app: Application) -> None:
        db = await Database.open(config.storage.path)
        try:
            model = engine or await asyncio.to_thread(Engine.load, config)  # seconds of CPU, off the loop
        except BaseException:
            await db.close()
            raise
        service = ConversationService(db, model, config)
        try:
            await service.start()  # a broken knowledge file stops start-up with the line and the reason
        except BaseException:
            if engine is None:
                model.close()
            await db.close()
            raise
        app.bot_data[SERVICE_KEY] = service
        inbox.db = db
        await _set_command_menus(app, config)

    async def post_shutdown(app: Application) -> None:
        svc: ConversationService | None = app.bot_data.pop(SERVICE_KEY, None)
        if svc is None:  # post_init never finished
            return
        if engine is None:  # only what post_init loaded; a passed-in engine belongs to the caller
            svc.engine.close()
        await svc.db.close()

    app.post_init, app.post_shutdown = post_init, post_shutdown

    # 3. Handlers: the operator chat's first, then handoff (buttons, replies to customers), then customers'
    #    private chats and the group pointer.
    app.add_handlers(operator.handlers(config))
    app.add_handlers(handoff.handlers(config))
    app.add_handlers(customer.handlers(config))

    # 4. One error handler: log, then a brief rate-limited note to the operator chat.
    app.add_error_handler(ErrorReporter(config.alerts.operator_chat_id, config.telegram.storage_error_reply))
    return app


async def _set_command_menus(app: Application, config: Config) -> None:
    """The "/" menu Telegram shows: customer commands in private chats, /stats in the operator chat."""
    try:
        await app.bot.set_my_commands(CUSTOMER_MENU, scope=BotCommandScopeAllPrivateChats())
        if config.alerts.operator_chat_id is not None:
            await app.bot.set_my_commands(OPERATOR_MENU, scope=BotCommandScopeChat(config.alerts.operator_chat_id))
    except TelegramError as exc:  # cosmetic; the commands work without the menu
        log.warning("could not set the command menus: %s", exc)


@asynccontextmanager
async def serving(app: Application, config: Config) -> AsyncIterator[Application]:
    """What run_polling does, inside an already running event loop: init, post_init, poll ... stop, shutdown."""
    await app.initialize()
    try:
        await app.post_init(app)
        await app.bot.delete_webhook()  # getUpdates refuses to work while a webhook is set
        await app.start()
        # Updates that arrived while the bot was down are answered, not dropped; unfinished ones first.
        await app.bot_data[INBOX_KEY].replay(app)
        tasks = _background(app, config)
        try:
            yield app
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await app.stop()  # waits for updates being handled, so no reply is cut off
    finally:
        await app.shutdown()
        await app.post_shutdown(app)


def _background(app: Application, config: Config) -> list[asyncio.Task]:
    """Fetching updates, retrying undelivered alerts, the daily retention job, handing idle takeovers back."""
    svc: ConversationService = app.bot_data[SERVICE_KEY]
    jobs = [app.bot_data[INBOX_KEY].poll(app, ALLOWED_UPDATES), retention.run(svc.db, config.storage.retention_days)]
    if config.alerts.operator_chat_id is not None:
        jobs.append(app.bot_data[OUTBOX_KEY].run(app.bot, svc))
        jobs.append(handoff.watch_idle(app.bot, svc))  # takeovers only start from the operator chat
    return [asyncio.create_task(job) for job in jobs]


@asynccontextmanager
async def web_alongside(app: Application, config: Config) -> AsyncIterator["WebChat | None"]:
    """[web] listen set: the web chat in this process, over the same service, alerting this operator chat."""
    if not config.web.listen:
        yield None
        return
    from bot.channels.web.server import serving_web
    from bot.handlers.other_channels import TelegramOperators

    async with serving_web(app.bot_data[SERVICE_KEY], config, TelegramOperators(app)) as chat:
        yield chat


async def run_telegram(config: Config) -> int:
    """`shopbot run` with a token: serve until SIGINT/SIGTERM; exit code for the CLI."""
    app = build_application(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with serving(app, config), web_alongside(app, config):
            log.info("serving Telegram as @%s; operator chat %s", app.bot.username,
                     config.alerts.operator_chat_id or "not configured (no alerts sent)")
            await stop.wait()
    except InvalidToken:  # its message contains the token: not logged
        log.error("Telegram rejected the bot token in %s", TOKEN_ENV)
        return 2
    except NetworkError as exc:
        log.error("cannot reach the Telegram Bot API at %s: %s", config.telegram.base_url, exc)
        return 1
    log.info("stopped")
    return 0
