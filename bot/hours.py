"""Business hours, channel-agnostic: is the shop open at an instant, and when does it open next ([hours])."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # datetime.weekday() order
CLOSED = "closed"
MINUTES_PER_DAY = 24 * 60
_RANGE = re.compile(r"^(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$")


@dataclass(frozen=True)
class Opening:
    """One opening on a weekday, in minutes after local midnight; `end` beyond a day runs past midnight."""

    start: int
    end: int


def zone(name: str) -> ZoneInfo:
    """The IANA time zone called `name`; ValueError with the reason otherwise."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}: use an IANA name such as \"Europe/Berlin\" or "
                         "\"Asia/Shanghai\"") from None


def openings(text: str) -> tuple[Opening, ...]:
    """A day's hours: "closed", or ranges like "09:00-18:00" or "09:00-12:00, 13:00-18:00" ("22:00-02:00" runs past
    midnight, "24:00" is the day's end); ValueError with the reason otherwise."""
    if text.strip().lower() == CLOSED:
        return ()
    found = []
    for part in text.split(","):
        match = _RANGE.match(part.strip())
        if not match:
            raise ValueError(f"must be \"{CLOSED}\" or ranges like \"09:00-18:00\" (several separated by commas), "
                             f"got {text!r}")
        h1, m1, h2, m2 = map(int, match.groups())
        if not (h1 < 24 and m1 < 60 and m2 < 60 and (h2 < 24 or (h2, m2) == (24, 0))):
            raise ValueError(f"{part.strip()!r} is not a time range within a day (00:00 to 24:00)")
        start, end = h1 * 60 + m1, h2 * 60 + m2
        if start == end:
            raise ValueError(f"{part.strip()!r} is empty: opening and closing time are the same")
        found.append(Opening(start, end if end > start else end + MINUTES_PER_DAY))
    return tuple(sorted(found, key=lambda o: o.start))


def holiday(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"must be a date like 2026-12-25, got {text!r}") from None


class Schedule:
    """A shop's week in its time zone, minus holidays. A holiday cancels the openings that start on that date."""

    def __init__(self, tz: ZoneInfo, week: tuple[tuple[Opening, ...], ...], holidays: frozenset[date] = frozenset()):
        if not any(week):
            raise ValueError("no day has opening hours")
        self.tz, self.week, self.holidays = tz, week, holidays

    def _on(self, day: date) -> list[tuple[datetime, datetime]]:
        """The openings starting on local date `day`, as UTC instants (so DST days have their real length)."""
        if day in self.holidays:
            return []
        midnight = datetime.combine(day, time(0))
        return [tuple((midnight + timedelta(minutes=m)).replace(tzinfo=self.tz).astimezone(timezone.utc)
                      for m in (o.start, o.end)) for o in self.week[day.weekday()]]

    def is_open(self, now: datetime) -> bool:
        today = now.astimezone(self.tz).date()
        return any(start <= now < end for day in (today - timedelta(days=1), today) for start, end in self._on(day))

    def next_opening(self, now: datetime) -> datetime:
        """`now` if open, else when the shop opens next, in its time zone."""
        if self.is_open(now):
            return now.astimezone(self.tz)
        day = now.astimezone(self.tz).date()
        # Ends within len(holidays) + 1 weeks: every week has an opening day and a holiday cancels only one date (a
        # shop open only on Mondays, with next Monday off, opens again in two weeks).
        while True:
            starts = [start for start, _ in self._on(day) if start > now]
            if starts:
                return min(starts).astimezone(self.tz)
            day += timedelta(days=1)


ALWAYS_OPEN = Schedule(ZoneInfo("UTC"), ((Opening(0, MINUTES_PER_DAY),),) * 7)  # no [hours]: today's behaviour

_EN_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_EN_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
              "November", "December")
_ZH_DAYS = "一二三四五六日"


def when_text(at: datetime, now: datetime, lang: str) -> str:
    """`at` as a customer reads it in `lang` (en, zh; others ISO), relative to `now`, in `at`'s time zone."""
    days = (at.date() - now.astimezone(at.tzinfo).date()).days
    clock = at.strftime("%H:%M")
    if lang == "zh":
        day = {0: "今天 ", 1: "明天 "}.get(days, f"{at.month}月{at.day}日（周{_ZH_DAYS[at.weekday()]}）")
        return f"{day}{clock}"
    if lang == "en":
        day = {0: "today", 1: "tomorrow"}.get(days, f"on {_EN_DAYS[at.weekday()]} {at.day} {_EN_MONTHS[at.month - 1]}")
        return f"{day} at {clock}"
    return at.strftime("%Y-%m-%d %H:%M")
