"""Faults and abuse over the real Application and the fake Bot API: flaky Telegram, unreachable operators,
failing model and SQLite, redeliveries, the rate limit, the queue notice, retention, access by chat id."""

import asyncio
import logging
import sqlite3
import time
from dataclasses import replace

from bot.llm.engine import ModelTimeout
from bot.retention import DAY_SECONDS, purge
from bot.service import ConversationService, Sender
from bot.telegram import inbox
from bot.telegram.app import run_telegram
from bot.telegram.handlers import sending
from testkit.fakes.engine import ScriptedEngine
from testkit.telegram_helpers import OPERATORS, TOKEN, over_fake, replies, running_bot, sent_texts

ANN, BOB, CAT, DAN = 1001, 1002, 1003, 1004
ANGRY = "My order arrived broken and nobody answers!"


def with_chat(config, **chat):
    return replace(config, chat=replace(config.chat, **chat))


async def stored(svc, chat_id: int) -> list:
    return await svc.db.messages((await svc.db.customer("telegram", str(chat_id))).id)


async def settle(seconds: float = 0.3) -> None:
    """Give handlers time to do anything they wrongly still would (a second send, a second alert)."""
    await asyncio.sleep(seconds)


async def test_429_500_and_a_timeout_on_send_message_still_deliver_each_reply_once(config, tiny_engine, fake,
                                                                                      monkeypatch, caplog):
    monkeypatch.setattr(sending, "RETRY_BACKOFF_SECONDS", 0.05)
    fake.fail_next("sendMessage", status=429, retry_after=1, chat_id=ANN)
    fake.fail_next("sendMessage", status=500, count=2, chat_id=BOB)
    async with running_bot(config, tiny_engine) as svc:
        caplog.set_level(logging.INFO, logger="httpx")  # httpx logs each request's URL, the token in it
        fake.send_text(ANN, "where is my parcel")
        fake.send_text(BOB, "do you ship abroad")
        (ann,), (bob,) = await replies(fake, ANN), await replies(fake, BOB)
        # Telegram takes the message but answers after PTB's 5 s read timeout: not retried, so not doubled.
        fake.delay("sendMessage", 5.5)
        fake.send_text(CAT, "is the teapot in stock")
        (cat,) = await replies(fake, CAT, timeout=15)
        fake.delay("sendMessage", 0)
        await settle()
        bots = {chat: [m.text for m in await stored(svc, chat) if m.role == "bot"] for chat in (ANN, BOB, CAT)}
    assert [c.status for c in fake.calls("sendMessage") if c.params["chat_id"] == ANN] == [429, 200]
    assert [c.status for c in fake.calls("sendMessage") if c.params["chat_id"] == BOB] == [500, 500, 200]
    assert [c.params["chat_id"] for c in fake.calls("sendMessage")].count(CAT) == 1
    assert bots == {ANN: [ann], BOB: [bob], CAT: [cat]}
    assert any(r.name == "httpx" for r in caplog.records) and TOKEN not in caplog.text


async def test_unreachable_operator_chat_keeps_alerts_in_the_outbox_until_it_works(config, tiny_engine, fake):
    config = replace(config, alerts=replace(config.alerts, outbox_retry_seconds=0.2))
    engine = ScriptedEngine(tiny_engine, sentiments={ANGRY: ("negative", 0.95), "still broken": ("negative", 0.95)})
    fake.block_chat(OPERATORS)  # the bot was removed from the operator group: 403
    async with running_bot(config, engine) as svc:
        fake.send_text(ANN, ANGRY)
        fake.send_text(BOB, "still broken")
        (ann,), (bob,) = await replies(fake, ANN), await replies(fake, BOB)  # customers unaffected
        await fake.wait_for(lambda c: c.method == "sendMessage" and c.params["chat_id"] == OPERATORS and c.status == 403,
                            count=3)  # both live attempts and at least one retry were refused
        assert [a["delivered_at"] for a in await svc.db.alerts()] == [None, None]
        fake.unblock_chat(OPERATORS)
        alerts = await replies(fake, OPERATORS, 2)
        await settle(0.6)  # three more retry periods: nothing is sent twice
        delivered = await svc.db.alerts()
    assert sent_texts(fake, OPERATORS) == alerts and len(alerts) == 2
    assert ANGRY in alerts[0] and "still broken" in alerts[1]
    assert all(a["delivered_at"] for a in delivered)


class FailingEngine(ScriptedEngine):
    """The sentiment role raises; the chat role times out."""

    async def sentiment(self, text):
        raise RuntimeError("sentiment exploded")

    async def reply(self, history, text):
        raise ModelTimeout("model call exceeded 60 s")


async def test_a_message_that_fails_every_try_is_kept_not_lost_and_reported(config, tiny_engine, fake, caplog,
                                                                             monkeypatch):
    monkeypatch.setattr(inbox, "RETRY_SECONDS", 0.1)
    async with running_bot(config, tiny_engine) as svc:
        svc.db.add_message = failing_once({"add_message": -1}, "add_message", svc.db.add_message)
        fake.send_text(ANN, "my order number is 4711")
        for _ in range(200):
            if await svc.db.inbox_failed():
                break
            await asyncio.sleep(0.05)
        (kept,) = await svc.db.inbox_failed()
        await settle()
        pending = await svc.db.inbox_pending()
    assert "my order number is 4711" in kept and pending == [kept]  # kept with its text for the next start
    assert sent_texts(fake, ANN) == [config.telegram.storage_error_reply.for_lang("en")]  # told once, not on every try
    assert f"failed {inbox.MAX_ATTEMPTS} times" in caplog.text


async def test_forget_also_blanks_a_message_that_failed_every_try(config, tiny_engine, fake, monkeypatch):
    monkeypatch.setattr(inbox, "RETRY_SECONDS", 0.1)
    secret = "my order number is 4711"
    async with running_bot(config, tiny_engine) as svc:
        add_message = svc.db.add_message
        svc.db.add_message = failing_once({"add_message": -1}, "add_message", add_message)
        fake.send_text(ANN, secret)
        fake.send_text(BOB, "my order number is 4712")  # another customer's given-up message stays
        for _ in range(200):
            if len(await svc.db.inbox_failed()) == 2:
                break
            await asyncio.sleep(0.05)
        assert len(await svc.db.inbox_failed()) == 2
        svc.db.add_message = add_message
        fake.send_command(ANN, "forget")
        await replies(fake, ANN, 2)  # told once that the message could not be stored, then asked to confirm
        question = fake.sent_messages(ANN)[-1]
        yes = question["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
        fake.press_button(ANN, question["message_id"], yes)
        await fake.wait_for("editMessageText")
        kept = await svc.db.inbox_failed()
    database = config.storage.path
    for path in (database, database.with_name(database.name + "-wal")):  # the file, and the WAL if one is left
        assert not path.exists() or secret.encode() not in path.read_bytes(), path.name
    assert len(kept) == 1 and "4712" in kept[0]


async def test_a_failing_outbox_run_is_reported_and_the_next_run_still_delivers(config, tiny_engine, fake, caplog):
    config = replace(config, alerts=replace(config.alerts, outbox_retry_seconds=0.2))
    engine = ScriptedEngine(tiny_engine, sentiments={ANGRY: ("negative", 0.95)})
    fake.block_chat(OPERATORS)
    async with running_bot(config, engine) as svc:
        # Not SQLite trouble but a bug's kind of error (as a customer deleted mid-run once caused).
        svc.db.undelivered_alerts = failing_once({"undelivered_alerts": 2}, "undelivered_alerts",
                                                 svc.db.undelivered_alerts, AttributeError("'NoneType' object"))
        fake.send_text(ANN, ANGRY)
        await replies(fake, ANN)
        fake.unblock_chat(OPERATORS)
        # The error note may have been refused (403) while the chat was blocked, or sent after: either way the
        # alert that a later outbox run delivers arrives.
        await fake.wait_for(lambda c: c.method == "sendMessage" and c.status == 200
                            and c.params["chat_id"] == OPERATORS and ANGRY in c.params.get("text", ""))
    assert [text for text in sent_texts(fake, OPERATORS) if ANGRY in text] != []
    assert "error while handling background work" in caplog.text


async def test_a_token_revoked_while_running_stops_the_process_with_a_non_zero_exit(tiny_config, fake, caplog):
    # Polling only: nothing asks a webhook bot when its token goes; its /healthz fails on getWebhookInfo then.
    bot = asyncio.create_task(run_telegram(over_fake(tiny_config, fake)))
    await fake.wait_for("getUpdates", timeout=60)
    fake.revoke_token()
    assert await asyncio.wait_for(bot, 30) == 2
    assert "rejected the bot token" in caplog.text and TOKEN not in caplog.text


async def test_a_slow_operator_chat_never_holds_up_a_customer_reply(config, tiny_engine, fake):
    engine = ScriptedEngine(tiny_engine, sentiments={ANGRY: ("negative", 0.95)})
    fake.hold("sendMessage", OPERATORS)  # the alert is stuck on its way (a flood-limited group)
    async with running_bot(config, engine) as svc:
        fake.send_text(ANN, ANGRY)
        fake.send_text(ANN, "hello?")
        await replies(fake, ANN, 2)
        fake.send_text(BOB, ANGRY)
        await replies(fake, BOB)
        fake.release("sendMessage", OPERATORS)
        alerts = await replies(fake, OPERATORS, 2)
        await settle()
    assert sent_texts(fake, OPERATORS) == alerts and ANGRY in alerts[0]


async def test_alerts_raised_without_an_operator_chat_do_not_flood_it_once_configured(config, tiny_engine, fake):
    engine = ScriptedEngine(tiny_engine, sentiments={ANGRY: ("negative", 0.95)})
    async with running_bot(replace(config, alerts=replace(config.alerts, operator_chat_id=None)), engine):
        fake.send_text(ANN, ANGRY)
        await replies(fake, ANN)
    async with running_bot(config, engine) as svc:
        fake.send_text(BOB, ANGRY, first_name="Bob")
        (alert,) = await replies(fake, OPERATORS)
        await settle()
        raised = await svc.db.alerts()
    assert sent_texts(fake, OPERATORS) == [alert] and "Bob" in alert
    assert len(raised) == 2  # the first is on record (/stats counts it), just never sent


async def test_model_failure_or_timeout_gets_the_fallback_and_the_message_is_stored(config, tiny_engine, fake):
    async with running_bot(config, FailingEngine(tiny_engine)) as svc:
        fake.send_text(ANN, "where is my parcel")
        assert await replies(fake, ANN) == [config.chat.fallback_reply.for_lang("en")]
        messages = await stored(svc, ANN)
    assert [(m.role, m.text) for m in messages] == [("customer", "where is my parcel"),
                                                    ("bot", config.chat.fallback_reply.for_lang("en"))]


def failing_once(failures: dict, name: str, real, error: Exception = sqlite3.OperationalError("database or disk is full")):
    """`real`, raising `error` while failures[name] counts down (-1: always)."""
    async def call(*args, **kwargs):
        if failures[name]:
            failures[name] -= 1
            raise error
        return await real(*args, **kwargs)
    return call


async def test_sqlite_failures_get_one_clear_log_line_and_the_message_is_answered_on_a_retry(
        config, tiny_engine, fake, caplog, monkeypatch):
    caplog.set_level(logging.INFO)
    monkeypatch.setattr(inbox, "RETRY_SECONDS", 0.2)
    async with running_bot(config, tiny_engine) as svc:
        failures = {"add_message": 1, "inbox_add": 1}
        svc.db.add_message = failing_once(failures, "add_message", svc.db.add_message)
        fake.send_text(ANN, "where is my parcel")
        note, answer = await replies(fake, ANN, 2)  # the note, then the answer once the retry went through
        fake.send_text(ANN, "hello again")
        await replies(fake, ANN, 3)
        svc.db.inbox_add = failing_once(failures, "inbox_add", svc.db.inbox_add)  # fetched again after a backoff
        fake.send_text(BOB, "anyone there?")
        await replies(fake, BOB, timeout=10)
        await settle()
        ann, bob = await stored(svc, ANN), await stored(svc, BOB)
    sqlite_lines = [r for r in caplog.records if "database or disk is full" in r.getMessage()]
    assert len(sqlite_lines) == 2 and all(r.exc_info is None for r in sqlite_lines)  # one line each, no traceback
    assert any("SQLite failed" in r.getMessage() for r in sqlite_lines)
    assert note == config.telegram.storage_error_reply.for_lang("en")
    assert [m.text for m in ann if m.role == "customer"] == ["where is my parcel", "hello again"]
    assert [m.text for m in ann if m.role == "bot"] == sent_texts(fake, ANN)[1:]
    assert [m.text for m in bob if m.role == "customer"] == ["anyone there?"] and len(sent_texts(fake, BOB)) == 1
    assert TOKEN not in caplog.text


async def test_a_reply_telegram_would_not_take_after_every_retry_is_sent_when_the_update_is_handled_again(
        config, tiny_engine, fake, monkeypatch):
    monkeypatch.setattr(sending, "RETRY_BACKOFF_SECONDS", 0.01)
    monkeypatch.setattr(inbox, "RETRY_SECONDS", 0.1)
    fake.fail_next("sendMessage", status=500, count=sending.SEND_RETRIES + 1, chat_id=ANN)  # an outage
    async with running_bot(config, tiny_engine) as svc:
        fake.send_text(ANN, "where is my parcel")
        (answer,) = await replies(fake, ANN, timeout=10)
        await settle()
        bots = [m for m in await stored(svc, ANN) if m.role == "bot"]
        pending = await svc.db.inbox_pending()
    assert [c.status for c in fake.calls("sendMessage") if c.params["chat_id"] == ANN] == [500] * 4 + [200]
    assert [m.text for m in bots] == [answer] and pending == []  # the stored reply, no second model call


async def test_a_long_reply_cut_off_by_an_outage_sends_only_its_missing_pieces_when_handled_again(
        config, tiny_engine, fake, monkeypatch):
    monkeypatch.setattr(sending, "RETRY_BACKOFF_SECONDS", 0.01)
    monkeypatch.setattr(inbox, "RETRY_SECONDS", 0.1)
    long_reply = " ".join(f"word{i}" for i in range(1200))  # about 9,700 characters: three messages
    pieces = sending.split_text(long_reply)
    engine = ScriptedEngine(tiny_engine, replies={"tell me everything": long_reply})
    # The first piece arrives, then Telegram is unreachable for every retry of the second.
    fake.fail_next("sendMessage", status=500, count=sending.SEND_RETRIES + 1, chat_id=ANN, after=1)
    async with running_bot(config, engine) as svc:
        fake.send_text(ANN, "tell me everything")
        await replies(fake, ANN, len(pieces), timeout=10)
        await settle(0.5)  # a second retry would have sent something by now
        bots = [m for m in await stored(svc, ANN) if m.role == "bot"]
        pending = await svc.db.inbox_pending()
    assert len(pieces) == 3
    assert sent_texts(fake, ANN) == pieces  # each piece once, in order
    assert [c.status for c in fake.calls("sendMessage") if c.params["chat_id"] == ANN] == [200] + [500] * 4 + [200] * 2
    assert [m.text for m in bots] == [long_reply] and pending == []


async def test_a_reply_sent_but_not_marked_sent_is_not_sent_again_by_a_retry(config, tiny_engine, fake, monkeypatch):
    monkeypatch.setattr(inbox, "RETRY_SECONDS", 0.1)
    async with running_bot(config, tiny_engine) as svc:
        svc.db.mark_sent = failing_once({"mark_sent": -1}, "mark_sent", svc.db.mark_sent,
                                        sqlite3.OperationalError("database is locked"))
        fake.send_text(ANN, "where is my parcel")
        await replies(fake, ANN)
        await settle(0.5)  # retries would have come by now
        pending = await svc.db.inbox_pending()
    assert len(sent_texts(fake, ANN)) == 1 and pending == []  # one answer, no storage_error_reply, handled


async def test_a_redelivered_update_or_message_is_not_answered_twice(config, tiny_engine, fake):
    async with running_bot(config, tiny_engine) as svc:
        update_id = fake.send_text(ANN, "where is my parcel")
        await replies(fake, ANN)
        (update,) = fake.delivered_updates()
        assert update["update_id"] == update_id
        # The same message again in a new update. (The same update again is the crash test's case: only a
        # restarted bot, polling without an offset, can be sent an update it has seen.)
        fake.queue_raw_update({"message": update["message"]})
        fake.send_text(ANN, "and my refund?")
        texts = await replies(fake, ANN, 2)
        await settle()
        messages = await stored(svc, ANN)
    assert sent_texts(fake, ANN) == texts
    assert [m.text for m in messages if m.role == "customer"] == ["where is my parcel", "and my refund?"]
    assert [m.text for m in messages if m.role == "bot"] == texts


async def test_over_the_rate_limit_one_slow_down_and_the_rest_stored_unread(config, tiny_engine, fake):
    config = with_chat(config, rate_limit_per_minute=3)
    async with running_bot(config, tiny_engine) as svc:
        for i in range(6):
            fake.send_text(ANN, f"message {i}")
        fake.send_text(BOB, "hello")  # another customer is not limited by Ann's flood
        texts = await replies(fake, ANN, 4)
        await replies(fake, BOB)
        await settle()
        messages = await stored(svc, ANN)
    assert len(sent_texts(fake, ANN)) == 4 and texts[3] == config.chat.slow_down_reply.for_lang("en")
    customer = [m for m in messages if m.role == "customer"]
    assert [m.text for m in customer] == [f"message {i}" for i in range(6)]
    assert [m.sentiment is not None for m in customer] == [True] * 3 + [False] * 3  # never sent to the model


async def test_customers_waiting_behind_the_model_are_told_their_place_in_line(config, tiny_engine, fake):
    # One customer at a time: two ahead are two model turns ahead.
    config = replace(config, telegram=replace(config.telegram, queue_notice_at=2),
                     model=replace(config.model, batch_size=1))
    engine = ScriptedEngine(tiny_engine)
    engine.gate.clear()
    async with running_bot(config, engine) as svc:
        for chat in (ANN, BOB):
            fake.send_text(chat, "hello")
        for _ in range(200):
            if svc.waiting_for_model() == 2:
                break
            await asyncio.sleep(0.02)
        fake.send_text(CAT, "hello")
        (notice,) = await replies(fake, CAT)
        engine.gate.set()
        for chat, count in ((ANN, 1), (BOB, 1), (CAT, 2)):  # everyone ahead answered: Dan's queue is short
            await replies(fake, chat, count)
        fake.send_text(DAN, "hello")
        await replies(fake, DAN)
    assert notice == config.telegram.queue_notice.for_lang("en").format(position=3)
    assert [len(sent_texts(fake, chat)) for chat in (ANN, BOB, DAN)] == [1, 1, 1]  # short queue: no notice


async def test_operator_commands_work_only_in_the_chat_with_the_configured_id(config, tiny_engine, fake):
    impostor = -999  # a group that looks like the operators' one, with another id
    async with running_bot(config, tiny_engine):
        fake.send_command(impostor, "stats", user_id=7, chat_type="supergroup")
        fake.send_command(OPERATORS, "stats", user_id=7, chat_type="supergroup")
        stats = (await replies(fake, OPERATORS))[0]
        await settle()
    assert stats.startswith("Today so far") and sent_texts(fake, impostor) == []


async def test_retention_deletes_conversations_older_than_the_setting(db, tiny_engine, tiny_config):
    # Scripted replies: a random tiny model's words can read as another language, which would raise an alert.
    engine = ScriptedEngine(tiny_engine, replies={"an old question": "An old answer.", "a new question": "A new answer."})
    svc = ConversationService(db, engine, tiny_config)
    await svc.handle_text(Sender("telegram", "1", "Old"), "an old question", "1")
    await svc.handle_text(Sender("telegram", "2", "New"), "a new question", "1")
    old = (await db.customer("telegram", "1")).id
    # Test-only time travel: age the first customer's rows by 40 days.
    with sqlite3.connect(db.path) as conn:
        for table in ("customers", "messages"):
            column = "id" if table == "customers" else "customer_id"
            conn.execute(f"UPDATE {table} SET created_at = created_at - 40 * 86400 WHERE {column} = ?", (old,))
    assert (await purge(db, 0)).keys() == {"updates"}  # 0: kept forever
    counts = await purge(db, 30)
    assert counts["messages"] == 2 and counts["customers"] == 1
    assert await db.customer_by_id(old) is None
    assert len(await db.messages((await db.customer("telegram", "2")).id)) == 2
    assert await purge(db, 30, now=time.time() + 31 * DAY_SECONDS) == {"updates": 0, "alerts": 0, "messages": 2,
                                                                          "customers": 1}


def test_rate_limit_window_slides_and_warns_once_per_burst():
    from bot.ratelimit import RateLimiter, Verdict

    now = [0.0]
    limiter = RateLimiter(2, clock=lambda: now[0])
    assert [limiter.check(1) for _ in range(4)] == [Verdict.OK, Verdict.OK, Verdict.WARN, Verdict.DROP]
    assert limiter.check(2) is Verdict.OK  # per customer
    now[0] = 61.0
    assert [limiter.check(1) for _ in range(3)] == [Verdict.OK, Verdict.OK, Verdict.WARN]
    assert all(RateLimiter(0).check(1) is Verdict.OK for _ in range(100))  # 0: no limit


async def test_retention_keeps_an_alert_the_operators_have_not_got_with_its_message_until_delivered(db):
    ann = await db.customer("telegram", "1", "Ann")
    before = await db.add_message(ann.id, "customer", "hello")
    angry = await db.add_message(ann.id, "customer", "this is the third time I write, where is my refund?")
    alert = await db.add_alert(ann.id, angry, "negative", "negative", 0.95)
    await db.hold_undelivered_alerts()  # outside business hours: held for the opening digest
    later = time.time() + 2 * DAY_SECONDS  # a weekend with retention_days = 1
    assert await purge(db, 1, now=later) == {"updates": 0, "alerts": 0, "messages": 1, "customers": 0}
    assert [a["message_id"] for a in await db.held_alerts()] == [angry] and before not in [
        m.id for m in await db.messages(ann.id)]
    await db.mark_alert_delivered(alert)  # the digest reached the operators: the next run deletes them
    assert await purge(db, 1, now=later) == {"updates": 0, "alerts": 1, "messages": 1, "customers": 1}


async def test_the_inbox_knows_an_update_it_has_seen_and_keeps_no_text_once_handled(db):
    assert await db.inbox_add(7, '{"update_id": 7}') and not await db.inbox_add(7, '{"update_id": 7}')
    assert await db.inbox_pending() == ['{"update_id": 7}']
    await db.inbox_done(7)
    assert await db.inbox_pending() == [] and not await db.inbox_add(7, '{"update_id": 7}')
    assert await db.inbox_prune(time.time() + 1) == 1
    assert await db.inbox_add(8, '{"update_id": 8}')
    await db.inbox_give_up(8)  # every try of a run failed: the next start tries again
    assert await db.inbox_pending() == ['{"update_id": 8}'] and await db.inbox_failed() == ['{"update_id": 8}']


async def test_an_operator_group_upgraded_to_a_supergroup_keeps_working_there_also_after_a_restart(
        tiny_config, tiny_engine, fake):
    # Polling only: the test waits for the getUpdates answer that carries the migration notice.
    config = over_fake(tiny_config, fake)
    supergroup = -1009998887776
    engine = ScriptedEngine(tiny_engine, sentiments={ANGRY: ("negative", 0.95)})
    async with running_bot(config, engine):
        # What Telegram posts in the old group when it is upgraded.
        fake.queue_raw_update({"message": {"message_id": 90, "date": 0, "chat": {"id": OPERATORS, "type": "group",
                                                                                   "title": "Operators"},
                                           "from": {"id": 7, "is_bot": False, "first_name": "Op"},
                                           "migrate_to_chat_id": supergroup}})
        await fake.wait_for(lambda c: c.method == "getUpdates" and any("migrate_to_chat_id" in u.get("message", {})
                                                                       for u in c.result or []))
        await settle()
        fake.send_command(supergroup, "stats", user_id=7, chat_type="supergroup")
        (stats,) = await replies(fake, supergroup)
    async with running_bot(config, engine):  # the config still names the old group
        fake.send_text(ANN, ANGRY)
        alert = (await replies(fake, supergroup, 2))[-1]  # after /stats' text and chart
    assert stats.startswith("Today so far") and ANGRY in alert
    assert sent_texts(fake, OPERATORS) == []


async def test_the_supergroups_own_migration_notice_is_followed_without_an_error_note(tiny_config, tiny_engine, fake):
    # Polling only, as above. Telegram posts two notices: "moved to" in the old group, "moved from" in the new one.
    config = over_fake(tiny_config, fake)
    supergroup = -1009998887776
    op = {"id": 7, "is_bot": False, "first_name": "Op"}
    async with running_bot(config, tiny_engine) as svc:
        fake.queue_raw_update({"message": {"message_id": 90, "date": 0, "from": op, "migrate_to_chat_id": supergroup,
                                           "chat": {"id": OPERATORS, "type": "group", "title": "Operators"}}})
        await fake.wait_for(lambda c: c.method == "getUpdates" and any("migrate_to_chat_id" in u.get("message", {})
                                                                       for u in c.result or []))
        await settle()  # followed: the supergroup is the operator chat, so its notice reaches the handler
        fake.queue_raw_update({"message": {"message_id": 1, "date": 0, "from": op, "migrate_from_chat_id": OPERATORS,
                                           "chat": {"id": supergroup, "type": "supergroup", "title": "Operators"}}})
        await fake.wait_for(lambda c: c.method == "getUpdates" and any("migrate_from_chat_id" in u.get("message", {})
                                                                       for u in c.result or []))
        await settle()
        fake.send_command(supergroup, "stats", user_id=7, chat_type="supergroup")
        await replies(fake, supergroup)
        await fake.wait_for("sendPhoto")  # /stats' chart: its update is done then
        await settle()
        moved_to, pending = await svc.db.chat_moved_to(OPERATORS), await svc.db.inbox_pending()
    assert [t for t in sent_texts(fake, supergroup) if t and "error" in t] == []  # no "shopbot hit an error" note
    assert sent_texts(fake, supergroup)[0].startswith("Today so far")
    assert moved_to == supergroup and pending == []  # nothing left to fail again at the next start


async def test_an_alert_refused_by_a_group_that_became_a_supergroup_follows_it_for_good(config, tiny_engine, fake):
    # The bot missed the group's migration notice: Telegram answers the alert's send with ChatMigrated instead.
    supergroup = -1009998887776
    engine = ScriptedEngine(tiny_engine, sentiments={ANGRY: ("negative", 0.95), "still broken": ("negative", 0.95)})
    fake.migrate_chat(OPERATORS, supergroup)
    async with running_bot(config, engine) as svc:
        fake.send_text(ANN, ANGRY)
        (alert,) = await replies(fake, supergroup)
        for _ in range(100):  # recorded right after Telegram took the alert (so also after a restart)
            if await svc.db.chat_moved_to(OPERATORS) == supergroup:
                break
            await asyncio.sleep(0.02)
        fake.send_command(supergroup, "stats", user_id=7, chat_type="supergroup")  # commands work there now
        stats = (await replies(fake, supergroup, 2))[1]
        fake.send_text(BOB, "still broken")
        await replies(fake, supergroup, 3)
    assert ANGRY in alert and stats.startswith("Today so far")
    assert "still broken" in [t for t in sent_texts(fake, supergroup) if t][-1]
    # Refused once at the old id, then retried at the new one; nothing later goes to the old id.
    assert [c.status for c in fake.calls() if c.params.get("chat_id") == OPERATORS
            and c.method.startswith(("send", "copy", "edit"))] == [400]


def test_the_token_is_redacted_also_in_a_log_handler_added_after_start():
    import subprocess
    import sys

    from tests.conftest import REPO

    # A fresh process: no log handler exists when the redaction is installed, as when shopbot configures
    # logging after building the application (pytest's own handlers would redact the record for everyone).
    script = (f"import logging, sys; from bot.telegram.handlers.errors import redact_in_logs; redact_in_logs({TOKEN!r}); "
              "logging.getLogger().addHandler(logging.StreamHandler(sys.stdout)); "
              f"logging.getLogger('httpx').warning('POST https://api.telegram.org/bot%s/getUpdates', {TOKEN!r})")
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert TOKEN not in out and "bot<token>/getUpdates" in out
