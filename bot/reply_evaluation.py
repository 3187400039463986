"""Score the bot's replies on shop questions: the runner behind `shopbot eval-replies`."""

from __future__ import annotations

import csv
import re
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from bot.escalation import NO_ANSWER
from bot.evaluation import LabelledFileError
from bot.lexicon import folded, language_of
from bot.service import ConversationService, Sender

KINDS = ("fact", "off_topic", "unknown")
# What a shop's fact looks like in a reply: a time, a duration, a price, a discount, or the shop saying what it
# does, sells, has or where it is. Only counted without knowledge, where every such statement is made up.
SHOP_FACT = re.compile(
    r"\d+\s*(?:[:.]\d\d|am\b|pm\b|%|yuan|rmb|dollars?|usd|(?:working |business )?(?:days?|hours?|weeks?|months?)|"
    r"元|块|天|小时|周|个?月|个?工作日|折|点)"
    r"|[¥$€£]\s*\d|\b(?:we|i|our (?:shop|store))\s+(?:do not |don't |also |only |currently )?"
    r"(?:offer|accept|ship|deliver|provide|sell|carry|stock|have|open|close|are (?:open|closed|located)|is located)\b"
    r"|free (?:shipping|delivery|returns?)|return policy|warranty|in stock|out of stock|located (?:at|in|on)"
    r"|(?:我们|本店|我店)(?:不|也|只|目前)?(?:提供|支持|接受|有|卖|销售|发货|营业|位于|在)|包邮|保修|有货|缺货|营业时间",
    re.IGNORECASE)


def states_shop_facts(reply: str) -> bool:
    """The reply states something about the shop: hours, delivery times, prices, stock, policies, places."""
    return SHOP_FACT.search(folded(reply)) is not None


CHANNEL = "eval"


@dataclass(frozen=True)
class Question:
    lang: str
    question: str
    expect_any: tuple[str, ...]  # a fact reply is right when it contains one of these (any case, either script)
    kind: str


def read_questions(path: str | Path) -> list[Question]:
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            reader = csv.DictReader(f)
            if not reader.fieldnames or not {"lang", "question", "expect_any", "kind"} <= set(reader.fieldnames):
                raise LabelledFileError(f"{path}: needs a header with the columns lang,question,expect_any,kind")
            rows = list(reader)
    except (OSError, UnicodeDecodeError) as exc:
        raise LabelledFileError(f"{path}: cannot read it as a UTF-8 CSV ({exc.__class__.__name__}: {exc})") from None
    questions = []
    for line, r in enumerate(rows, start=2):
        kind = (r["kind"] or "").strip()
        if kind not in KINDS:
            raise LabelledFileError(f"{path} line {line}: kind must be one of {', '.join(KINDS)}, got {kind!r}")
        expect = tuple(e.strip() for e in (r["expect_any"] or "").split(";") if e.strip())
        if kind == "fact" and not expect:
            raise LabelledFileError(f"{path} line {line}: a fact question needs expect_any")
        questions.append(Question(r["lang"].strip(), r["question"], expect, kind))
    return questions


async def evaluate_replies(service: ConversationService, questions: list[Question], progress=None) -> dict:
    """Each question from a fresh customer through the service; the report `shopbot eval-replies` prints."""
    rows, latencies = [], []
    without_knowledge = not service.knowledge
    for i, q in enumerate(questions, 1):
        sender = Sender(CHANNEL, f"eval-{time.time_ns()}-{i}")
        started = time.perf_counter()
        outcome = await service.handle_text(sender, q.question)
        latencies.append((time.perf_counter() - started) * 1000)
        reply = outcome.reply or ""
        handed_over = outcome.alert is not None and outcome.alert.reason == NO_ANSWER
        rows.append({
            "lang": q.lang, "kind": q.kind, "question": q.question, "reply": reply,
            "right": q.kind == "fact" and any(folded(e) in folded(reply) for e in q.expect_any),
            "wrong_language": language_of(reply) != q.lang,
            "handed_over": handed_over,
            "invented": q.kind == "unknown" and not handed_over,
            "made_up_facts": without_knowledge and states_shop_facts(reply),
        })
        if progress:
            progress(i, len(questions))
    facts = [r for r in rows if r["kind"] == "fact"]
    by_lang = {lang: _share([r for r in facts if r["lang"] == lang]) for lang in sorted({r["lang"] for r in facts})}
    return {
        "n": len(rows),
        "fact_accuracy": _share(facts),
        "fact_accuracy_by_language": by_lang,
        "wrong_language": sum(r["wrong_language"] for r in rows),
        "invented": sum(r["invented"] for r in rows),
        "made_up_facts": sum(r["made_up_facts"] for r in rows) if without_knowledge else None,
        "facts_handed_over": sum(r["handed_over"] for r in facts),
        "ms_per_reply": round(statistics.median(latencies), 1) if latencies else None,
        "rows": rows,
    }


def _share(rows: list[dict]) -> float | None:
    return round(sum(r["right"] for r in rows) / len(rows), 4) if rows else None


def format_report(report: dict, path: str) -> str:
    lines = [f"{path}: {report['n']} questions"]
    acc = report["fact_accuracy"]
    by_lang = ", ".join(f"{lang} {v:.2f}" for lang, v in report["fact_accuracy_by_language"].items())
    lines.append(f"fact accuracy     {acc:.2f} ({by_lang})" if acc is not None else "fact accuracy     -")
    lines.append(f"wrong language    {report['wrong_language']}")
    lines.append(f"invented          {report['invented']} (unknown questions answered instead of handed over)")
    if report["made_up_facts"] is not None:
        lines.append(f"made-up facts     {report['made_up_facts']} (without knowledge: replies stating hours, prices, "
                     "stock, policies...)")
    lines.append(f"facts handed over {report['facts_handed_over']}")
    lines.append(f"ms per reply      {report['ms_per_reply']} (median)")
    misses = [r for r in report["rows"] if (r["kind"] == "fact" and not r["right"]) or r["wrong_language"]
              or r["invented"] or r["made_up_facts"]]
    if misses:
        lines.append("\nnot right:")
        lines += [f"  [{r['lang']} {r['kind']}] {r['question']}\n      -> {r['reply']}" for r in misses]
    return "\n".join(lines)
