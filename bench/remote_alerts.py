"""What operators would see with the model on a llama.cpp server: alerts on the sample shop's questions and on the
three-class customer-message dev sets, through the remote backend's sentiment role (started here, same machine).

    .venv/bin/python bench/remote_alerts.py             # the shipped answer start; ~1 min, run it alone
    .venv/bin/python bench/remote_alerts.py --compare   # also every variant tried (~10 min)
    .venv/bin/python bench/remote_alerts.py --local --config qwen.toml   # the config's GGUF, read in-process
                                                                         # first for comparison

An alert is a negative reading at or above [alerts] threshold. For each dev set (bench/devsets/customer_messages_*.csv,
30 negative / 30 neutral / 30 positive) it prints how many of each label would alert: complaints should, questions
and praise should not. The sample shop's line is bench/shop_alerts.py's summary.

The variants tried (README, "what operators see"): other answer starts and none; a few labelled example messages
before the customer's, as earlier chat turns or in the system prompt; the label probabilities calibrated on neutral
customer messages instead of content-free inputs, or not calibrated.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.shop_alerts import shop_alerts  # noqa: E402
from bot.config import load_config  # noqa: E402
from bot.evaluation import LABELS, read_rows  # noqa: E402
from bot.llm.backends.openai import ANSWER_START, RemoteEngine  # noqa: E402
from bot.llm.engine import Engine  # noqa: E402
from bot.llm.sentiment_scores import CONTENT_FREE, POLAR  # noqa: E402
from testkit.llama_server import LlamaServer, configured_gguf, on_server  # noqa: E402

DEVSETS = Path(__file__).resolve().parent / "devsets"
# Written for this bench (not from the dev sets or the shared data): other goods, both languages, both labels.
EXAMPLES = (("The headphones stopped charging after two days. I want a refund.", "negative"),
            ("Love the scarf, it is even softer than in the photos!", "positive"),
            ("发错尺码了，找客服三天都没人理。", "negative"),
            ("鞋子很舒服，物流也快，下次还来买。", "positive"))
MORE_EXAMPLES = (EXAMPLES[0], EXAMPLES[3],
                 ("Where can I find my invoice? It's not in the email, this is annoying.", "negative"),
                 ("谢谢，你们客服态度很好！", "positive"), EXAMPLES[1], EXAMPLES[2],
                 ("Thanks a lot, the package came a day early.", "positive"), ("等了两个星期还没到，太慢了。", "negative"))
NEUTRAL_MESSAGES = ("Hello, I have a question.", "Can you help me with my order?", "你好，我想问一下。",
                    "请问可以帮我查一下订单吗？")
THREE_WORDS = ("You classify the sentiment of a shop customer's message. "
               "Answer with exactly one word: positive, neutral or negative.")


@dataclass(frozen=True)
class Variant:
    """One way of asking for the label probabilities; the defaults are the shipped way."""

    name: str
    answer_start: str = ANSWER_START  # "": no prefill (the reading before it)
    examples: tuple[tuple[str, str], ...] = ()  # (message, label) as earlier chat turns
    in_system: bool = False  # the examples listed in the system prompt instead
    calibrate_on: tuple[str, ...] | None = CONTENT_FREE  # None: the label probabilities as the server gives them
    instruction: str = ""  # another sentiment instruction


TRIED = (Variant(f"`{ANSWER_START}` (shipped)"), Variant("`Sentiment:`", "Sentiment:"),
         Variant("`The sentiment is`", "The sentiment is"),
         Variant("`Answer:` + 4 examples (en, zh) as earlier turns", examples=EXAMPLES),
         Variant("`Answer:` + 8 examples as earlier turns", examples=MORE_EXAMPLES),
         Variant("`Answer:` + the 4 examples in the system prompt", examples=EXAMPLES, in_system=True),
         Variant("`Answer:`, calibrated on 4 neutral messages (en, zh)", calibrate_on=NEUTRAL_MESSAGES),
         Variant("`Answer:`, not calibrated", calibrate_on=None),
         Variant("`Answer:`, instruction offers `neutral` too", instruction=THREE_WORDS),
         Variant("no answer start", ""))


class TriedEngine(RemoteEngine):
    """The remote backend asking the way one Variant says."""

    variant = TRIED[0]

    def _sentiment_body(self, text: str, answer_start: str = "", **fields) -> dict:
        body = super()._sentiment_body(text, answer_start, **fields)
        if not self.variant.in_system:  # after the system turn, before the customer's message
            body["messages"][1:1] = [turn for message, label in self.variant.examples for turn in (
                {"role": "user", "content": message}, {"role": "assistant", "content": f"{ANSWER_START} {label}"})]
        return body

    async def _content_free_probs(self):
        if self._content_free is None and self.variant.calibrate_on != CONTENT_FREE:
            probs = [await self._polar_probs(text) for text in self.variant.calibrate_on or ()]
            self._content_free = np.mean([p for p in probs if isinstance(p, np.ndarray)] or [np.ones(len(POLAR))],
                                         axis=0)
        return await super()._content_free_probs()


def tried_engine(config, variant: Variant) -> TriedEngine:
    """A fresh engine (its calibration computed anew) asking the variant's way."""
    instruction = variant.instruction or config.sentiment.instruction
    if variant.in_system:
        instruction += "\nExamples:\n" + "\n".join(f"{message} -> {label}" for message, label in variant.examples)
    engine = TriedEngine.load(replace(config, sentiment=replace(config.sentiment, instruction=instruction)))
    engine.variant, engine.answer_start = variant, variant.answer_start
    return engine


async def dev_alerts(engine, threshold: float, lang: str) -> str:
    """"negative 21/30, neutral 0/30, positive 0/30": per label, how many messages of the dev set would alert."""
    rows = read_rows(DEVSETS / f"customer_messages_{lang}.csv")
    readings = await asyncio.gather(*(engine.sentiment(row.text) for row in rows))
    counts = {label: [0, 0] for label in LABELS}
    for row, reading in zip(rows, readings):
        counts[row.label][0] += reading.label == "negative" and reading.confidence >= threshold
        counts[row.label][1] += 1
    return ", ".join(f"{label} {alerting}/{total}" for label, (alerting, total) in counts.items())


async def row(engine, name: str, threshold: float) -> str:
    """One table row: the sample shop's alerts, then each dev set's."""
    shop = await shop_alerts(engine, threshold)
    cells = [await dev_alerts(engine, threshold, lang) for lang in ("en", "zh")]
    return f"| {name} | {shop.summary()} | " + " | ".join(cells) + " |"


async def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    gguf = configured_gguf(config)  # the server serves the configured model
    threshold = config.alerts.threshold
    print(f"alerts (negative at >= {threshold}), model {config.model.source}\n")
    print("| variant | sample shop (bench/shop_alerts.py) | dev en: alerting per label | dev zh |")
    print("|---|---|---|---|")
    if args.local:  # the configured in-process reading, before the server starts (never both at once)
        engine = Engine.load(config)
        engine.prepare_roles()
        print(await row(engine, f"in the bot (`{engine.sentiment_reader.method}`)", threshold), flush=True)
        engine.close()
    with LlamaServer(parallel=4, threads=2, embeddings=False, gguf=gguf) as server:
        served = on_server(config, server.url, timeout_seconds=3600.0)
        for variant in TRIED if args.compare else TRIED[:1]:
            engine = tried_engine(served, variant)
            print(await row(engine, f"llama.cpp server: {variant.name}", threshold), flush=True)
            engine.close()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compare", action="store_true", help="also every variant tried")
    parser.add_argument("--config", help="config.toml (default: the repo's)")
    parser.add_argument("--local", action="store_true", help="first the configured model read in-process")
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
