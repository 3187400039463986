"""The shop questions a person had to answer, gathered for the owner to add to the knowledge (`kb unanswered`), and
the answered ones an edit of the knowledge moved."""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from pathlib import Path

from bot.knowledge import HANDED_OVER, Knowledge, MatchKind
from bot.lexicon import folded, language_of


@dataclass
class Question:
    """One question as customers asked it (the same words, case and spacing aside), newest wording kept."""

    text: str
    lang: str
    # When it was last asked: the entry shown as the closest (a hand-over; None: none in its language), or the entry
    # it was answered with
    entry: str | None
    asked: int
    last_asked: float  # seconds since 1970
    answered_now: str | None = None  # the entry the knowledge answers it with today, if it was asked again


@dataclass
class Unanswered:
    """How the knowledge did with every shop question since a time, the ones handed over and the ones answered."""

    kinds: Counter[MatchKind] = field(default_factory=Counter)
    questions: list[Question] = field(default_factory=list)  # handed over
    answered: list[Question] = field(default_factory=list)  # answered from the knowledge, the most asked first


def gather(rows: list[dict]) -> Unanswered:
    """`Database.knowledge_matches` rows (oldest first) counted by kind; the handed-over ones grouped by wording,
    entries with the most hand-overs first, a question asked most often first within its entry; the answered ones
    grouped by wording too."""
    found = Unanswered()
    handed: dict[str, Question] = {}
    answered: dict[str, Question] = {}
    for row in rows:
        kind = MatchKind(row["knowledge_match"])
        found.kinds[kind] += 1
        if kind is MatchKind.OFF_TOPIC:
            continue
        text = row["text"].strip()
        question = (handed if kind in HANDED_OVER else answered).setdefault(
            " ".join(folded(text).split()), Question(text, language_of(text), None, 0, 0.0))
        question.text, question.entry, question.last_asked = text, row["knowledge_entry"], row["created_at"]
        question.asked += 1
    per_entry = Counter()
    for question in handed.values():
        per_entry[question.entry] += question.asked
    found.questions = sorted(handed.values(), key=lambda q: (q.entry is None, -per_entry[q.entry],
                                                             q.entry or "", -q.asked, -q.last_asked))
    found.answered = sorted(answered.values(), key=lambda q: (-q.asked, -q.last_asked))
    return found


async def recheck(knowledge: Knowledge, engine, questions: list[Question], max_tokens: int) -> None:
    """Ask the current knowledge each question again, as the service would (intent read first): the owner's new
    entries and wordings answer some of them now, and may answer others otherwise."""
    for question in questions:
        text = engine.truncate(question.text, max_tokens)
        reading = await engine.read_message(text)
        match = await knowledge.find(text, reading.intent, question.lang)
        question.answered_now = match.entry.entry_id if match.kind is MatchKind.ANSWERED else None


def counts_text(kinds: Counter[MatchKind], different: int | None = None) -> str:
    """The shop questions (off-topic messages aside) and what became of them: "41; answered from the knowledge 33
    (80%), handed over to a person 8; off-topic (steered back) 2". `different`: how many wordings the hand-overs had."""
    asked = sum(n for kind, n in kinds.items() if kind is not MatchKind.OFF_TOPIC)
    answered = kinds[MatchKind.ANSWERED]
    share = f" ({answered / asked:.0%})" if asked else ""
    wordings = f" ({different} different)" if different is not None else ""
    return (f"{asked}; answered from the knowledge {answered}{share}, handed over to a person "
            f"{sum(kinds[kind] for kind in HANDED_OVER)}{wordings}; "
            f"off-topic (steered back) {kinds[MatchKind.OFF_TOPIC]}")


def as_text(found: Unanswered, when: str, zone: tzinfo | None = None, answers_checked: bool = False) -> str:
    """The report for a terminal: the counts, then the questions still handed over under their closest entry, and
    with `answers_checked` (the answered ones were asked again) those today's knowledge answers otherwise.
    `when`: the time they were asked in, as the owner chose it ("since 2024-05-01", "in the last 30 days")."""
    lines = [f"Shop questions {when}: {counts_text(found.kinds, len(found.questions))}."]
    still = [q for q in found.questions if q.answered_now is None]
    if still:
        lines += ["", "Still handed over, under the entry shown as the closest. Where that entry answers the question, "
                      "add the question to its also_asked column; else write a new entry. Then `shopbot kb import`."]
    closest = object()
    for question in still:
        if question.entry != closest:
            closest = question.entry
            lines.append(f"{closest}:" if closest is not None else "(no entry in the customer's language):")
        day = datetime.fromtimestamp(question.last_asked, zone).strftime("%Y-%m-%d")
        lines.append(f"  {question.asked:>3}×  [{question.lang}] {question.text}  (last {day})")
    now = [q for q in found.questions if q.answered_now is not None]
    if now:
        lines += ["", "Answered now (the knowledge changed since they were asked):"]
        lines += [f"  {q.answered_now}  <-  {q.text}" for q in now]
    if answers_checked:
        moved = [q for q in found.answered if q.answered_now != q.entry]
        lines += ["", f"Answered otherwise now: {len(moved)} of the {len(found.answered)} different questions answered "
                      "from the knowledge" + (". Where the entry they get now does not answer them, a change to "
                                              "the knowledge moved them (a wording added to it?):" if moved else ".")]
        lines += [f"  {q.entry} -> {q.answered_now or 'not answered'}  <-  {q.asked}×  [{q.lang}] {q.text}"
                  for q in moved]
    return "\n".join(lines)


def write_csv(found: Unanswered, path: Path, zone: tzinfo | None = None) -> None:
    """The handed-over questions for a spreadsheet: UTF-8 with a BOM (Excel shows the Chinese), one row each."""
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        out = csv.writer(f)
        out.writerow(["closest", "lang", "asked", "last_asked", "question", "answered_now"])
        for q in found.questions:
            day = datetime.fromtimestamp(q.last_asked, zone).strftime("%Y-%m-%d %H:%M")
            out.writerow([q.entry or "", q.lang, q.asked, day, q.text, q.answered_now or ""])
