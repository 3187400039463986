"""Knowledge decisions on every shop question set, replayed on the model's recorded outputs: a rule change in seconds.

    .venv/bin/python bench/knowledge_replay.py [--config FILE] [--save FILE] [--against FILE] [--show]

Each set of bench/devsets (the sample shop's `shop_questions_*.csv` and every `*_shop/`) is scored as
bench/knowledge_dev.py scores it (the same `score`), with the engine behind a recorder: the first run loads the model
and keeps what the knowledge asked of it (each message's intent reading, token vectors, the likelihood of each entry
for each message) in data/replay/<model>.pkl; later runs answer from there and load the model only for what is new
(a rule that brings other candidates asks other likelihoods). Model outputs do not depend on the rules, so a replay
gives the figures a live run would, in seconds instead of the 45 minutes a live run of every set takes. (They are
the model's: delete data/replay/ after changing the engine, the model or how an entry is read.)

Prints each set's counts and the totals per language; --save FILE keeps every decision that is not a right answer,
--against FILE prints what changed since a saved run: the question and both decisions for sets that were read, only
how many changed for the held-out ones (HELD_OUT), so comparing never reads them. --show prints the misses of sets
that were read.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import pickle
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.knowledge_dev import FAQ, HERE, read_intents, read_questions, score  # noqa: E402
from bot.config import load_config  # noqa: E402
from bot.llm.backends import load_backend  # noqa: E402
from bot.llm.loading import model_slug  # noqa: E402

DEVSETS = HERE / "devsets"
# Sets scored only before and after a change, their rows never read: a replay prints how many of their decisions
# changed, never which (README, "Dev sets written for shopbot": bench/devsets/SOURCE.md).
HELD_OUT = {"shop_questions_i", "shop_questions_k", "tenth_shop", "eleventh_shop", "twelfth_shop", "fifteenth_shop",
            "sixteenth_shop", "seventeenth_shop", "twentieth_shop", "twenty_second_shop", "twenty_fourth_shop",
            "twenty_sixth_shop", "twenty_seventh_shop", "twenty_eighth_shop"}


def question_sets() -> dict[str, tuple[Path, Path]]:
    """Each set's name, questions and FAQ: the sample shop's sets, then the other shops."""
    sets = {p.stem: (p, FAQ) for p in sorted(DEVSETS.glob("shop_questions_*.csv"))}
    sets |= {d.name: (d / "questions.csv", d / "faq.csv") for d in sorted(DEVSETS.glob("*_shop"))}
    return sets


class RecordedEngine:
    """The loaded model's answers to the knowledge's questions, recorded once and answered from the record after;
    the model is loaded only when a question was never asked."""

    def __init__(self, config, path: Path):
        self.config, self.path = config, path
        self._model = None
        self._layer: int | None = None
        self._record: dict = pickle.loads(path.read_bytes()) if path.exists() else {}
        self.changed = False
        if "name" not in self._record:
            model = self._loaded()
            self._record.update(name=model.name, signals=model.retrieval_signals, layers=model.token_layers)
        self.name, self.retrieval_signals = self._record["name"], self._record["signals"]
        self.token_layers = self._record["layers"]

    def _loaded(self):
        if self._model is None:
            print("loading the model for outputs not recorded yet", file=sys.stderr)
            self._model = load_backend(self.config)
            if self._layer is not None:
                self._model.use_token_layer(self._layer)
        return self._model

    def _recorded(self, key: tuple, compute):
        if key not in self._record:
            self._record[key] = compute()
            self.changed = True
        return self._record[key]

    async def _recorded_async(self, key: tuple, compute):
        if key not in self._record:
            self._record[key] = await compute()
            self.changed = True
        return self._record[key]

    def use_token_layer(self, layer: int) -> None:
        self._layer = layer
        if self._model is not None:
            self._model.use_token_layer(layer)

    def count_tokens(self, text: str) -> int:
        return self._recorded(("count", text), lambda: self._loaded().count_tokens(text))

    def truncate(self, text: str, max_tokens: int) -> str:
        return self._recorded(("truncate", text, max_tokens), lambda: self._loaded().truncate(text, max_tokens))

    async def read_message(self, text: str):
        return await self._recorded_async(("read", text), lambda: self._loaded().read_message(text))

    async def token_vectors(self, text: str) -> np.ndarray:
        return await self._recorded_async(("vectors", self._layer, text), lambda: self._loaded().token_vectors(text))

    async def knowledge_likelihood(self, entries, text: str) -> np.ndarray:
        """Each entry's likelihood is its own (one row of the batch): recorded per entry, the new ones computed."""
        new = [e for e in entries if ("likelihood", e, text) not in self._record]
        if new:
            for entry, value in zip(new, await self._loaded().knowledge_likelihood(new, text)):
                self._record["likelihood", entry, text] = value
            self.changed = True
        return np.array([self._record["likelihood", e, text] for e in entries])

    def save(self) -> None:
        if self.changed:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_bytes(pickle.dumps(self._record))
            self.changed = False

    def close(self) -> None:
        if self._model is not None:
            self._model.close()


def counts(r: dict) -> str:
    return (f"right {r['answered_right']}/{r['facts']}, wrong {r['answered_wrong']}, "
            f"unknown answered {r['unknown_answered']}/{r['unknown']}, "
            f"off-topic answered {r['off_topic_answered']}/{r['off_topic']}")


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config")
    parser.add_argument("--save", type=Path, help="keep this run's decisions (every miss) in FILE")
    parser.add_argument("--against", type=Path, help="print what changed since the run saved in FILE")
    parser.add_argument("--show", action="store_true", help="print the misses of the sets that were read")
    args = parser.parse_args()
    config = load_config(args.config)
    engine = RecordedEngine(config, Path("data") / "replay" / f"{model_slug(config.model)}.pkl")
    decisions: dict[str, dict[str, list[str]]] = {}
    totals: dict[str, dict[str, int]] = {}
    try:
        for name, (questions_file, faq) in question_sets().items():
            questions = read_questions(questions_file)
            with tempfile.TemporaryDirectory() as tmp:
                report = await score(engine, config, questions, Path(tmp), await read_intents(engine, questions), faq)
            engine.save()  # a long first run keeps what it recorded set by set
            for lang, r in report.items():
                print(f"{name} {lang}: {counts(r)}")
                decisions.setdefault(name, {})[lang] = r["misses"]
                total = totals.setdefault(lang, {})
                for key, value in r.items():
                    if key != "misses":
                        total[key] = total.get(key, 0) + value
                if args.show and name not in HELD_OUT:
                    print("".join(f"  {miss}\n" for miss in r["misses"]), end="")
    finally:
        engine.close()
    for lang, total in totals.items():
        print(f"all sets {lang}: {counts(total)}")
    if args.against:
        before = json.loads(args.against.read_text(encoding="utf-8"))
        for name, langs in decisions.items():
            for lang, misses in langs.items():
                gone = [m for m in before.get(name, {}).get(lang, []) if m not in misses]
                new = [m for m in misses if m not in before.get(name, {}).get(lang, [])]
                if not (gone or new):
                    continue
                if name in HELD_OUT:
                    print(f"changed {name} {lang}: {len(gone)} misses gone, {len(new)} new (held out: not shown)")
                    continue
                print(f"changed {name} {lang}:")
                print("".join(f"  - {m}\n" for m in gone) + "".join(f"  + {m}\n" for m in new), end="")
    if args.save:
        args.save.write_text(json.dumps(decisions, ensure_ascii=False, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
