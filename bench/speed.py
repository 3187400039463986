"""shopbot's engine against llama.cpp on the same GGUF, for the embedded SmolLM2-135M and a 0.5B Qwen2 model,
in one run: decode and prefill tokens/s for one customer, aggregate decode tokens/s for 8, peak RSS (ours: while
serving, and while loading); and for the
embedded model, 8 customers writing at once through the whole service (replies per minute, p50/p95).

    .venv/bin/python bench/speed.py          # ~10 min on 2 cores, run alone

Every measurement runs in a process of its own, one after another. llama.cpp is PyPI's xllamacpp (its server,
in-process in its child, 2 threads, greedy, stop tokens ignored, the same 64 tokens after the same prompt):
a bench extra (`pip install -e .[bench]`), never a dependency of the bot. The 0.5B model is
Qwen2.5-Coder-0.5B-Instruct Q4_K_M, fetched and checked by bench/qwen_gguf.py.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.benchmark import BATCH_CONTEXT, BATCH_ROWS, BATCH_STEPS, DECODE_TOKENS, PROMPT, RUNS  # noqa: E402

CUSTOMER_MESSAGES = [
    "Hi, I ordered a teapot last week. When will it arrive?",
    "你好，我的快递三天了还没到，怎么回事？",
    "Do you have green tea in stock?",
    "The cup I received is cracked. What can I do?",
    "请问可以开发票吗？",
    "Thank you, the tea is lovely!",
]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def ours(source: str, crowd: bool) -> dict:
    """shopbot's figures (bot/benchmark.py's decode measures), and the 8-customer crowd through the service."""
    from bot.benchmark import _decode_speeds, peak_rss_mb, reset_peak_rss
    from bot.config import load_config
    from bot.llm.engine import Engine

    config = load_config()
    # The model writes every reply (free chat): with the small model's default the crowd would get canned replies.
    config = replace(config, model=replace(config.model, source=source, threads=2),
                     chat=replace(config.chat, free_chat="on"))
    started = time.perf_counter()
    engine = Engine.load_to_serve(config)
    result = {"load_s": time.perf_counter() - started, "load_rss_mb": peak_rss_mb()}
    reset_peak_rss()
    result.update(engine.on_model_thread(_decode_speeds, engine))
    if crowd:
        result.update(asyncio.run(_crowd(engine, config)))
    engine.close()
    result["peak_rss_mb"] = peak_rss_mb()
    return result


async def _crowd(engine, config) -> dict:
    """8 customers write 2 messages each at the same time (replies sampled as configured, no shop knowledge)."""
    from bot.service import ConversationService, Sender
    from storage.db import Database

    with tempfile.TemporaryDirectory() as tmp:
        db = await Database.open(Path(tmp) / "bench.db")
        service = ConversationService(db, engine, config)

        async def customer(n: int) -> list[float]:
            seconds = []
            for i in range(2):
                started = time.perf_counter()
                await service.handle_text(Sender("bench", str(n)), CUSTOMER_MESSAGES[(n + i) % len(CUSTOMER_MESSAGES)])
                seconds.append(time.perf_counter() - started)
            return seconds

        started = time.perf_counter()
        times = [t for turns in await asyncio.gather(*(customer(n) for n in range(8))) for t in turns]
        wall = time.perf_counter() - started
        await db.close()
    return {"eight_per_min": len(times) / wall * 60, "eight_p50_s": percentile(times, 0.5),
            "eight_p95_s": percentile(times, 0.95)}


def llama(gguf: str) -> dict:
    """llama.cpp's own timings from its server on the same GGUF: one request at a time, then 8 at once."""
    import socket

    import httpx
    import xllamacpp

    from bot.benchmark import peak_rss_mb
    from bot.config import load_config
    from bot.llm.loading import load_tokenizer

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    params = xllamacpp.CommonParams()
    params.model.path = gguf
    params.hostnames = ["127.0.0.1"]
    params.port = port
    params.n_parallel = BATCH_ROWS
    params.n_ctx = 1024 * BATCH_ROWS
    params.cpuparams.n_threads = params.cpuparams_batch.n_threads = 2
    started = time.perf_counter()
    server = xllamacpp.Server(params)  # noqa: F841 (serves on its own threads while it lives)
    url = f"http://127.0.0.1:{port}"
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=1.0).status_code == 200:
                break
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    load_s = time.perf_counter() - started
    config = replace(load_config().model, source=gguf)
    tokenizer = load_tokenizer(config)
    prompt = tokenizer.apply_chat_template(PROMPT, add_generation_prompt=True, tokenize=False)

    def complete(n: int, text: str = prompt) -> dict:
        body = {"prompt": text, "n_predict": n, "temperature": 0.0, "ignore_eos": True, "cache_prompt": False}
        return httpx.post(f"{url}/completion", json=body, timeout=600).json()["timings"]

    complete(4)  # warm-up
    runs = [complete(DECODE_TOKENS) for _ in range(RUNS)]
    # 8 rows decoding at once, each after a prompt of about BATCH_CONTEXT tokens (as ours: 8 rows, 100 tokens).
    long_prompt = prompt + " ".join(["tea"] * (BATCH_CONTEXT - len(tokenizer(prompt)["input_ids"])))
    results: list[dict] = []
    threads = [threading.Thread(target=lambda: results.append(complete(BATCH_STEPS, long_prompt)))
               for _ in range(BATCH_ROWS)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # The rows' decode phases overlap: aggregate = all rows' tokens over the longest decode phase.
    batch = BATCH_ROWS * BATCH_STEPS / max(r["predicted_ms"] / 1000 for r in results)
    return {"load_s": load_s, "prefill_tok_s": statistics.median(r["prompt_per_second"] for r in runs),
            "decode_tok_s": statistics.median(r["predicted_per_second"] for r in runs),
            "batch8_tok_s": batch, "peak_rss_mb": peak_rss_mb()}


def _rss(r: dict) -> str:
    """Ours: the peak while serving, then while loading; llama.cpp: one peak over both (its server loads in-process)."""
    return f"{r['peak_rss_mb']:.0f} ({r['load_rss_mb']:.0f})" if "load_rss_mb" in r else f"{r['peak_rss_mb']:.0f} (same)"


def child(*args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True)
    if out.returncode:
        sys.stderr.write(out.stderr)
        raise SystemExit(f"{args} failed")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)  # engine, source[, crowd]: run here
    args = parser.parse_args()
    if args.child:
        engine, source, *crowd = args.child
        print(json.dumps(ours(source, bool(crowd)) if engine == "ours" else llama(source)))
        return 0

    from bench.qwen_gguf import qwen_gguf
    from bot.llm.loading import embedded_gguf

    models = [("SmolLM2-135M-Instruct Q4_1 (embedded)", "embedded", str(embedded_gguf())),
              ("Qwen2.5-Coder-0.5B-Instruct Q4_K_M", str(qwen_gguf()), str(qwen_gguf()))]
    print("| model | engine | load s | prefill tok/s | decode tok/s | 8 rows decode tok/s | peak RSS MB serving "
          "(loading) |")
    print("|---|---|---|---|---|---|---|")
    ratios, crowd = [], None
    for name, source, gguf in models:
        mine = child("ours", source, *(["crowd"] if source == "embedded" else []))
        theirs = child("llama", gguf)
        for engine, r in (("shopbot (int4)", mine), ("llama.cpp", theirs)):
            print(f"| {name} | {engine} | {r['load_s']:.1f} | {r['prefill_tok_s']:.0f} | {r['decode_tok_s']:.1f} "
                  f"| {r['batch8_tok_s']:.0f} | {_rss(r)} |", flush=True)
        ratios.append((name, {k: mine[k] / theirs[k] for k in ("prefill_tok_s", "decode_tok_s", "batch8_tok_s")}))
        crowd = crowd or mine
    for name, r in ratios:
        print(f"shopbot / llama.cpp, {name}: prefill {r['prefill_tok_s']:.2f}x, decode {r['decode_tok_s']:.2f}x, "
              f"8 rows {r['batch8_tok_s']:.2f}x")
    print(f"8 customers writing at once (embedded, service, sampled replies): {crowd['eight_per_min']:.1f} replies/min, "
          f"p50 {crowd['eight_p50_s']:.1f} s, p95 {crowd['eight_p95_s']:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
