"""Time to first visible reply text, streamed vs whole, for a 20-token message after 6 turns (#7's target case),
and the same in a live conversation whose KV slot is kept from the turns before or dropped.

    .venv/bin/python bench/first_text.py        # ~2 min on 2 cores, run alone

One loaded engine, a fresh customer per run with the same 6 stored turns, no shop knowledge (so the model
writes every reply), the repo's config otherwise. "first text" is when the customer first sees reply text:
with streaming the first on_partial call, without it the finished reply.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.config import load_config  # noqa: E402
from bot.llm.engine import Engine  # noqa: E402
from bot.service import ConversationService, Sender  # noqa: E402
from storage.db import Database  # noqa: E402

HISTORY = [("customer", "Hi, I ordered a teapot last week."), ("bot", "Thank you for your order! How can I help?"),
           ("customer", "It has not arrived yet."), ("bot", "I am sorry to hear that. Do you have the order number?"),
           ("customer", "Yes, it is 48213."), ("bot", "Thank you. Let me check the delivery status for you.")]
MESSAGE = "Could you please tell me when my blue teapot will finally be delivered to my home address?"
RUNS = 3


async def one_run(service: ConversationService, db: Database, name: str, live: bool = False, kept: bool = True):
    """(seconds to first text, seconds to the whole reply, reply tokens) for MESSAGE after 6 turns."""
    sender = Sender("bench", name)
    customer = await service.customer(sender)
    for role, text in HISTORY:
        if not live:
            await db.add_message(customer.id, role, text)
        elif role == "customer":
            await service.handle_text(sender, text)  # the bot's own replies become the history
    if not kept:
        service.engine.caches.forget(customer.id)
    first: list[float] = []
    started = time.perf_counter()
    outcome = await service.handle_text(sender, MESSAGE,
                                        on_partial=lambda _: first.append(time.perf_counter()) if not first else None)
    done = time.perf_counter()
    return (first[0] if first else done) - started, done - started, service.engine.count_tokens(outcome.reply)


async def main() -> int:
    config = load_config()
    engine = await asyncio.to_thread(Engine.load_to_serve, config)
    print(f"message: {engine.count_tokens(MESSAGE)} tokens, history: {len(HISTORY)} turns, {RUNS} runs each")
    with tempfile.TemporaryDirectory() as tmp:
        db = await Database.open(Path(tmp) / "bench.db")
        service = ConversationService(db, engine, config)
        stored = [await one_run(service, db, f"stored-{run}") for run in range(RUNS)]
        live = {kept: [await one_run(service, db, f"live-{kept}-{run}", live=True, kept=kept) for run in range(RUNS)]
                for kept in (True, False)}
        await db.close()
    engine.close()
    med = lambda rows, i: statistics.median(r[i] for r in rows)  # noqa: E731
    on, off = live[True], live[False]
    print("| | median s |\n|---|---|")
    print(f"| first visible text, streamed (sentiment included) | {med(stored, 0):.2f} |")
    print(f"| first visible text without streaming (the whole reply) | {med(stored, 1):.2f} |")
    print(f"| reply tokens (median) | {med(stored, 2):.0f} |")
    print(f"| 4th turn of a live conversation, first text, KV slot kept | {med(on, 0):.2f} |")
    print(f"| 4th turn of a live conversation, first text, KV slot dropped | {med(off, 0):.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
