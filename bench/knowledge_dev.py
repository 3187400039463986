"""Knowledge retrieval on the dev questions written for shopbot: right answers per language, unknowns answered.

    .venv/bin/python bench/knowledge_dev.py [--config config.toml] [--questions FILE] [--json]   # ~3 min, run alone

Each question of bench/devsets/shop_questions_dev.csv (or FILE) is looked up in ../shared/data/shop/faq.csv with the
configured model and retrieval, as the service does (Knowledge.find). Per language:
- answered right: a sure match on the entry the row names (the customer gets that answer, no person needed);
- answered wrong: a sure match on another entry (the customer gets a wrong answer);
- handed over: on topic but not sure (unsure_reply, a person follows up);
- unknown answered: an `unknown` question matched surely (a false answer; the target is 0).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.config import load_config  # noqa: E402
from bot.knowledge import Knowledge  # noqa: E402
from bot.llm.engine import Engine  # noqa: E402
from storage.db import Database  # noqa: E402

HERE = Path(__file__).resolve().parent
FAQ = HERE.parent.parent / "shared" / "data" / "shop" / "faq.csv"


async def score(engine: Engine, config, questions: list[dict], tmp: Path) -> dict:
    db = await Database.open(tmp / "kb.db")
    try:
        knowledge = Knowledge(db, engine, replace(config.knowledge, file=FAQ))
        await knowledge.sync()
        report: dict = {}
        for q in questions:
            match = await knowledge.find(q["question"])
            got = match.entry.entry_id if match.entry is not None and match.sure else None
            r = report.setdefault(q["lang"], {"facts": 0, "answered_right": 0, "answered_wrong": 0,
                                              "handed_over": 0, "unknown": 0, "unknown_answered": 0, "misses": []})
            if q["kind"] == "fact":
                r["facts"] += 1
                r["answered_right"] += got == q["entry"]
                r["answered_wrong"] += got is not None and got != q["entry"]
                r["handed_over"] += got is None and match.unanswered
                if got != q["entry"]:
                    r["misses"].append(f"{q['question']} -> {got or 'handed over'} (want {q['entry']})")
            elif q["kind"] == "unknown":
                r["unknown"] += 1
                r["unknown_answered"] += got is not None
                if got is not None:
                    r["misses"].append(f"{q['question']} -> {got} (unknown: should be handed over)")
        return report
    finally:
        await db.close()


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config")
    parser.add_argument("--questions", default=str(HERE / "devsets" / "shop_questions_dev.csv"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    config = load_config(args.config)
    with open(args.questions, encoding="utf-8") as f:
        questions = list(csv.DictReader(f))
    engine = await asyncio.to_thread(Engine.load, config)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            report = await score(engine, config, questions, Path(tmp))
    finally:
        engine.close()
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
        return 0
    print(f"model {config.model.source}: {args.questions}")
    print("| language | answered right | answered wrong | handed over | unknown answered |")
    print("|---|---|---|---|---|")
    for lang, r in report.items():
        print(f"| {lang} | {r['answered_right']}/{r['facts']} ({r['answered_right'] / r['facts']:.2f}) | "
              f"{r['answered_wrong']} | {r['handed_over']} | {r['unknown_answered']}/{r['unknown']} |")
    for lang, r in report.items():
        for miss in r["misses"]:
            print(f"  [{lang}] {miss}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
