"""Core numbers for the embedded model: load (cold convert, warm), peak RSS, sentiment and reply latency.

Run alone on a quiet machine (another torch process slows both many times over):

    .venv/bin/python bench/bench_core.py [--config config.toml] [--runs 10]

Each measurement runs in a fresh child process so load times and peak RSS are not flattered by a warm
process. The cold conversion uses an empty temporary cache directory, so it never touches data/models.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

MESSAGES = [
    "My order arrived broken and nobody answers!",
    "Do you ship to Shanghai?",
    "Thank you, the lamp is beautiful!",
    "我的快递三天了还没到，怎么回事？",
    "How long does a refund take?",
    "这个杯子质量很好，谢谢！",
]


def child_load(config_path: str | None, cache_dir: str | None) -> dict:
    """Load the engine once; report seconds and this process's peak RSS."""
    from bot.config import load_config
    from bot.llm.engine import Engine

    config = load_config(config_path)
    if cache_dir:
        config = replace(config, model=replace(config.model, cache_dir=Path(cache_dir)))
    started = time.perf_counter()
    Engine.load(config).close()
    return {"load_s": time.perf_counter() - started, "peak_rss_mb": peak_rss_mb()}


def child_latency(config_path: str | None, runs: int) -> dict:
    """Median sentiment ms, median ms for exactly 64 new reply tokens, peak RSS after both."""
    import torch

    from bot.config import load_config
    from bot.llm.engine import Engine
    from bot.llm.prompts import chat_messages

    config = load_config(config_path)
    engine = Engine.load(config)
    texts = [MESSAGES[i % len(MESSAGES)] for i in range(runs)]
    engine.sentiment_reader.read(texts[0])  # first call builds the cached instruction prefix
    sentiment_ms = []
    for text in texts:
        started = time.perf_counter()
        engine.sentiment_reader.read(text)
        sentiment_ms.append((time.perf_counter() - started) * 1000)
    reply_ms = []
    for text in texts[: max(3, runs // 2)]:
        inputs = engine.tokenizer.apply_chat_template(
            chat_messages(config.chat.system_prompt, [], text), add_generation_prompt=True,
            return_dict=True, return_tensors="pt")
        started = time.perf_counter()
        with torch.inference_mode():
            engine.model.generate(**inputs, max_new_tokens=64, min_new_tokens=64, do_sample=True,
                                  temperature=config.chat.generation.temperature,
                                  repetition_penalty=config.chat.generation.repetition_penalty,
                                  pad_token_id=engine.tokenizer.eos_token_id)
        reply_ms.append((time.perf_counter() - started) * 1000)
    engine.close()
    return {
        "method": config.sentiment.method,
        "sentiment_ms_p50": statistics.median(sentiment_ms),
        "reply64_ms_p50": statistics.median(reply_ms),
        "decode_tokens_per_s": 64 / (statistics.median(reply_ms) / 1000),
        "peak_rss_mb": peak_rss_mb(),
    }


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def in_child(*args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config")
    parser.add_argument("--runs", type=int, default=12)
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, config, extra = args.child[0], args.child[1] or None, args.child[2]
        result = child_load(config, extra or None) if kind == "load" else child_latency(config, int(extra))
        print(json.dumps(result))
        return
    config = args.config or ""
    with tempfile.TemporaryDirectory() as empty_cache:
        cold = in_child("load", config, empty_cache)
    warm = in_child("load", config, "")
    latency = in_child("latency", config, str(args.runs))
    rows = [
        ("load, cold (GGUF convert + load)", f"{cold['load_s']:.1f} s", f"peak RSS {cold['peak_rss_mb']:.0f} MB"),
        ("load, warm (converted checkpoint)", f"{warm['load_s']:.2f} s", f"peak RSS {warm['peak_rss_mb']:.0f} MB"),
        (f"sentiment ({latency['method']}), median", f"{latency['sentiment_ms_p50']:.0f} ms", f"{args.runs} messages"),
        ("reply, 64 new tokens, median", f"{latency['reply64_ms_p50']:.0f} ms",
         f"{latency['decode_tokens_per_s']:.1f} tokens/s"),
        ("peak RSS serving (load + both roles)", f"{latency['peak_rss_mb']:.0f} MB", ""),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'measurement':<{width}} | value      | note")
    print(f"{'-' * width}-|------------|-----")
    for name, value, note in rows:
        print(f"{name:<{width}} | {value:<10} | {note}")


if __name__ == "__main__":
    main()
