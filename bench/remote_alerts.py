"""What operators would see with the model on a llama.cpp server: alerts on the sample shop's questions and on the
three-class customer-message dev sets, through the remote backend's sentiment role (started here, same machine).

    .venv/bin/python bench/remote_alerts.py             # the shipped answer start; ~1 min, run it alone
    .venv/bin/python bench/remote_alerts.py --compare   # also the other answer starts tried, and none

An alert is a negative reading at or above [alerts] threshold. For each dev set (bench/devsets/customer_messages_*.csv,
30 negative / 30 neutral / 30 positive) it prints how many of each label would alert: complaints should, questions
and praise should not. The sample shop's line is bench/shop_alerts.py's summary.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.shop_alerts import shop_alerts  # noqa: E402
from bot.config import load_config  # noqa: E402
from bot.evaluation import LABELS, read_rows  # noqa: E402
from bot.llm.backends import load_backend  # noqa: E402
from bot.llm.backends.openai import ANSWER_START  # noqa: E402
from testkit.llama_server import LlamaServer  # noqa: E402

DEVSETS = Path(__file__).resolve().parent / "devsets"
TRIED = (ANSWER_START, "Sentiment:", "The sentiment is", "")  # "": no prefill (the reading before it)


async def dev_alerts(engine, threshold: float, lang: str) -> str:
    """"negative 21/30, neutral 0/30, positive 0/30": per label, how many messages of the dev set would alert."""
    rows = read_rows(DEVSETS / f"customer_messages_{lang}.csv")
    readings = await asyncio.gather(*(engine.sentiment(row.text) for row in rows))
    counts = {label: [0, 0] for label in LABELS}
    for row, reading in zip(rows, readings):
        counts[row.label][0] += reading.label == "negative" and reading.confidence >= threshold
        counts[row.label][1] += 1
    return ", ".join(f"{label} {alerting}/{total}" for label, (alerting, total) in counts.items())


async def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    threshold = config.alerts.threshold
    with LlamaServer(parallel=4, threads=2, embeddings=False) as server:
        model = replace(config.model, backend="openai", base_url=server.url, timeout_seconds=3600.0)
        print(f"alerts (negative at >= {threshold}) through the remote backend, llama.cpp server, same GGUF\n")
        print("| answer start | sample shop (bench/shop_alerts.py) | dev en: alerting per label | dev zh |")
        print("|---|---|---|---|")
        for start in TRIED if args.compare else (ANSWER_START,):
            engine = load_backend(replace(config, model=model))
            engine.answer_start = start
            shop = await shop_alerts(engine, threshold)
            cells = [await dev_alerts(engine, threshold, lang) for lang in ("en", "zh")]
            engine.close()
            print(f"| {start or '(none)'} | {shop.summary()} | " + " | ".join(cells) + " |")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compare", action="store_true", help="also the other answer starts tried, and none")
    parser.add_argument("--config", help="config.toml (default: the repo's)")
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
