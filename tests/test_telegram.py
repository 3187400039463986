"""The Telegram bot end to end: the real Application over HTTP against the fake Bot API, tiny model, real SQLite."""

import asyncio
import logging
import time

from bot.telegram.handlers import sending
from bot.telegram.handlers.sending import split_text, utf16_len
from testkit.fakes.engine import ScriptedEngine
from testkit.telegram_helpers import OPERATORS, TOKEN, replies, running_bot, sent_texts

ANN, BOB = 1001, 1002
ANGRY = "My order arrived broken and nobody answers!"


def sends_to(chat_id: int):
    return lambda c: c.method == "sendMessage" and c.status == 200 and c.params["chat_id"] == chat_id


async def customer_id(svc, chat_id: int) -> int:
    return (await svc.db.customer("telegram", str(chat_id))).id


async def test_text_is_answered_in_its_own_chat_as_plain_text_and_stored(config, tiny_engine, fake):
    async with running_bot(config, tiny_engine) as svc:
        fake.send_text(ANN, "where is my parcel", first_name="Ann", username="ann")
        fake.send_text(BOB, "你好，我的订单", first_name="Bob")
        (ann_reply,), (bob_reply,) = await replies(fake, ANN), await replies(fake, BOB)
        ann = await svc.db.messages(await customer_id(svc, ANN))
        customer = await svc.db.customer_by_id(await customer_id(svc, ANN))
    assert [(m.role, m.text) for m in ann] == [("customer", "where is my parcel"), ("bot", ann_reply)]
    assert (customer.display_name, customer.username) == ("Ann", "ann")
    assert bob_reply.strip()
    sends = fake.calls("sendMessage")
    assert all("parse_mode" not in c.params and "entities" not in c.params for c in sends)
    typing = [c for c in fake.calls("sendChatAction") if c.params["chat_id"] == ANN]
    assert typing and typing[0].params["action"] == "typing" and typing[0].time <= sends[0].time
    assert sent_texts(fake, OPERATORS) == []


async def test_commands_and_operator_commands_refused_in_customer_chats(config, tiny_engine, fake):
    t = config.telegram
    async with running_bot(config, tiny_engine) as svc:
        fake.send_text(ANN, "hello")
        await replies(fake, ANN)
        for command in ("start", "help", "reset", "stats", "nonsense"):
            fake.send_command(ANN, command)
        texts = await replies(fake, ANN, 6)
        fake.send_text(ANN, "hello again")
        await replies(fake, ANN, 7)
        history = await svc.db.history(await customer_id(svc, ANN), 10)
    # /stats looks exactly like an unknown command: the help text, nothing about shop numbers.
    en = [t.welcome, t.help, t.reset_reply, t.help, t.help]
    assert texts[1:] == [text.for_lang("en") for text in en]
    assert [m.text for m in history][0] == "hello again"  # /reset: the earlier turns are no longer used
    assert sent_texts(fake, OPERATORS) == []


async def test_the_bots_own_texts_are_in_the_customers_language(config, tiny_engine, fake):
    """Before a customer writes, their Telegram app's language; then that of what they write, whatever the app says."""
    t, handoff = config.telegram, config.handoff
    async with running_bot(config, tiny_engine):
        fake.send_command(ANN, "start", language_code="zh-hans")
        fake.send_command(BOB, "start", language_code="en")
        assert await replies(fake, ANN) == [t.welcome.for_lang("zh")]
        assert await replies(fake, BOB) == [t.welcome.for_lang("en")]
        fake.send_text(BOB, "我要转人工客服", language_code="en")  # asks for a person: no model reply
        assert (await replies(fake, BOB, 2))[1] == handoff.human_reply.for_lang("zh")
        fake.send_photo(BOB, language_code="en")
        assert (await replies(fake, BOB, 3))[2] == t.non_text_reply.for_lang("zh")  # their last text was Chinese
        fake.send_command(BOB, "help", language_code="en")
        assert (await replies(fake, BOB, 4))[3] == t.help.for_lang("zh")
        fake.send_photo(ANN, caption="The lamp arrived like this", language_code="zh-hans")  # her own words count
        assert (await replies(fake, ANN, 2))[1] == t.non_text_reply.for_lang("en")
    assert t.welcome.for_lang("zh") != t.welcome.for_lang("en") and t.help.for_lang("zh") != t.help.for_lang("en")


async def test_the_bots_own_texts_reach_a_traditional_script_customer_in_her_script(config, tiny_engine, fake):
    """The shop wrote its texts in simplified script; once she writes in Traditional, /help and the rest are in it."""
    t = config.telegram
    async with running_bot(config, tiny_engine):
        fake.send_text(ANN, "我要轉人工客服")
        fake.send_command(ANN, "help")
        fake.send_command(ANN, "reset")
        answers = await replies(fake, ANN, 3)
    assert answers[0] == "我已請店裡的工作人員加入，他們會盡快在這裡回覆您。"
    assert answers[1].startswith("直接用中文或英文輸入您的問題即可。") and answers[1] != t.help.for_lang("zh")
    assert answers[2] == "好的，我們重新開始。之後的回答不會再參考之前的對話。"


async def test_forget_asks_first_then_deletes_everything_and_says_what(config, tiny_engine, fake):
    t = config.telegram
    # A scripted reply: a random tiny model's words can read as another language, which would raise an alert.
    engine = ScriptedEngine(tiny_engine, replies={"my address is 1 Main St": "Thank you, noted."})
    async with running_bot(config, engine) as svc:
        fake.send_text(ANN, "my address is 1 Main St")
        await replies(fake, ANN)
        cid = await customer_id(svc, ANN)
        fake.send_command(ANN, "forget")
        await replies(fake, ANN, 2)
        question = fake.sent_messages(ANN)[-1]
        buttons = question["reply_markup"]["inline_keyboard"][0]
        assert question["text"] == t.forget_confirm.for_lang("en")
        assert [b["text"] for b in buttons] == [t.forget_yes.for_lang("en"), t.forget_no.for_lang("en")]

        fake.press_button(ANN, question["message_id"], buttons[1]["callback_data"])
        await fake.wait_for("editMessageText")
        assert fake.message(ANN, question["message_id"])["text"] == t.forget_cancelled.for_lang("en")
        assert len(await svc.db.messages(cid)) == 2

        fake.send_command(ANN, "forget")
        await replies(fake, ANN, 3)
        question = fake.sent_messages(ANN)[-1]
        fake.press_button(ANN, question["message_id"], buttons[0]["callback_data"])
        await fake.wait_for("editMessageText", count=2)
        assert await svc.db.messages(cid) == [] and await svc.db.customer_by_id(cid) is None
    done = fake.message(ANN, question["message_id"])
    assert done["text"] == t.forget_done.for_lang("en").format(messages=2, alerts=0) and "reply_markup" not in done
    assert fake.calls("answerCallbackQuery")


async def test_alert_reaches_operators_once_per_cooldown_with_who_what_and_context(config, tiny_engine, fake):
    # The tiny model's sentiment is random: the label is scripted, and so are the replies (its words can read as
    # another language, which would hand the customer over); everything else is real.
    engine = ScriptedEngine(tiny_engine, sentiments={ANGRY: ("negative", 0.93), "still broken!": ("negative", 0.9),
                                                     "thanks": ("positive", 0.95)},
                            replies={text: "Sorry to hear that, let me help." for text in
                                     ("hi, I ordered a teapot", ANGRY, "still broken!", "thanks")})
    async with running_bot(config, engine) as svc:
        fake.send_text(ANN, "hi, I ordered a teapot", first_name="Ann", username="ann_k")
        await replies(fake, ANN)
        fake.send_text(ANN, ANGRY, first_name="Ann", username="ann_k")
        fake.send_text(ANN, "still broken!", first_name="Ann", username="ann_k")
        fake.send_text(BOB, "thanks", first_name="Bob")
        await replies(fake, ANN, 3)
        await replies(fake, BOB)
        (alert,) = await replies(fake, OPERATORS)
        alerts = await svc.db.alerts()
        fake.send_command(OPERATORS, "stats", user_id=7)
        stats = (await replies(fake, OPERATORS, 2))[1]
    assert f"Telegram id {ANN}" in alert and "Ann (@ann_k)" in alert
    assert ANGRY in alert and "negative 0.93" in alert
    assert "customer: hi, I ordered a teapot" in alert  # the conversation so far
    assert len(alerts) == 1 and alerts[0]["delivered_at"] is not None
    assert "Customers: 2" in stats and "Messages: 4" in stats and "Alerts: 1 sent of 1 raised" in stats


async def test_non_text_gets_the_polite_reply_and_is_stored(config, tiny_engine, fake):
    async with running_bot(config, tiny_engine) as svc:
        fake.send_photo(ANN, caption="the lid is cracked")
        fake.send_sticker(ANN)
        fake.send_voice(ANN)
        fake.send_document(ANN)
        fake.send_location(ANN)
        texts = await replies(fake, ANN, 5)
        stored = await svc.db.messages(await customer_id(svc, ANN))
    assert texts == [config.telegram.non_text_reply.for_lang("en")] * 5
    customer_turns = [(m.kind, m.text) for m in stored if m.role == "customer"]
    assert customer_turns == [("photo", "[photo] the lid is cracked"), ("sticker", "[sticker]"),
                              ("voice", "[voice]"), ("document", "[document]"), ("location", "[location]")]


def test_split_text_respects_telegrams_utf16_limit_and_word_breaks():
    words = "word " * 1500
    parts = split_text(words)
    assert len(parts) == 2 and all(utf16_len(p) <= 4096 for p in parts)
    assert " ".join(parts).split() == words.split()
    emoji = "😀" * 3000  # 2 UTF-16 units each
    assert [utf16_len(p) for p in split_text(emoji)] == [4096, 1904] and "".join(split_text(emoji)) == emoji
    assert split_text("short") == ["short"]


async def test_long_reply_is_split_into_several_messages(config, tiny_engine, fake):
    long_reply = "This is a long answer. " * 300  # 6900 characters
    engine = ScriptedEngine(tiny_engine, replies={"tell me everything": long_reply})
    async with running_bot(config, engine):
        fake.send_text(ANN, "tell me everything")
        parts = await replies(fake, ANN, 2)
    assert len(parts) == 2 and all(len(p) <= 4096 for p in parts)
    assert " ".join(parts).split() == long_reply.split()


async def test_one_chat_in_order_while_a_slow_reply_blocks_no_other_chat(config, tiny_engine, fake, monkeypatch):
    monkeypatch.setattr(sending, "TYPING_REFRESH_SECONDS", 0.1)
    engine = ScriptedEngine(tiny_engine)
    engine.gate.clear()  # Ann's model call is "slow" until the test opens the gate
    async with running_bot(config, engine) as svc:
        fake.send_text(ANN, "first")
        fake.send_text(ANN, "second")
        fake.send_command(BOB, "start")
        fake.send_command(OPERATORS, "stats", user_id=7)
        assert await replies(fake, BOB) == [config.telegram.welcome.for_lang("en")]
        await replies(fake, OPERATORS)
        # "typing…" is refreshed while Ann waits; her second message is not even read yet.
        await fake.wait_for(lambda c: c.method == "sendChatAction" and c.params["chat_id"] == ANN, count=3)
        cid = await customer_id(svc, ANN)
        assert [m.text for m in await svc.db.messages(cid)] == ["first"] and sent_texts(fake, ANN) == []
        engine.gate.set()
        await replies(fake, ANN, 2)
        stored = await svc.db.messages(cid)
    assert [(m.role, m.text if m.role == "customer" else "") for m in stored] == [
        ("customer", "first"), ("bot", ""), ("customer", "second"), ("bot", "")]
    assert sent_texts(fake, ANN) == [m.text for m in stored if m.role == "bot"]


async def test_retry_after_from_telegram_is_waited_out_and_the_reply_sent_once(config, tiny_engine, fake):
    fake.fail_next("sendMessage", status=429, retry_after=1)
    async with running_bot(config, tiny_engine):
        started = time.monotonic()
        fake.send_command(ANN, "start")
        assert await replies(fake, ANN) == [config.telegram.welcome.for_lang("en")]
    assert time.monotonic() - started >= 1.0
    assert [c.status for c in fake.calls("sendMessage")] == [429, 200]


async def test_server_errors_are_retried_and_a_blocked_customer_breaks_nothing(config, tiny_engine, fake, monkeypatch):
    monkeypatch.setattr(sending, "RETRY_BACKOFF_SECONDS", 0.05)
    engine = ScriptedEngine(tiny_engine, sentiments={ANGRY: ("negative", 0.95)})
    fake.block_chat(ANN)
    fake.fail_next("sendMessage", status=500, count=2, chat_id=BOB)
    async with running_bot(config, engine) as svc:
        fake.send_text(ANN, ANGRY)  # Ann blocked the bot right after writing
        fake.send_text(BOB, "where is my parcel")
        await replies(fake, OPERATORS)
        await replies(fake, BOB)
        ann = await svc.db.messages(await customer_id(svc, ANN))
        alerts = await svc.db.alerts()
    assert [m.role for m in ann] == ["customer", "bot"] and ann[0].text == ANGRY  # nothing lost
    assert len(alerts) == 1 and alerts[0]["delivered_at"] is not None  # her alert still reached operators
    assert [c.status for c in fake.calls("sendMessage") if c.params["chat_id"] == BOB] == [500, 500, 200]


async def test_an_undeliverable_alert_stays_undelivered_in_sqlite(config, tiny_engine, fake, caplog):
    engine = ScriptedEngine(tiny_engine, sentiments={ANGRY: ("negative", 0.95)})
    fake.block_chat(OPERATORS)  # the bot was removed from the operator group
    async with running_bot(config, engine) as svc:
        fake.send_text(ANN, ANGRY)
        await replies(fake, ANN)
        for _ in range(200):  # until the bot has finished with the refusal (it logs it last)
            if "could not be delivered to the operator chat" in caplog.text:
                break
            await asyncio.sleep(0.02)
        (alert,) = await svc.db.alerts()
    assert "could not be delivered to the operator chat" in caplog.text
    assert alert["delivered_at"] is None


async def test_edits_get_a_note_and_groups_only_a_pointer(config, tiny_engine, fake):
    group = -555
    async with running_bot(config, tiny_engine) as svc:
        fake.send_text(ANN, "I ordered 2 cups")
        await replies(fake, ANN)
        fake.edit_text(ANN, 1, "I ordered 3 cups")
        fake.send_text(group, "hello everyone", user_id=ANN, chat_type="group")
        fake.send_command(group, "start", user_id=ANN, chat_type="group")
        mention = {"type": "mention", "offset": 0, "length": len("@shopbot_test_bot")}
        fake.queue_raw_update({"message": {
            "message_id": 99, "date": int(time.time()), "chat": {"id": group, "type": "group", "title": "G"},
            "from": {"id": BOB, "is_bot": False, "first_name": "Bob"},
            "text": "@shopbot_test_bot do you ship abroad?", "entities": [mention]}})
        fake.queue_raw_update({"message": {  # an order number says no language: her app's, Chinese
            "message_id": 100, "date": int(time.time()), "chat": {"id": group, "type": "group", "title": "G"},
            "from": {"id": 1003, "is_bot": False, "first_name": "Li", "language_code": "zh-hans"},
            "text": "@shopbot_test_bot 20261203001", "entities": [mention]}})
        texts = await replies(fake, ANN, 2)
        group_texts = await replies(fake, group, 3)
        stored = await svc.db.messages(await customer_id(svc, ANN))
    assert texts[1] == config.telegram.edited_reply.for_lang("en")
    assert [m.text for m in stored if m.role == "customer"] == ["I ordered 2 cups"]
    pointer, zh_pointer = (f"{config.telegram.group_reply.for_lang(lang)}\nhttps://t.me/shopbot_test_bot"
                           for lang in ("en", "zh"))
    assert group_texts == [pointer, pointer, zh_pointer]


async def test_an_album_is_answered_once_and_every_photo_stored(config, tiny_engine, fake):
    """Telegram sends an album of three photos as three messages: the customer sent one thing and gets one "text
    only" reply; each photo is stored. A photo after the album is a new message and gets its own."""
    t = config.telegram
    async with running_bot(config, tiny_engine) as svc:
        for n in range(3):
            fake.send_photo(ANN, caption="the lid is cracked" if n == 0 else None, media_group_id="album-1")
        fake.send_command(ANN, "help")  # handled after the album: the customer's chat goes in order
        await replies(fake, ANN, 2)
        fake.send_photo(ANN)
        texts = await replies(fake, ANN, 3)
        stored = await svc.db.messages(await customer_id(svc, ANN))
    assert texts == [t.non_text_reply.for_lang("en"), t.help.for_lang("en"), t.non_text_reply.for_lang("en")]
    assert [m.text for m in stored if m.role == "customer"] == ["[photo] the lid is cracked", "[photo]", "[photo]",
                                                                "[photo]"]


def live_location(chat_id: int, message_id: int, latitude: float, edited: bool = False) -> dict:
    """A customer's live location as Telegram sends it: a message, then an edited_message each time it moves."""
    message = {"message_id": message_id, "date": int(time.time()), "chat": {"id": chat_id, "type": "private"},
               "from": {"id": chat_id, "is_bot": False, "first_name": "Ann"},
               "location": {"latitude": latitude, "longitude": 13.405, "live_period": 900}}
    return {"edited_message": {**message, "edit_date": int(time.time())}} if edited else {"message": message}


async def test_a_moving_live_location_is_no_edit_to_answer(config, tiny_engine, fake):
    """Telegram reports each move of a shared live location as an edit: the customer wrote nothing new, so the bot
    says nothing (not "please send the correction" every few seconds)."""
    t = config.telegram
    async with running_bot(config, tiny_engine):
        fake.queue_raw_update(live_location(ANN, 500, 52.52))
        await replies(fake, ANN)
        for step in range(1, 4):
            fake.queue_raw_update(live_location(ANN, 500, 52.52 + step / 1000, edited=True))
        fake.send_command(ANN, "help")  # handled after the moves: the customer's chat goes in order
        texts = await replies(fake, ANN, 2)
    assert texts == [t.non_text_reply.for_lang("en"), t.help.for_lang("en")]


async def test_errors_are_logged_and_operators_told_once_without_the_token(config, tiny_engine, fake, caplog):
    from telegram.ext import CommandHandler

    from bot.telegram.app import build_application, serving

    caplog.set_level(logging.DEBUG)

    async def boom(update, context):
        raise RuntimeError("handler bug")

    app = build_application(config, tiny_engine)
    app.add_handler(CommandHandler("boom", boom), group=-1)
    async with serving(app, config):
        fake.send_text(ANN, "hello")
        fake.send_command(ANN, "boom")
        fake.send_command(ANN, "boom")
        await replies(fake, ANN, 3)  # the reply and help for the unknown /boom, twice
        (note,) = await replies(fake, OPERATORS)
    failures = [r for r in caplog.records if r.name == "bot.telegram.handlers.errors"]
    assert len(failures) == 2 and all(r.exc_info[0] is RuntimeError for r in failures)
    assert "RuntimeError" in note and "handler bug" not in note
    assert caplog.records and TOKEN not in caplog.text and TOKEN.split(":")[1] not in caplog.text
    assert logging.getLogger("httpx").getEffectiveLevel() >= logging.WARNING


def test_token_redactor_scrubs_messages_and_tracebacks():
    from bot.telegram.handlers.errors import TokenRedactor

    try:
        raise ValueError(f"The token `{TOKEN}` was rejected by the server.")
    except ValueError:
        import sys
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "url %s", (f"/bot{TOKEN}/getMe",), sys.exc_info())
    assert TokenRedactor(TOKEN).filter(record)
    text = logging.Formatter().format(record)
    assert TOKEN not in text and "<token>" in text
