"""The web chat over HTTP: identity cookies, streamed replies, security rules, alerts and operator replies."""

import asyncio
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from dataclasses import replace

import aiohttp
import pytest
from yarl import URL

from bot.channels.web.server import CHANNEL
from bot.channels.web.visitors import COOKIE, STREAM_QUEUE
from bot.config import ConfigError, load_config, web_secret
from bot.llm.engine import ModelTimeout
from bot.telegram.handlers.operator import FORGOTTEN_NOTE
from testkit.fakes.engine import ScriptedEngine
from testkit.telegram_helpers import OPERATORS, linked, replies, sent_texts
from storage.db import Database
from testkit.web_helpers import EventStream, for_web, running_both, running_web
from tests.conftest import REPO, dump_config

COMPLAINT = "My order arrived broken and nobody answers!"
APOLOGY = "I am very sorry about your order. A person from the shop will contact you today."
ANN = 1001  # a Telegram customer beside the web visitors
SENTIMENTS = {COMPLAINT: ("negative", 0.95), "hello?": ("neutral", 0.7), "thanks": ("positive", 0.9)}


@pytest.fixture
def engine(tiny_engine):
    scripted = ScriptedEngine(tiny_engine, sentiments=SENTIMENTS,
                              replies={COMPLAINT: APOLOGY, "thanks": "You are welcome."})
    scripted.word_seconds = 0.02
    return scripted


@pytest.fixture
def web_config(tiny_config):
    return for_web(tiny_config)


def visitor_session(chat, **headers) -> aiohttp.ClientSession:
    # unsafe: the cookie jar keeps cookies for an IP address host such as 127.0.0.1
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True), headers=headers)


def visitor_of(chat, session: aiohttp.ClientSession) -> str | None:
    """The visitor id the session's cookie carries (None if the server would not accept it)."""
    return chat.cookies.visitor(session.cookie_jar.filter_cookies(URL(chat.url))[COOKIE].value)


async def post(session, chat, path, body, **headers):
    async with session.post(chat.url + path, json=body, headers=headers) as response:
        return response.status, await response.json()


async def test_a_visitor_gets_a_signed_httponly_cookie_and_a_page_view_stores_nobody(web_config, engine):
    async with running_web(web_config, engine) as chat, visitor_session(chat) as session:
        async with session.get(chat.url + "api/session") as response:
            data = await response.json()
            set_cookie = response.headers["Set-Cookie"]
        assert "HttpOnly" in set_cookie and "SameSite=Lax" in set_cookie
        assert data["messages"] == [] and data["texts"]["send"] == "Send" and data["language"] == "en"
        assert await chat.svc.db.stats_since(0) == {"customers": 0, "messages": 0, "negative_share": 0.0,
                                                    "alerts": 0, "alerts_delivered": 0}
        visitor = visitor_of(chat, session)
        assert visitor is not None
        # A cookie edited to name another visitor is not theirs: its signature fails. (The edit must change the
        # id: a random id may already end in "A".)
        other = visitor[:-1] + ("B" if visitor.endswith("A") else "A")
        assert chat.cookies.visitor(chat.cookies.sign(visitor).replace(visitor, other)) is None


async def test_the_reply_streams_over_events_then_is_stored_under_the_web_identity(web_config, engine):
    async with running_web(web_config, engine) as chat, visitor_session(chat) as session:
        await session.get(chat.url + "api/session")
        async with EventStream(session, chat.url) as events:
            status, answer = await post(session, chat, "api/messages", {"id": "m1", "text": "thanks"})
            partials = await events.wait_for("partial", 3)
            final = (await events.wait_for("reply"))[0]
        visitor = visitor_of(chat, session)
        customer = await chat.svc.db.existing_customer(CHANNEL, visitor)
        stored = await chat.svc.db.messages(customer.id)
    assert status == 200 and answer == {"id": "m1", "reply": "You are welcome."} and final == answer
    assert [p["text"] for p in partials] == ["You", "You are", "You are welcome."]  # growing, word by word
    assert [(m.role, m.text) for m in stored] == [("customer", "thanks"), ("bot", "You are welcome.")]


async def test_a_retried_send_is_answered_once(web_config, engine):
    async with running_web(web_config, engine) as chat, visitor_session(chat) as session:
        first = await post(session, chat, "api/messages", {"id": "same", "text": "thanks"})
        again = await post(session, chat, "api/messages", {"id": "same", "text": "thanks"})
        customer = await chat.svc.db.existing_customer(CHANNEL, visitor_of(chat, session))
        stored = await chat.svc.db.messages(customer.id)
    assert first == (200, {"id": "same", "reply": "You are welcome."})
    assert again == (200, {"id": "same", "reply": None})  # sent already: not shown twice
    assert len(stored) == 2


async def test_a_visitors_quick_second_send_waits_its_turn_and_a_resend_during_the_answer_gets_no_second_one(
        web_config, engine):
    long = "Here is everything about delivery, returns and payment, " * 4  # ~40 words: a slow reply
    engine.replies["tell me everything"] = long.strip()
    async with running_web(web_config, engine) as chat, visitor_session(chat) as session:
        await session.get(chat.url + "api/session")
        first = asyncio.create_task(post(session, chat, "api/messages", {"id": "a1", "text": "tell me everything"}))
        await asyncio.sleep(0.1)  # the first is being answered
        second = await post(session, chat, "api/messages", {"id": "a2", "text": "thanks"})
        assert first.done()  # the second waited for it
        twice = await asyncio.gather(*(post(session, chat, "api/messages", {"id": "a3", "text": "thanks"})
                                       for _ in range(2)))
        customer = await chat.svc.db.existing_customer(CHANNEL, visitor_of(chat, session))
        stored = await chat.svc.db.messages(customer.id)
    assert second == (200, {"id": "a2", "reply": "You are welcome."})
    assert sorted(answer["reply"] or "" for _, answer in twice) == ["", "You are welcome."]
    assert [(m.role, m.text) for m in stored] == [
        ("customer", "tell me everything"), ("bot", long.strip()), ("customer", "thanks"), ("bot", "You are welcome."),
        ("customer", "thanks"), ("bot", "You are welcome.")]


async def test_a_page_that_stops_reading_its_stream_is_disconnected_so_its_browser_reconnects(web_config, engine):
    """Its queue full, the page is dropped and its connection closed (not left open with pings only): EventSource
    then reconnects, and the page catches up from the stored conversation."""
    async with running_web(web_config, engine) as chat, visitor_session(chat) as session:
        await session.get(chat.url + "api/session")
        async with session.get(chat.url + "api/events") as stream:
            await stream.content.readline()  # the stream is open (its retry: line)
            visitor = visitor_of(chat, session)
            for n in range(STREAM_QUEUE + 1):  # no await between them: the page reads none of them
                chat.streams.send(visitor, "partial", {"id": "x", "text": str(n)})
            with pytest.raises(aiohttp.ClientPayloadError):  # hung up on, well before the next ping (15 s)
                await asyncio.wait_for(stream.content.read(), 5)
        async with EventStream(session, chat.url) as events:  # as the browser reconnects
            await post(session, chat, "api/messages", {"id": "m1", "text": "thanks"})
            reply = (await events.wait_for("reply"))[0]
    assert reply == {"id": "m1", "reply": "You are welcome."}


async def test_other_sites_cannot_post_with_the_visitors_cookie(web_config, engine):
    """CSRF: a foreign Origin is refused, a form post is refused, and nothing is stored either way."""
    config = replace(web_config, web=replace(web_config.web, allowed_origins=("https://shop.example",)))
    async with running_web(config, engine) as chat, visitor_session(chat) as session:
        await session.get(chat.url + "api/session")
        evil = await post(session, chat, "api/messages", {"text": "hi"}, Origin="https://evil.example")
        async with session.post(chat.url + "api/forget", data={"x": "1"}) as form:
            form_status = form.status
        async with session.options(chat.url + "api/messages", headers={
                "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}) as preflight:
            evil_preflight = preflight.status, preflight.headers.get("Access-Control-Allow-Origin")
        async with session.options(chat.url + "api/messages", headers={
                "Origin": "https://shop.example", "Access-Control-Request-Method": "POST"}) as preflight:
            shop_preflight = preflight.status, preflight.headers.get("Access-Control-Allow-Origin")
        shop = await post(session, chat, "api/messages", {"text": "thanks"}, Origin="https://shop.example")
        own = await post(session, chat, "api/messages", {"text": "thanks"}, Origin=chat.url.rstrip("/"))
        async with session.get(chat.url) as page:
            policy = page.headers["Content-Security-Policy"]
        customers = (await chat.svc.db.stats_since(0))["messages"]
    assert evil[0] == 403 and "allowed_origins" in evil[1]["error"]
    assert form_status == 415
    assert evil_preflight == (403, None) and shop_preflight == (204, "https://shop.example")
    assert shop[0] == 200 and own[0] == 200 and customers == 2  # only the two allowed posts stored anything
    assert "frame-ancestors 'self' https://shop.example" in policy and "script-src 'self'" in policy


async def test_behind_nginx_with_its_default_host_header_the_chat_pages_own_posts_are_not_refused(web_config, engine):
    """nginx passes `Host: 127.0.0.1:8080` (its proxy_pass address) unless told otherwise, so the page's own Origin
    (https://chat.shop.example) never equals the Host: the browser's Sec-Fetch-Site says the post is same-origin."""
    proxied = {"Host": "127.0.0.1:8080", "X-Forwarded-Proto": "https"}
    async with running_web(web_config, engine) as chat, visitor_session(chat) as session:
        own = await post(session, chat, "api/messages", {"text": "thanks"}, Origin="https://chat.shop.example",
                         **{"Sec-Fetch-Site": "same-origin"}, **proxied)
        evil = await post(session, chat, "api/messages", {"text": "thanks"}, Origin="https://evil.example",
                          **{"Sec-Fetch-Site": "cross-site"}, **proxied)
        stored = (await chat.svc.db.stats_since(0))["messages"]
    assert own == (200, {"id": None, "reply": "You are welcome."})
    assert evil[0] == 403 and stored == 1  # only the page's own message


async def test_size_and_rate_limits_answer_clearly_and_store_nothing_too_big(web_config, engine):
    config = replace(web_config, web=replace(web_config.web, max_message_chars=50, requests_per_minute_per_address=4))
    async with running_web(config, engine) as chat, visitor_session(chat) as session:
        too_long = await post(session, chat, "api/messages", {"text": "x" * 51})
        async with session.post(chat.url + "api/messages", data=b"{" + b" " * 70_000 + b"}",
                                headers={"Content-Type": "application/json"}) as huge:
            huge_status = huge.status
        not_text = await post(session, chat, "api/messages", {"text": 42})
        over = [await post(session, chat, "api/messages", {"text": "thanks"}) for _ in range(2)]
        stored = (await chat.svc.db.stats_since(0))["messages"]
    assert too_long == (413, {"error": config.web.texts["en"].too_long.format(limit=50)})
    assert huge_status == 413 and not_text[0] == 400
    assert over[0][0] == 200 and over[1] == (429, {"error": config.chat.slow_down_reply.for_lang("en")})
    assert stored == 1


async def test_a_message_with_half_an_emoji_is_stored_and_answered_not_refused(web_config, engine):
    """A page's script can send a lone surrogate (an emoji cut in half): the message is stored with U+FFFD in its
    place and answered, and the visitor's other pages see it, instead of a 500 on every resend."""
    half = "thanks \ud83d"
    async with running_web(web_config, engine) as chat, visitor_session(chat) as session:
        await session.get(chat.url + "api/session")
        async with EventStream(session, chat.url) as events:
            # json= would refuse to encode it: the body as a browser's JSON.stringify writes it
            async with session.post(chat.url + "api/messages", data=json.dumps({"id": "h1", "text": half}),
                                    headers={"Content-Type": "application/json"}) as response:
                status, answer = response.status, await response.json()
            shown = (await events.wait_for("customer"))[0]
        customer = await chat.svc.db.existing_customer(CHANNEL, visitor_of(chat, session))
        stored = await chat.svc.db.messages(customer.id) if customer else []
    assert status == 200 and answer["reply"]
    assert shown == {"id": "h1", "text": "thanks \ufffd"}
    assert [(m.role, m.text) for m in stored][0] == ("customer", "thanks \ufffd")


async def test_behind_a_trusted_proxy_each_forwarded_address_has_its_own_limit_and_spoofing_gains_nothing(
        web_config, engine):
    one_a_minute = replace(web_config.web, requests_per_minute_per_address=1)
    proxied = replace(web_config, web=replace(one_a_minute, trusted_proxies=("127.0.0.1",)))

    async def from_(session, chat, forwarded_for):
        return (await post(session, chat, "api/messages", {"text": "thanks"}, **{"X-Forwarded-For": forwarded_for}))[0]

    async with running_web(proxied, engine) as chat, visitor_session(chat) as session:
        behind_proxy = [await from_(session, chat, "203.0.113.1"), await from_(session, chat, "203.0.113.2"),
                        # the client wrote the left entry, the proxy appended the address it saw: that one counts
                        await from_(session, chat, "198.51.100.7, 203.0.113.1")]
    async with running_web(replace(web_config, web=one_a_minute), engine) as chat, visitor_session(chat) as session:
        no_proxy = [await from_(session, chat, "203.0.113.3"), await from_(session, chat, "203.0.113.4")]
    assert behind_proxy == [200, 200, 429]
    assert no_proxy == [200, 429]  # no trusted proxy: the header is ignored, the connecting address counts


async def test_texts_follow_the_visitors_language(web_config, engine):
    chinese_browser = {"Accept-Language": "zh-CN,zh;q=0.9"}
    async with running_web(web_config, engine) as chat, visitor_session(chat, **chinese_browser) as s:
        async with s.get(chat.url + "api/session") as response:
            chinese = await response.json()
        async with s.get(chat.url + "api/session?lang=en") as response:
            english = await response.json()
        async with s.get(chat.url + "widget.js") as response:
            widget = await response.text()
    assert chinese["language"] == "zh" and chinese["texts"]["send"] == "发送"
    assert english["language"] == "en"
    head, _ = widget.split(";\n", 1)
    labels = json.loads(head.removeprefix("const SHOPBOT_LABELS = "))
    assert labels["zh"]["open_chat"] == "在线咨询" and labels["en"]["open_chat"] == "Chat with us"
    assert widget.isascii()  # safe whatever charset the shop's page declares


async def test_forget_me_deletes_everything_and_starts_a_new_identity(web_config, engine):
    async with running_web(web_config, engine) as chat, visitor_session(chat) as session:
        await post(session, chat, "api/messages", {"text": COMPLAINT})
        old = visitor_of(chat, session)
        status, answer = await post(session, chat, "api/forget", {})
        new = visitor_of(chat, session)
        async with session.get(chat.url + "api/session") as response:
            after = await response.json()
        gone = await chat.svc.db.existing_customer(CHANNEL, old)
        alerts = await chat.svc.db.alerts()
    assert status == 200 and "Deleted: 2 messages and 1 alerts" in answer["reply"]
    assert new != old and gone is None and alerts == [] and after["messages"] == []


async def test_reset_keeps_the_page_history_but_not_the_models(web_config, engine):
    async with running_web(web_config, engine) as chat, visitor_session(chat) as session:
        await post(session, chat, "api/messages", {"text": "thanks"})
        status, answer = await post(session, chat, "api/reset", {})
        await post(session, chat, "api/messages", {"text": "thanks"})
        async with session.get(chat.url + "api/session") as response:
            shown = [m["text"] for m in (await response.json())["messages"]]
    assert status == 200 and answer["reply"] == web_config.web.texts["en"].reset_done
    assert shown == ["thanks", "You are welcome.", "thanks", "You are welcome."]
    assert engine.histories[-1] == []  # the model saw nothing from before the reset


async def test_new_conversation_clicked_while_a_reply_is_written_waits_for_it(web_config, engine):
    """As typed /reset does: the reply being written lands before the reset point, so the model no longer sees it."""
    async with running_web(web_config, engine) as chat, visitor_session(chat) as session:
        await session.get(chat.url + "api/session")  # the visitor's cookie, for both posts
        engine.gate.clear()  # the model holds its reply
        answering = asyncio.create_task(post(session, chat, "api/messages", {"text": "thanks"}))
        while not engine.histories:  # the message is stored, its reply asked for
            await asyncio.sleep(0.01)
        resetting = asyncio.create_task(post(session, chat, "api/reset", {}))
        done, _ = await asyncio.wait([resetting], timeout=0.5)
        engine.gate.set()
        await answering
        assert (await resetting)[0] == 200
        await post(session, chat, "api/messages", {"text": "thanks"})
    assert not done  # it waited for the reply
    assert engine.histories[-1] == []  # the model saw nothing from before the reset

async def test_alert_marked_web_and_the_operators_reply_reaches_the_page_live(config, engine, fake):
    """With Telegram beside it: the alert says [web]; a reply to it takes over and arrives on the open page."""
    web_config = for_web(config)
    async with running_both(web_config, engine) as (chat, svc), visitor_session(chat) as session:
        await session.get(chat.url + "api/session")
        async with EventStream(session, chat.url) as events:
            status, answer = await post(session, chat, "api/messages", {"text": COMPLAINT})
            await fake.wait_for(lambda c: c.method == "sendMessage" and c.params["chat_id"] == OPERATORS
                                and "Alert #" in c.params["text"])
            alert = await linked(svc, fake.sent_messages(OPERATORS)[-1])
            stored_when_shown = []  # a page reconnecting as it is shown catches up from what is stored

            async def show(customer, text):
                stored_when_shown.append(text in [m.text for m in await svc.db.messages(customer.id)])
                await chat._show_operator_text(customer, text)

            svc.handoff.reach_customers("web", show)
            fake.send_text(OPERATORS, "So sorry! A new one ships today.", user_id=7, first_name="Olga",
                           chat_type="supergroup", reply_to_message_id=alert["message_id"])
            operator = (await events.wait_for("operator"))[0]
            relayed_answer = await post(session, chat, "api/messages", {"text": "hello?"})
            await fake.wait_for(lambda c: c.method == "sendMessage" and c.params["chat_id"] == OPERATORS
                                and "hello?" in c.params["text"])
            fake.send_photo(OPERATORS, caption="look", user_id=7, first_name="Olga", chat_type="supergroup",
                            reply_to_message_id=alert["message_id"])
            await fake.wait_for(lambda c: c.method == "sendMessage" and c.params["chat_id"] == OPERATORS
                                and "only text reaches web customers" in c.params["text"])
        assert [e for e, _ in events.events].count("operator") == 1  # the photo did not reach the page
        customer = (await svc.db.alerts())[0]["customer_id"]
        stored = [(m.role, m.text) for m in await svc.db.messages(customer)]
    assert answer["reply"] == APOLOGY
    assert "[web]" in alert["text"] and "web id" in alert["text"] and COMPLAINT in alert["text"]
    assert operator == {"text": "So sorry! A new one ships today."}
    assert stored_when_shown == [True]
    assert relayed_answer[1]["reply"] == web_config.handoff.customer_notice.for_lang("en")  # told once that a person has it
    assert ("operator", "So sorry! A new one ships today.") in stored
    relay = [m for m in fake.sent_messages(OPERATORS) if "hello?" in (m.get("text") or "")][0]
    assert "[web]" in relay["text"] and relay["reply_to_message"]["message_id"] == alert["message_id"]


async def test_forget_me_deletes_the_visitors_alert_from_the_operator_chat(config, engine, fake):
    async with running_both(for_web(config), engine) as (chat, svc), visitor_session(chat) as session:
        await session.get(chat.url + "api/session")
        await post(session, chat, "api/messages", {"text": COMPLAINT})
        await fake.wait_for(lambda c: c.method == "sendMessage" and c.params["chat_id"] == OPERATORS
                            and "Alert #" in c.params["text"])
        alert = await linked(svc, fake.sent_messages(OPERATORS)[-1])
        await post(session, chat, "api/forget", {})
        await fake.wait_for(lambda c: c.method == "sendMessage" and c.params["chat_id"] == OPERATORS
                            and c.params["text"] == FORGOTTEN_NOTE)
    assert fake.message(OPERATORS, alert["message_id"]) is None


async def test_a_model_failure_gets_the_fallback_and_the_operators_one_note_for_all_channels(config, tiny_engine, fake):
    """As for Telegram customers: the visitor is answered with chat.fallback_reply and the operator chat gets one
    note per interval, whichever channel's customers the failures hit."""
    failing = ScriptedEngine(tiny_engine, sentiments=SENTIMENTS,
                             reply_errors={"hello?": ModelTimeout("model call exceeded 60 s")})
    async with running_both(for_web(config), failing) as (chat, svc):
        answers, visitors = [], []
        for _ in range(2):  # two visitors
            async with visitor_session(chat) as session:
                answers.append(await post(session, chat, "api/messages", {"text": "hello?"}))
                visitors.append(visitor_of(chat, session))
        notes = sent_texts(fake, OPERATORS)  # sent before the visitor's answer returned
        fake.send_text(ANN, "hello?")  # and a Telegram customer
        telegram_answer = await replies(fake, ANN)
        await asyncio.sleep(0.3)  # its handler's error reaches the error handler after the reply is sent
        notes_later = sent_texts(fake, OPERATORS)
        customer = await svc.db.existing_customer(CHANNEL, visitors[0])
        stored = [(m.role, m.text) for m in await svc.db.messages(customer.id)]
    fallback = config.chat.fallback_reply.for_lang("en")
    assert answers == [(200, {"id": None, "reply": fallback})] * 2 and telegram_answer == [fallback]
    assert stored == [("customer", "hello?"), ("bot", fallback)]  # the visitor's message and answer are kept
    assert len(notes) == 1 and "did not answer (ModelTimeout)" in notes[0] and "fallback" in notes[0]
    assert notes_later == notes  # the Telegram customer's failure falls in the same interval: no second note


async def test_without_telegram_the_alert_waits_in_sqlite(web_config, engine):
    async with running_web(web_config, engine) as chat, visitor_session(chat) as session:
        await post(session, chat, "api/messages", {"text": COMPLAINT})
        undelivered = await chat.svc.db.undelivered_alerts()
    assert len(undelivered) == 1 and undelivered[0]["reason"] == "very negative message"


def test_web_settings_are_checked_at_start(tmp_path):
    bad = tmp_path / "config.toml"
    shipped = (load_config.__globals__["DEFAULT_CONFIG"]).read_text(encoding="utf-8")
    bad.write_text(shipped.replace('listen = ""                      # "host:port"', 'listen = "localhost"  #'),
                   encoding="utf-8")
    with pytest.raises(ConfigError, match="web.listen: must be host:port"):
        load_config(bad, environ={})
    bad.write_text(shipped.replace("allowed_origins = []", 'allowed_origins = ["shop.example"]'), encoding="utf-8")
    with pytest.raises(ConfigError, match="web.allowed_origins"):
        load_config(bad, environ={})
    bad.write_text(shipped.replace("trusted_proxies = []", 'trusted_proxies = ["proxy.local"]'), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"web.trusted_proxies\[0\]: must be an IP address or network"):
        load_config(bad, environ={})
    with pytest.raises(ConfigError, match="SHOPBOT_WEB_SECRET: not set"):
        web_secret(load_config(environ={}))
    with pytest.raises(ConfigError, match="SHOPBOT_WEB_SECRET: too short"):
        web_secret(load_config(environ={"SHOPBOT_WEB_SECRET": "short"}))


def test_shopbot_web_without_a_secret_stops_before_loading_the_model(monkeypatch, capsys):
    from bot.cli import main

    monkeypatch.delenv("SHOPBOT_WEB_SECRET", raising=False)
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
    assert main(["web"]) == 2
    assert "SHOPBOT_WEB_SECRET: not set" in capsys.readouterr().err
    assert main(["web", "--listen", "nope"]) == 2
    assert "--listen: must be host:port" in capsys.readouterr().err


def test_the_web_chat_alone_deletes_conversations_past_retention_days(tmp_path, tiny_config):
    # A shop with the web chat and no Telegram bot: [storage] retention_days must hold there too.
    async def seed():
        db = await Database.open(tiny_config.storage.path)
        try:
            old = await db.customer(CHANNEL, "old-visitor")
            await db.add_message(old.id, "customer", "my address is 1 Old Street")
        finally:
            await db.close()
        with sqlite3.connect(tiny_config.storage.path) as conn:  # test-only time travel: 40 days ago
            conn.execute("UPDATE messages SET created_at = created_at - 40 * 86400")
            conn.execute("UPDATE customers SET created_at = created_at - 40 * 86400")

    async def texts():
        db = await Database.open(tiny_config.storage.path)
        try:
            return [row["text"] for row in await db._all("SELECT text FROM messages")]
        finally:
            await db.close()

    asyncio.run(seed())
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config_file = dump_config(tiny_config, tmp_path)
    text = config_file.read_text(encoding="utf-8").replace("retention_days = 0", "retention_days = 30")
    config_file.write_text(text.replace('listen = ""                      # "host:port"',
                                        f'listen = "127.0.0.1:{port}"  #'), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "TELEGRAM_BOT_TOKEN"} | {"SHOPBOT_WEB_SECRET": "s" * 40}
    bot = subprocess.Popen([sys.executable, "-m", "bot.cli", "run", "--config", str(config_file)], cwd=REPO, env=env,
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        for line in bot.stderr:  # serving once it says where
            if "web chat: open" in line:
                break
        deadline = time.monotonic() + 30
        while asyncio.run(texts()) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert asyncio.run(texts()) == []
    finally:
        bot.send_signal(signal.SIGTERM)
        assert bot.wait(timeout=60) == 0
