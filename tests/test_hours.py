"""Business hours (bot/hours.py and [hours]) over fixed instants: weekdays, midnight, DST, holidays, bad config."""

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from bot import hours
from bot.config import ConfigError, load_config
from tests.test_config import override

BERLIN = ZoneInfo("Europe/Berlin")
WEEK = ["09:00-18:00"] * 5 + ["10:00-12:00, 22:00-02:00", "closed"]  # Mon-Fri; Saturday morning and night


def schedule(week=WEEK, holidays=(), tz=BERLIN) -> hours.Schedule:
    return hours.Schedule(tz, tuple(map(hours.openings, week)), frozenset(map(hours.holiday, holidays)))


def at(text: str, tz=BERLIN) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=tz)


@pytest.mark.parametrize(("now", "open_", "opens"), [
    ("2026-11-30 08:59", False, "2026-11-30 09:00"),  # Monday before opening
    ("2026-11-30 09:00", True, "2026-11-30 09:00"),
    ("2026-11-30 18:00", False, "2026-12-01 09:00"),  # closing time itself is closed
    ("2026-12-04 19:00", False, "2026-12-05 10:00"),  # Friday evening: Saturday morning next
    ("2026-12-05 12:30", False, "2026-12-05 22:00"),  # between Saturday's two openings
    ("2026-12-06 01:59", True, "2026-12-06 01:59"),  # Saturday night runs into Sunday
    ("2026-12-06 02:00", False, "2026-12-07 09:00"),  # Sunday closed
])
def test_weekly_schedule_with_a_split_day_and_a_night_past_midnight(now, open_, opens):
    s = schedule()
    assert s.is_open(at(now)) is open_
    assert s.next_opening(at(now)) == at(opens)


def test_instants_in_other_zones_are_judged_in_the_shops_zone():
    s = schedule()
    # 07:30 UTC on a Monday in winter is 08:30 in Berlin: closed for 30 more minutes.
    now = datetime(2026, 11, 30, 7, 30, tzinfo=timezone.utc)
    assert not s.is_open(now) and s.next_opening(now) - now == timedelta(minutes=30)
    assert s.next_opening(now).tzinfo == BERLIN


def test_dst_days_keep_wall_clock_hours():
    s = schedule(week=["01:00-04:00"] * 7)
    # 29 March 2026: Berlin skips 02:00-03:00, so the opening lasts two real hours (it still closes at 04:00).
    spring = at("2026-03-29 01:30").astimezone(timezone.utc)  # real hours are counted in UTC
    assert [s.is_open(spring + timedelta(hours=h)) for h in range(3)] == [True, True, False]
    # 25 October 2026: 02:00-03:00 happens twice, so the opening lasts four real hours.
    autumn = at("2026-10-25 00:30").astimezone(timezone.utc)
    assert [s.is_open(autumn + timedelta(hours=h)) for h in range(6)] == [False, True, True, True, True, False]
    # Closed after the short night; the next one opens at 01:00 CEST.
    assert s.next_opening(at("2026-03-29 04:00")) == at("2026-03-30 01:00")


def test_holidays_cancel_the_openings_that_start_that_day():
    s = schedule(holidays=["2026-12-24", "2026-12-25"])
    assert not s.is_open(at("2026-12-24 10:00"))
    assert s.next_opening(at("2026-12-23 19:00")) == at("2026-12-26 10:00")  # Saturday 26th
    night = schedule(week=["22:00-02:00"] * 7, holidays=["2026-12-25"])
    assert night.is_open(at("2026-12-25 01:00"))  # the night that began on the 24th ends as usual
    assert not night.is_open(at("2026-12-25 23:00"))
    assert night.next_opening(at("2026-12-25 03:00")) == at("2026-12-26 22:00")


def test_a_long_run_of_holidays_still_finds_the_next_opening():
    days = [(datetime(2027, 1, 1) + timedelta(days=d)).date().isoformat() for d in range(40)]
    s = schedule(holidays=days)
    assert s.next_opening(at("2026-12-31 19:00")) == at("2027-02-10 09:00")


def test_holidays_on_the_only_opening_days_of_the_week_move_the_opening_a_week_on():
    mondays = schedule(week=["09:00-18:00"] + ["closed"] * 6, holidays=["2026-12-07"])
    assert mondays.next_opening(at("2026-11-30 19:00")) == at("2026-12-14 09:00")  # the Monday after the holiday
    two_days = schedule(week=["09:00-12:00"] * 2 + ["closed"] * 5,
                        holidays=["2026-12-07", "2026-12-08", "2026-12-14", "2026-12-15"])
    assert two_days.next_opening(at("2026-12-01 13:00")) == at("2026-12-21 09:00")  # two weeks of holidays


def test_when_text_in_english_and_chinese():
    now = at("2026-11-30 20:00")  # a Monday
    assert hours.when_text(at("2026-11-30 22:00"), now, "en") == "today at 22:00"
    assert hours.when_text(at("2026-12-01 09:00"), now, "en") == "tomorrow at 09:00"
    assert hours.when_text(at("2026-12-03 09:00"), now, "en") == "on Thursday 3 December at 09:00"
    assert hours.when_text(at("2026-12-01 09:00"), now, "zh") == "明天 09:00"
    assert hours.when_text(at("2026-12-03 09:00"), now, "zh") == "12月3日（周四）09:00"


def test_no_hours_table_is_always_open():
    config = load_config(environ={})
    assert config.hours is None
    assert hours.ALWAYS_OPEN.is_open(at("2026-12-25 03:00"))


def test_a_valid_hours_table_loads(tmp_path):
    path = override(tmp_path, "hours", {"timezone": "Asia/Shanghai", "mon": "09:00-18:00", "sat": "closed",
                                        "holidays": ["2027-02-17"], "alerts_outside_hours": "digest"})
    config = load_config(path, environ={})
    s = config.hours.schedule()
    assert s.tz.key == "Asia/Shanghai" and config.hours.alerts_outside_hours == "digest"
    assert s.next_opening(at("2026-11-30 19:00", s.tz)) == at("2026-12-07 09:00", s.tz)


@pytest.mark.parametrize(("table", "message"), [
    ({"timezone": "Mars/Olympus", "mon": "09:00-18:00"}, "hours.timezone: unknown time zone 'Mars/Olympus'"),
    ({"timezone": "UTC", "mon": "9 to 5"}, "hours.mon: must be \"closed\" or ranges like \"09:00-18:00\""),
    ({"timezone": "UTC", "tue": "09:00-25:00"}, "hours.tue: '09:00-25:00' is not a time range within a day"),
    ({"timezone": "UTC", "wed": "10:00-10:00"}, "hours.wed: '10:00-10:00' is empty"),
    ({"timezone": "UTC"}, "hours.mon: no day has opening hours"),
    ({"timezone": "UTC", "mon": "09:00-18:00", "holidays": ["25.12.2026"]},
     "hours.holidays[0]: must be a date like 2026-12-25"),
    ({"timezone": "UTC", "mon": "09:00-18:00", "alerts_outside_hours": "later"},
     "hours.alerts_outside_hours: must be one of send, digest"),
    ({"mon": "09:00-18:00"}, "hours.timezone: missing"),
    ({"timezone": "UTC", "monday": "09:00-18:00"}, "hours.monday: unknown key"),
])
def test_a_bad_hours_table_names_the_key_and_the_reason(tmp_path, table, message):
    with pytest.raises(ConfigError) as error:
        load_config(override(tmp_path, "hours", table), environ={})
    assert str(error.value).startswith(f"config error: {message}")
