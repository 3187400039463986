"""Scripted Telegram session over the fake Bot API: 3 customers (one angry), embedded model, real SQLite.

Checks what issue #3 promises and prints the transcript and the measured reply latency:
replies arrive in order for each customer, every message is in SQLite, and the operator chat gets one message for
each customer who waits for a person and none for the one who only says thanks. Without shop knowledge the
embedded model does not free-chat (README, "Without knowledge"): Ann's complaint and Bob's question each make a
note that they wait, Ann's angrier second message an alert about her mood too (notes start no cooldown), Chen's
praise nothing. Exit code 0 when all checks pass.

    .venv/bin/python bench/telegram_session.py
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # for testkit.fakes / testkit.telegram_helpers when run as a script

from bot.config import load_config  # noqa: E402
from bot.escalation import NO_ANSWER, VERY_NEGATIVE  # noqa: E402
from testkit.fakes.bot_api import FakeBotApi  # noqa: E402
from testkit.telegram_helpers import OPERATORS, TOKEN, over_fake, replies, running_bot  # noqa: E402

CUSTOMERS = {  # Telegram id: (name, messages sent one after another, each after the previous reply)
    2001: ("Ann", ["My order arrived broken and nobody answers!",
                   "This is the worst shop ever, I want my money back!"]),
    2002: ("Bob", ["Hi! Do you ship to Canada?",
                   "Great, thank you so much for the quick help!"]),
    2003: ("Chen", ["谢谢，茶壶很漂亮，我很喜欢！",
                    "你们的茶杯真好看，谢谢！"]),
}
ANGRY, WAITING = 2001, 2002  # WAITING: a question no knowledge answers


async def customer(fake: FakeBotApi, chat_id: int, name: str, messages: list[str], latencies: list[float]) -> None:
    """One customer's conversation: a message, wait for the reply, the next message."""
    for i, text in enumerate(messages, 1):
        sent = time.time()
        fake.send_text(chat_id, text, first_name=name, username=name.lower())
        await replies(fake, chat_id, i, timeout=300)
        reply_call = [c for c in fake.calls("sendMessage") if c.params["chat_id"] == chat_id and c.status == 200][-1]
        latencies.append(reply_call.time - sent)


async def main() -> int:
    checks: list[tuple[str, bool]] = []
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp, FakeBotApi(TOKEN) as fake:
        config = load_config(environ={})
        config = over_fake(replace(config, storage=replace(config.storage, path=Path(tmp) / "shopbot.db")), fake)
        started = time.perf_counter()
        latencies: list[float] = []
        async with running_bot(config, None) as svc:  # None: post_init loads the embedded model, as in production
            print(f"bot up in {time.perf_counter() - started:.1f} s (model loaded by post_init)")
            session = time.perf_counter()
            await asyncio.gather(*(customer(fake, cid, name, msgs, latencies)
                                   for cid, (name, msgs) in CUSTOMERS.items()))
            elapsed = time.perf_counter() - session
            ids = {cid: (await svc.db.customer("telegram", str(cid))).id for cid in CUSTOMERS}
            stored = {cid: await svc.db.messages(ids[cid]) for cid in CUSTOMERS}
            alerts_in_db = [(cid, a) for cid in CUSTOMERS for a in await svc.db.alerts(ids[cid])]
        alerts = [m["text"] for m in fake.sent_messages(OPERATORS)]  # after shutdown: nothing still in flight

    for cid, (name, msgs) in CUSTOMERS.items():
        print(f"\n--- {name} (Telegram id {cid})")
        for m in stored[cid]:
            mood = f"  [{m.sentiment} {m.confidence:.2f}]" if m.sentiment else ""
            print(f"{m.role:>8}: {m.text}{mood}")
        roles = [m.role for m in stored[cid]]
        sent = [m["text"] for m in fake.sent_messages(cid)]
        checks.append((f"{name}: all {len(msgs)} messages and replies stored, in order",
                       roles == ["customer", "bot"] * len(msgs) and [m.text for m in stored[cid][::2]] == msgs))
        checks.append((f"{name}: Telegram got the stored replies, in order", sent == [m.text for m in stored[cid][1::2]]))

    print("\n--- operator chat")
    for text in alerts:
        print(text, end="\n\n")
    expected = sorted([(ANGRY, NO_ANSWER), (WAITING, NO_ANSWER), (ANGRY, VERY_NEGATIVE)])
    checks.append(("a note each for the customers waiting for a person, an alert for the angry one's mood, nothing "
                   "for the thanks", sorted((cid, a["reason"]) for cid, a in alerts_in_db) == expected))
    checks.append(("the operator chat got each, naming the customer",
                   sorted(cid for text in alerts for cid in CUSTOMERS if f"Telegram id {cid}" in text)
                   == [cid for cid, _ in expected]))
    checks.append(("they are marked delivered in SQLite", all(a["delivered_at"] is not None for _, a in alerts_in_db)))

    print(f"--- reply latency over {len(latencies)} messages (message in -> reply sent, model + Telegram round trips)")
    print(f"median {statistics.median(latencies):.2f} s, mean {statistics.mean(latencies):.2f} s, "
          f"max {max(latencies):.2f} s; whole session {elapsed:.1f} s with 3 customers at once")
    fallbacks = sum(m.text == config.chat.fallback_reply.for_lang("en") for msgs in stored.values() for m in msgs if m.role == "bot")
    print(f"{fallbacks} of {len(latencies)} replies were the fallback (model call over model.timeout_seconds)")
    print(f"load average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f} "
          f"on {os.cpu_count()} cores (other work on the machine inflates these numbers)")
    print()
    for name, ok in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
