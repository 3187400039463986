"""Opinion-monitoring bench: `shopbot analyze` over 10,000 short comments of the shared sentiment data.

A seeded sample of the short-comment sets (food-delivery and shopping reviews in Chinese, airline tweets and
product/restaurant review sentences in English) is written to a CSV and analysed exactly as the command does.
"Short" is issue #19's: at most 64 tokens on the configured model's tokenizer (`--max-tokens 0`: any length).
Prints rows/s (model load excluded, printed apart), the comments' length, the label shares, and peak RSS.
Run alone on a quiet machine (about 10 minutes on 2 cores):

    .venv/bin/python bench/analyze.py [--rows 10000] [--max-tokens 64] [--config config.toml]
    .venv/bin/python bench/analyze.py --remote [--parallel 4]    # through a llama.cpp server on this machine

    .venv/bin/python bench/analyze.py --labelled bench/devsets/customer_messages_zh_b.csv ... [--remote]

--remote reads through [model] backend = "openai" against a llama.cpp server (testkit.llama_server, PyPI xllamacpp)
serving the configured GGUF with --parallel slots and last-token embeddings, max_concurrency as many; peak RSS is then
this process's alone. Sentiment is then read as the config says on a server: with method "head" (the default) by a
head on the server's embeddings, fitted on the first run (all shipped rows through the server: ~20 minutes for the
135M model on 2 cores) and cached in model.cache_dir; with "logits" by the label probabilities.
--labelled analyses every row of labelled CSVs (text,label) instead, and also prints how the rows' sentiment agrees
with the labels (macro-F1, each label's recall) and how many of each label would alert operators: what a report's
counts are worth on that path.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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
from bot.evaluation import metrics  # noqa: E402
from bot.evals.analyze import analyse, file_comments, reader_for, write_reports  # noqa: E402
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
    gold = labelled(args.labelled) if args.labelled else None
    texts = list(gold) if gold else sample(args.rows, Path(args.data), within(args.max_tokens, config))
    with contextlib.ExitStack() as stack:
        if args.remote:
            from testkit.llama_server import LlamaServer, configured_gguf, on_server

            server = stack.enter_context(LlamaServer(parallel=args.parallel, gguf=configured_gguf(config)))
            config = on_server(config, server.url, max_concurrency=args.parallel)
        await measure(config, texts, 0 if gold else args.max_tokens, gold)


def labelled(files: list[str]) -> dict[str, str]:
    gold = {}
    for name in files:
        with open(name, encoding="utf-8", newline="") as f:
            gold.update((r["text"], r["label"]) for r in csv.DictReader(f))
    return gold


async def measure(config, texts: list[str], max_tokens: int, gold: dict[str, str] | None) -> None:
    with tempfile.TemporaryDirectory(prefix="shopbot-analyze-bench-") as tmp:
        path = Path(tmp) / "comments.csv"
        with open(path, "w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["text"])
            writer.writerows([t] for t in texts)
        reader = reader_for(config)
        started = time.perf_counter()
        await reader.readings(["warm-up"])  # loads the engine: timed apart from the rows
        load_s = time.perf_counter() - started
        started = time.perf_counter()
        run = await analyse(reader, file_comments(path, sniff_encoding(path), "text"), Path(tmp) / "out",
                            path.name, len(texts), path.name)
        seconds = time.perf_counter() - started
        reader.close()
        write_reports(Path(tmp) / "out", path.name)
        with open(Path(tmp) / "out" / "rows.csv", encoding="utf-8-sig", newline="") as f:
            rows = list(csv.DictReader(f))
    chars = [len(t) for t in texts]
    print(f"comments of at most {max_tokens} tokens" if max_tokens else "comments of any length")
    weights = f", weights {config.model.weights}" if config.model.backend == "local" else ""
    print(f"rows: {run.analysed} analysed, {len(run.skipped)} skipped; read by {reader.reading}, "
          f"model {config.model.source}{weights}")
    print(f"comment length: median {statistics.median(chars):.0f} chars, p90 {sorted(chars)[len(chars) * 9 // 10]}")
    print(f"languages: {dict(Counter(r['language'] for r in rows))}; labels: {dict(Counter(r['sentiment'] for r in rows))}")
    print(f"model load: {load_s:.1f} s")
    print(f"throughput: {run.analysed / seconds:.1f} rows/s ({seconds:.1f} s for {run.analysed} rows)")
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    if gold:
        scored = metrics([gold[r["text"]] for r in rows], [r["sentiment"] for r in rows])
        recall = ", ".join(f"{label} {v['recall']:.2f}" for label, v in scored["labels"].items())
        print(f"against the labels: macro-F1 {scored['macro_f1']:.3f}, recall {recall} ({scored['n']} rows)")
        line = config.alerts.threshold
        alerting = Counter(gold[r["text"]] for r in rows
                           if r["sentiment"] == "negative" and float(r["confidence"]) >= line)
        print(f"alerting (negative at >= alerts.threshold {line}), per label: " + ", ".join(
            f"{label} {alerting[label]} of {n}" for label, n in sorted(Counter(gold[r['text']] for r in rows).items())))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--max-tokens", type=int, default=64, help="only comments this short in tokens (0: any)")
    parser.add_argument("--config", help="config.toml (default: the repo's)")
    parser.add_argument("--data", default=str(DATA), help="folder with the shared sentiment CSVs")
    parser.add_argument("--remote", action="store_true", help="read through a llama.cpp server on this machine")
    parser.add_argument("--parallel", type=int, default=4, help="with --remote: the server's slots")
    parser.add_argument("--labelled", nargs="+", help="labelled CSVs (text,label) to analyse instead, scored")
    asyncio.run(bench(parser.parse_args()))


if __name__ == "__main__":
    main()
