"""The Telegram application: wired in one function, run by long polling or a webhook until SIGINT/SIGTERM or a
fatal error."""

from __future__ import annotations

import asyncio
import logging
import signal
from contextlib import asynccontextmanager, nullcontext
from typing import TYPE_CHECKING, Any, AsyncIterator, Awaitable, Callable

from telegram import BotCommand, BotCommandScopeAllPrivateChats, BotCommandScopeChat, Update
from telegram.error import InvalidToken, NetworkError, TelegramError
from telegram.ext import AIORateLimiter, Application, BaseUpdateProcessor, ContextTypes, TypeHandler

from bot import retention
from bot.config import TOKEN_ENV, Config, ConfigError
from bot.in_turn import InTurn
from bot.llm.backends import ModelBackend, load_backend
from bot.service import ConversationService
from bot.telegram.handlers import (OPERATORS_KEY, OUTBOX_KEY, SERVICE_KEY, TOPICS_KEY, csat, customer, follow_move,
                                   operator, operator_chat, service, takeover)
from bot.telegram.handlers.errors import ErrorReporter, redact_in_logs
from bot.telegram.inbox import Inbox
from bot.telegram.monitoring import TelegramMonitor
from bot.telegram.outbox import DIGEST_CHECK_SECONDS, AlertOutbox
from bot.telegram.topics import Topics
from bot.telegram.webhook import receiving
from storage.db import Database

if TYPE_CHECKING:
    from bot.channels.web.server import WebChat

log = logging.getLogger(__name__)

# Updates waiting for their chat's lock hold a slot, so the bound is high: one chatty customer must not
# use up the slots another customer's /start needs. Real work is bounded anyway: by the engine's batches, or
# by model.max_concurrency on a model server.
MAX_CONCURRENT_UPDATES = 1024
RATE_LIMIT_RETRIES = 3  # AIORateLimiter waits out a 429's retry_after and tries again this often
# Updates the bot acts on; #5 and #6 add what they need. Channel posts and reactions are not fetched.
ALLOWED_UPDATES = [Update.MESSAGE, Update.EDITED_MESSAGE, Update.CALLBACK_QUERY]
INBOX_KEY = "inbox"  # bot_data: the Inbox that fetches updates (serving() starts it)
MONITOR_KEY = "monitor"  # bot_data: the Monitor behind /healthz and /metrics
POLLER_KEY = "poller"  # bot_data: the task fetching updates while serving(); it ends only on a fatal error
FORUM_WATCH_GROUP = -2  # the handler group that notes whether the operator chat is a forum, before all others
POLL_RESTART_SECONDS = 5.0  # after an unexpected error in fetching updates (reported), fetching starts again
CUSTOMER_MENU = [BotCommand("help", "what I can do"), BotCommand("reset", "start a fresh conversation"),
                 BotCommand("forget", "delete what the bot stored about you"),
                 BotCommand("human", "ask for a person from the shop")]
OPERATOR_MENU = [BotCommand("stats", "today's numbers"),
                 BotCommand("release", "reply to a customer's message: hand them back to the bot")]


class PerChatProcessor(BaseUpdateProcessor):
    """Updates of one chat run strictly in arrival order; different chats run concurrently. Once the bot is
    stopping (`closing`), an update whose turn comes is left undone: stored in the inbox, handled at the next start."""

    def __init__(self, max_concurrent_updates: int, after: Callable[[object], Awaitable[None]]):
        super().__init__(max_concurrent_updates)
        self._after = after  # told when an update is finished with, whatever its handlers did
        self._chats = InTurn()
        self.closing = False

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        chat = update.effective_chat if isinstance(update, Update) else None
        # PTB starts update tasks in update order, and a turn is taken first come first served.
        async with self._chats.turn(chat.id) if chat is not None else nullcontext():
            if self.closing:  # a chatty customer's queue would hold up a restart for minutes (systemd kills at 90 s)
                coroutine.close()
                return
            try:
                await coroutine
            finally:
                await self._after(update)

    async def initialize(self) -> None:
        """Nothing to set up: locks are made per chat on demand."""

    async def shutdown(self) -> None:
        """Nothing to free: Application.stop() already waited for running updates."""


def build_application(config: Config, engine: ModelBackend | None = None) -> Application:
    """The whole bot, in order: client, lifecycle, handlers, error handler. `engine`: reuse a loaded one."""
    if not config.telegram_token:
        raise ConfigError(TOKEN_ENV, "not set: create a bot with @BotFather and export its token")
    # httpx logs every request URL at INFO and PTB the API URL at DEBUG: both contain the token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    redact_in_logs(config.telegram_token)

    # 1. The client: token from the environment, Bot API location from [telegram], flood limits
    #    respected (and 429s retried) by AIORateLimiter, chats served concurrently but each in order,
    #    updates fetched by the Inbox (stored before Telegram is told they arrived) instead of PTB's Updater.
    inbox, outbox = Inbox(config), AlertOutbox()
    app = (
        Application.builder()
        .token(config.telegram_token)
        .base_url(config.telegram.base_url)
        .base_file_url(config.telegram.base_file_url)
        .rate_limiter(AIORateLimiter(max_retries=RATE_LIMIT_RETRIES))
        .concurrent_updates(PerChatProcessor(MAX_CONCURRENT_UPDATES, after=lambda update: inbox.done(update, app)))
        .updater(None)
        .build()
    )
    app.bot_data[INBOX_KEY] = inbox
    app.bot_data[OUTBOX_KEY] = outbox
    operators = app.bot_data[OPERATORS_KEY] = operator_chat(config)  # follows the chat's move to a supergroup
    topics = app.bot_data[TOPICS_KEY] = Topics(config.handoff.topic_per_customer)
    monitor = app.bot_data[MONITOR_KEY] = TelegramMonitor(app, config, inbox)

    # 2. Lifecycle: the database and the model are opened before the first update, closed after the last;
    #    /healthz answers from the start (503 while the model loads) to the end.
    async def post_init(app: Application) -> None:
        await monitor.start()
        db = await Database.open(config.storage.path)
        try:
            model = engine or await asyncio.to_thread(load_backend, config)  # seconds of CPU or HTTP, off the loop
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
        inbox.db, inbox.metrics = db, service.metrics
        moved_to = await db.chat_moved_to(config.alerts.operator_chat_id)
        if moved_to is not None:
            log.info("the operator chat %s is supergroup %s now", config.alerts.operator_chat_id, moved_to)
            follow_move(app.bot_data, moved_to)
        await topics.learn(app.bot, service.config.alerts.operator_chat_id)
        await _set_command_menus(app, config)

    async def post_shutdown(app: Application) -> None:
        await monitor.stop()
        svc: ConversationService | None = app.bot_data.pop(SERVICE_KEY, None)
        if svc is None:  # post_init never finished
            return
        if engine is None:  # only what post_init loaded; a passed-in engine belongs to the caller
            svc.engine.close()
        await svc.db.close()

    app.post_init, app.post_shutdown = post_init, post_shutdown

    # 3. Handlers: the operator chat's first, then takeovers (buttons, replies to customers), then customers'
    #    private chats and the group pointer. Before them all, in a group of its own (only one handler of a group
    #    handles an update): whether the operator chat has topics on.
    async def forum_or_not(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if update.effective_chat and update.effective_chat.id in operators.chat_ids:
            topics.seen(update.effective_chat)

    app.add_handler(TypeHandler(Update, forum_or_not), group=FORUM_WATCH_GROUP)
    app.add_handlers(operator.handlers(operators))
    app.add_handlers(takeover.handlers(operators))
    app.add_handlers(csat.handlers())
    app.add_handlers(customer.handlers(operators))

    # 4. One error handler: log, then a brief rate-limited note to the operator chat; an update whose handler
    #    failed is handled again later (bounded), not marked done.
    app.add_error_handler(ErrorReporter(operators, config.telegram.storage_error_reply,
                                        on_update_failed=inbox.failed))

    # 5. Periodic work on PTB's JobQueue, started and stopped with the application: an exception in a run
    #    reaches the error handler, and the next run comes anyway.
    async def retention_job(context: ContextTypes.DEFAULT_TYPE) -> None:
        await retention.purge(service(context).db, config.storage.retention_days)

    app.job_queue.run_repeating(retention_job, retention.DAY_SECONDS, first=0, name="retention")
    if config.alerts.operator_chat_id is not None:  # takeovers, too, start only from the operator chat
        app.job_queue.run_repeating(outbox.job, config.alerts.outbox_retry_seconds, first=0, name="alert outbox")
        if config.hours and config.hours.alerts_outside_hours == "digest":  # the digest goes out soon after opening
            app.job_queue.run_repeating(outbox.job, DIGEST_CHECK_SECONDS, name="opening digest")
        app.job_queue.run_repeating(takeover.hand_back_idle, takeover.idle_check_seconds(config), name="idle hand-back")
    return app


async def _set_command_menus(app: Application, config: Config) -> None:
    """The "/" menu Telegram shows: customer commands in private chats, /stats in the operator chat."""
    try:
        await app.bot.set_my_commands(CUSTOMER_MENU, scope=BotCommandScopeAllPrivateChats())
        for chat_id in app.bot_data[OPERATORS_KEY].chat_ids:
            await app.bot.set_my_commands(OPERATOR_MENU, scope=BotCommandScopeChat(chat_id))
    except TelegramError as exc:  # cosmetic; the commands work without the menu
        log.warning("could not set the command menus: %s", exc)


@asynccontextmanager
async def serving(app: Application, config: Config) -> AsyncIterator[Application]:
    """What run_polling/run_webhook do, inside a running event loop: init, post_init, receive ... stop, shutdown."""
    inbox: Inbox = app.bot_data[INBOX_KEY]
    webhook = config.telegram.mode == "webhook"
    await app.initialize()
    try:
        await app.post_init(app)
        if not webhook:
            await app.bot.delete_webhook()  # getUpdates refuses to work while a webhook is set
        await app.start()  # the handlers' queue and the JobQueue
        # Updates that arrived while the bot was down are answered, not dropped; unfinished ones first.
        await inbox.replay(app)
        poller = None if webhook else asyncio.create_task(_fetch_updates(app), name="fetch updates")
        app.bot_data[POLLER_KEY] = poller
        try:
            async with receiving(app, config, inbox, ALLOWED_UPDATES) if webhook else nullcontext():
                yield app
        finally:
            if poller is not None:
                poller.cancel()
                await asyncio.gather(poller, return_exceptions=True)
            app.update_processor.closing = True
            await app.stop()  # waits for updates being handled, so no reply is cut off; the rest wait in the inbox
    finally:
        await app.shutdown()
        await app.post_shutdown(app)


async def _fetch_updates(app: Application) -> None:
    """The inbox's long poll, started again after an unexpected error (which the error handler reports).

    Ends only when Telegram rejects the token: no retry can help, so the process must stop (and say so)."""
    while True:
        try:
            await app.bot_data[INBOX_KEY].poll(app, ALLOWED_UPDATES)
        except InvalidToken:
            raise
        except Exception as exc:
            await app.process_error(None, exc)
            await asyncio.sleep(POLL_RESTART_SECONDS)


async def _summary(app: Application, config: Config) -> str:
    """The one start-up line: what is served, with which model and weights, from where updates come."""
    svc: ConversationService = app.bot_data[SERVICE_KEY]
    m, t = config.model, config.telegram
    model = (f"model {svc.engine.name} on {m.base_url}" if m.backend == "openai" else
             f"model {svc.engine.name} ({m.weights} weights, "
             f"{m.threads or 'default'} threads)")
    receiving_from = f"webhook {t.webhook_url} (listening on {t.webhook_listen})" if t.mode == "webhook" else "polling"
    return (f"serving @{app.bot.username}: {model}; {len(await svc.db.knowledge())} knowledge entries; operator chat "
            f"{config.alerts.operator_chat_id or 'not configured (no alerts sent)'}; {receiving_from}"
            f"{'; health and metrics on ' + config.monitoring.listen if config.monitoring.listen else ''}")


@asynccontextmanager
async def web_alongside(app: Application, config: Config) -> AsyncIterator["WebChat | None"]:
    """[web] listen set: the web chat in this process, over the same service, alerting this operator chat."""
    if not config.web.listen:
        yield None
        return
    from bot.channels.web.server import serving_web
    from bot.telegram.handlers.other_channels import TelegramOperators

    async with serving_web(app.bot_data[SERVICE_KEY], config, TelegramOperators(app)) as chat:
        yield chat


async def run_telegram(config: Config) -> int:
    """`shopbot run` with a token: serve until SIGINT/SIGTERM or a fatal error; exit code for the CLI."""
    app = build_application(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with serving(app, config), web_alongside(app, config):
            log.info("%s", await _summary(app, config))
            waiting = {asyncio.ensure_future(stop.wait())}
            poller = app.bot_data[POLLER_KEY]  # polling: ends only on a fatal error; a webhook has none
            await asyncio.wait(waiting | ({poller} if poller else set()), return_when=asyncio.FIRST_COMPLETED)
            for task in waiting:
                task.cancel()
            if poller is not None and poller.done():
                poller.result()  # what ended it, raised here: the process exits non-zero for systemd to see
    except InvalidToken:  # its message contains the token: not logged
        log.error("Telegram rejected the bot token in %s", TOKEN_ENV)
        return 2
    except NetworkError as exc:
        log.error("cannot reach the Telegram Bot API at %s: %s", config.telegram.base_url, exc)
        return 1
    log.info("stopped")
    return 0
