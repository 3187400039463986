"""What operators would see: the configured sentiment over the sample shop's questions, which alert and which do not.

    .venv/bin/python bench/shop_alerts.py [--config CONFIG]        # ~10 s, run alone
    .venv/bin/python bench/shop_alerts.py --base-url http://127.0.0.1:8080/v1   # the model on a server
    .venv/bin/python bench/shop_alerts.py --labelled bench/devsets/shop_question_sentiment.csv   # ~1 min

The questions in ../shared/data/shop/questions.csv are what customers ask a shop; all but the two about a
broken vase are neutral. A negative reading at or above [alerts] threshold would alert the operators: the
complaints should, the neutral questions should not. Each message is read alone through the backend's sentiment
role (the bot's own path), local engine or remote server alike. Prints each alerting question, the count per
language, and how each complaint was read. `--labelled FILE` reads another shop's questions instead (a CSV with
`lang`, `question` and `label`; a complaint is labelled negative).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.config import load_config  # noqa: E402
from bot.llm.backends import load_backend  # noqa: E402
from testkit.llama_server import on_server  # noqa: E402

QUESTIONS = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "shop" / "questions.csv"
COMPLAINTS = ("broken", "碎了")  # the two questions that are complaints: an alert there is right
LANGS = ("en", "zh")


@dataclass
class ShopAlerts:
    """A shop's messages as operators would see them: each reading as "text (label confidence)"."""

    alerting: dict[str, list[str]]  # per language, the neutral questions that would alert
    neutral: dict[str, int]  # per language, how many neutral questions were read
    complaints: list[tuple[str, bool]]  # each complaint's reading and whether it alerts

    def summary(self) -> str:
        """One line: "0 of 16 / 0 of 16 questions, 2 of 2 complaints"."""
        questions = " / ".join(f"{len(self.alerting[lang])} of {self.neutral[lang]}" for lang in LANGS)
        return (f"{questions} questions, {sum(alerts for _, alerts in self.complaints)} of {len(self.complaints)}"
                " complaints")


def is_complaint(row: dict[str, str]) -> bool:
    """A labelled row's label, else the sample shop's two questions about a broken vase."""
    return row["label"] == "negative" if "label" in row else any(word in row["question"] for word in COMPLAINTS)


async def shop_alerts(engine, threshold: float, questions: Path = QUESTIONS) -> ShopAlerts:
    """Every message read one at a time, as a customer's message is."""
    with questions.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    result = ShopAlerts({lang: [] for lang in LANGS}, {lang: 0 for lang in LANGS}, [])
    limit = engine.config.chat.max_message_tokens
    for row in rows:
        sentiment = await engine.sentiment(engine.truncate(row["question"], limit))
        alerts = sentiment.label == "negative" and sentiment.confidence >= threshold
        reading = f"{row['question']} ({sentiment.label} {sentiment.confidence:.2f})"
        if is_complaint(row):
            result.complaints.append((reading, alerts))
            continue
        result.neutral[row["lang"]] += 1
        if alerts:
            result.alerting[row["lang"]].append(reading)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="config.toml (default: the repo's)")
    parser.add_argument("--labelled", type=Path, default=QUESTIONS,
                        help="a CSV of questions with lang, question and label (default: the sample shop's)")
    parser.add_argument("--base-url", help="the model on this OpenAI-compatible server (backend = \"openai\")")
    args = parser.parse_args()
    config = load_config(args.config)
    if args.base_url:
        config = on_server(config, args.base_url)
    engine = load_backend(config)
    engine.prepare_roles()
    try:
        result = asyncio.run(shop_alerts(engine, config.alerts.threshold, args.labelled))
    finally:
        engine.close()
    print(f"model: {engine.name} ({config.model.backend}), sentiment {config.sentiment.method}, "
          f"alerts.threshold {config.alerts.threshold}")
    for lang in LANGS:
        print(f"{lang}: {len(result.alerting[lang])} of {result.neutral[lang]} neutral questions would alert")
        for reading in result.alerting[lang]:
            print(f"  {reading}")
    print(f"complaints: {sum(alerts for _, alerts in result.complaints)} of {len(result.complaints)} would alert")
    for reading, alerts in result.complaints:
        print(f"  {reading}{'' if alerts else '  NO ALERT'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
