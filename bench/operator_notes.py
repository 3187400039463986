"""Operator messages a day of traffic makes without shop knowledge and without free chat (chat.free_chat "off").

    .venv/bin/python bench/operator_notes.py [--customers 80] [--seed 1]     # ~1 min, run alone

A simulated shop day, 09:00-21:00: each customer opens a conversation at a random time and writes 1-6 messages a
few minutes apart (a greeting, questions and complaints from bench/devsets/customer_messages_*.csv, thanks),
half of them in Chinese; a third come back 2-5 hours later with another question. Operators answer a note after
20-90 minutes (or never, with --never-answered). Everything runs through the real service with the configured
model reading sentiment; the clock is simulated. Every alert is one message in the operator chat: counted by
reason, next to what one note per waiting message would have made.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import random
import sys
import tempfile
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.config import load_config  # noqa: E402
from bot.llm.engine import Engine  # noqa: E402
from bot.service import ConversationService, Sender  # noqa: E402
from storage.db import Database  # noqa: E402

DEV = Path(__file__).resolve().parent / "devsets"
OPENERS = {"en": ["Hi!", "Hello", "Good morning"], "zh": ["你好", "您好", "在吗？"]}
CLOSERS = {"en": ["Thanks!", "ok thank you", "Thanks a lot"], "zh": ["谢谢！", "好的，谢谢", "收到"]}


def messages(lang: str) -> list[str]:
    with open(DEV / f"customer_messages_{lang}.csv", encoding="utf-8") as f:
        return [r["text"] for r in csv.DictReader(f)]


def day(customers: int, rng: random.Random) -> list[tuple[float, str, str]]:
    """(seconds since 09:00, customer, text), in time order."""
    pool = {lang: messages(lang) for lang in ("en", "zh")}
    events = []
    for c in range(customers):
        lang = "zh" if c % 2 else "en"
        visits = [rng.uniform(0, 11 * 3600)]
        if rng.random() < 1 / 3:
            visits.append(visits[0] + rng.uniform(2, 5) * 3600)
        for start in visits:
            texts = [rng.choice(OPENERS[lang])] if rng.random() < 0.6 else []
            texts += rng.sample(pool[lang], rng.randint(1, 4))
            texts += [rng.choice(CLOSERS[lang])] if rng.random() < 0.5 else []
            at = start
            for text in texts:
                events.append((at, f"c{c}", text))
                at += rng.uniform(30, 300)
    return sorted(events)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config")
    parser.add_argument("--customers", type=int, default=80)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--never-answered", action="store_true", help="operators never answer a note")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    events = day(args.customers, rng)
    clock = [time.time()]
    real_time = time.time
    with tempfile.TemporaryDirectory() as tmp:
        config = load_config(args.config)
        config = replace(config, storage=replace(config.storage, path=Path(tmp) / "day.db"),
                         knowledge=replace(config.knowledge, file=None),
                         chat=replace(config.chat, free_chat="off", rate_limit_per_minute=0))
        engine = await asyncio.to_thread(Engine.load, config)
        db = await Database.open(config.storage.path)
        try:
            service = ConversationService(db, engine, config)
            await service.start()
            base = real_time()
            time.time = lambda: base + clock[0]  # the simulated day's clock for alerts and cooldowns
            answer_at: dict[int, float] = {}
            waiting = Counter()
            for at, who, text in events:
                clock[0] = at
                for customer_id, due in list(answer_at.items()):
                    if due <= at:
                        await service.handoff.operator_turn(customer_id, "(an operator's answer)")
                        del answer_at[customer_id]
                outcome = await service.handle_text(Sender("bench", who), text)
                lang_texts = config.knowledge.languages
                waiting["waiting messages"] += outcome.reply in {t.follow_up_reply for t in lang_texts.values()}
                if outcome.alert is not None and not args.never_answered:
                    answer_at.setdefault(outcome.customer.id, at + rng.uniform(20, 90) * 60)
            alerts = await db.alerts()
        finally:
            time.time = real_time
            await db.close()
            engine.close()
    reasons = Counter(a["reason"] for a in alerts)
    print(f"{args.customers} customers, {len(events)} messages in one simulated day "
          f"({'operators never answer' if args.never_answered else 'operators answer notes in 20-90 min'})")
    print(f"operator messages (alerts): {len(alerts)}")
    for reason, n in reasons.most_common():
        print(f"  {n:4d}  {reason}")
    print(f"messages answered with follow_up_reply: {waiting['waiting messages']} "
          f"(one note per such message would have been {waiting['waiting messages']} operator messages)")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
