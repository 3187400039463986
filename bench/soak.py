"""Crash-and-restart soak: a real `shopbot run` process, killed with SIGKILL and restarted, over a faulty fake Bot API.

    .venv/bin/python bench/soak.py [--customers 20] [--messages 6] [--kills 5] [--seed 1]

20 customers (one of them sends /forget midway) and 3 operators talk to the bot through testkit/fakes/bot_api.py,
with the real model writing every reply (chat.free_chat = "on") and real SQLite. While they do, the bot is killed
with SIGKILL at random moments and restarted, and the fake injects 429s, 5xx, timeouts (answers later than the client waits), dropped connections
and an unreachable operator chat. Then it checks what the README's reliability section promises and prints
the figures: messages, kills, faults, lost, duplicated, out of order; alerts likewise; the database's integrity;
whether the forgotten customer's text is anywhere in the database file or its WAL; and the duplicate window: how
long after Telegram accepted a reply the bot had recorded it (a kill in between repeats it). Exit 0 when all hold.
The CI test tests/test_soak.py runs the same with the tiny test model, fewer customers and fewer kills.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # for testkit.fakes when run as a script

from testkit.fakes.bot_api import FakeBotApi  # noqa: E402

TOKEN = "123456:AAH-soak-secret-token-never-logged"
OPERATORS = -100200300
OPERATOR_IDS = (71, 72, 73)
FIRST_CUSTOMER = 6001
SECRET = "Zebra Lane 4471"  # in the forgetting customer's messages only: must vanish from the database's bytes
FORGET_AT = 0.5  # the progress at which the forgetting customer sends /forget
QUESTIONS = ["Hi! Do you ship to Canada?", "How long does delivery take?", "Can I return a teapot I don't like?",
             "What tea do you recommend for the evening?", "你们周日营业吗？", "我的订单什么时候到？",
             "Thank you, that helps!", "Do you have gift wrapping?"]
COMPLAINTS = ["My order arrived broken and nobody answers!", "This is the worst shop ever, I want my money back!",
              "我的茶壶碎了，太失望了！"]


@dataclass
class Figures:
    messages: int = 0
    kills: int = 0
    faults: Counter = field(default_factory=Counter)
    lost: int = 0
    duplicated: int = 0
    out_of_order: int = 0
    alerts: int = 0
    alerts_delivered: int = 0
    alerts_lost: int = 0
    alerts_duplicated: int = 0
    alerts_resent_after_kill: int = 0  # of those duplicated: a kill came between the two sends
    kill_times: list[float] = field(default_factory=list)  # time.time() of each SIGKILL
    integrity: str = ""
    forgotten_found: list[str] = field(default_factory=list)
    windows: list[float] = field(default_factory=list)  # s from Telegram accepting a reply to sent_at in SQLite
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return (not self.lost and not self.out_of_order and not self.alerts_lost and self.integrity == "ok"
                and self.duplicated <= self.kills and self.alerts_resent_after_kill <= self.kills
                and self.alerts_duplicated - self.alerts_resent_after_kill <= self._answers_lost()
                and not self.forgotten_found)

    def report(self) -> str:
        faults = ", ".join(f"{n} x {kind}" for kind, n in sorted(self.faults.items())) or "none"
        return (f"messages {self.messages}, kills {self.kills} (SIGKILL), faults injected: {faults}\n"
                f"replies: lost {self.lost}, duplicated {self.duplicated} (bound: one per kill), "
                f"out of order {self.out_of_order}\n"
                f"alerts: {self.alerts} raised, {self.alerts_delivered} delivered, lost {self.alerts_lost}, "
                f"duplicated {self.alerts_duplicated} ({self.alerts_resent_after_kill} after a kill, bound: one per "
                f"kill; {self.alerts_duplicated - self.alerts_resent_after_kill} re-sent after Telegram's answer was "
                f"lost, bound: {self._answers_lost()} stalls and drops)\n"
                f"integrity_check: {self.integrity}; forgotten text found in DB/WAL: "
                f"{', '.join(self.forgotten_found) or 'nothing'} ({len(self.forgotten_found)})\n"
                f"{self._window()}\n"
                f"{self.seconds:.0f} s; {'PASS' if self.ok else 'FAIL'}")

    def _answers_lost(self) -> int:
        """Faults after which Telegram had a message but the bot could not know: the outbox sends such an alert
        again (at least once), a customer's reply it does not (a duplicate is worse than a lost reply)."""
        return self.faults["stall"] + self.faults["drop"]

    def _window(self) -> str:
        if not self.windows:
            return "duplicate window: no reply measured"
        ms = sorted(1000 * w for w in self.windows)
        return (f"duplicate window (Telegram accepted a reply -> sent_at stored), {len(ms)} replies: "
                f"median {ms[len(ms) // 2]:.1f} ms, p99 {ms[min(len(ms) - 1, int(len(ms) * 0.99))]:.1f} ms, "
                f"max {ms[-1]:.1f} ms")


def soak_config(fake: FakeBotApi, db: Path, folder: Path, model_source: str | None = None,
                max_new_tokens: int = 24, free_chat: bool = False) -> Path:
    """The shipped config.toml pointed at the fake and `db`; no per-minute limit or queue notice (they would
    rightly leave messages unanswered), alerts retried every 2 s; with free_chat the model writes every reply."""
    text = (REPO / "config.toml").read_text(encoding="utf-8")
    changes = [('path = "data/shopbot.db"', f'path = "{db}"'),
               ('base_url = "https://api.telegram.org/bot"', f'base_url = "{fake.url}/bot"'),
               ('base_file_url = "https://api.telegram.org/file/bot"', f'base_file_url = "{fake.url}/file/bot"'),
               ("operator_chat_id = 0 ", f"operator_chat_id = {OPERATORS} "), ("poll_timeout = 30 ", "poll_timeout = 1 "),
               ("rate_limit_per_minute = 20 ", "rate_limit_per_minute = 0 "), ("queue_notice_at = 3", "queue_notice_at = 0"),
               ("outbox_retry_seconds = 60.0 ", "outbox_retry_seconds = 2.0 "),
               ("max_new_tokens = 96", f"max_new_tokens = {max_new_tokens}")]
    if model_source:
        changes.append(('source = "embedded"', f'source = "{model_source}"'))
    if free_chat:
        changes.append(('free_chat = "auto"', 'free_chat = "on"'))
    for old, new in changes:
        assert old in text, old
        text = text.replace(old, new)
    path = folder / "soak.toml"
    path.write_text(text, encoding="utf-8")
    return path


def scripts(customers: int, messages: int, rng: random.Random) -> dict[int, list[str]]:
    """What each customer sends, in order. The first tells a secret and then, midway (FORGET_AT), deletes
    everything (/forget); every fourth asks for a person (an alert for sure); the others mix questions and
    complaints."""
    out = {FIRST_CUSTOMER: [f"Please send it to {SECRET}.", f"Did you note the address, {SECRET}?", "/forget"]}
    for chat in range(FIRST_CUSTOMER + 1, FIRST_CUSTOMER + customers):
        lines = [rng.choice(QUESTIONS + COMPLAINTS) for _ in range(messages)]
        if chat % 4 == 1:
            lines[1] = "/human"
        out[chat] = lines
    return out


class Bot:
    """The `shopbot run` process: started, killed, restarted; its output appended to one log."""

    def __init__(self, config: Path, log: Path):
        self.config, self.log, self.process = config, log, None

    def start(self) -> None:
        env = {**os.environ, "TELEGRAM_BOT_TOKEN": TOKEN}
        with self.log.open("ab") as out:
            self.process = subprocess.Popen([sys.executable, "-m", "bot.cli", "run", "--config", str(self.config)],
                                            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)

    def end(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(f"the bot exited ({self.process.returncode}):\n{self.log.read_text()[-3000:]}")


def _fault_plan(rng: random.Random) -> list[tuple[float, str]]:
    """(progress at which, fault): the faults of one run, at random points of it."""
    kinds = ["429", "429", "500", "502", "stall", "stall", "drop-poll", "drop-send", "operators-down"]
    return sorted((rng.uniform(0.05, 0.8), kind) for kind in kinds)


def _inject(fake: FakeBotApi, kind: str, down_until: list[float]) -> None:
    if kind in ("429", "500", "502"):
        fake.fail_next("sendMessage", status=int(kind), retry_after=1 if kind == "429" else None, count=2)
    elif kind == "stall":  # Telegram takes the message but answers after the client's 5 s read timeout
        fake.stall_next("sendMessage", 6.0)
    elif kind == "drop-poll":  # a long poll's connection dropped: nothing was fetched
        fake.drop_next("getUpdates")
    elif kind == "drop-send":  # Telegram took the message, the connection dropped before its answer came back
        fake.drop_next("sendMessage", delivered=True)
    elif kind == "operators-down":  # the bot removed from the operator group for a while
        fake.block_chat(OPERATORS)
        down_until[0] = time.monotonic() + 8.0


def run_soak(folder: Path, customers: int = 20, messages: int = 6, kills: int = 5, seed: int = 1,
             model_source: str | None = None, max_new_tokens: int = 24, free_chat: bool = False,
             timeout: float = 1800.0, say=print) -> Figures:
    """One soak in `folder` (database, config, log); returns the figures."""
    rng = random.Random(seed)
    db = folder / "soak.db"
    figures = Figures()
    script = scripts(customers, messages, rng)
    sent = {chat: 0 for chat in script}
    started = time.monotonic()
    with FakeBotApi(TOKEN) as fake:
        bot = Bot(soak_config(fake, db, folder, model_source, max_new_tokens, free_chat), folder / "bot.log")
        total = sum(len(lines) for lines in script.values())
        kill_at = sorted(rng.uniform(0.1, 0.9) for _ in range(kills))
        faults, down_until, pressed = _fault_plan(rng), [0.0], set()
        bot.start()
        try:
            while True:
                assert time.monotonic() - started < timeout, "soak timed out"
                bot.check_alive()
                answered = {chat: len(fake.sent_messages(chat)) for chat in script}
                progress = sum(min(a, sent[c]) for c, a in answered.items()) / total
                if kill_at and progress >= kill_at[0]:
                    time.sleep(rng.uniform(0.0, 1.5))  # somewhere in whatever the bot is doing now
                    bot.kill()
                    kill_at.pop(0)
                    figures.kills += 1
                    figures.kill_times.append(time.time())
                    say(f"  kill {figures.kills} at {progress:.0%}")
                    bot.start()
                while faults and progress >= faults[0][0]:
                    _inject(fake, faults.pop(0)[1], down_until)
                if down_until[0] and time.monotonic() > down_until[0]:
                    fake.unblock_chat(OPERATORS)
                    down_until[0] = 0.0
                for chat, lines in script.items():
                    # A customer writes again once answered, and now and then (one message ahead) without waiting.
                    if chat == FIRST_CUSTOMER and lines[sent[chat]:] == ["/forget"] and progress < FORGET_AT:
                        continue
                    if sent[chat] < len(lines) and (answered[chat] >= sent[chat] or
                                                    (sent[chat] - answered[chat] < 2 and rng.random() < 0.02)):
                        _send(fake, chat, lines[sent[chat]])
                        sent[chat] += 1
                _forget_yes(fake, pressed)
                _operators_act(fake, rng, pressed)
                if all(n == len(script[c]) for c, n in sent.items()) and _settled(fake, db, script, pressed):
                    break
                time.sleep(0.1)
            time.sleep(2.0)  # anything sent twice would be sent by now
            assert bot.stop() == 0, bot.log.read_text()[-3000:]
        finally:
            bot.end()  # a failed check must not leave the bot running
        figures.faults = Counter(fake.injected) + Counter({"operator chat unreachable": 1})
        figures.faults.pop("403", None)  # the refusals while the operator chat was unreachable
        _check(fake, db, script, figures)
    figures.seconds = time.monotonic() - started
    return figures


def _send(fake: FakeBotApi, chat: int, text: str) -> None:
    name = f"Customer {chat - FIRST_CUSTOMER}"
    if text.startswith("/"):
        fake.send_command(chat, text, first_name=name)
    else:
        fake.send_text(chat, text, first_name=name)


def _forget_yes(fake: FakeBotApi, pressed: set) -> None:
    """The forgetting customer confirms /forget on the question's Yes button."""
    for m in fake.sent_messages(FIRST_CUSTOMER):
        buttons = (m.get("reply_markup") or {}).get("inline_keyboard", [[]])[0]
        if buttons and ("forget", m["message_id"]) not in pressed:
            pressed.add(("forget", m["message_id"]))
            fake.press_button(FIRST_CUSTOMER, m["message_id"], buttons[0]["callback_data"])


def _operators_act(fake: FakeBotApi, rng: random.Random, pressed: set) -> None:
    """Operators press Dismiss on some alerts and ask for /stats now and then."""
    for m in fake.sent_messages(OPERATORS):
        if m.get("text", "").startswith("⚠️ Alert") and ("alert", m["message_id"]) not in pressed:
            pressed.add(("alert", m["message_id"]))
            if rng.random() < 0.5:
                dismiss = m["reply_markup"]["inline_keyboard"][0][1]["callback_data"]
                fake.press_button(OPERATORS, m["message_id"], dismiss, user_id=rng.choice(OPERATOR_IDS))
    if rng.random() < 0.005:
        fake.send_command(OPERATORS, "stats", user_id=rng.choice(OPERATOR_IDS), chat_type="supergroup")


def _rows(db: Path, sql: str, params: tuple = ()) -> list[tuple]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


# A chat's customer messages stored.
STORED = """SELECT COUNT(*) FROM messages m JOIN customers c ON c.id = m.customer_id
            WHERE c.channel = 'telegram' AND c.external_id = ? AND m.role = 'customer'"""


def _settled(fake: FakeBotApi, db: Path, script: dict[int, list[str]], pressed: set) -> bool:
    """Every customer's messages stored and answered, every update handled to the end (the forgetting customer: Yes
    pressed and gone from SQLite), no alert waiting."""
    for chat, lines in script.items():
        if chat == FIRST_CUSTOMER:
            if not any(key[0] == "forget" for key in pressed) or _rows(
                    db, "SELECT 1 FROM customers WHERE channel = 'telegram' AND external_id = ?", (str(chat),)):
                return False
            continue
        if len(fake.sent_messages(chat)) < len(lines) or _rows(db, STORED, (str(chat),))[0][0] != len(lines):
            return False
    # Counting a chat's replies alone is not enough: one sent twice after a kill stood in for the last one, still
    # being written (the check then counted it lost). Every update handled to the end is.
    return not _rows(db, "SELECT 1 FROM alerts WHERE delivered_at IS NULL AND not_sent IS NULL") and not _rows(
        db, "SELECT 1 FROM inbox WHERE done_at IS NULL AND payload != ''")


def _check(fake: FakeBotApi, db: Path, script: dict[int, list[str]], figures: Figures) -> None:
    """Count lost, duplicated and reordered replies and alerts against what SQLite says was answered."""
    figures.integrity = _rows(db, "PRAGMA integrity_check")[0][0]
    for chat, lines in script.items():
        if chat == FIRST_CUSTOMER:
            continue
        figures.messages += len(lines)
        (customer,) = _rows(db, "SELECT id FROM customers WHERE external_id = ?", (str(chat),))
        stored = _rows(db, "SELECT id, text FROM messages WHERE customer_id = ? AND role = 'customer' ORDER BY id",
                       customer)
        texts = [t for _, t in stored]
        # Stored once each, in the order sent (a command is stored as itself).
        figures.lost += max(0, len(lines) - len(texts))
        figures.out_of_order += sum(1 for a, b in zip(texts, lines) if a != b)
        expected = []
        for message_id, _ in stored:
            reply = _rows(db, "SELECT text FROM messages WHERE reply_to = ? AND role = 'bot' ORDER BY id LIMIT 1",
                          (message_id,))
            if reply:
                expected.append(reply[0][0])
            else:
                figures.lost += 1
        i = 0
        for text in (m.get("text") for m in fake.sent_messages(chat)):
            if i < len(expected) and text == expected[i]:
                i += 1
            elif i and text == expected[i - 1]:
                figures.duplicated += 1
            else:
                figures.out_of_order += 1
        figures.lost += len(expected) - i
        figures.windows += _windows(fake, db, chat, customer[0])
    alert_ids = [r[0] for r in _rows(db, "SELECT id FROM alerts")]
    figures.alerts = len(alert_ids)
    seen = Counter(int(n) for m in fake.sent_messages(OPERATORS)
                   for n in re.findall(r"^⚠️ Alert #(\d+):", m.get("text") or ""))
    figures.alerts_delivered = sum(1 for a in alert_ids if seen[a])
    figures.alerts_lost = len(alert_ids) - figures.alerts_delivered
    figures.alerts_duplicated = sum(n - 1 for n in seen.values() if n > 1)
    for alert_id in (a for a, n in seen.items() if n > 1):
        sends = sorted(c.time for c in fake.calls("sendMessage") if c.status == 200 and c.params["chat_id"] == OPERATORS
                       and (c.params.get("text") or "").startswith(f"⚠️ Alert #{alert_id}:"))
        figures.alerts_resent_after_kill += sum(1 for a, b in zip(sends, sends[1:])
                                                if any(a < k < b for k in figures.kill_times))
    for path in (db, Path(f"{db}-wal")):
        if path.exists() and SECRET.encode() in path.read_bytes():
            figures.forgotten_found.append(path.name)


def _windows(fake: FakeBotApi, db: Path, chat: int, customer_id: int) -> list[float]:
    """For each reply recorded as sent: seconds from Telegram accepting it (the fake's last OK sendMessage with
    its text before then) to its sent_at. A kill inside this window sends the reply again after the restart."""
    accepted = [(c.time, c.params.get("text")) for c in fake.calls("sendMessage")
                if c.status == 200 and int(c.params["chat_id"]) == chat]
    windows = []
    for text, sent_at in _rows(db, "SELECT text, sent_at FROM messages WHERE customer_id = ? AND role = 'bot'"
                                   " AND sent_at IS NOT NULL", (customer_id,)):
        times = [t for t, sent_text in accepted if sent_text == text and t <= sent_at]
        if times:
            windows.append(sent_at - times[-1])
    return windows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20)
    parser.add_argument("--messages", type=int, default=6, help="per customer")
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-new-tokens", type=int, default=24, help="reply length (shorter: a faster soak)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="give up after this many seconds")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        figures = run_soak(Path(folder), args.customers, args.messages, args.kills, args.seed,
                           max_new_tokens=args.max_new_tokens, free_chat=True, timeout=args.timeout)
        print(figures.report())
    return 0 if figures.ok else 1


if __name__ == "__main__":
    sys.exit(main())
