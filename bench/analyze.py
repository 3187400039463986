"""Opinion-monitoring bench: `shopbot analyze` over 10,000 short comments of the shared sentiment data.

A seeded sample of the short-comment sets (food-delivery and shopping reviews in Chinese, airline tweets and
product/restaurant review sentences in English) is written to a CSV and analysed exactly as the command does.
"Short" is issue #19's: at most 64 tokens on the configured model's tokenizer (`--max-tokens 0`: any length).
Prints rows/s (model load excluded, printed apart), the comments' length, the label shares, and peak RSS.
Run alone on a quiet machine (about 10 minutes on 2 cores):

    .venv/bin/python bench/analyze.py [--rows 10000] [--max-tokens 64] [--config config.toml]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import random
import resource
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bot.config import load_config  # noqa: E402
from bot.evals.analyze import Reader, analyse, file_comments, write_reports  # noqa: E402
from bot.evals.comments import sniff_encoding  # noqa: E402
from bot.llm.loading import load_tokenizer  # noqa: E402

DATA = REPO.parent / "shared" / "data" / "sentiment"
SHORT_SETS = ("zh_waimai_reviews.csv", "zh_ecommerce_reviews.csv", "en_airline_tweets.csv",
              "en_reviews_amazon_yelp.csv")
SEED = 20240611


def within(max_tokens: int, config) -> Callable[[str], bool]:
    """Whether a comment is at most `max_tokens` long on the configured model's tokenizer (0: any comment is)."""
    if not max_tokens:
        return lambda text: True
    tokenizer = load_tokenizer(config.model)
    return lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"]) <= max_tokens


def sample(rows: int, data: Path, fits: Callable[[str], bool]) -> list[str]:
    texts = []
    for name in SHORT_SETS:
        with open(data / name, encoding="utf-8", newline="") as f:
            texts += [r["text"] for r in csv.DictReader(f) if fits(r["text"])]
    return random.Random(SEED).sample(texts, rows)


async def bench(args: argparse.Namespace) -> None:
    config = load_config(args.config)
    texts = sample(args.rows, Path(args.data), within(args.max_tokens, config))
    with tempfile.TemporaryDirectory(prefix="shopbot-analyze-bench-") as tmp:
        path = Path(tmp) / "comments.csv"
        with open(path, "w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["text"])
            writer.writerows([t] for t in texts)
        reader = Reader(config)
        started = time.perf_counter()
        await reader.readings(["warm-up"])  # loads the engine: timed apart from the rows
        load_s = time.perf_counter() - started
        started = time.perf_counter()
        run = await analyse(reader, file_comments(path, sniff_encoding(path), "text"), Path(tmp) / "out",
                            path.name, len(texts))
        seconds = time.perf_counter() - started
        reader.close()
        write_reports(Path(tmp) / "out", path.name)
        with open(Path(tmp) / "out" / "rows.csv", encoding="utf-8-sig", newline="") as f:
            rows = list(csv.DictReader(f))
    chars = [len(t) for t in texts]
    print(f"comments of at most {args.max_tokens} tokens" if args.max_tokens else "comments of any length")
    print(f"rows: {run.analysed} analysed, {len(run.skipped)} skipped; method {config.sentiment.method}, "
          f"model {config.model.source}, weights {config.model.weights}")
    print(f"comment length: median {statistics.median(chars):.0f} chars, p90 {sorted(chars)[len(chars) * 9 // 10]}")
    print(f"languages: {dict(Counter(r['language'] for r in rows))}; labels: {dict(Counter(r['sentiment'] for r in rows))}")
    print(f"model load: {load_s:.1f} s")
    print(f"throughput: {run.analysed / seconds:.1f} rows/s ({seconds:.1f} s for {run.analysed} rows)")
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--max-tokens", type=int, default=64, help="only comments this short in tokens (0: any)")
    parser.add_argument("--config", help="config.toml (default: the repo's)")
    parser.add_argument("--data", default=str(DATA), help="folder with the shared sentiment CSVs")
    asyncio.run(bench(parser.parse_args()))


if __name__ == "__main__":
    main()
