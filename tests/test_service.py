"""The conversation service end to end on a real engine (tiny random model) and a real SQLite file."""

import asyncio
import fcntl
import json
import os
import pty
import select
import subprocess
import sys
import termios
import time
from dataclasses import replace
from io import StringIO

from bot.channels.console import chat
from bot.llm.engine import Engine
from bot.service import ConversationService, Sender
from storage.db import Database
from tests.conftest import REPO, dump_config

ANN = Sender("console", "ann", "Ann")


async def test_message_and_reply_are_stored_with_the_sentiment_read(db, tiny_engine):
    service = ConversationService(db, tiny_engine, tiny_engine.config)
    outcome = await service.handle_text(ANN, "where is my parcel")
    assert outcome.reply.strip()
    assert outcome.sentiment.label in {"positive", "negative", "neutral"}
    assert 0.0 <= outcome.sentiment.confidence <= 1.0
    customer_msg, bot_msg = await db.messages(outcome.customer.id)
    assert (customer_msg.role, customer_msg.text, customer_msg.sentiment) == ("customer", "where is my parcel",
                                                                           outcome.sentiment.label)
    assert (bot_msg.role, bot_msg.text) == ("bot", outcome.reply)


async def test_empty_text_gets_a_prompt_to_type_without_a_model_call(db, tiny_engine):
    service = ConversationService(db, tiny_engine, tiny_engine.config)
    outcome = await service.handle_text(ANN, "  \n\t ")
    assert outcome.reply == tiny_engine.config.chat.empty_reply.for_lang("en")
    assert outcome.sentiment is None and outcome.alert is None
    assert [m.text for m in await db.messages(outcome.customer.id)] == ["  \n\t ", outcome.reply]


async def test_over_long_text_is_stored_whole(db, tiny_engine):
    service = ConversationService(db, tiny_engine, tiny_engine.config)
    text = "my order arrived broken " * 400
    outcome = await service.handle_text(ANN, text)
    assert (await db.messages(outcome.customer.id))[0].text == text
    assert tiny_engine.count_tokens(tiny_engine.truncate(text, 256)) <= 256


async def test_model_failure_gives_the_fallback_reply_and_keeps_the_message(db, tiny_config):
    # A timeout far below one forward pass makes every model call fail for real.
    config = replace(tiny_config, model=replace(tiny_config.model, timeout_seconds=1e-6))
    engine = Engine.load(config)
    try:
        service = ConversationService(db, engine, config)
        outcome = await service.handle_text(ANN, "hello?")
        chinese = await service.handle_text(Sender("console", "bo"), "你好？我的订单呢")
    finally:
        engine.close()
    fallback = config.chat.fallback_reply
    assert outcome.fallback and outcome.reply == fallback.for_lang("en")
    assert outcome.sentiment is None
    assert [m.text for m in await db.messages(outcome.customer.id)] == ["hello?", fallback.for_lang("en")]
    assert chinese.fallback and chinese.reply == fallback.for_lang("zh") != fallback.for_lang("en")  # their language


async def test_history_is_trimmed_to_the_token_budget_newest_kept(db, tiny_engine):
    config = replace(tiny_engine.config, chat=replace(tiny_engine.config.chat, history_tokens=300,
                                                       max_message_tokens=100))
    service = ConversationService(db, tiny_engine, config)
    customer = await service.customer(ANN)
    for i in range(30):
        await db.add_message(customer.id, "customer", f"turn {i} " + "thank you great shop " * 3)
    newest = await db.add_message(customer.id, "customer", "now")
    history = await service._history_before(customer.id, newest)
    assert history[-1][1].startswith("turn 29")
    assert 0 < len(history) < 30
    assert sum(tiny_engine.count_tokens(text) for _, text in history) <= 200


async def test_two_customers_never_share_history(db, tiny_engine):
    service = ConversationService(db, tiny_engine, tiny_engine.config)
    await service.handle_text(ANN, "my order arrived broken")
    bob = await service.handle_text(Sender("console", "bob"), "hello")
    history = await service._history_before(bob.customer.id, bob.message_id + 10)
    assert [text for _, text in history] == ["hello", bob.reply]


async def test_console_json_lines_one_per_message(db, tiny_engine):
    service = ConversationService(db, tiny_engine, tiny_engine.config)
    out = StringIO()
    await chat(service, "7", as_json=True, stdin=StringIO("where is my parcel\n\nthank you\n"), stdout=out)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["user"] for line in lines] == ["7", "7", "7"]
    assert set(lines[0]) == {"user", "sentiment", "confidence", "reply", "alert"}
    assert lines[1]["sentiment"] is None and lines[1]["reply"] == tiny_engine.config.chat.empty_reply.for_lang("en")
    assert all(line["reply"] for line in lines)


async def test_console_human_asks_for_a_person_as_in_telegram(db, tiny_engine):
    """Typed in the console, /human was a message like any other, read and answered by the model."""
    service = ConversationService(db, tiny_engine, tiny_engine.config)
    out = StringIO()
    await chat(service, "7", as_json=True, stdin=StringIO("hello\n/human\n"), stdout=out)
    human = json.loads(out.getvalue().splitlines()[1])
    assert human["alert"] and human["sentiment"] is None
    assert human["reply"] == tiny_engine.config.handoff.human_reply.for_lang("en")
    customer = await service.customer(Sender("console", "7"))
    assert [(m.role, m.kind, m.text) for m in await db.messages(customer.id)][2:] == [
        ("customer", "command", "/human"), ("bot", "text", human["reply"])]


def test_shopbot_chat_command_persists_history_across_runs(tmp_path, tiny_config):
    config_file = dump_config(tiny_config, tmp_path)
    for text in ("where is my parcel", "thank you"):
        result = subprocess.run(
            [sys.executable, "-m", "bot.cli", "chat", "--json", "--user", "7", "--config", str(config_file)],
            input=text + "\n", capture_output=True, text=True, cwd=REPO, timeout=120,
        )
        assert result.returncode == 0, result.stderr
        [line] = result.stdout.splitlines()
        assert json.loads(line)["user"] == "7"
    async def stored():
        db = await Database.open(tiny_config.storage.path)
        try:
            customer = await db.customer("console", "7")
            return [(m.role, m.text) for m in await db.messages(customer.id)]
        finally:
            await db.close()

    rows = asyncio.run(stored())
    assert [r for r in rows if r[0] == "customer"] == [("customer", "where is my parcel"), ("customer", "thank you")]
    assert len(rows) == 4


async def test_model_timeout_counts_running_time_not_the_queue(tiny_config):
    # Two calls queue behind a slow one; each takes far less than the timeout once it runs.
    config = replace(tiny_config, model=replace(tiny_config.model, timeout_seconds=0.5))
    engine = Engine.load(config)
    try:
        results = await asyncio.gather(engine.run(time.sleep, 0.4), engine.run(time.sleep, 0.4),
                                       engine.run(time.sleep, 0.4))
    finally:
        engine.close()
    assert results == [None, None, None]


async def test_one_very_long_old_message_does_not_push_the_whole_history_out(db, tiny_engine):
    from testkit.fakes.engine import ScriptedEngine

    engine = ScriptedEngine(tiny_engine)
    engine.gate.set()
    svc = ConversationService(db, engine, tiny_engine.config)
    ann = Sender("telegram", "1", "Ann")
    await svc.handle_text(ann, "hello")
    await svc.handle_text(ann, "x " * 4096)  # a pasted log file
    await svc.handle_text(ann, "and where is my parcel?")
    history = engine.histories[-1]
    assert [role for role, _ in history][:2] == ["customer", "bot"] and len(history) == 4


async def test_a_takeover_notice_is_marked_sent_and_a_redelivered_message_reaches_the_operator_without_a_second_one(
        db, tiny_engine):
    service = ConversationService(db, tiny_engine, tiny_engine.config)
    bo = Sender("telegram", "bo", "Bo")
    first = await service.handle_text(bo, "hello", "1")
    await service.mark_sent(first)
    await service.handoff.take_over(first.customer.id, "op1", "Olga")
    notice = await service.handle_text(bo, "where is my parcel?", "2")
    assert notice.relayed and notice.reply and notice.reply_id is not None
    await service.mark_sent(notice)
    # The same message handled again: a kill before it was marked done, or a retry after relaying it failed.
    again = await service.handle_text(bo, "where is my parcel?", "2")
    assert (again.replayed, again.reply, again.relayed) == (True, "", True)  # no second notice; passed on again
    assert [m.text for m in await db.messages(first.customer.id)].count(notice.reply) == 1


def test_shopbot_chat_reads_a_line_that_is_not_utf8_and_keeps_going(tmp_path, tiny_config):
    # A script piping Latin-1 text (a Windows export, an old terminal): one bad byte must not end the session.
    # utf-8:strict is how Python reads stdin under a desktop's en_US.UTF-8 locale (this machine has C locales only).
    config_file = dump_config(tiny_config, tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "chat", "--json", "--user", "8", "--config", str(config_file)],
        input="caf\xe9 order broken?\n".encode("latin-1") + b"thank you\n", capture_output=True, cwd=REPO,
        timeout=120, env={**os.environ, "PYTHONIOENCODING": "utf-8:strict"},
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert len(result.stdout.decode().splitlines()) == 2

    async def stored():
        db = await Database.open(tiny_config.storage.path)
        try:
            customer = await db.customer("console", "8")
            return [m.text for m in await db.messages(customer.id) if m.role == "customer"]
        finally:
            await db.close()

    assert asyncio.run(stored()) == ["caf\ufffd order broken?", "thank you"]  # the bad byte shown as U+FFFD


def test_ctrl_c_at_the_console_prompt_ends_the_chat_at_once(tmp_path, tiny_config):
    # In a terminal: a reply, then Ctrl-C at the next prompt exits (it used to wait for Enter first).
    def own_terminal():
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)  # the pty becomes the terminal whose Ctrl-C sends SIGINT

    def until(text: bytes, seen: bytes) -> bytes:
        deadline = time.monotonic() + 60
        while text not in seen and time.monotonic() < deadline:
            if select.select([terminal], [], [], 1)[0]:
                seen += os.read(terminal, 4096)
        return seen

    terminal, child_side = pty.openpty()
    config_file = dump_config(tiny_config, tmp_path)
    bot = subprocess.Popen([sys.executable, "-m", "bot.cli", "chat", "--config", str(config_file)],
                           stdin=child_side, stdout=child_side, stderr=child_side, cwd=REPO, preexec_fn=own_terminal)
    os.close(child_side)
    try:
        seen = until(b"you> ", b"")
        os.write(terminal, b"where is my parcel\n")
        seen = until(b"you> ", seen.replace(b"you> ", b"", 1))
        assert b"bot> " in seen
        os.write(terminal, b"\x03")
        assert bot.wait(timeout=15) == 130
    finally:
        bot.kill()
        os.close(terminal)
