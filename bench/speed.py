"""#7's speed table: every optimisation off and on, 1 and 8 concurrent customers, and llama.cpp, all from one run.

    .venv/bin/python bench/speed.py --llama-python ../llamacpp-venv/bin/python   # ~15 min on 2 cores, run alone

Each variant runs in its own process, one after another (load time and peak RSS are per process): the embedded
model, the repo's config (replies sampled as configured, no shop knowledge, so the model writes every reply)
with only the variant's settings changed. Per variant:
- load: Engine.load with the checkpoint already converted, and the first reply after it (torch.compile compiles
  there; not counted below); peak RSS: the process's at the end;
- sentiment: median ms per message read one by one, and per message when 8 wait together;
- first text: seconds until a streamed reply first shows text, a 20-token message after 6 turns (median of 3);
- decode: greedy tokens/s over 64 new tokens on the same prompt (bench/llamacpp_decode.py; median of 3);
- replies: seconds from a message to its whole reply (sentiment included), p50/p95, for 1 customer writing 6
  messages in turn, and for 8 customers writing 2 messages each at the same time; replies per minute for the 8.
The llama.cpp row decodes the same GGUF on the same prompt (llama-cpp-python in its own venv, never a
dependency of the bot; how to build it: bench/llamacpp_decode.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.first_text import HISTORY, MESSAGE  # noqa: E402
from bench.llamacpp_decode import bench_messages, decode_runs, llama_runs  # noqa: E402

# (name, [model] changes, [chat] changes, torch.compile the reply path): the first four each add one
# optimisation to the row before; the last two check options the config does not turn on.
VARIANTS = [
    ("nothing reused, one by one", {"batch_size": 1}, {"kv_cache_tokens": 0}, False),
    ("+ KV caches (system prompt, conversations)", {"batch_size": 1}, {}, False),
    ("+ batching (default config)", {}, {}, False),
    ("+ int8", {"quantize": "int8"}, {}, False),
    ("default config + torch.compile (not a config option)", {}, {}, True),
    ("default config, but model.threads = 1", {"threads": 1}, {}, False),
]
CUSTOMER_MESSAGES = [
    "Hi, I ordered a teapot last week. When will it arrive?",
    "你好，我的快递三天了还没到，怎么回事？",
    "Do you have green tea in stock?",
    "The cup I received is cracked. What can I do?",
    "请问可以开发票吗？",
    "Thank you, the tea is lovely!",
]
SENTIMENT_TEXTS = CUSTOMER_MESSAGES + ["This is the worst shop ever, nobody answers me.", "我很满意，谢谢！"]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def measure(model_changes: dict, chat_changes: dict, compiled: bool) -> dict:
    import torch

    from bot.config import load_config
    from bot.llm.engine import Engine
    from bot.service import ConversationService, Sender
    from storage.db import Database

    torch.manual_seed(0)
    config = load_config()
    config = replace(config, model=replace(config.model, **model_changes), chat=replace(config.chat, **chat_changes))
    started = time.perf_counter()
    engine = await asyncio.to_thread(Engine.load, config)
    if compiled:  # only generate() calls forward(); dynamic shapes, so new lengths and batch sizes may reuse code
        engine.model.forward = torch.compile(engine.model.forward, dynamic=True)
    result = {"load_s": time.perf_counter() - started}

    for text in SENTIMENT_TEXTS:  # warm-up: the instruction prefix, first-call allocations
        await engine.sentiment(text)
    started = time.perf_counter()
    await asyncio.to_thread(engine.generate_reply, [], "Hello!")  # torch.compile compiles here
    result["warmup_s"] = time.perf_counter() - started
    one = []
    for text in SENTIMENT_TEXTS * 2:
        started = time.perf_counter()
        await engine.sentiment(text)
        one.append(time.perf_counter() - started)
    result["sentiment_ms"] = statistics.median(one) * 1000
    started = time.perf_counter()
    await asyncio.gather(*(engine.sentiment(text) for text in SENTIMENT_TEXTS))
    result["sentiment_8_ms"] = (time.perf_counter() - started) / len(SENTIMENT_TEXTS) * 1000

    with tempfile.TemporaryDirectory() as tmp:
        db = await Database.open(Path(tmp) / "bench.db")
        service = ConversationService(db, engine, config)

        async def turn(name: str, text: str) -> tuple[float, float, int]:
            """(s to first streamed text, s to the whole reply, reply tokens) for one message."""
            first: list[float] = []
            started = time.perf_counter()
            outcome = await service.handle_text(
                Sender("bench", name), text, on_partial=lambda _: first.append(time.perf_counter()) if not first else None)
            done = time.perf_counter()
            return (first[0] if first else done) - started, done - started, engine.count_tokens(outcome.reply)

        firsts = []
        for run in range(3):
            customer = await service.customer(Sender("bench", f"history-{run}"))
            for role, text in HISTORY:
                await db.add_message(customer.id, role, text)
            firsts.append((await turn(f"history-{run}", MESSAGE))[0])
        result["first_text_s"] = statistics.median(firsts)

        alone = [await turn("alone", text) for text in CUSTOMER_MESSAGES]
        result["one_p50_s"] = percentile([t[1] for t in alone], 0.5)
        result["one_p95_s"] = percentile([t[1] for t in alone], 0.95)

        async def customer(n: int) -> list[tuple[float, float, int]]:
            return [await turn(f"crowd-{n}", CUSTOMER_MESSAGES[(n + i) % len(CUSTOMER_MESSAGES)]) for i in range(2)]

        started = time.perf_counter()
        crowd = [t for turns in await asyncio.gather(*(customer(n) for n in range(8))) for t in turns]
        wall = time.perf_counter() - started
        result["eight_p50_s"] = percentile([t[1] for t in crowd], 0.5)
        result["eight_p95_s"] = percentile([t[1] for t in crowd], 0.95)
        result["eight_per_min"] = len(crowd) / wall * 60
        result["reply_tokens"] = statistics.mean(t[2] for t in alone + crowd)
        await db.close()

    runs = await asyncio.to_thread(decode_runs, engine, bench_messages())
    result["first_token_s"] = statistics.median(r["first"] for r in runs)
    result["decode_tps"] = statistics.median(r["decode_tps"] for r in runs)
    engine.close()
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llama-python", help="python of a venv with llama-cpp-python (the llama.cpp row)")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # a variant's index, run in this process
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(asyncio.run(measure(*VARIANTS[int(args.child)][1:]))))
        return 0

    rows = []
    for index, (name, *_) in enumerate(VARIANTS):
        out = subprocess.run([sys.executable, __file__, "--child", str(index)], capture_output=True, text=True)
        if out.returncode:
            sys.stderr.write(out.stderr)
            return 1
        rows.append((name, json.loads(out.stdout.strip().splitlines()[-1])))
        print(f"{name}: done", file=sys.stderr)
    print("| variant | load s (+ first reply) | peak RSS MB | sentiment ms/msg (1 / 8 waiting) | first text s | first token s "
          "| decode tok/s | 1 customer p50 / p95 s | 8 customers p50 / p95 s | 8 customers replies/min |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, r in rows:
        print(f"| {name} | {r['load_s']:.1f} (+{r['warmup_s']:.1f}) | {r['peak_rss_mb']:.0f} | {r['sentiment_ms']:.0f} / {r['sentiment_8_ms']:.0f} "
              f"| {r['first_text_s']:.2f} | {r['first_token_s']:.2f} | {r['decode_tps']:.1f} "
              f"| {r['one_p50_s']:.1f} / {r['one_p95_s']:.1f} | {r['eight_p50_s']:.1f} / {r['eight_p95_s']:.1f} "
              f"| {r['eight_per_min']:.1f} |")
    if args.llama_python:
        llama = llama_runs(args.llama_python, bench_messages())
        tps = statistics.median(r["decode_tps"] for r in llama)
        print(f"| llama.cpp, Q4_1 GGUF (decode only) | | | | | {statistics.median(r['first'] for r in llama):.2f} "
              f"| {tps:.1f} | | | |")
        for name, r in rows:
            print(f"decode vs llama.cpp, {name}: {r['decode_tps'] / tps:.2f}")
    base = rows[0][1]["eight_per_min"]
    for name, r in rows[1:]:
        print(f"8-customer throughput vs the first row, {name}: {r['eight_per_min'] / base:.1f}x")
    print("mean reply tokens: " + ", ".join(f"{name} {r['reply_tokens']:.0f}" for name, r in rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
