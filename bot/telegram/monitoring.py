"""/healthz and /metrics on [monitoring] listen: can the bot serve right now, and what has it done."""

from __future__ import annotations

import logging
import sqlite3
import time

import httpx
import tornado.httpserver
import tornado.web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from telegram.error import TelegramError
from telegram.ext import Application

from bot.config import Config, ConfigError, listen_address
from bot.service import ConversationService
from bot.telegram.handlers import SERVICE_KEY
from bot.telegram.inbox import Inbox
from bot.telegram.webhook import delivery_trouble

log = logging.getLogger(__name__)

# getUpdates answers at least every poll_timeout seconds even when nobody writes; this much longer is a stall.
POLL_STALL_MARGIN_SECONDS = 60
WEBHOOK_CHECK_SECONDS = 30  # getWebhookInfo is asked at most this often, however often /healthz is
MODEL_SERVER_TIMEOUT_SECONDS = 5  # backend = "openai": its /models must answer within this


class Monitor:
    """Answers /healthz and /metrics from the running Application's parts."""

    def __init__(self, app: Application, config: Config, inbox: Inbox):
        self.app, self.config, self.inbox = app, config, inbox
        self._started = time.monotonic()
        self._server: tornado.httpserver.HTTPServer | None = None
        self._webhook_checked: tuple[float, str | None] = (float("-inf"), None)
        self._last_problems: list[str] = []

    @property
    def service(self) -> ConversationService | None:
        return self.app.bot_data.get(SERVICE_KEY)

    async def problems(self) -> list[str]:
        """Why the bot cannot serve customers now, one reason a line; empty when it can."""
        svc = self.service
        if svc is None:
            return ["model: not loaded yet (starting)"]
        problems = []
        if self.config.model.backend == "openai":
            model = await self._model_server_trouble()
            if model:
                problems.append(f"model: {model}")
        try:
            await svc.db.check_writable()
        except sqlite3.Error as exc:
            problems.append(f"database: not writable: {exc}")
        updates = await self._updates_trouble()
        if updates:
            problems.append(f"updates: {updates}")
        if problems != self._last_problems:  # logged when the answer changes, not at every probe
            log.warning("health: %s", "; ".join(problems) or "ok again")
            self._last_problems = problems
        return problems

    async def _model_server_trouble(self) -> str | None:
        """Why the remote model server does not answer its model list now, or None."""
        url = f"{self.config.model.base_url.rstrip('/')}/models"
        key = self.config.model_api_key
        try:
            async with httpx.AsyncClient(timeout=MODEL_SERVER_TIMEOUT_SECONDS) as client:
                response = await client.get(url, headers={"Authorization": f"Bearer {key}"} if key else {})
        except httpx.HTTPError as exc:
            return f"the model server at {url} is unreachable: {type(exc).__name__}: {exc}"
        return None if response.is_success else f"the model server at {url} answered {response.status_code}"

    async def _updates_trouble(self) -> str | None:
        if self.config.telegram.mode == "polling":
            last = self.inbox.last_contact or self._started
            silent = time.monotonic() - last
            if silent > self.config.telegram.poll_timeout + POLL_STALL_MARGIN_SECONDS:
                return f"no answer from Telegram to getUpdates for {silent:.0f} s"
            return None
        checked_at, trouble = self._webhook_checked
        if time.monotonic() - checked_at >= WEBHOOK_CHECK_SECONDS:
            try:
                trouble = await delivery_trouble(self.app.bot, self.config.telegram.webhook_url)
            except TelegramError as exc:
                trouble = f"cannot ask Telegram about the webhook: {exc}"
            self._webhook_checked = (time.monotonic(), trouble)
        return trouble

    async def metrics(self) -> bytes | None:
        """The Prometheus text, with the alert counts read from the database now; None before start-up is done."""
        svc = self.service
        if svc is None:
            return None
        svc.metrics.alert_counts(*await svc.db.alert_counts())
        return generate_latest(svc.metrics.registry)

    async def start(self) -> None:
        """Listen on [monitoring] listen (nothing when it is empty)."""
        if not self.config.monitoring.listen:
            return
        host, port = listen_address("monitoring.listen", self.config.monitoring.listen)
        logging.getLogger("tornado.access").setLevel(logging.CRITICAL)  # a line per probe and scrape; ours: above
        web = tornado.web.Application([("/healthz", _Health, {"monitor": self}), ("/metrics", _Metrics, {"monitor": self})])
        self._server = tornado.httpserver.HTTPServer(web)
        try:
            self._server.listen(port, address=host)
        except OSError as exc:
            raise ConfigError("monitoring.listen", f"cannot listen on {host}:{port}: {exc.strerror}") from None
        log.info("health and metrics on http://%s:%s/healthz and /metrics", host, port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            await self._server.close_all_connections()
            self._server = None


class _Health(tornado.web.RequestHandler):
    """GET /healthz: 200 "ok", or 503 with one reason a line."""

    def initialize(self, monitor: Monitor) -> None:
        self.monitor = monitor

    async def get(self) -> None:
        problems = await self.monitor.problems()
        self.set_status(503 if problems else 200)
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish("\n".join(problems or ["ok"]) + "\n")


class _Metrics(tornado.web.RequestHandler):
    """GET /metrics: Prometheus text format (503 while the bot is still starting)."""

    def initialize(self, monitor: Monitor) -> None:
        self.monitor = monitor

    async def get(self) -> None:
        text = await self.monitor.metrics()
        if text is None:
            self.set_status(503)
            self.finish("starting\n")
            return
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.finish(text)
