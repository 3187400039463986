"""How many ordinary shop questions would alert operators: the configured sentiment over the sample shop's questions.

    .venv/bin/python bench/shop_alerts.py [--config CONFIG]        # ~10 s, run alone

The questions in ../shared/data/shop/questions.csv are what customers ask a shop; all but the two about a
broken vase are neutral. A negative reading at or above [alerts] threshold would alert the operators. Prints
each alerting question and the count per language.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.config import load_config  # noqa: E402
from bot.evaluation import load_engine  # noqa: E402

QUESTIONS = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "shop" / "questions.csv"
COMPLAINTS = ("broken", "碎了")  # the two questions that are complaints: an alert there is right


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="config.toml (default: the repo's)")
    args = parser.parse_args()
    config = load_config(args.config)
    engine = load_engine(config)
    with QUESTIONS.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    alerted: dict[str, list[str]] = {"en": [], "zh": []}
    neutral = {"en": 0, "zh": 0}
    for row in rows:
        if any(word in row["question"] for word in COMPLAINTS):
            continue
        neutral[row["lang"]] += 1
        sentiment = engine.sentiment_reader.read(row["question"])
        if sentiment.label == "negative" and sentiment.confidence >= config.alerts.threshold:
            alerted[row["lang"]].append(f"{row['question']} ({sentiment.confidence:.2f})")
    engine.close()
    for lang, questions in alerted.items():
        print(f"{lang}: {len(questions)} of {neutral[lang]} neutral questions would alert")
        for question in questions:
            print(f"  {question}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
