"""The SQLite layer against a real file: migrations, round trips, history order and limits, isolation, deletion."""

import os
import stat

import aiosqlite

from storage.db import Database
from storage.migrations import MIGRATIONS


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
