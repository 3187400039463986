"""Intents read by a prompt role instead of the intent head: the issue's other option, measured on the same dev sets.

The model is told the nine intents (with a few words on each) and asked for one; the intent is the label whose
first token the model finds most probable next (label logits, one forward pass per message, nothing generated),
the way the sentiment role's `logits` method reads a label. Printed beside the shipped head's figures, per
language:

    .venv/bin/python bench/intent_prompt.py   # about a minute on 2 cores; run it alone
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from bot.config import load_config  # noqa: E402
from bot.evaluation import load_engine, metrics, read_rows  # noqa: E402
from bot.llm.intents import INTENTS  # noqa: E402
from bot.llm.sentiment import PromptPass  # noqa: E402

DEV = Path(__file__).resolve().parent / "devsets"
INSTRUCTION = (
    "You sort a shop customer's message into one intent. Intents: order_status (where is my order, tracking), "
    "shipping (delivery options, times, costs, destinations), return_refund (returns, refunds, exchanges), "
    "product (items, stock, sizes), payment_invoice (paying, invoices, receipts), complaint (something went "
    "wrong and the customer is unhappy), praise (thanks, compliments), human (asks for a person), other. "
    "Answer with the intent's name only."
)


def read_intents(engine, texts: list[str]) -> list[str]:
    """Each text's intent: the label whose first token has the highest next-token logit after the prompt."""
    prompt = PromptPass(engine.decoder, engine.tokenizer, INSTRUCTION, engine.special_tokens)
    first = [prompt.ids(label)[0] for label in INTENTS]
    if len(set(first)) < len(first):
        raise SystemExit("two intents start with the same token for this tokenizer: the reading would tie")
    with torch.inference_mode():
        return [INTENTS[int(prompt.last_logits(text)[first].argmax())] for text in texts]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=None)
    args = parser.parse_args()
    engine = load_engine(load_config(args.config))
    try:
        print("| reading | language | accuracy | macro-F1 |\n|---|---|---|---|")
        for lang in ("en", "zh"):
            rows = read_rows(DEV / f"intent_dev_{lang}.csv", known=INTENTS)
            gold, texts = [r.label for r in rows], [r.text for r in rows]
            heads = engine.on_model_thread(engine.sentiment_reader.intents, texts)  # where the model was loaded
            for name, predicted in (("prompt role (label logits)", engine.on_model_thread(read_intents, engine, texts)),
                                    ("intent head", [i.label for i in heads])):
                m = metrics(gold, predicted)
                print(f"| {name} | {lang} | {m['accuracy']:.3f} | {m['macro_f1']:.3f} |", flush=True)
    finally:
        engine.close()


if __name__ == "__main__":
    main()
