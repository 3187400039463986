"""The /stats chart: customer messages per day, the negative part in red, drawn with matplotlib (Agg, no display)."""

from __future__ import annotations

import io
from datetime import date, timedelta

RED, BLUE = "#d7413a", "#6e96d7"
# 960 x 540 pixels: sharp on a phone, and Telegram shows it without scaling it down much.
SIZE_INCHES, DPI = (6.4, 3.6), 150


def daily_png(days: list[tuple[int, int]], today: date) -> bytes:
    """Stacked bars per (messages, negative) day, the last one `today`: red the negative part, blue the rest."""
    from matplotlib.figure import Figure  # imported on first /stats: ~0.5 s that a start does not need to pay
    from matplotlib.ticker import MaxNLocator

    dates = [today - timedelta(days=len(days) - 1 - i) for i in range(len(days))]
    negative = [n for _, n in days]
    other = [m - n for m, n in days]
    fig = Figure(figsize=SIZE_INCHES, dpi=DPI, layout="constrained")  # no pyplot: no global state, thread-safe
    ax = fig.add_subplot()
    ax.bar(dates, negative, color=RED, label="read negative")
    ax.bar(dates, other, bottom=negative, color=BLUE, label="other")
    ax.set_title(f"Customer messages per day, last {len(days)} days", fontsize=11)
    ax.set_ylabel("messages")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ticks = dates[::-2] if len(dates) > 8 else dates  # 14 dates side by side would overlap at phone size; today always
    ax.set_xticks(ticks, ["today" if d == today else d.strftime("%a %-d %b") for d in ticks], rotation=45, ha="right",
                  fontsize=8)
    ax.set_ylim(0, max(1, max((m for m, _ in days), default=0)) * 1.15)
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="best", frameon=False, fontsize=9)
    out = io.BytesIO()
    fig.savefig(out, format="png")
    return out.getvalue()


def caption(days: list[tuple[int, int]]) -> str:
    """The chart's numbers in words, for operators who read rather than look."""
    total, negative = sum(m for m, _ in days), sum(n for _, n in days)
    share = negative / total if total else 0.0
    peak = max((m for m, _ in days), default=0)
    return (f"Customer messages per day, last {len(days)} days, today on the right; red: the part read negative.\n"
            f"In all: {total}, {share:.0%} negative; the busiest day: {peak}.")
