"""What `shopbot kb unanswered` brings a shop: its handed-over questions added as wordings, the next questions asked.

    .venv/bin/python bench/taught.py [SHOP_DIR ...] [--seed 1] [--changes]   # default: every bench/devsets/*_shop

Each shop (a folder with faq.csv and questions.csv, written by helpers that never saw shopbot's rules) is opened as
a new shop would be: its FAQ as written, no wordings. Its questions are split in two halves (seeded, per language and
kind). All are asked through the real service (each from a new customer, the configured model reading every
message), and the knowledge's decision is read back from the database. Then, for each half in turn, the owner does
what `shopbot kb unanswered` asks: every question of that half a person had to answer that one of the shop's entries
does answer (its row names the entry) is added to that entry's `also_asked`, the file is imported again, and the
*other* half is asked again. Questions no entry answers (unknown ones) get no wording: an owner would write a new
entry, with an answer this bench cannot invent. Printed per shop and in total, for the half asked again: fact
questions answered right and unknown questions answered (false answers), before and after the wordings; and how many
of the taught questions themselves are answered right when asked again in the same words (a customer asking what
another asked before). About 5 minutes a shop with the embedded model; run alone.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import random
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.config import load_config  # noqa: E402
from bot.knowledge import MatchKind  # noqa: E402
from bot.llm.backends import load_backend  # noqa: E402
from bot.service import ConversationService, Sender  # noqa: E402
from bot.unanswered import gather  # noqa: E402
from storage.db import Database  # noqa: E402

DEV = Path(__file__).resolve().parent / "devsets"


def halves(questions: list[dict], seed: int) -> tuple[list[dict], list[dict]]:
    """Two halves with as many of each language and kind in each (seeded)."""
    rng, first, second = random.Random(seed), [], []
    for key in sorted({(q["lang"], q["kind"]) for q in questions}):
        group = [q for q in questions if (q["lang"], q["kind"]) == key]
        rng.shuffle(group)
        first += group[: len(group) // 2]
        second += group[len(group) // 2:]
    return first, second


class Shop:
    """One shop's service over a throw-away database; every question asked by a customer of its own."""

    def __init__(self, service: ConversationService, db: Database):
        self.service, self.db, self.customers = service, db, 0

    async def ask(self, questions: list[dict]) -> dict[str, dict]:
        """Each question's stored knowledge decision (knowledge_match, knowledge_entry, ...), by its text."""
        started = time.time()
        for q in questions:
            self.customers += 1
            await self.service.handle_text(Sender("bench", str(self.customers)), q["question"])
        return {row["text"]: row for row in await self.db.knowledge_matches(started)}


def taught_faq(faq: Path, out: Path, wordings: dict[tuple[str, str], list[str]]) -> int:
    """faq with each (entry, language)'s wordings added to its also_asked column; how many were added."""
    with faq.open(encoding="utf-8-sig", newline="") as f:
        header, *rows = list(csv.reader(f))
    has_column = len(header) > 4
    added = 0
    with out.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header if has_column else [*header, "also_asked"])
        for row in rows:
            extra = wordings.get((row[0], row[1]), [])
            added += len(extra)
            old = row[4] if has_column and len(row) > 4 else ""
            writer.writerow([*row[:4], "\n".join(filter(None, [old, *extra]))])
    return added


def answered(row: dict | None) -> str | None:
    """The entry a stored decision answered with; None: not answered surely."""
    return row["knowledge_entry"] if row and row["knowledge_match"] == MatchKind.ANSWERED.value else None


def score(questions: list[dict], decided: dict[str, dict], tally: dict) -> None:
    """Adds right answers and false answers of `questions` to tally[lang]."""
    for q in questions:
        got = answered(decided.get(q["question"]))
        t = tally.setdefault(q["lang"], {"facts": 0, "right": 0, "unknown": 0, "unknown_answered": 0})
        if q["kind"] == "fact":
            t["facts"] += 1
            t["right"] += got == q["entry"]
        elif q["kind"] == "unknown":
            t["unknown"] += 1
            t["unknown_answered"] += got is not None


async def run_shop(engine, config, shop: Path, seed: int, tmp: Path,
                   show_changes: bool) -> tuple[dict, dict, dict, int]:
    """(before, after, same words, wordings added): the tallies of each half asked before and after the other half
    taught, and of the taught questions asked again as they were; `show_changes` prints each question whose answer
    changed."""
    with (shop / "questions.csv").open(encoding="utf-8") as f:
        questions = list(csv.DictReader(f))
    by_text = {q["question"].strip(): q for q in questions}
    db = await Database.open(tmp / f"{shop.name}.db")
    try:
        service = ConversationService(db, engine, replace(config, knowledge=replace(config.knowledge,
                                                                                    file=shop / "faq.csv")))
        await service.start()
        bench = Shop(service, db)
        first_asked = await bench.ask(questions)
        before, after, same_words, added = {}, {}, {}, 0
        first, second = halves(questions, seed)
        for taught, asked_again in ((first, second), (second, first)):
            handed = gather([first_asked[q["question"]] for q in taught if q["question"] in first_asked])
            # The owner knows which of the listed questions an entry answers, and which entry
            taught_rows = [by_text[q.text] for q in handed.questions if by_text.get(q.text, {}).get("kind") == "fact"]
            wordings: dict[tuple[str, str], list[str]] = {}
            for row in taught_rows:
                wordings.setdefault((row["entry"], row["lang"]), []).append(row["question"].strip())
            added += taught_faq(shop / "faq.csv", tmp / "taught.csv", wordings)
            await service.knowledge.import_file(tmp / "taught.csv")
            again = await bench.ask(asked_again)
            score(taught_rows, await bench.ask(taught_rows), same_words)
            score(asked_again, first_asked, before)
            score(asked_again, again, after)
            for q in asked_again if show_changes else ():
                was, now = answered(first_asked.get(q["question"])), answered(again.get(q["question"]))
                if was != now:
                    print(f"  [{q['lang']}] {q['question']}: {was or 'not answered'} -> {now or 'not answered'} "
                          f"(want {q['entry'] or q['kind']})")
        return before, after, same_words, added
    finally:
        await db.close()


def line(name: str, before: dict, after: dict, same_words: dict, added: int) -> str:
    """One shop's (or the total's) figures on one line."""
    cells = []
    for lang in sorted(before):
        b, a, same = before[lang], after[lang], same_words.get(lang, {"right": 0, "facts": 0})
        cells.append(f"{lang}: right {b['right']} -> {a['right']} of {b['facts']}, unknown answered "
                     f"{b['unknown_answered']} -> {a['unknown_answered']} of {b['unknown']}, taught asked again "
                     f"right {same['right']} of {same['facts']}")
    return f"{name}: {added} wordings added; " + "; ".join(cells)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shops", nargs="*", type=Path, help="folders with faq.csv and questions.csv")
    parser.add_argument("--config")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--changes", action="store_true", help="print each question whose answer changed (reads "
                                                               "the rows: not on a set kept unread)")
    args = parser.parse_args()
    shops = args.shops or sorted(p for p in DEV.glob("*_shop") if (p / "questions.csv").is_file())
    config = load_config(args.config)
    engine = await asyncio.to_thread(load_backend, config)
    total_before, total_after, total_same, total_added = {}, {}, {}, 0
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for shop in shops:
                before, after, same_words, added = await run_shop(engine, config, shop, args.seed, Path(tmp),
                                                                  args.changes)
                print(line(shop.name, before, after, same_words, added), flush=True)
                total_added += added
                for total, part in ((total_before, before), (total_after, after), (total_same, same_words)):
                    for lang, t in part.items():
                        into = total.setdefault(lang, dict.fromkeys(t, 0))
                        for key, n in t.items():
                            into[key] += n
    finally:
        engine.close()
    print(line(f"all {len(shops)} shops", total_before, total_after, total_same, total_added))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
