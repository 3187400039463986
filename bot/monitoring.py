"""/healthz and /metrics on [monitoring] listen, for whichever channels run: can the bot serve right now, and what
has it done. A channel adds its own checks by subclassing Monitor (bot/telegram/monitoring.py)."""

from __future__ import annotations

import logging
import sqlite3
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, AsyncIterator, Callable

import httpx
import tornado.httpserver
import tornado.web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bot.config import Config, ConfigError, listen_address

if TYPE_CHECKING:
    from bot.service import ConversationService

log = logging.getLogger(__name__)

MODEL_SERVER_TIMEOUT_SECONDS = 5  # backend = "openai": its /models must answer within this


class Monitor:
    """Answers /healthz and /metrics from the running conversation service; `service()` is None while it loads."""

    def __init__(self, config: Config, service: Callable[[], ConversationService | None]):
        self.config = config
        self._service = service
        self._server: tornado.httpserver.HTTPServer | None = None
        self._last_problems: list[str] = []

    @property
    def service(self) -> ConversationService | None:
        """The service once start-up has loaded it, else None."""
        return self._service()

    async def problems(self) -> list[str]:
        """Why the bot cannot serve customers now, one reason a line; empty when it can."""
        svc = self.service
        if svc is None:
            return ["model: not loaded yet (starting)"]
        problems = [*await self._service_problems(svc), *await self.channel_problems()]
        if problems != self._last_problems:  # logged when the answer changes, not at every probe
            log.warning("health: %s", "; ".join(problems) or "ok again")
            self._last_problems = problems
        return problems

    async def _service_problems(self, svc: ConversationService) -> list[str]:
        """What every channel needs: the model answering and the database taking writes."""
        problems = []
        if self.config.model.backend == "openai":
            model = await self._model_server_trouble()
            if model:
                problems.append(f"model: {model}")
        try:
            await svc.db.check_writable()
        except sqlite3.Error as exc:
            problems.append(f"database: not writable: {exc}")
        return problems

    async def channel_problems(self) -> list[str]:
        """Why a channel gets no messages now; none here (the web chat is asked by its visitors directly)."""
        return []

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
        web = tornado.web.Application([("/healthz", _Health, {"monitor": self}),
                                       ("/metrics", _Metrics, {"monitor": self})])
        self._server = tornado.httpserver.HTTPServer(web)
        try:
            self._server.listen(port, address=host)
        except OSError as exc:
            raise ConfigError("monitoring.listen", f"cannot listen on {host}:{port}: {exc.strerror}") from None
        log.info("health and metrics on http://%s:%s/healthz and /metrics", host, port)

    async def stop(self) -> None:
        """Stop listening (again: nothing)."""
        if self._server is not None:
            self._server.stop()
            await self._server.close_all_connections()
            self._server = None


@asynccontextmanager
async def monitoring(monitor: Monitor) -> AsyncIterator[Monitor]:
    """`monitor` listening until the block ends."""
    await monitor.start()
    try:
        yield monitor
    finally:
        await monitor.stop()


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
