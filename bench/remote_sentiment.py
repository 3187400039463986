"""Sentiment through the remote backend on the shared sets and the sample shop's questions, against a llama.cpp server
on this machine serving the same embedded model: macro-F1 beside the local methods' table in the README, and how
many ordinary shop questions (en / zh) and complaints would alert operators (bench/shop_alerts.py).

    .venv/bin/python bench/remote_sentiment.py --limit 200   # a few minutes; run it alone

The same seeded 200-row samples as bench/sentiment_table.py (positive/negative rows), scored as `shopbot eval`
scores them (bot.evaluation); rows are read max_concurrency at a time, as customers would be. Two readings: label
logprobs (what every server with logprobs gets) and the constrained choice (servers without).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.sentiment_table import DATA, DATASETS, POLAR  # noqa: E402
from bench.shop_alerts import shop_alerts  # noqa: E402
from bot.config import load_config  # noqa: E402
from bot.evaluation import decision, metrics, read_rows, stratified_sample  # noqa: E402
from bot.llm.backends import load_backend  # noqa: E402
from testkit.llama_server import LlamaServer, on_server  # noqa: E402

READINGS = {"logprobs": "logits", "choice": "generate"}  # reading -> the sentiment.method that selects it


async def read_all(engine, texts: list[str]) -> tuple[list, float]:
    """Every text's sentiment (the backend bounds the concurrency) and the wall seconds per text."""
    limit = engine.config.chat.max_message_tokens
    started = time.perf_counter()
    readings = await asyncio.gather(*(engine.sentiment(engine.truncate(text, limit)) for text in texts))
    return readings, (time.perf_counter() - started) / len(texts)


async def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    with LlamaServer(parallel=4, threads=2) as server:
        print(f"\n{args.limit} rows per dataset, positive/negative, seed {args.seed}; macro-F1 / ms per message "
              "(wall time, 4 at a time)\n")
        print("| remote reading | " + " | ".join(DATASETS) + " | would alert (bench/shop_alerts.py) |")
        print("|---" * (len(DATASETS) + 2) + "|")
        for reading, method in READINGS.items():
            # An accuracy bench: no per-call timeout worth the name, whatever else the machine runs.
            served = on_server(config, server.url, timeout_seconds=3600.0)
            engine = load_backend(replace(served, sentiment=replace(config.sentiment, method=method)))
            cells = []
            for name in DATASETS:
                rows = stratified_sample(read_rows(DATA / f"{name}.csv", POLAR), args.limit, args.seed)
                readings, seconds = await read_all(engine, [row.text for row in rows])
                allowed = {row.label for row in rows}
                report = metrics([row.label for row in rows], [decision(s, allowed) for s in readings])
                cells.append(f"{report['macro_f1']:.3f} / {seconds * 1000:.0f} ms")
            shop = await shop_alerts(engine, config.alerts.threshold)
            engine.close()
            print(f"| {reading} | " + " | ".join(cells) + f" | {shop.summary()} |")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=200, help="rows per dataset (stratified, seeded)")
    parser.add_argument("--seed", type=int, default=20240611)
    parser.add_argument("--config", help="config.toml (default: the repo's)")
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
