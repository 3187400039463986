"""The web chat in a real browser (the distribution's headless Chromium): the page, the widget, accessibility."""

import asyncio
import os
from contextlib import asynccontextmanager
from importlib.util import find_spec
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from bot.channels.web.server import CHANNEL
from bot.channels.web.visitors import COOKIE
from testkit import free_port
from testkit.browser import CHROMIUM, TIMING, chromium
from testkit.fakes.engine import ScriptedEngine
from testkit.telegram_helpers import OPERATORS, linked
from testkit.web_helpers import for_web, running_both, running_web

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists() or find_spec("playwright") is None,
                                reason="needs chromium and playwright (bash scripts/setup.sh test installs both)")

COMPLAINT = "My order arrived broken and nobody answers!"
APOLOGY = ("I am very sorry that your order arrived broken. A person from the shop will contact you today "
           "about a replacement or a refund.")
HOSTILE = '<img src=x onerror="window.pwned=1"><b>bold</b>'
SENTIMENTS = {COMPLAINT: ("negative", 0.95), "thanks": ("positive", 0.9), HOSTILE: ("neutral", 0.6)}
OPERATOR_TEXT = "So sorry! <i>A new one</i> ships today."
# Where the screenshots go: SHOPBOT_SCREENSHOTS=dir keeps them to look at; else the test's tmp_path.
SCREENSHOTS = os.environ.get("SHOPBOT_SCREENSHOTS")


@pytest.fixture
def engine(tiny_engine):
    scripted = ScriptedEngine(tiny_engine, sentiments=SENTIMENTS,
                              replies={COMPLAINT: APOLOGY, "thanks": "You are welcome.", HOSTILE: HOSTILE})
    scripted.word_seconds = 0.08  # slow enough to watch the reply grow
    return scripted


@pytest.fixture
async def browser():
    async with chromium() as launched:
        yield launched


def shot_path(tmp_path: Path, name: str) -> Path:
    folder = Path(SCREENSHOTS) if SCREENSHOTS else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


async def axe_violations(page) -> list[dict]:
    """axe-core (shipped inside the axe-playwright-python wheel: no network) run on the page as it is now."""
    axe = Path(find_spec("axe_playwright_python").origin).parent / "axe.min.js"
    await page.add_script_tag(path=str(axe))
    result = await page.evaluate("axe.run(document, {runOnly: ['wcag2a', 'wcag2aa', 'wcag21aa', 'best-practice']})")
    return [{"id": v["id"], "impact": v["impact"], "nodes": [n["html"] for n in v["nodes"]]}
            for v in result["violations"]]


async def test_complaint_streams_operator_reply_arrives_history_survives_reload_forget_clears(
        config, engine, fake, browser, tmp_path):
    texts = config.web.texts["en"]
    async with running_both(for_web(config), engine) as (chat, svc):
        # bypass_csp only so the test can inject axe-core; the page itself runs under its strict policy.
        context = await browser.new_context(bypass_csp=True, viewport={"width": 420, "height": 760})
        await context.add_init_script(TIMING)
        page = await context.new_page()
        page_errors: list[str] = []
        page.on("pageerror", lambda exc: page_errors.append(str(exc)))
        await page.goto(chat.url)
        await page.get_by_text(texts.greeting).wait_for()

        box = page.get_by_role("textbox", name=texts.input_label)
        await box.fill(COMPLAINT)
        await box.press("Enter")  # the keyboard alone sends
        await page.locator(".msg.customer", has_text=COMPLAINT).wait_for()
        # The reply grows on screen: some of it is visible while it is still being written...
        writing = page.locator(".msg.bot.writing p")
        await page.wait_for_function(
            "() => { const p = document.querySelector('.msg.bot.writing p'); return p && p.textContent.length > 0; }")
        shown_early = await writing.text_content()
        assert shown_early and APOLOGY.startswith(shown_early) and shown_early != APOLOGY
        # ...and then it is finished.
        await page.locator(".msg.bot:not(.writing)", has_text=APOLOGY).wait_for()
        timing = (await page.evaluate("window.__timing"))[0]
        print(f"\nweb chat, scripted reply: send -> first visible text {timing['first'] - timing['sent']:.0f} ms, "
              f"-> finished {timing['done'] - timing['sent']:.0f} ms")

        # The alert reached the operator chat; an operator's reply to it takes over and appears live.
        await fake.wait_for(lambda c: c.method == "sendMessage" and c.params["chat_id"] == OPERATORS
                            and "Alert #" in c.params["text"])
        alert = await linked(svc, fake.sent_messages(OPERATORS)[-1])
        assert "[web]" in alert["text"]
        fake.send_text(OPERATORS, OPERATOR_TEXT, user_id=7, first_name="Olga", chat_type="supergroup",
                       reply_to_message_id=alert["message_id"])
        staff = page.locator(".msg.operator p")
        await staff.wait_for()
        assert await staff.text_content() == OPERATOR_TEXT  # as text: the <i> is not markup
        assert await page.locator(".msg.operator i").count() == 0

        await page.screenshot(path=str(shot_path(tmp_path, "web-chat.png")), full_page=True)
        violations = await axe_violations(page)
        assert violations == [], "\n".join(map(str, violations))

        # Reloaded, the page shows the conversation from SQLite.
        await page.reload()
        await page.locator(".msg.operator", has_text=OPERATOR_TEXT).wait_for()
        assert await page.locator(".msg p").all_text_contents() == [COMPLAINT, APOLOGY, OPERATOR_TEXT]

        # Forget me: asked first (keyboard focus on the safe answer), then everything is gone.
        await page.get_by_role("button", name=texts.forget, exact=True).click()
        dialog = page.get_by_role("alertdialog")
        await dialog.get_by_text(texts.forget_confirm).wait_for()
        assert await page.evaluate("document.activeElement.id") == "forget-no"
        await dialog.get_by_role("button", name=texts.forget_yes).click()
        await page.get_by_text("Deleted: 3 messages and 1 alerts").wait_for()
        await page.reload()
        await page.get_by_text(texts.greeting).wait_for()
        assert await page.locator(".msg p").all_text_contents() == [texts.greeting]
        assert (await svc.db.stats_since(0))["customers"] == 0 and await svc.db.alerts() == []
        assert page_errors == []
        await context.close()


async def test_the_widget_opens_in_a_corner_on_a_phone_and_renders_model_text_as_text(
        tiny_config, engine, browser, tmp_path, unused_tcp_port):
    """A shop's page with the one script tag, on a phone: open, chat, close, all with the keyboard."""
    shop_origin = f"http://127.0.0.1:{unused_tcp_port}"
    config = for_web(tiny_config, allowed_origins=(shop_origin,))
    async with running_web(config, engine) as chat:
        shop = web.Application()
        page_html = (f'<!doctype html><html lang="zh"><head><meta charset="utf-8"><title>Teapots</title>'
                     f'<meta name="viewport" content="width=device-width, initial-scale=1"></head>'
                     f'<body><main><h1>Teapot shop</h1></main><script src="{chat.url}widget.js" defer></script>'
                     f'</body></html>')

        async def shop_page(request: web.Request) -> web.Response:
            return web.Response(text=page_html, content_type="text/html")

        shop.router.add_get("/", shop_page)
        runner = web.AppRunner(shop)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", unused_tcp_port).start()
        try:
            context = await browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True,
                                                has_touch=True, locale="zh-CN")
            page = await context.new_page()
            await page.goto(shop_origin)
            zh = config.web.texts["zh"]
            opener = page.get_by_role("button", name=zh.open_chat)  # the shop's page is Chinese: so is the widget
            await opener.focus()
            await page.keyboard.press("Enter")
            frame_element = page.locator("iframe#shopbot-chat")
            await frame_element.wait_for()
            box = await frame_element.bounding_box()
            assert box["width"] == 390 and box["height"] == 844  # a phone gets the whole screen
            frame = page.frame_locator("iframe#shopbot-chat")
            await frame.get_by_text(zh.greeting).wait_for()
            message = frame.get_by_role("textbox", name=zh.input_label)
            await message.fill(HOSTILE)
            await message.press("Enter")
            await frame.locator(".msg.bot:not(.writing)").wait_for()
            await page.screenshot(path=str(shot_path(tmp_path, "web-widget-phone.png")))
            # The model's "HTML" is shown as the characters it is, and nothing in it ran.
            assert await frame.locator(".msg.bot p").text_content() == HOSTILE
            assert await frame.locator(".msg img, .msg b").count() == 0
            assert await page.frames[1].evaluate("window.pwned") is None
            await message.press("Escape")  # closes the corner chat; focus goes back to the button
            await frame_element.wait_for(state="hidden")
            assert await page.evaluate("document.activeElement.getAttribute('aria-controls')") == "shopbot-chat"
            customer = await chat.svc.db.stats_since(0)
            assert customer["customers"] == 1 and customer["messages"] == 1
            await context.close()
        finally:
            await runner.cleanup()


async def thanks_once(chat, config, context, page, url: str):
    """The visitor opens the page at `url` and says thanks; once answered, the stored customer."""
    await page.goto(url)
    box = page.get_by_role("textbox", name=config.web.texts["en"].input_label)
    await box.fill("thanks")
    await box.press("Enter")
    await page.locator(".msg.bot:not(.writing)", has_text="You are welcome.").wait_for()
    cookie = next(c for c in await context.cookies() if c["name"] == COOKIE)
    return await chat.svc.db.existing_customer(CHANNEL, chat.cookies.visitor(cookie["value"]))


async def operator_reply(chat, customer, text: str) -> None:
    """What an operator's reply in Telegram does for a web customer: stored, then shown on their pages."""
    await chat.svc.handoff.operator_turn(customer.id, text)
    await chat.svc.handoff.to_customer(customer, text)


async def test_an_operator_message_sent_while_the_stream_was_down_appears_once_it_is_back(tiny_config, engine, browser):
    """The page's event stream drops (a server restart, a network change); what the operator wrote meanwhile shows up
    when the stream is back, without a reload, and nothing already on screen is shown twice."""
    config = for_web(tiny_config)
    async with running_web(config, engine) as chat:
        context = await browser.new_context()
        page = await context.new_page()
        customer = await thanks_once(chat, config, context, page, chat.url)

        await operator_reply(chat, customer, "Shown live.")
        await page.locator(".msg.operator", has_text="Shown live.").wait_for()
        chat.streams.end_all()  # the stream ends; the page reconnects by itself (retry: 2 s)...
        await operator_reply(chat, customer, OPERATOR_TEXT)  # ...and misses this meanwhile
        await page.locator(".msg.operator", has_text=OPERATOR_TEXT).wait_for(timeout=10_000)
        assert await page.locator(".msg:not(.note) p").all_text_contents() == [
            "thanks", "You are welcome.", "Shown live.", OPERATOR_TEXT]
        await context.close()


HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "upgrade"}


class Proxy:
    """A tiny reverse proxy in front of the chat, as nginx: it forwards every request, streams the answers, and
    while `down` answers 502 to the event stream, as nginx does for the seconds the shop restarts shopbot."""

    def __init__(self, upstream: str, drop_cookies: bool = False):
        self.upstream = upstream.rstrip("/")
        self.down = False
        self.refused = 0  # 502s given to the event stream
        self.streams = 0  # requests for the event stream
        # drop_cookies: the cookie never reaches the browser, as for a widget whose browser blocks the shop's cookie
        self.hidden = HOP_BY_HOP | ({"set-cookie"} if drop_cookies else set())

    async def forward(self, request: web.Request) -> web.StreamResponse:
        if request.path == "/api/events":
            self.streams += 1
            if self.down:
                self.refused += 1
                return web.Response(status=502, text="502 Bad Gateway")
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        async with self.session.request(request.method, self.upstream + request.path_qs, headers=headers,
                                        data=await request.read()) as upstream:
            response = web.StreamResponse(status=upstream.status)
            response.headers.extend((k, v) for k, v in upstream.headers.items() if k.lower() not in self.hidden)
            await response.prepare(request)
            async for chunk in upstream.content.iter_any():  # the event stream as it comes
                await response.write(chunk)
            return response

    @asynccontextmanager
    async def serving(self):
        """The proxy's own address while the block runs."""
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", self.forward)
        runner = web.AppRunner(app, shutdown_timeout=0.5)  # stopping, it does not wait for the streams it carries
        await runner.setup()
        port = free_port()
        async with aiohttp.ClientSession(auto_decompress=False, timeout=aiohttp.ClientTimeout(total=None)) as session:
            self.session = session
            await web.TCPSite(runner, "127.0.0.1", port).start()
            try:
                yield f"http://127.0.0.1:{port}/"
            finally:
                await runner.cleanup()


async def test_a_page_whose_stream_got_502s_from_the_proxy_during_a_restart_gets_what_was_written_meanwhile(
        tiny_config, engine, browser):
    """Behind nginx, a restarting shopbot makes the event stream's reconnect get 502 instead of a dropped
    connection, and the browser's EventSource then gives up for good; the page opens a new one itself, and the
    operator's message written meanwhile appears without a reload, once."""
    config = for_web(tiny_config)
    async with running_web(config, engine) as chat:
        proxy = Proxy(chat.url)
        async with proxy.serving() as url:
            context = await browser.new_context()
            page = await context.new_page()
            customer = await thanks_once(chat, config, context, page, url)

            proxy.down = True  # shopbot restarts: its streams end, nginx answers 502 until it is back
            chat.streams.end_all()
            await operator_reply(chat, customer, OPERATOR_TEXT)
            await asyncio.sleep(3.5)  # the page's reconnect (retry: 2 s) gets a 502
            assert proxy.refused >= 1
            proxy.down = False
            await page.locator(".msg.operator", has_text=OPERATOR_TEXT).wait_for(timeout=10_000)
            assert await page.locator(".msg:not(.note) p").all_text_contents() == [
                "thanks", "You are welcome.", OPERATOR_TEXT]
            await context.close()


async def test_a_page_without_a_cookie_asks_once_more_for_the_stream_then_chats_without_it(
        tiny_config, engine, browser):
    """The stream's 401 (no cookie: the browser blocks it) cannot improve by waiting: after its one check the page
    does not ask again, and the visitor still gets answers, as the answers to their sends."""
    config = for_web(tiny_config)
    async with running_web(config, engine) as chat:
        proxy = Proxy(chat.url, drop_cookies=True)
        async with proxy.serving() as url:
            context = await browser.new_context()
            page = await context.new_page()
            await page.goto(url)
            await page.get_by_text(config.web.texts["en"].greeting).wait_for()
            for _ in range(60):  # the EventSource's 401, then (2 s later) the page's one check of it
                if proxy.streams >= 2:
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(4.5)  # a page retrying would ask again within 4 s (the doubled delay)
            assert proxy.streams == 2
            box = page.get_by_role("textbox", name=config.web.texts["en"].input_label)
            await box.fill("thanks")
            await box.press("Enter")
            await page.locator(".msg.bot:not(.writing)", has_text="You are welcome.").wait_for()
            await context.close()
