"""Time to first visible reply text, streamed vs whole, for a 20-token message after 6 turns (#7's target case).

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
RUNS = 5


async def main() -> int:
    config = load_config()
    engine = await asyncio.to_thread(Engine.load, config)
    print(f"message: {engine.count_tokens(MESSAGE)} tokens, history: {len(HISTORY)} turns, {RUNS} runs each")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        db = await Database.open(Path(tmp) / "bench.db")
        service = ConversationService(db, engine, config)
        for run in range(RUNS):
            customer = await service.customer(Sender("bench", str(run)))
            for role, text in HISTORY:
                await db.add_message(customer.id, role, text)
            first: list[float] = []
            started = time.perf_counter()
            outcome = await service.handle_text(
                Sender("bench", str(run)), MESSAGE,
                on_partial=lambda _: first.append(time.perf_counter()) if not first else None)
            done = time.perf_counter()
            tokens = engine.count_tokens(outcome.reply)
            rows.append((first[0] - started if first else done - started, done - started, tokens))
        await db.close()
    engine.close()
    first = statistics.median(r[0] for r in rows)
    whole = statistics.median(r[1] for r in rows)
    print("| | median s |\n|---|---|")
    print(f"| first visible text, streamed (sentiment included) | {first:.2f} |")
    print(f"| first visible text without streaming (the whole reply) | {whole:.2f} |")
    print(f"| reply tokens (median) | {statistics.median(r[2] for r in rows):.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
