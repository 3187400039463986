"""The /stats chart, drawn with matplotlib (Agg, no display): customer messages per day with the negative part in
red and its share above each bar; below, the day's average CSAT rating."""

from __future__ import annotations

import io
import statistics
from datetime import date, timedelta

RED, BLUE, GREEN = "#d7413a", "#6e96d7", "#2a9d5c"
# 960 x 720 pixels: sharp on a phone, and Telegram shows it without scaling it down much.
SIZE_INCHES, DPI = (6.4, 4.8), 150


def daily_png(days: list[tuple[int, int]], ratings: list[list[int]], today: date) -> bytes:
    """Per day (the last one `today`): stacked (messages, negative) bars, red the negative part with its share
    written above; under them the average of that day's CSAT ratings (1-5) with how many there were."""
    from matplotlib.figure import Figure  # imported on first /stats: ~0.5 s that a start does not need to pay
    from matplotlib.ticker import MaxNLocator

    dates = [today - timedelta(days=len(days) - 1 - i) for i in range(len(days))]
    negative = [n for _, n in days]
    other = [m - n for m, n in days]
    fig = Figure(figsize=SIZE_INCHES, dpi=DPI, layout="constrained")  # no pyplot: no global state, thread-safe
    ax, csat = fig.subplots(2, 1, sharex=True, height_ratios=[2.3, 1])
    ax.bar(dates, negative, color=RED, label="read negative")
    ax.bar(dates, other, bottom=negative, color=BLUE, label="other")
    top = max(1, max((m for m, _ in days), default=0))
    for d, (messages, neg) in zip(dates, days):
        if neg:  # the share, where there is one: a red sliver alone is hard to judge on a phone
            ax.text(d, messages + top * 0.02, f"{neg / messages:.0%}", ha="center", va="bottom", fontsize=7)
    ax.set_title(f"Customer messages per day, last {len(days)} days", fontsize=11)
    ax.set_ylabel("messages")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylim(0, top * 1.2)
    ax.legend(loc="upper left", frameon=False, fontsize=9)

    rated = [(d, statistics.mean(r), len(r)) for d, r in zip(dates, ratings) if r]
    csat.plot([d for d, _, _ in rated], [avg for _, avg, _ in rated], "o-", color=GREEN, markersize=5)
    for d, avg, count in rated:
        csat.annotate(f"{avg:.1f} ({count})", (d, avg), textcoords="offset points", xytext=(0, -12), ha="center",
                      fontsize=7)
    csat.set_ylim(0.3, 5.5)
    csat.set_yticks([1, 3, 5])
    csat.set_ylabel("CSAT")
    if not rated:
        csat.text(0.5, 0.5, "no ratings in these days", transform=csat.transAxes, ha="center", va="center",
                  fontsize=8, color="grey")
    ticks = dates[::-2] if len(dates) > 8 else dates  # 14 dates side by side would overlap at phone size; today always
    csat.set_xticks(ticks, ["today" if d == today else d.strftime("%a %-d %b") for d in ticks], rotation=45,
                    ha="right", fontsize=8)
    for axes in (ax, csat):
        axes.spines[["top", "right"]].set_visible(False)
        axes.grid(axis="y", alpha=0.3)
    out = io.BytesIO()
    fig.savefig(out, format="png")
    return out.getvalue()


def caption(days: list[tuple[int, int]], ratings: list[list[int]]) -> str:
    """The chart's numbers in words, for operators who read rather than look."""
    total, negative = sum(m for m, _ in days), sum(n for _, n in days)
    share = negative / total if total else 0.0
    peak = max((m for m, _ in days), default=0)
    every = [r for day in ratings for r in day]
    csat = f"CSAT {statistics.mean(every):.1f} of 5 from {len(every)} ratings" if every else "no CSAT ratings"
    return (f"Customer messages per day, last {len(days)} days, today on the right; red: the part read negative; "
            f"green: the day's average CSAT (number of ratings).\n"
            f"In all: {total}, {share:.0%} negative; the busiest day: {peak}; {csat}.")
