"""The web chat's HTTP server (aiohttp): the page, the widget script, a JSON API and each visitor's event stream."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from contextlib import asynccontextmanager
from dataclasses import asdict
from pathlib import Path
from typing import AsyncIterator
from urllib.parse import urlsplit

from aiohttp import web

from bot.channels.web.proxies import TrustedProxies
from bot.channels.web.visitors import COOKIE, COOKIE_MAX_AGE, LiveStreams, VisitorCookies
from bot.config import Config, ConfigError, WebTexts, listen_address, web_secret
from bot.escalation import Operators
from bot.in_turn import InTurn
from bot.lexicon import storable
from bot.ratelimit import RateLimiter, Verdict
from bot.service import ConversationService, Outcome, Sender
from storage.db import Customer, StoredMessage

log = logging.getLogger(__name__)

CHANNEL = "web"
STATIC = Path(__file__).resolve().parent / "static"
MAX_BODY_BYTES = 64 * 1024  # a JSON body far above any message web.max_message_chars allows is refused unread
MAX_ID_CHARS = 64  # the page's id for a message (so a retried send is answered once)
PING_SECONDS = 15.0  # a comment on an idle event stream, so proxies don't close it
SHUTDOWN_SECONDS = 10.0  # replies being written get this long to finish when the server stops
COMMANDS = ("/reset", "/human")  # typed into the page as on Telegram; /forget asks first, in the page
WIDGET_TEXTS = ("title", "open_chat", "close_chat")  # what the widget script needs before the chat loads
# The page runs only its own script and styles; the API is called from the same origin.
PAGE_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
               "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'self'")


class WebChat:
    """The web channel: visitors are customers (channel "web", id from a signed cookie) of the same service."""

    def __init__(self, service: ConversationService, config: Config, operators: Operators | None = None):
        self.svc, self.config, self.operators = service, config, operators
        self.web = config.web
        self.cookies = VisitorCookies(web_secret(config))
        self.streams = LiveStreams()
        self.addresses = RateLimiter(self.web.requests_per_minute_per_address)
        self.proxies = TrustedProxies(self.web.trusted_proxies)
        self._visitors_in_turn = InTurn()
        self.url = ""  # set once listening
        service.handoff.reach_customers(CHANNEL, self._show_operator_text)

    def application(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[self._guard])
        app.router.add_get("/", self._page)
        app.router.add_get("/widget.js", self._widget)
        app.router.add_static("/static/", STATIC, append_version=False)
        app.router.add_get("/api/session", self._session)
        app.router.add_get("/api/events", self._events)
        app.router.add_post("/api/messages", self._message)
        app.router.add_post("/api/reset", self._reset)
        app.router.add_post("/api/forget", self._forget)
        app.on_response_prepare.append(self._headers)
        return app

    # --- security: origins, CSRF, headers ----------------------------------------------------------

    def _allowed(self, origin: str | None) -> bool:
        return origin is not None and origin in self.web.allowed_origins

    @web.middleware
    async def _guard(self, request: web.Request, handler) -> web.StreamResponse:
        """CORS for the configured origins only; a state change needs a JSON body from this site or one of them.

        A cross-site form cannot send JSON, and a cross-site script cannot get past the preflight, so with the
        Origin check a visitor's cookie can't be used by another site (CSRF)."""
        origin = request.headers.get("Origin")
        if request.method == "OPTIONS" and request.path.startswith("/api/"):
            if not self._allowed(origin):
                return _error(403, "this site may not use the shop's chat (web.allowed_origins)")
            return web.Response(status=204, headers={
                "Access-Control-Allow-Methods": "GET, POST", "Access-Control-Allow-Headers": "Content-Type",
                "Access-Control-Max-Age": "600"})
        if request.method == "POST":
            if origin is not None and not _same_origin(request, origin) and not self._allowed(origin):
                log.warning("refused a %s from origin %s (not in web.allowed_origins)", request.path, origin)
                return _error(403, "this site may not use the shop's chat (web.allowed_origins)")
            if request.content_type != "application/json":
                return _error(415, "send JSON (Content-Type: application/json)")
            if self.addresses.check(self.proxies.client(request)) is not Verdict.OK:
                return _error(429, self.config.chat.slow_down_reply.for_lang(self._language(request)))
        try:
            return await handler(request)
        except web.HTTPRequestEntityTooLarge:
            return _error(413, self._texts(request).too_long.format(limit=self.web.max_message_chars))
        except web.HTTPException:
            raise
        except sqlite3.Error as exc:  # disk full, locked: expected trouble on a small server, said plainly
            log.error("web chat: SQLite failed on %s: %s", request.path, exc)
            return _error(503, self._texts(request).error)
        except Exception:
            log.exception("web chat: %s failed", request.path)
            return _error(500, self._texts(request).error)

    async def _headers(self, request: web.Request, response: web.StreamResponse) -> None:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if request.path == "/":
            response.headers["Content-Security-Policy"] = " ".join([PAGE_POLICY, *self.web.allowed_origins])
        if request.path.startswith("/api/"):
            response.headers["Cache-Control"] = "no-store"
            origin = request.headers.get("Origin")
            if self._allowed(origin):
                response.headers.update({"Access-Control-Allow-Origin": origin,
                                         "Access-Control-Allow-Credentials": "true", "Vary": "Origin"})

    # --- who and which language ------------------------------------------------------------------

    def _visitor(self, request: web.Request) -> str | None:
        return self.cookies.visitor(request.cookies.get(COOKIE))

    def _identify(self, request: web.Request, response: web.StreamResponse, visitor: str | None = None) -> str:
        """The request's visitor; a new one (and its cookie on `response`) when it has none or a forged one."""
        if visitor is None and (visitor := self._visitor(request)) is not None:
            return visitor
        visitor = visitor or self.cookies.new_id()
        # HTTPS (directly or behind a proxy saying so): the widget on another of the shop's sites needs
        # SameSite=None to keep its visitor; over plain HTTP browsers allow only Lax.
        secure = request.secure or request.headers.get("X-Forwarded-Proto") == "https"
        response.set_cookie(COOKIE, self.cookies.sign(visitor), max_age=COOKIE_MAX_AGE, path="/", httponly=True,
                            secure=secure, samesite="None" if secure and self.web.allowed_origins else "Lax")
        return visitor

    @staticmethod
    def _sender(visitor: str) -> Sender:
        return Sender(CHANNEL, visitor, display_name=f"Web visitor {visitor[:6]}")

    def _language(self, request: web.Request) -> str:
        """?lang= (the widget passes its page's language), else the browser's preferences, else the first."""
        wanted = [request.query.get("lang", "")]
        for part in request.headers.get("Accept-Language", "").split(","):
            wanted.append(part.split(";")[0])
        for tag in wanted:
            code = tag.strip().lower().split("-")[0]
            if code in self.web.texts:
                return code
        return next(iter(self.web.texts))

    def _texts(self, request: web.Request) -> WebTexts:
        return self.web.texts[self._language(request)]

    # --- the page and the widget -----------------------------------------------------------------

    async def _page(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "chat.html")

    async def _widget(self, request: web.Request) -> web.Response:
        """The script a shop pastes into its pages; its few labels come first, in every language."""
        labels = {code: {name: getattr(texts, name) for name in WIDGET_TEXTS} for code, texts in self.web.texts.items()}
        head = "const SHOPBOT_LABELS = " + json.dumps(labels).replace("<", "\\u003c") + ";\n"
        body = (STATIC / "widget.js").read_text(encoding="utf-8")
        return web.Response(text=head + body, content_type="text/javascript", charset="utf-8",
                            headers={"Cache-Control": "max-age=300"})

    # --- the API ---------------------------------------------------------------------------------

    async def _session(self, request: web.Request) -> web.Response:
        """The page's texts and settings, and the conversation so far (a visitor who never wrote stores nothing)."""
        response = web.Response(content_type="application/json")
        visitor = self._identify(request, response)
        language = self._language(request)
        customer = await self.svc.db.existing_customer(CHANNEL, visitor)
        history = await self.svc.db.latest_messages(customer.id, self.web.history_messages) if customer else []
        response.text = _dumps({
            "language": language, "texts": asdict(self.web.texts[language]),
            "max_message_chars": self.web.max_message_chars, "show_sentiment": self.web.show_sentiment,
            "messages": [self._shown(m) for m in history],
        })
        return response

    def _shown(self, message: StoredMessage) -> dict:
        """A stored message as the page shows it; its id lets a page that missed events add only what it lacks."""
        shown = {"id": message.id, "role": message.role, "text": message.text}
        if self.web.show_sentiment and message.sentiment:
            shown["sentiment"] = {"label": message.sentiment, "confidence": round(message.confidence, 2)}
        return shown

    async def _events(self, request: web.Request) -> web.StreamResponse:
        """Server-sent events for one open page: the reply as it is written, operator messages, forget."""
        visitor = self._visitor(request)
        if visitor is None:
            return _error(401, "open the chat page first")
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "X-Accel-Buffering": "no"})
        await response.prepare(request)
        queue = self.streams.open(visitor, hang_up=lambda: request.transport and request.transport.close())
        try:
            await response.write(b"retry: 2000\n\n")
            while True:
                try:
                    frame = await asyncio.wait_for(queue.get(), PING_SECONDS)
                except TimeoutError:
                    frame = b": ping\n\n"
                if frame is None:  # the server is stopping, or the page stopped reading
                    break
                await response.write(frame)
        except ConnectionError:
            pass  # the page was closed
        finally:
            self.streams.close(visitor, queue)
        return response

    async def _message(self, request: web.Request) -> web.Response:
        """A visitor's message through the service; the reply streams to their pages and is the answer here."""
        response = web.Response(content_type="application/json")
        visitor = self._identify(request, response)
        body = await _json_object(request)
        text, message_id = body.get("text") if body else None, body.get("id") if body else None
        if not isinstance(text, str):
            return _error(400, 'send {"text": "your message"}')
        text = storable(text)  # half an emoji (a lone surrogate) can't be UTF-8: the other pages, SQLite, Telegram
        if message_id is not None and not (isinstance(message_id, str) and 0 < len(message_id) <= MAX_ID_CHARS):
            return _error(400, f"id must be a string of at most {MAX_ID_CHARS} characters")
        if len(text) > self.web.max_message_chars:
            return _error(413, self._texts(request).too_long.format(limit=self.web.max_message_chars))
        # One visitor's messages one at a time, in arrival order (their pages, or a quick second send, do not wait
        # for the first answer): replies are stored in order, and an id sent twice is answered from the first.
        arrived = time.monotonic()  # the wait for the visitor's earlier message counts: they wait for it too
        async with self._visitors_in_turn.turn(visitor):
            answered = await self._handle_message(request, response, visitor, text, message_id)
        self.svc.metrics.reply_latency.observe(time.monotonic() - arrived)
        return answered

    async def _handle_message(self, request: web.Request, response: web.Response, visitor: str, text: str,
                              message_id: str | None) -> web.Response:
        """A valid message, in the visitor's turn."""
        sender = self._sender(visitor)
        command = text.strip().lower()
        if command == "/reset":
            await self.svc.reset(sender)
            response.text = _dumps({"id": message_id, "reply": self._texts(request).reset_done})
            return response
        self.streams.send(visitor, "customer", {"id": message_id, "text": text})  # the visitor's other pages
        if command == "/human":
            outcome = await self.svc.request_human(sender, message_id)
        else:
            outcome = await self.svc.handle_text(sender, text, message_id, on_partial=lambda so_far: self.streams.send(
                visitor, "partial", {"id": message_id, "text": so_far}))
        if outcome.reply:
            await self.svc.mark_sent(outcome)
        answer = self._answer(message_id, outcome)
        self.streams.send(visitor, "reply", answer)
        await self._to_operators(outcome, text)
        response.text = _dumps(answer)
        return response

    def _answer(self, message_id: str | None, outcome: Outcome) -> dict:
        """The reply as the page shows it: null when none is due (an operator has the chat, over the limit)."""
        answer = {"id": message_id, "reply": outcome.reply or None}
        if self.web.show_sentiment and outcome.sentiment:
            s = outcome.sentiment
            answer["sentiment"] = {"label": s.label, "confidence": round(s.confidence, 2)}
        return answer

    async def _to_operators(self, outcome: Outcome, text: str) -> None:
        """Alerts, taken-over messages and model failures (the service logged them) go to the operators; without
        them (no Telegram) alerts wait in SQLite."""
        if self.operators is None:
            if outcome.alert:
                log.info("alert #%s for web visitor %s waits for the operator chat (Telegram is not running)",
                         outcome.alert.id, outcome.customer.id)
            return
        if outcome.alert:
            await self.operators.alert(outcome)
        if outcome.relayed:
            await self.operators.relay(outcome, text)
        if outcome.model_error:  # the visitor has the fallback reply already
            await self.operators.model_failed(outcome.model_error)

    async def _reset(self, request: web.Request) -> web.Response:
        """The "new conversation" button: replies stop using the earlier messages (nothing is deleted)."""
        response = web.Response(content_type="application/json")
        visitor = self._identify(request, response)
        async with self._visitors_in_turn.turn(visitor):  # as typed /reset: a reply being written lands before it
            await self.svc.reset(self._sender(visitor))
        response.text = _dumps({"reply": self._texts(request).reset_done})
        return response

    async def _forget(self, request: web.Request) -> web.Response:
        """"Forget me", confirmed in the page: everything about the visitor is deleted; they get a new identity."""
        visitor = self._visitor(request)
        counts = {"messages": 0, "alerts": 0}
        if visitor is not None and await self.svc.db.existing_customer(CHANNEL, visitor) is not None:
            async with self._visitors_in_turn.turn(visitor):  # after a message being answered, not under it
                counts, posts = await self.svc.forget(self._sender(visitor))
            if posts and self.operators is not None:
                await self.operators.forgotten(posts)
            self.streams.send(visitor, "forgotten", {})  # the visitor's other pages clear too
        response = web.Response(content_type="application/json")
        self._identify(request, response, visitor=self.cookies.new_id())
        texts = self._texts(request)
        response.text = _dumps({"reply": texts.forget_done.format(**counts)})
        return response

    async def _show_operator_text(self, customer: Customer, text: str) -> None:
        """An operator's reply, live on the visitor's open pages (and in their history when they come back)."""
        self.streams.send(customer.external_id, "operator", {"text": text})


def _same_origin(request: web.Request, origin: str) -> bool:
    """A post from the chat's own page: its Origin names this host, or the browser says so (Sec-Fetch-Site, which no
    page can set) where a reverse proxy passed another Host (nginx sends its proxy_pass address by default)."""
    return urlsplit(origin).netloc == request.host or request.headers.get("Sec-Fetch-Site") == "same-origin"


def _dumps(data: dict) -> str:
    return json.dumps(data, ensure_ascii=False)


def _error(status: int, message: str) -> web.Response:
    return web.Response(status=status, text=_dumps({"error": message}), content_type="application/json")


async def _json_object(request: web.Request) -> dict | None:
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None


@asynccontextmanager
async def serving_web(service: ConversationService, config: Config,
                      operators: Operators | None = None) -> AsyncIterator[WebChat]:
    """The web chat listening on [web] listen until the block ends; open streams end, replies being written finish."""
    chat = WebChat(service, config, operators)
    host, port = listen_address("web.listen", config.web.listen)
    runner = web.AppRunner(chat.application(), access_log=None, shutdown_timeout=SHUTDOWN_SECONDS)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as exc:
            raise ConfigError("web.listen", f"cannot listen on {config.web.listen}: {exc.strerror or exc}") from None
        bound = runner.addresses[0]
        chat.url = f"http://{'[' + host + ']' if ':' in host else host}:{bound[1]}/"
        log.info("web chat at %s (widget: <script src=\"%swidget.js\" defer></script>)", chat.url, chat.url)
        yield chat
    finally:
        chat.streams.end_all()
        await runner.cleanup()
