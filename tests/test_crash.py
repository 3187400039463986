"""A real `shopbot run` process killed with SIGKILL mid-handling and restarted: nothing lost, nothing answered twice."""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from testkit.fakes.bot_api import FakeBotApi
from testkit.telegram_helpers import OPERATORS, TOKEN
from tests.conftest import REPO, dump_config

CUSTOMERS = (3001, 3002, 3003)
MESSAGES = 4


def bot_config(config, fake: FakeBotApi, tmp_path: Path) -> Path:
    path = dump_config(config, tmp_path)
    text = path.read_text(encoding="utf-8")
    for old, new in (('base_url = "https://api.telegram.org/bot"', f'base_url = "{fake.url}/bot"'),
                     ('base_file_url = "https://api.telegram.org/file/bot"', f'base_file_url = "{fake.url}/file/bot"'),
                     ("operator_chat_id = 0 ", f"operator_chat_id = {OPERATORS} "),
                     ("poll_timeout = 30 ", "poll_timeout = 1 ")):
        assert old in text, old
        text = text.replace(old, new)
    path.write_text(text, encoding="utf-8")
    return path


def start_bot(config_path: Path, log: Path) -> subprocess.Popen:
    env = {**os.environ, "TELEGRAM_BOT_TOKEN": TOKEN}
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "bot.cli", "run", "--config", str(config_path)],
                                cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)


def replies_to(fake: FakeBotApi, chat_id: int) -> list[str]:
    return [m["text"] for m in fake.sent_messages(chat_id)]


def rows(db: Path, sql: str, params: tuple = ()) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql, params).fetchall()


def test_sigkill_mid_handling_then_restart_loses_nothing_and_answers_each_message_once(tiny_config, tmp_path):
    db, log = tiny_config.storage.path, tmp_path / "bot.log"
    with FakeBotApi(TOKEN) as fake:
        config_path = bot_config(tiny_config, fake, tmp_path)
        texts = {chat: [f"customer {chat} message {i}" for i in range(MESSAGES)] for chat in CUSTOMERS}
        for i in range(MESSAGES):
            for chat in CUSTOMERS:
                fake.send_text(chat, texts[chat][i])
        # Every reply is stuck on its way to Telegram when the process dies: each chat is mid-handling,
        # its first reply stored but never sent, its other messages fetched but not handled yet.
        fake.hold("sendMessage")
        bot = start_bot(config_path, log)
        try:
            deadline = time.monotonic() + 60
            while len(fake.calls("sendMessage")) < len(CUSTOMERS):  # held calls are unanswered: wait_for skips them
                assert time.monotonic() < deadline and bot.poll() is None, log.read_text(encoding="utf-8")
                time.sleep(0.05)
        finally:
            bot.send_signal(signal.SIGKILL)
            bot.wait(timeout=10)
        fake.release("sendMessage", deliver=False)  # they never reached Telegram

        confirmed = max(c.params.get("offset") or 0 for c in fake.calls("getUpdates"))
        assert confirmed > 1  # the killed bot had told Telegram it had updates up to here
        inbox = {r[0] for r in rows(db, "SELECT update_id FROM inbox")}
        assert set(range(1, confirmed)) <= inbox  # every update it acknowledged is in SQLite
        assert rows(db, "PRAGMA integrity_check") == [("ok",)]
        assert all(replies_to(fake, chat) == [] for chat in CUSTOMERS)
        # Telegram sends again what it had not seen confirmed; here: all of it, as if no confirmation reached it.
        for update in [u for c in fake.calls("getUpdates") if c.result for u in c.result]:
            fake.queue_raw_update(update)

        bot = start_bot(config_path, log)
        try:
            fake.wait_for_sync(lambda c: c.method == "sendMessage" and c.status == 200,
                               timeout=60, count=len(CUSTOMERS) * MESSAGES)
            time.sleep(1.0)  # anything answered twice would be sent by now
        finally:
            bot.send_signal(signal.SIGTERM)
            assert bot.wait(timeout=20) == 0

    assert rows(db, "PRAGMA integrity_check") == [("ok",)]
    for chat in CUSTOMERS:
        (customer,) = rows(db, "SELECT id FROM customers WHERE external_id = ?", (str(chat),))
        stored = rows(db, "SELECT role, text FROM messages WHERE customer_id = ? ORDER BY id", customer)
        assert [t for role, t in stored if role == "customer"] == texts[chat]  # each once, in order
        assert replies_to(fake, chat) == [t for role, t in stored if role == "bot"]  # each answered once
    output = log.read_text(encoding="utf-8")
    assert "left unfinished by the last run" in output and TOKEN not in output and TOKEN.split(":")[1] not in output


def test_sigterm_finishes_the_reply_in_hand_and_leaves_a_backlog_for_the_next_start(tiny_config, tmp_path):
    """A restart (after `kb import`, say) must not wait for a chatty customer's whole queue, nor be killed by systemd
    after 90 s: the reply being written is finished, the messages not begun stay stored and are answered next time."""
    chat, db, log = CUSTOMERS[0], tiny_config.storage.path, tmp_path / "bot.log"
    texts = [f"message {i} of a long story" for i in range(MESSAGES)]
    with FakeBotApi(TOKEN) as fake:
        config_path = bot_config(tiny_config, fake, tmp_path)
        for text in texts:
            fake.send_text(chat, text)
        fake.hold("sendMessage", chat)
        bot = start_bot(config_path, log)
        try:
            deadline = time.monotonic() + 60
            while not fake.calls("sendMessage"):  # the first reply is on its way when the stop comes
                assert time.monotonic() < deadline and bot.poll() is None, log.read_text(encoding="utf-8")
                time.sleep(0.05)
            bot.send_signal(signal.SIGTERM)
            time.sleep(1.0)
            fake.release("sendMessage", chat)
            assert bot.wait(timeout=30) == 0
        finally:
            if bot.poll() is None:
                bot.kill()
        assert len(replies_to(fake, chat)) == 1  # the one in hand, not the backlog
        assert len(rows(db, "SELECT update_id FROM inbox WHERE done_at IS NULL")) == MESSAGES - 1

        bot = start_bot(config_path, log)
        try:
            fake.wait_for_sync(lambda c: c.method == "sendMessage" and c.status == 200, timeout=60, count=MESSAGES)
            time.sleep(1.0)  # anything answered twice would be sent by now
        finally:
            bot.send_signal(signal.SIGTERM)
            assert bot.wait(timeout=20) == 0
    (customer,) = rows(db, "SELECT id FROM customers WHERE external_id = ?", (str(chat),))
    stored = rows(db, "SELECT role, text FROM messages WHERE customer_id = ? ORDER BY id", customer)
    assert [t for role, t in stored if role == "customer"] == texts
    assert replies_to(fake, chat) == [t for role, t in stored if role == "bot"]
