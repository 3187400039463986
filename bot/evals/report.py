"""The analysis report's numbers, counted from DIR/rows.csv alone, and its Markdown rendering (report.md)."""

from __future__ import annotations

import csv
import heapq
import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

LABELS = ("negative", "neutral", "positive")
TOPICS = 10
EXAMPLES = 3
MOST_NEGATIVE = 10
LISTED_SKIPS = 50
DAYS_BY_DAY = 62  # a longer span is counted by week, over two years by month, and over ten years by year
FAR = 3  # interquartile ranges (a month at least) beyond the middle half of the dates: a date there is left out
YMD = re.compile(r"(\d{4})\D{1,2}(\d{1,2})\D{1,2}(\d{1,2})")


@dataclass
class Topic:
    phrase: str
    negative: int  # negative rows with the phrase
    mentions: int  # all rows with the phrase
    examples: list[str] = field(default_factory=list)


@dataclass
class Summary:
    """Every number the report shows; built by summarise() from the rows file, never from model text."""

    title: str
    reading: str = ""  # how the labels were read (analyze.json): which model, in this process or on a server
    rows: int = 0
    by_sentiment: Counter = field(default_factory=Counter)
    by_language: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))  # language -> labels
    by_intent: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))  # intent -> labels
    by_source: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    by_period: dict[date, Counter] = field(default_factory=lambda: defaultdict(Counter))
    period: str = ""  # "day" | "week" | "month"; "" when no row has a date
    undated: int = 0  # rows with a date that could not be read
    far: int = 0  # rows dated far from all the others (FAR): counted everywhere but in the chart
    far_span: tuple[date, date] | None = None  # the first and last of those dates
    topics: list[Topic] = field(default_factory=list)
    most_negative: list[tuple[float, str, str]] = field(default_factory=list)  # (confidence, ref, text)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (ref, reason)


def parse_date(value: str) -> date | None:
    """ISO dates and times, 2024/5/1, 2024.05.01, 2024年5月1日, or unix seconds; None when it is none of them."""
    value = value.strip()
    if re.fullmatch(r"\d{9,10}(\.\d+)?", value):
        return datetime.fromtimestamp(float(value)).date()
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).date()
    except ValueError:
        pass
    found = YMD.match(value)
    try:
        return date(*map(int, found.groups())) if found else None
    except ValueError:
        return None


def summarise(out: Path, title: str, reading: str = "") -> Summary:
    """Two streaming passes over DIR/rows.csv: counts first, then example comments for the top topics."""
    summary = Summary(title, reading)
    days: Counter = Counter()
    phrases: dict[str, Counter] = defaultdict(Counter)  # phrase -> label -> rows
    negative: list[tuple[float, str, str]] = []
    for row in _rows(out):
        label = row["sentiment"]
        summary.rows += 1
        summary.by_sentiment[label] += 1
        summary.by_language[row["language"]][label] += 1
        summary.by_intent[row["intent"]][label] += 1
        if row["source"]:
            summary.by_source[row["source"]][label] += 1
        if row["date"]:
            day = parse_date(row["date"])
            if day is None:
                summary.undated += 1
            else:
                days[(day, label)] += 1
        for phrase in _phrases(row):
            phrases[phrase][label] += 1
        if label == "negative":
            entry = (float(row["confidence"]), row["ref"], row["text"])
            if len(negative) < MOST_NEGATIVE:
                heapq.heappush(negative, entry)
            else:
                heapq.heappushpop(negative, entry)
    summary.most_negative = sorted(negative, reverse=True)
    lo, hi = _chart_span(days)
    far = Counter({key: n for key, n in days.items() if not lo <= key[0].toordinal() <= hi})
    if far:
        summary.far = sum(far.values())
        summary.far_span = (min(day for day, _ in far), max(day for day, _ in far))
    summary.period, summary.by_period = _by_period(days - far)
    summary.topics = _topics(phrases, summary.by_sentiment["negative"], summary.rows)
    _add_examples(out, summary.topics)
    skipped = out / "skipped.csv"
    if skipped.exists():
        with open(skipped, encoding="utf-8-sig", newline="") as f:
            summary.skipped = [(r["ref"], r["reason"]) for r in csv.DictReader(f)]
    return summary


def _rows(out: Path):
    with open(out / "rows.csv", encoding="utf-8-sig", newline="") as f:
        yield from csv.DictReader(f)


def _phrases(row: dict) -> list[str]:
    return [p for p in row["key_phrases"].split("; ") if p]


def _chart_span(days: Counter) -> tuple[int, int]:
    """The first and last day (as ordinals) the chart shows: FAR interquartile ranges around the middle half of the
    rows' dates. A comment dated 1970 (a date field's default) among a year of 2024's would stretch it over 55 years
    of empty bars."""
    by_day: Counter = Counter()
    for (day, _), n in days.items():
        by_day[day] += n
    ordered, total = sorted(by_day.items()), sum(by_day.values())

    def at(rank: int) -> int:
        """The day of the rank-th dated row, oldest first."""
        seen = 0
        for day, n in ordered:
            seen += n
            if seen >= rank:
                return day.toordinal()
        return 0  # no dated rows: no chart

    q1, q3 = at(math.ceil(total / 4)), at(math.ceil(total * 3 / 4))
    reach = FAR * max(q3 - q1, 31)
    return q1 - reach, q3 + reach


def _by_period(days: Counter) -> tuple[str, dict[date, Counter]]:
    """Label counts per day, week (starting Monday), month or year, whichever keeps the chart readable."""
    if not days:
        return "", {}
    first, last = min(day for day, _ in days), max(day for day, _ in days)
    span = (last - first).days
    period = "day" if span <= DAYS_BY_DAY else "week" if span <= 730 else "month" if span <= 3653 else "year"
    start = {"day": lambda d: d, "week": lambda d: d - timedelta(days=d.weekday()),
             "month": lambda d: d.replace(day=1), "year": lambda d: d.replace(month=1, day=1)}[period]
    after = {"day": lambda d: d + timedelta(days=1), "week": lambda d: d + timedelta(days=7),
             "month": lambda d: (d + timedelta(days=31)).replace(day=1),
             "year": lambda d: d.replace(year=d.year + 1)}[period]
    # Every period from the first to the last, the empty ones too: weeks without a comment are news, and the chart's
    # bars stand evenly in time. No period after the last is computed: after 9999-12 there is none.
    counts: dict[date, Counter] = {}
    period_start = start(first)
    while True:
        counts[period_start] = Counter()
        if period_start == start(last):
            break
        period_start = after(period_start)
    for (day, label), n in days.items():
        counts[start(day)][label] += n
    return period, counts


def _topics(phrases: dict[str, Counter], negatives: int, rows: int) -> list[Topic]:
    """Phrases of many negative comments that are more often negative than comments in general.

    A phrase as common in praise as in complaints (味道, food) is what the shop sells, not a complaint."""
    if not negatives:
        return []
    least = max(3, round(negatives * 0.005))
    base = negatives / rows
    kept = [Topic(p, c["negative"], sum(c.values())) for p, c in phrases.items()
            if c["negative"] >= least and c["negative"] / sum(c.values()) > base]
    return sorted(kept, key=lambda t: (-t.negative, t.phrase))[:TOPICS]


def _add_examples(out: Path, topics: list[Topic]) -> None:
    """Up to EXAMPLES negative comments quoted verbatim per topic, the most surely negative first."""
    wanted = {t.phrase: t for t in topics}
    found: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for row in _rows(out):
        if row["sentiment"] != "negative":
            continue
        for phrase in _phrases(row):
            if phrase in wanted:
                heap = found[phrase]
                entry = (float(row["confidence"]), row["text"])
                (heapq.heappush if len(heap) < EXAMPLES else heapq.heappushpop)(heap, entry)
    for phrase, topic in wanted.items():
        topic.examples = [text for _, text in sorted(found[phrase], reverse=True)]


def labels_note(s: Summary) -> str:
    return f"Labels were read by {s.reading}" if s.reading else "Labels were read by the model"


def share(part: int, whole: int) -> str:
    return f"{part / whole:.1%}" if whole else "–"


def period_name(start: date, period: str) -> str:
    return {"month": f"{start:%Y-%m}", "year": f"{start:%Y}"}.get(period, start.isoformat())


def far_note(s: Summary, shown: str) -> str:
    return (f"{s.far} rows dated far from the others ({s.far_span[0]} to {s.far_span[1]}) are left out of this "
            f"{shown}; every other number counts them.")


def markdown(s: Summary) -> str:
    """report.md: the same numbers as report.html, as tables."""
    lines = [f"# What customers say: {s.title}", "",
             f"{s.rows} comments analysed; {len(s.skipped)} rows of the input could not be read (listed at the end).",
             f"{labels_note(s)}; every number here is counted from rows.csv.",
             "",
             "## Sentiment", "", "| sentiment | comments | share |", "|---|---:|---:|"]
    lines += [f"| {label} | {s.by_sentiment[label]} | {share(s.by_sentiment[label], s.rows)} |" for label in LABELS]
    for heading, groups in (("Intent", s.by_intent), ("Language", s.by_language), ("Source", s.by_source)):
        if groups:
            lines += ["", f"## By {heading.lower()}", "", _label_table_header(heading)]
            lines += [_label_table_row(name, counts, s.rows) for name, counts in sorted(groups.items())]
    if s.period:
        lines += ["", f"## Sentiment by {s.period}", "", _label_table_header(s.period)]
        lines += [_label_table_row(period_name(start, s.period), counts, None) for start, counts in s.by_period.items()]
        if s.undated:
            lines += ["", f"{s.undated} rows have a date that could not be read; they are not in this table."]
        if s.far:
            lines += ["", far_note(s, "table")]
    lines += ["", "## Most frequent complaint topics", ""]
    if not s.topics:
        lines.append("No phrase comes up in enough negative comments to call it a topic.")
    for t in s.topics:
        lines += [f"### {t.phrase}: {t.negative} negative comments "
                  f"({share(t.negative, t.mentions)} of the {t.mentions} that mention it)", ""]
        lines += [f"> {_quote(text)}" + "\n" for text in t.examples]
    lines += ["## Most negative comments", ""]
    lines += [f"{i}. ({confidence:.2f}, row {ref}) {_quote(text)}"
              for i, (confidence, ref, text) in enumerate(s.most_negative, 1)] or ["None."]
    if s.skipped:
        lines += ["", f"## Rows that could not be read ({len(s.skipped)})", "", "| line | why |", "|---|---|"]
        lines += [f"| {ref} | {reason} |" for ref, reason in s.skipped[:LISTED_SKIPS]]
        if len(s.skipped) > LISTED_SKIPS:
            lines.append(f"\n{len(s.skipped) - LISTED_SKIPS} more in skipped.csv.")
    return "\n".join(lines) + "\n"


def _label_table_header(first: str) -> str:
    return f"| {first.lower()} | comments | " + " | ".join(LABELS) + " |\n|---|---:|" + "---:|" * len(LABELS)


def _label_table_row(name: str, counts: Counter, whole: int | None) -> str:
    total = sum(counts.values())
    cells = " | ".join(f"{counts[label]} ({share(counts[label], total)})" for label in LABELS)
    return f"| {name} | {total}{f' ({share(total, whole)})' if whole else ''} | {cells} |"


def _quote(text: str) -> str:
    """The comment verbatim, on one line (Markdown would end a quote or list item at a newline)."""
    return " ".join(text.split())
