"""Knowledge retrieval on the dev questions written for shopbot: right answers per language, unknowns answered.

    .venv/bin/python bench/knowledge_dev.py [--config config.toml] [--questions FILE] [--faq FAQ] [--ablate] [--json]
                                            [--counts-only]
    .venv/bin/python bench/knowledge_dev.py --remote embeddings|words [--questions FILE]   # on a llama.cpp server

Each question of bench/devsets/shop_questions_dev.csv (or FILE) is looked up in ../shared/data/shop/faq.csv (or FAQ:
another shop, e.g. bench/devsets/other_shop/) with the configured model and retrieval, as the service does
(Knowledge.find); about 3 minutes, run alone. Per language:
- answered right: a sure match on the entry the row names (the customer gets that answer, no person needed);
- answered wrong: a sure match on another entry (the customer gets a wrong answer);
- handed over: on topic but not sure (unsure_reply, a person follows up);
- unknown answered: an `unknown` question matched surely (a false answer; the target is 0);
- off-topic answered: a message not about the shop matched surely (it should get off_topic_reply).
Each message is read by the model first, as the service does: its intent reading tells off-topic talk.

--ablate also asks every fact question again with its entry taken out of the FAQ (in both languages): the shop's
knowledge then does not answer it, so a sure match is a false answer, like an unknown question's. Each set's own
unknown questions are few and each writer's are new ones; this turns every fact question into an unknown one.

--counts-only: a held-out set's counts without its misses (table and JSON), so scoring it does not read its questions.

--remote: the same on backend = "openai" against a llama.cpp server (testkit.llama_server) serving the configured
GGUF: "embeddings" with the server's embeddings, "words" without them (shared words alone). Intents are then read by
keywords, as the remote backend reads them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.config import load_config  # noqa: E402
from bot.knowledge import Knowledge  # noqa: E402
from bot.llm.backends import ModelBackend, load_backend  # noqa: E402
from bot.llm.intents import Intent  # noqa: E402
from storage.db import Database  # noqa: E402

HERE = Path(__file__).resolve().parent
FAQ = HERE.parent.parent / "shared" / "data" / "shop" / "faq.csv"


def read_questions(path: Path) -> list[dict]:
    """The rows of a questions CSV (lang,question,expect_any,kind,entry)."""
    with path.open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


async def read_intents(engine: ModelBackend, questions: list[dict]) -> dict[str, Intent]:
    """Each question's intent as the service reads it before looking in the knowledge."""
    return {q["question"]: (await engine.read_message(q["question"])).intent for q in questions}


async def score(engine: ModelBackend, config, questions: list[dict], tmp: Path, intents: dict[str, Intent],
                faq: Path = FAQ) -> dict:
    db = await Database.open(tmp / "kb.db")
    try:
        knowledge = Knowledge(db, engine, replace(config.knowledge, file=faq))
        await knowledge.sync()
        report: dict = {}
        for q in questions:
            match = await knowledge.find(q["question"], intents[q["question"]])
            got = match.entry.entry_id if match.entry is not None and match.sure else None
            r = report.setdefault(q["lang"], {"facts": 0, "answered_right": 0, "answered_wrong": 0,
                                              "handed_over": 0, "unknown": 0, "unknown_answered": 0,
                                              "off_topic": 0, "off_topic_answered": 0, "misses": []})
            if q["kind"] == "fact":
                r["facts"] += 1
                r["answered_right"] += got == q["entry"]
                r["answered_wrong"] += got is not None and got != q["entry"]
                r["handed_over"] += got is None and match.unanswered
                if got != q["entry"]:
                    missed = "handed over" if match.unanswered else "read as off-topic"
                    r["misses"].append(f"{q['question']} -> {got or missed} (want {q['entry']})")
            elif q["kind"] == "unknown":
                r["unknown"] += 1
                r["unknown_answered"] += got is not None
                if got is not None:
                    r["misses"].append(f"{q['question']} -> {got} (unknown: should be handed over)")
            elif q["kind"] in ("off_topic", "offtopic"):
                r["off_topic"] += 1
                r["off_topic_answered"] += got is not None
                if got is not None:
                    r["misses"].append(f"{q['question']} -> {got} (off-topic: should be steered back)")
        return report
    finally:
        await db.close()


async def ablated(engine: ModelBackend, config, questions: list[dict], tmp: Path, report: dict,
                  intents: dict[str, Intent], faq: Path = FAQ) -> None:
    """Each fact question asked with its entry removed from the FAQ: `ablated_answered` counts the sure matches."""
    with faq.open(encoding="utf-8", newline="") as f:
        header, *rows = list(csv.reader(f))
    db = await Database.open(tmp / "ablated.db")
    try:
        knowledge = Knowledge(db, engine, replace(config.knowledge, file=None))
        for entry_id in sorted({q["entry"] for q in questions if q["kind"] == "fact"}):
            path = tmp / "without.csv"
            with path.open("w", encoding="utf-8", newline="") as f:
                csv.writer(f).writerows([header, *(row for row in rows if row[0] != entry_id)])
            await knowledge.import_file(path)
            for q in questions:
                if q["kind"] != "fact" or q["entry"] != entry_id:
                    continue
                match = await knowledge.find(q["question"], intents[q["question"]])
                r = report[q["lang"]]
                r["ablated"] = r.get("ablated", 0) + 1
                r["ablated_answered"] = r.get("ablated_answered", 0) + match.sure
                if match.sure:
                    r["misses"].append(f"{q['question']} -> {match.entry.entry_id} (its entry {entry_id} removed: "
                                       "should be handed over)")
    finally:
        await db.close()


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config")
    parser.add_argument("--questions", default=str(HERE / "devsets" / "shop_questions_dev.csv"))
    parser.add_argument("--faq", type=Path, default=FAQ,
                        help="the shop's knowledge CSV (id,lang,question,answer[,also_asked])")
    parser.add_argument("--ablate", action="store_true", help="also ask each fact question without its entry")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--counts-only", action="store_true", help="no misses: a held-out set stays unread")
    parser.add_argument("--remote", choices=("embeddings", "words"), help="the model on a llama.cpp server")
    args = parser.parse_args()
    config = load_config(args.config)
    questions = read_questions(Path(args.questions))
    with contextlib.ExitStack() as stack:
        if args.remote:
            from testkit.llama_server import LlamaServer, configured_gguf, on_server

            server = stack.enter_context(LlamaServer(embeddings=args.remote == "embeddings",
                                                     gguf=configured_gguf(config)))
            config = on_server(config, server.url)
        engine = await asyncio.to_thread(load_backend, config)
        try:
            with tempfile.TemporaryDirectory() as tmp:
                intents = await read_intents(engine, questions)
                report = await score(engine, config, questions, Path(tmp), intents, args.faq)
                if args.ablate:
                    await ablated(engine, config, questions, Path(tmp), report, intents, args.faq)
        finally:
            engine.close()
    if args.counts_only:
        for r in report.values():
            r["misses"] = []
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
        return 0
    print(f"model {config.model.source}{f' on a llama.cpp server ({args.remote})' if args.remote else ''}: "
          f"{args.questions} against {args.faq}")
    ablation = " answered without its entry |" if args.ablate else ""
    print(f"| language | answered right | answered wrong | handed over | unknown answered | off-topic answered |"
          f"{ablation}")
    print("|---|---|---|---|---|---|" + "---|" * args.ablate)
    for lang, r in report.items():
        without = f" {r['ablated_answered']}/{r['ablated']} |" if args.ablate else ""
        print(f"| {lang} | {r['answered_right']}/{r['facts']} ({r['answered_right'] / r['facts']:.2f}) | "
              f"{r['answered_wrong']} | {r['handed_over']} | {r['unknown_answered']}/{r['unknown']} | "
              f"{r['off_topic_answered']}/{r['off_topic']} |{without}")
    for lang, r in report.items():
        for miss in r["misses"]:
            print(f"  [{lang}] {miss}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
