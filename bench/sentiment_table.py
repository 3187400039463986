"""Sentiment methods × shared datasets -> macro-F1 and median ms/message, all in one run on one loaded model.

    .venv/bin/python bench/sentiment_table.py --limit 200 --generate-limit 60   # ~12 min on 2 cores, run alone

Each dataset is a seeded stratified sample of --limit rows (airline: its positive/negative rows only), and
`generate` (about 1.5 s a row) is scored on a --generate-limit stratified subset of it. The
`head` row uses the configured head, except on a file that head was fitted on: there it uses a head fitted in
this run on --fit-rows rows of another shared file (SUBSTITUTE, marked *), so no head score is in-sample.
The table (markdown) goes to stdout and, with every report, to bench/out/sentiment_table.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.config import SENTIMENT_METHODS, load_config  # noqa: E402
from bot.evaluation import evaluate, load_engine, read_rows, stratified_sample  # noqa: E402

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "sentiment"
DATASETS = ("en_reviews_amazon_yelp", "en_airline_tweets", "zh_ecommerce_reviews", "zh_waimai_reviews")
SUBSTITUTE = {"en_reviews_amazon_yelp": "en_sst2_validation", "en_airline_tweets": "en_reviews_amazon_yelp",
              "zh_ecommerce_reviews": "zh_waimai_reviews", "zh_waimai_reviews": "zh_ecommerce_reviews"}
POLAR = ["positive", "negative"]


def substitute_head(engine, name: str, rows: int, seed: int):
    """A head fitted on `rows` rows of SUBSTITUTE[name] (never on `name` itself)."""
    reader = engine.sentiment_reader
    train = stratified_sample(read_rows(DATA / f"{SUBSTITUTE[name]}.csv", POLAR), rows, seed)
    limit = engine.config.chat.max_message_tokens
    features = reader.head_features([engine.truncate(row.text, limit) for row in train])
    return reader.fit_head(features, [row.label for row in train], data=f"{SUBSTITUTE[name]}.csv")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=200, help="rows per dataset (stratified, seeded)")
    parser.add_argument("--generate-limit", type=int, default=60, help="rows per dataset for the slow baseline")
    parser.add_argument("--fit-rows", type=int, default=500, help="rows of a substitute head's training file")
    parser.add_argument("--seed", type=int, default=20240611)
    parser.add_argument("--config", help="config.toml (default: the repo's)")
    args = parser.parse_args()

    engine = load_engine(load_config(args.config))
    shipped = engine.sentiment_reader.head
    fitted_on = shipped.meta.get("data", "")
    results: dict[str, dict[str, dict]] = {method: {} for method in SENTIMENT_METHODS}
    for name in DATASETS:
        rows = stratified_sample(read_rows(DATA / f"{name}.csv", POLAR), args.limit, args.seed)
        for method in SENTIMENT_METHODS:
            # generate costs ~10 decoding steps a row: scored on a stratified subset of the same sample
            sample = stratified_sample(rows, args.generate_limit, args.seed) if method == "generate" else rows
            report = engine.on_model_thread(evaluate, engine, sample, method)  # where the model was loaded
            report["head"] = shipped.meta.get("data") if method == "head" else None
            results[method][name] = report
        if name in fitted_on:  # the configured head has seen this file: score a head that has not
            substitute = engine.on_model_thread(substitute_head, engine, name, args.fit_rows, args.seed)
            engine.sentiment_reader.use_head(substitute)
            report = engine.on_model_thread(evaluate, engine, rows, "head")
            report["head"] = f"{SUBSTITUTE[name]}.csv ({args.fit_rows} rows)"
            results["head"][name] = report
            engine.sentiment_reader.use_head(shipped)
    engine.close()

    print(f"\n{args.limit} rows per dataset ({args.generate_limit} for generate), positive/negative, seed {args.seed}; "
          "macro-F1 / median ms per message\n")
    print("| method | " + " | ".join(DATASETS) + " |")
    print("|---" * (len(DATASETS) + 1) + "|")
    for method, by_name in results.items():
        cells = [f"{r['macro_f1']:.3f} / {r['ms_per_message']:.0f} ms"
                 + (" *" if r["head"] and r["head"] != shipped.meta.get("data") else "") for r in by_name.values()]
        print(f"| {method} | " + " | ".join(cells) + " |")
    print(f"\nhead = the configured head, fitted on {fitted_on or 'unknown data'}; "
          "* = scored by a head fitted in this run on " + ", ".join(
              f"{SUBSTITUTE[n]} for {n}" for n in DATASETS if n in fitted_on))
    out = Path(__file__).resolve().parent / "out" / "sentiment_table.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"limit": args.limit, "seed": args.seed, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
