"""Load bench: N customers each send M messages at once, over the fake Bot API, real SQLite, the embedded model.

Prints messages in, replies out, lost (a message that never got any reply, the fallback included), duplicated and
out-of-order (all must be 0), time to reply (p50/p95/max,
from the moment Telegram had the message to the moment the bot sent its answer), messages per minute, peak RSS,
and how many customers saw "typing…" and a place-in-line notice. Exit code 0 when nothing was lost,
duplicated or reordered. The full run (20 x 10 at 96 new tokens) takes many minutes on a small CPU:

    .venv/bin/python bench/load.py --customers 20 --messages 10
    .venv/bin/python bench/load.py --customers 3 --messages 2 --max-new-tokens 16   # a quick check
    .venv/bin/python bench/load.py --base-url http://127.0.0.1:8080/v1   # the model on a server (bench/remote.py)
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import tempfile
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # for testkit.fakes / testkit.telegram_helpers when run as a script

from bot.config import load_config  # noqa: E402
from bot.llm.backends import load_backend  # noqa: E402
from testkit.fakes.bot_api import FakeBotApi  # noqa: E402
from testkit.llama_server import on_server  # noqa: E402
from testkit.telegram_helpers import TOKEN, over_fake, running_bot  # noqa: E402

FIRST_CHAT = 7001
QUESTIONS = ["Where is my order?", "Do you ship to Canada?", "My teapot arrived broken, what now?",
             "Can I change the delivery address?", "Thank you, the cups are lovely!", "How long does a refund take?",
             "Is the green tea in stock?", "你好，我的订单什么时候到？", "The parcel is late again, this is annoying.",
             "Can I pay by bank transfer?"]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=20)
    parser.add_argument("--messages", type=int, default=10, help="per customer, all sent at once")
    parser.add_argument("--max-new-tokens", type=int, help="reply length cap (default: config.toml's)")
    parser.add_argument("--batch-size", type=int, help="[model] batch_size (default: config.toml's)")
    parser.add_argument("--timeout", type=float, default=3600.0, help="give up after this many seconds")
    parser.add_argument("--base-url", help="the model on this OpenAI-compatible server (backend = \"openai\")")
    parser.add_argument("--max-concurrency", type=int, help="[model] max_concurrency (default: config.toml's)")
    parser.add_argument("--free-chat", choices=("on", "off", "auto"),
                        help="chat.free_chat (default: config.toml's; \"on\": every reply is written by the model)")
    return parser.parse_args()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def run(args: argparse.Namespace) -> int:
    config = load_config(environ={})
    generation = config.chat.generation
    if args.max_new_tokens:
        generation = replace(generation, max_new_tokens=args.max_new_tokens)
    # The bench measures the pipeline, so the per-customer rate limit is off (10 messages at once would pass it anyway).
    config = replace(config, chat=replace(config.chat, generation=generation, rate_limit_per_minute=0))
    if args.batch_size:
        config = replace(config, model=replace(config.model, batch_size=args.batch_size))
    if args.base_url:
        config = on_server(config, args.base_url)
    if args.free_chat:
        config = replace(config, chat=replace(config.chat, free_chat=args.free_chat))
    if args.max_concurrency:
        config = replace(config, model=replace(config.model, max_concurrency=args.max_concurrency))
    chats = [FIRST_CHAT + i for i in range(args.customers)]
    texts = {chat: [f"{QUESTIONS[(chat + i) % len(QUESTIONS)]} (#{i + 1})" for i in range(args.messages)] for chat in chats}
    notice_prefix = config.telegram.queue_notice.for_lang("en").split("{")[0]

    with tempfile.TemporaryDirectory() as tmp, FakeBotApi(TOKEN) as fake:
        config = over_fake(replace(config, storage=replace(config.storage, path=Path(tmp) / "load.db")), fake)
        engine = await asyncio.to_thread(load_backend, config)
        try:
            async with running_bot(config, engine) as svc:
                sent_at: dict[tuple[int, int], float] = {}
                for i in range(args.messages):  # interleaved, as Telegram would deliver a busy minute
                    for chat in chats:
                        fake.send_text(chat, texts[chat][i], first_name=f"C{chat}")
                        sent_at[chat, i] = time.time()
                started, deadline = time.time(), time.monotonic() + args.timeout

                def answers(chat: int):
                    calls = [c for c in fake.calls("sendMessage") if c.status == 200 and c.params["chat_id"] == chat]
                    return [c for c in calls if not c.params["text"].startswith(notice_prefix)]

                while any(len(answers(chat)) < args.messages for chat in chats) and time.monotonic() < deadline:
                    await asyncio.sleep(0.5)
                await asyncio.sleep(1.0)  # a duplicate would be sent by now
                stored = {chat: await svc.db.messages((await svc.db.customer("telegram", str(chat))).id)
                          for chat in chats}
                # each stored customer message's own reply (None: it never got one, not even the fallback)
                replies = {m.id: await svc.db.reply_to(m.id) for chat in chats for m in stored[chat]
                           if m.role == "customer"}
        finally:
            engine.close()

    lost = duplicated = out_of_order = messages_in = replies_out = fallback = 0
    latencies, last_reply = [], started
    for chat in chats:
        customer = [m for m in stored[chat] if m.role == "customer"]
        messages_in += len(customer)
        lost += len(texts[chat]) - len(customer)  # a message that never reached SQLite
        lost += sum(replies[m.id] is None for m in customer)  # stored, but no reply was ever written for it
        expected = [replies[m.id]["text"] for m in customer if replies[m.id]]  # in the customer's order
        calls = answers(chat)
        got = [c.params["text"] for c in calls]
        replies_out += len(got)
        fallback += got.count(config.chat.fallback_reply.for_lang("en"))
        lost += sum((Counter(expected) - Counter(got)).values())
        duplicated += sum((Counter(got) - Counter(expected)).values())
        stored_order = [m.text for m in customer]
        out_of_order += stored_order != texts[chat] or (sorted(got) == sorted(expected) and got != expected)
        for i, call in enumerate(calls[:args.messages]):
            latencies.append(call.time - sent_at[chat, i])
            last_reply = max(last_reply, call.time)
    typing = {c.params["chat_id"] for c in fake.calls("sendChatAction")}
    notices = {c.params["chat_id"] for c in fake.calls("sendMessage") if c.params["text"].startswith(notice_prefix)}
    total = args.customers * args.messages

    print(f"command: .venv/bin/python bench/load.py --customers {args.customers} --messages {args.messages}"
          f" --max-new-tokens {generation.max_new_tokens}" + (f" --base-url {args.base_url}" if args.base_url else "")
          + (f" --free-chat {args.free_chat}" if args.free_chat else ""))
    print(f"model: {engine.name} ({config.model.backend}), sentiment {config.sentiment.method},"
          f" {generation.max_new_tokens} new tokens max")
    print(f"messages in:     {messages_in} of {total}")
    print(f"replies out:     {replies_out}")
    print(f"lost:            {lost}")
    print(f"duplicated:      {duplicated}")
    print(f"out of order:    {out_of_order} customers")
    print(f"fallback replies: {fallback} (the model failed; the message is stored and answered all the same)")
    if latencies:
        print(f"time to reply:   p50 {percentile(latencies, 0.5):.1f} s, p95 {percentile(latencies, 0.95):.1f} s,"
              f" max {max(latencies):.1f} s")
        print(f"throughput:      {len(latencies) / max(last_reply - started, 1e-9) * 60:.1f} messages per minute")
    print(f"typing shown:    {len(typing & set(chats))} of {len(chats)} customers;"
          f" place-in-line notice: {len(notices)} customers")
    model = "model and " if config.model.backend == "local" else ""
    print(f"peak RSS:        {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB (bot, {model}fake server)")
    return 0 if messages_in == total and not (lost or duplicated or out_of_order) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(run(parse_args())))
