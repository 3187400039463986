"""The SQLite layer against a real file: migrations, round trips, history order and limits, isolation, deletion."""

import asyncio
import os
import sqlite3
import stat
import subprocess
import sys

from datetime import datetime
from zoneinfo import ZoneInfo

import aiosqlite
import pytest

from bot.telegram.handlers.operator import day_starts
from storage.db import Database, DatabaseOpenError, KnowledgeEntry, Rated
from storage.migrations import MIGRATIONS
from tests.conftest import REPO, backdate, dump_config


async def test_migrations_run_once_from_empty_and_are_recorded(tmp_path):
    path = tmp_path / "fresh" / "shopbot.db"
    db = await Database.open(path)
    await db.close()
    async with aiosqlite.connect(path) as conn:
        names = [r[0] for r in await (await conn.execute("SELECT name FROM _migrations ORDER BY name")).fetchall()]
        tables = {r[0] for r in await (await conn.execute("SELECT name FROM sqlite_master WHERE type='table'")).fetchall()}
        mode = (await (await conn.execute("PRAGMA journal_mode")).fetchone())[0]
    assert names == [m.__name__ for m in MIGRATIONS]
    assert {"customers", "messages", "alerts"} <= tables
    assert mode == "wal"
    db = await Database.open(path)  # a second start applies nothing and keeps the data
    await db.close()


async def test_database_file_is_readable_by_the_owner_only(tmp_path):
    db = await Database.open(tmp_path / "shopbot.db")
    await db.close()
    assert stat.S_IMODE(os.stat(tmp_path / "shopbot.db").st_mode) == 0o600


async def test_message_round_trip_keeps_text_byte_exact_and_sentiment(db):
    ann = await db.customer("telegram", "42", "Ann", "ann_k")
    text = "坏了!! <b>broken</b> 'DROP TABLE messages;-- 😡\u200b"
    mid = await db.add_message(ann.id, "customer", text, external_id="7")
    await db.set_sentiment(mid, "negative", 0.93)
    [stored] = await db.messages(ann.id)
    assert (stored.text, stored.sentiment, stored.confidence, stored.role) == (text, "negative", 0.93, "customer")
    again = await db.customer("telegram", "42", None, None)  # later contact without a name keeps the name
    assert again == ann


async def test_history_is_newest_turns_oldest_first_and_per_customer(db):
    ann = await db.customer("console", "ann")
    bob = await db.customer("console", "bob")
    for i in range(5):
        await db.add_message(ann.id, "customer", f"ann {i}")
        await db.add_message(bob.id, "customer", f"bob {i}")
    await db.add_message(ann.id, "customer", "[photo]", kind="photo")
    turns = await db.history(ann.id, 3)
    assert [t.text for t in turns] == ["ann 2", "ann 3", "ann 4"]  # non-text events are not turns
    assert all(t.text.startswith("bob") for t in await db.history(bob.id, 10))


async def test_reset_hides_old_turns_from_replies_but_keeps_them(db):
    ann = await db.customer("console", "ann")
    await db.add_message(ann.id, "customer", "before")
    await db.reset_history(ann.id)
    await db.add_message(ann.id, "customer", "after")
    assert [t.text for t in await db.history(ann.id, 10)] == ["after"]
    assert len(await db.messages(ann.id)) == 2


async def test_forget_deletes_everything_about_one_customer_only(db):
    ann = await db.customer("telegram", "1")
    bob = await db.customer("telegram", "2")
    mid = await db.add_message(ann.id, "customer", "awful")
    await db.add_message(ann.id, "bot", "sorry")
    await db.add_alert(ann.id, mid, "negative message", "negative", 0.9)
    await db.add_message(bob.id, "customer", "hi")
    assert await db.forget(ann.id) == {"messages": 2, "alerts": 1, "customers": 1}
    assert await db.messages(ann.id) == [] and await db.alerts(ann.id) == []
    assert await db.customer_by_id(ann.id) is None
    assert len(await db.messages(bob.id)) == 1


async def test_stats_count_customers_messages_negative_share_and_alerts(db):
    ann = await db.customer("telegram", "1")
    bob = await db.customer("telegram", "2")
    for customer, label in ((ann, "negative"), (ann, "positive"), (bob, "positive"), (bob, "neutral")):
        mid = await db.add_message(customer.id, "customer", "x")
        await db.set_sentiment(mid, label, 0.9)
    alert = await db.add_alert(ann.id, None, "negative message", "negative", 0.9)
    await db.mark_alert_delivered(alert)
    stats = await db.stats_since(0)
    assert stats == {"customers": 2, "messages": 4, "negative_share": 0.25, "alerts": 1, "alerts_delivered": 1}


async def test_the_chart_counts_local_days_across_a_dst_change(db):
    # Berlin's clocks went forward on 29 March 2026: that day had 23 hours. 24-hour buckets from the chart's first
    # midnight began at 01:00 after it, so what was sent in a day's first hour counted for the day before.
    berlin = ZoneInfo("Europe/Berlin")
    starts = day_starts(datetime(2026, 4, 2, tzinfo=berlin), 14)  # today 2 April; the chart from 20 March
    assert [datetime.fromtimestamp(t, berlin).strftime("%m-%d %H:%M") for t in (starts[0], starts[-1])] == [
        "03-20 00:00", "04-03 00:00"]
    assert [b - a for a, b in zip(starts, starts[1:])].count(23 * 3600) == 1
    ann = await db.customer("telegram", "1")
    sent = {(3, 28, 23, 30): "negative", (3, 29, 23, 30): "neutral", (3, 31, 0, 30): "negative",
            (4, 2, 8, 0): "positive", (3, 19, 23, 59): "negative"}  # the last one is before the chart's first day
    for (month, day, hour, minute), label in sent.items():
        mid = await db.add_message(ann.id, "customer", "x")
        await db.set_sentiment(mid, label, 0.9)
        at = datetime(2026, month, day, hour, minute, tzinfo=berlin).timestamp()
        await backdate(db, mid, at)
    survey = await db.add_csat_survey(ann.id, (await db.start_takeover(ann.id, "7", "Olga"))[0]["id"])
    assert await db.rate_csat(survey, ann.id, 4) is Rated.RECORDED
    at = datetime(2026, 3, 30, 0, 15, tzinfo=berlin).timestamp()
    await db._db.execute("UPDATE csat_surveys SET rated_at = ? WHERE id = ?", (at, survey))
    await db._db.commit()
    days = await db.daily_counts(starts)
    assert len(days) == 14 and sum(m for m, _ in days) == 4
    assert days[8:12] == [(1, 1), (1, 0), (0, 0), (1, 1)]  # 28 March to 31 March, each message on its own day
    assert days[13] == (1, 0)
    ratings = await db.daily_ratings(starts)
    assert ratings[10] == [4] and sum(map(len, ratings)) == 1


async def test_many_customers_writing_during_a_transaction_that_fails_midway_lose_nothing(db):
    """30 customers write while a knowledge import fails on its last row, a /forget and retention run:
    every customer write lands, the failed import changes nothing, no transaction trips over another."""
    gone = await db.customer("telegram", "999")
    await db.add_message(gone.id, "customer", "delete me")
    entries = [KnowledgeEntry(str(i), "en", f"question {i}", f"answer {i}") for i in range(100)]
    duplicate = KnowledgeEntry("0", "en", "again", "again")  # the primary key refuses it: a failure midway

    async def customer(n: int) -> None:
        c = await db.customer("telegram", str(n))
        for i in range(5):
            assert await db.inbox_add(n * 100 + i, "{}")
            await db.add_message(c.id, "customer", f"{n}-{i}")

    results = await asyncio.gather(db.replace_knowledge(entries + [duplicate], "faq.csv", "sha"),
                                   db.forget(gone.id), db.delete_older_than(0),
                                   *(customer(n) for n in range(30)), return_exceptions=True)
    assert isinstance(results[0], sqlite3.IntegrityError)
    assert [r for r in results[1:] if isinstance(r, BaseException)] == []
    for n in range(30):
        c = await db.customer("telegram", str(n))
        assert [m.text for m in await db.messages(c.id)] == [f"{n}-{i}" for i in range(5)]
    assert len(await db.inbox_pending()) == 150
    assert await db.knowledge() == [] and await db.last_knowledge_import() is None
    with sqlite3.connect(db.path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM customers WHERE external_id = '999'").fetchone() == (0,)


def test_a_file_that_is_no_database_stops_the_chat_with_one_line_naming_it(tmp_path, tiny_config):
    # storage.path pointing at the wrong file (a backup archive, a CSV): a one-line error and exit 2, not a
    # traceback followed by a process that never exits (the connection's thread kept it alive).
    tiny_config.storage.path.write_bytes(b"id,lang,question,answer\n" * 100)
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "chat", "--json", "--config", str(dump_config(tiny_config, tmp_path))],
        input="hello\n", capture_output=True, text=True, cwd=REPO, timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"shopbot: storage.path: cannot open {tiny_config.storage.path}: file is not a database"]


def test_a_database_another_program_holds_is_a_failure_a_restart_may_cure(tmp_path, tiny_config):
    # A backup tool holding a write lock past busy_timeout (5 s): exit 1, which systemd restarts, not 2, which it
    # leaves stopped as a config error.
    holder = sqlite3.connect(tiny_config.storage.path)
    holder.execute("CREATE TABLE hold (x)")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        result = subprocess.run(
            [sys.executable, "-m", "bot.cli", "chat", "--json", "--config", str(dump_config(tiny_config, tmp_path))],
            input="hello\n", capture_output=True, text=True, cwd=REPO, timeout=60,
        )
    finally:
        holder.close()
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"shopbot: storage.path: cannot open {tiny_config.storage.path}: database is locked"]


async def test_a_database_from_a_newer_shopbot_is_refused_and_left_unchanged(tmp_path):
    path = tmp_path / "shopbot.db"
    db = await Database.open(path)
    await db.close()
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO _migrations VALUES ('m999_from_the_future', 0)")
    with pytest.raises(DatabaseOpenError, match="newer shopbot .*m999_from_the_future"):
        await Database.open(path)
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM _migrations").fetchone()[0] == len(MIGRATIONS) + 1
