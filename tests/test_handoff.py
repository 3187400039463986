"""Operator handoff (#5) end to end: the real Application over the fake Bot API, tiny model, real SQLite."""

import asyncio
from dataclasses import replace

import pytest

from bot.escalation import HUMAN_REQUEST, NEGATIVE, NO_ANSWER, NOT_NEGATIVE
from bot.telegram.handlers.operator import FORGOTTEN_NOTE
from testkit.fakes.bot_api import FakeBotApi
from testkit.fakes.engine import ScriptedEngine
from testkit.telegram_helpers import OPERATORS, linked, replies, running_bot, sent_texts

ANN, BOB = 1001, 1002
OLGA, PIET = 7, 8  # two operators in the operator group
ANGRY = "My order arrived broken and nobody answers!"
SENTIMENTS = {ANGRY: ("negative", 0.8), "still nothing?": ("negative", 0.8), "hello?": ("neutral", 0.7),
              "ok thanks": ("positive", 0.9), "one more thing": ("neutral", 0.7)}


@pytest.fixture
def engine(tiny_engine):
    return ScriptedEngine(tiny_engine, sentiments=SENTIMENTS)


def operator_says(fake: FakeBotApi, text: str, reply_to: int | None, user_id: int = OLGA, name: str = "Olga") -> int:
    return fake.send_text(OPERATORS, text, user_id=user_id, first_name=name, chat_type="supergroup",
                          reply_to_message_id=reply_to)


def copies_to(chat_id: int):
    return lambda c: c.method == "copyMessage" and c.status == 200 and c.params["chat_id"] == chat_id


async def operator_chat_has(fake: FakeBotApi, needle: str, count: int = 1) -> dict:
    """Wait for the bot's `count`-th operator-chat message containing `needle`; that message."""
    await fake.wait_for(lambda c: c.method == "sendMessage" and c.status == 200 and c.params["chat_id"] == OPERATORS
                        and needle in c.params["text"], count=count)
    return [m for m in fake.sent_messages(OPERATORS) if needle in (m.get("text") or "")][count - 1]


async def angry_alert(fake: FakeBotApi, svc) -> dict:
    """Ann writes angrily; returns the alert message in the operator chat, linked to Ann."""
    fake.send_text(ANN, ANGRY, first_name="Ann", username="ann_k")
    await replies(fake, ANN)
    return await linked(svc, await operator_chat_has(fake, "Alert #"))


async def taken_over(fake: FakeBotApi, svc, user_id: int = OLGA, name: str = "Olga") -> dict:
    """Ann's angry alert, then an operator presses its Take over; returns the alert."""
    alert = await angry_alert(fake, svc)
    take = alert["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    fake.press_button(OPERATORS, alert["message_id"], take, user_id=user_id, first_name=name)
    await operator_chat_has(fake, f"{name} is handling Ann")
    return alert


async def rating_asked(fake: FakeBotApi, chat_id: int, count: int = 1) -> None:
    """Wait until the customer was asked for their CSAT rating (after a hand-back) `count` times."""
    await fake.wait_for(lambda c: c.method == "sendMessage" and c.status == 200 and c.params["chat_id"] == chat_id
                        and "csat:" in str(c.params.get("reply_markup")), count=count)


async def operator_turns(svc, chat_id: int, count: int, timeout: float = 10.0) -> list[str]:
    """The customer's stored operator turns, once there are `count` (a relay is stored after it is sent)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        turns = [m.text for m in await svc.db.messages(await customer_id(svc, chat_id)) if m.role == "operator"]
        if len(turns) >= count or asyncio.get_running_loop().time() > deadline:
            return turns
        await asyncio.sleep(0.02)


async def forgets(fake: FakeBotApi, chat_id: int, replies_before: int) -> None:
    """The customer sends /forget and presses "Delete everything"; returns once the question shows it is done."""
    fake.send_command(chat_id, "forget")
    await replies(fake, chat_id, replies_before + 1)
    question = fake.sent_messages(chat_id)[-1]
    delete_everything = question["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    fake.press_button(chat_id, question["message_id"], delete_everything)
    await fake.wait_for(lambda c: c.method == "editMessageText" and c.params["chat_id"] == chat_id)


async def customer_id(svc, chat_id: int) -> int:
    return (await svc.db.customer("telegram", str(chat_id))).id


async def test_reply_reaches_the_customer_bot_stays_silent_and_resumes_after_hand_back(config, engine, fake):
    notice = config.handoff.customer_notice.for_lang("en")
    async with running_bot(config, engine) as svc:
        alert = await angry_alert(fake, svc)
        buttons = [b["text"] for b in alert["reply_markup"]["inline_keyboard"][0]]
        assert buttons == ["Take over", "Dismiss"] and "negative message" in alert["text"]

        operator_says(fake, "So sorry! A new teapot ships today.", alert["message_id"])
        await fake.wait_for(copies_to(ANN))
        note = await operator_chat_has(fake, "is handling Ann (@ann_k) now")
        assert note["reply_to_message"]["message_id"] == alert["message_id"]  # threaded under the alert

        fake.send_text(ANN, "hello?")
        relayed = await operator_chat_has(fake, "hello?")
        fake.send_text(ANN, "still nothing?")
        await operator_chat_has(fake, "still nothing?")
        # The operator's copy, one notice, no model reply; both messages threaded under the alert.
        assert sent_texts(fake, ANN)[1:] == ["So sorry! A new teapot ships today.", notice]
        assert relayed["reply_to_message"]["message_id"] == alert["message_id"]
        assert fake.sent_messages(ANN)[1]["text"] == "So sorry! A new teapot ships today."  # a copy...
        assert "forward_origin" not in fake.sent_messages(ANN)[1]  # ...not a forward
        assert fake.calls("copyMessage")[0].params["from_chat_id"] == OPERATORS

        fake.press_button(OPERATORS, note["message_id"], note["reply_markup"]["inline_keyboard"][0][0]["callback_data"],
                          user_id=OLGA, first_name="Olga")
        await operator_chat_has(fake, "is back with the bot (by Olga)")
        await rating_asked(fake, ANN)
        calls_before = len(engine.histories)
        fake.send_text(ANN, "ok thanks")
        texts = await replies(fake, ANN, 4)  # sendMessages: the first reply, the notice, the rating, a reply again
        stored = await svc.db.messages(await customer_id(svc, ANN))
    assert texts[-1] == stored[-1].text and stored[-1].role == "bot"  # the bot answers again
    assert len(engine.histories) == calls_before + 1
    # The model saw the operator's turn (as the shop) and the messages sent during the takeover.
    assert ("operator", "So sorry! A new teapot ships today.") in engine.histories[-1]
    assert ("customer", "still nothing?") in engine.histories[-1]
    assert [(m.role, m.kind) for m in stored] == [
        ("customer", "text"), ("bot", "text"), ("operator", "text"), ("customer", "text"), ("bot", "notice"),
        ("customer", "text"), ("customer", "text"), ("bot", "text")]


async def test_take_over_button_and_release_command(config, engine, fake):
    async with running_bot(config, engine) as svc:
        alert = await taken_over(fake, svc, PIET, "Piet")
        fake.send_text(ANN, "hello?")
        relayed = await linked(svc, await operator_chat_has(fake, "hello?"))
        fake.send_command(OPERATORS, "release", user_id=PIET, chat_type="supergroup")  # not a reply: how to use it
        await operator_chat_has(fake, "as a reply to one of the customer's messages")
        fake.send_command(OPERATORS, "release", user_id=PIET, first_name="Piet", chat_type="supergroup",
                          reply_to_message_id=relayed["message_id"])
        await operator_chat_has(fake, "is back with the bot (by Piet)")
        await rating_asked(fake, ANN)
        fake.send_text(ANN, "one more thing")
        await replies(fake, ANN, 4)  # the first reply, the notice for "hello?", the rating, and a real reply now
    assert sent_texts(fake, ANN)[1] == config.handoff.customer_notice.for_lang("en")
    assert fake.calls("copyMessage") == []  # Take over alone sends the customer nothing


async def test_idle_takeover_is_handed_back_and_operators_told(config, engine, fake):
    config = replace(config, handoff=replace(config.handoff, idle_minutes=0.02))  # 1.2 s
    async with running_bot(config, engine) as svc:
        alert = await angry_alert(fake, svc)
        operator_says(fake, "Checking, one moment.", alert["message_id"])
        await fake.wait_for(copies_to(ANN))
        await operator_chat_has(fake, "is back with the bot (no operator reply for 0.02 min)")
        assert await svc.handoff.active(await customer_id(svc, ANN)) is None
        await rating_asked(fake, ANN)
        fake.send_text(ANN, "one more thing")
        texts = await replies(fake, ANN, 3)  # the first reply, the rating, a real reply now
    assert texts[-1] not in (config.handoff.customer_notice.for_lang("en"), "Checking, one moment.")


async def test_takeover_survives_a_restart(config, engine, fake):
    async with running_bot(config, engine) as svc:
        alert = await angry_alert(fake, svc)
        operator_says(fake, "Looking into it now.", alert["message_id"])
        await fake.wait_for(copies_to(ANN))
    async with running_bot(config, engine) as svc:  # a new process, the same SQLite file
        fake.send_text(ANN, "hello?")
        relayed = await operator_chat_has(fake, "hello?")
        assert sent_texts(fake, ANN)[1:] == ["Looking into it now.", config.handoff.customer_notice.for_lang("en")]  # no bot reply
        fake.send_photo(ANN, caption="the lid is cracked")  # non-text is relayed too: copied under a header
        await fake.wait_for(copies_to(OPERATORS))
        photo = await linked(svc, fake.sent_messages(OPERATORS)[-1])
        operator_says(fake, "Found it: it ships tomorrow.", photo["message_id"], user_id=PIET, name="Piet")
        await fake.wait_for(copies_to(ANN), count=2)
        turns = await operator_turns(svc, ANN, count=2)
    assert photo["caption"] == "the lid is cracked" and "sent:" in photo["reply_to_message"]["text"]
    assert [m.get("text") for m in fake.sent_messages(ANN)][-1] == "Found it: it ships tomorrow."
    assert turns == ["Looking into it now.", "Found it: it ships tomorrow."]


async def test_two_operators_replies_reach_the_customer_in_order(config, engine, fake):
    async with running_bot(config, engine) as svc:
        alert = await angry_alert(fake, svc)
        lines = [("Olga", OLGA, "Hi Ann, Olga here."), ("Piet", PIET, "Piet too: refund is on its way."),
                 ("Olga", OLGA, "Anything else?"), ("Piet", PIET, "Have a nice day!")]
        for name, uid, text in lines:
            operator_says(fake, text, alert["message_id"], user_id=uid, name=name)
        await fake.wait_for(copies_to(ANN), count=4)
        takeover = await svc.handoff.active(await customer_id(svc, ANN))
        stored = await operator_turns(svc, ANN, count=4)
    assert [m["text"] for m in fake.sent_messages(ANN)][1:] == [t for _, _, t in lines]
    assert stored == [t for _, _, t in lines]
    assert takeover["operator_name"] == "Olga"


async def test_dismiss_is_a_label_correction_and_stats_report_handoff_with_a_chart(config, engine, fake):
    async with running_bot(config, engine) as svc:
        alert = await angry_alert(fake, svc)
        dismiss = alert["reply_markup"]["inline_keyboard"][0][1]["callback_data"]
        fake.press_button(OPERATORS, alert["message_id"], dismiss, user_id=OLGA)
        fake.press_button(OPERATORS, alert["message_id"], dismiss, user_id=PIET)  # counted once
        await fake.wait_for("answerCallbackQuery", count=2)
        operator_says(fake, "Sorry about that!", alert["message_id"])
        await fake.wait_for(copies_to(ANN))
        fake.send_command(OPERATORS, "stats", user_id=OLGA, chat_type="supergroup")
        stats = await operator_chat_has(fake, "Today so far")
        photo = (await fake.wait_for("sendPhoto"))[0]
        corrections = await svc.db.label_corrections()
    answers = [c.params.get("text") for c in fake.calls("answerCallbackQuery")]
    assert answers == ["Recorded: not negative. Thank you.", "Already recorded."]
    assert [(c["model_label"], c["corrected_label"], c["text"]) for c in corrections] == [
        ("negative", NOT_NEGATIVE, ANGRY)]
    assert "Label corrections (Dismiss): 1" in stats["text"] and "Open takeovers now: 1" in stats["text"]
    assert "Alert to first operator answer (reply or Take over, median): " in stats["text"]
    assert "no alert answered" not in stats["text"]
    assert photo.params["chat_id"] == OPERATORS and photo.params["photo"] > 100  # bytes of the PNG uploaded
    assert "last 14 days" in photo.params["caption"]


async def test_a_customer_cannot_trigger_operator_actions(config, engine, fake):
    async with running_bot(config, engine) as svc:
        await angry_alert(fake, svc)
        cid = await customer_id(svc, ANN)
        fake.send_command(ANN, "forget")  # any bot message with buttons in the customer's own chat
        await replies(fake, ANN, 2)
        question = fake.sent_messages(ANN)[-1]["message_id"]
        for data in (f"handoff:take:{cid}", "handoff:dismiss:1", f"handoff:release:{cid}"):
            fake.press_button(ANN, question, data)  # forged callback data
        await fake.wait_for("answerCallbackQuery", count=3)
        fake.send_command(ANN, "release")
        fake.send_text(ANN, "hello?", reply_to_message_id=question)  # a customer's reply is just a message
        await replies(fake, ANN, 4)
        takeover, corrections = await svc.handoff.active(cid), await svc.db.label_corrections()
    assert {c.params.get("text") for c in fake.calls("answerCallbackQuery")} == {"Not available here."}
    assert takeover is None and corrections == []
    assert sent_texts(fake, ANN)[2] == config.telegram.help.for_lang("en")
    assert fake.calls("copyMessage") == []


async def test_human_request_raises_an_alert_saying_so(config, engine, fake):
    async with running_bot(config, engine) as svc:
        fake.send_command(ANN, "human")
        (answer,) = await replies(fake, ANN)
        alert = await operator_chat_has(fake, "Alert #")
        fake.send_text(BOB, "我要转人工")
        (bob_answer,) = await replies(fake, BOB)
        await operator_chat_has(fake, "Alert #", count=2)
        alerts = await svc.db.alerts()
    assert answer == config.handoff.human_reply.for_lang("en")
    assert bob_answer == config.handoff.human_reply.for_lang("zh")  # in the language Bob asked in
    assert f"Alert #1: {HUMAN_REQUEST}" in alert["text"] and "Sentiment: not read" in alert["text"]
    assert [a["reason"] for a in alerts] == [HUMAN_REQUEST, HUMAN_REQUEST]
    assert engine.histories == []  # no model reply was asked for


async def test_a_person_asked_for_in_traditional_script_is_a_human_request(db, tiny_engine):
    from bot.service import ConversationService, Sender

    service = ConversationService(db, ScriptedEngine(tiny_engine), tiny_engine.config)
    outcome = await service.handle_text(Sender("console", "mei"), "我要轉人工")  # the phrase list says 转人工
    assert outcome.alert.reason == HUMAN_REQUEST
    assert outcome.reply == "我已請店裡的工作人員加入，他們會盡快在這裡回覆您。"  # human_reply.zh, in her script


async def test_escalation_rules_fire_in_severity_order_within_the_cooldown(db, tiny_engine):
    from bot.service import ConversationService, Sender

    sentiments = {"meh": ("negative", 0.65), "bad": ("negative", 0.75), "awful": ("negative", 0.95),
                  "fine": ("neutral", 0.7)}
    config = tiny_engine.config
    service = ConversationService(db, ScriptedEngine(tiny_engine, sentiments=sentiments), config)
    ann = Sender("console", "ann")
    reasons = [(await service.handle_text(ann, text)).alert for text in
               ["meh", "bad", "bad", "fine", "bad", "awful", "awful", "please let me talk to a human"]]
    assert [a.reason if a else None for a in reasons] == [
        None,  # negative, but below the threshold
        "negative message",
        "3 negative messages in a row",  # more severe than the last alert: through the cooldown
        None, None,  # the run is broken; a single negative is less severe than the last alert
        "very negative message",
        None,  # the same rule again within the cooldown
        HUMAN_REQUEST,
    ]
    three = [(await service.handle_text(Sender("console", "bob"), t)).alert for t in ["meh", "meh", "meh"]]
    assert [a.reason if a else None for a in three] == [None, None, "3 negative messages in a row"]


async def test_an_old_alerts_buttons_never_act_on_a_customer_who_came_after_a_forgotten_one(config, engine, fake):
    """Ann is forgotten; SQLite hands her customer and alert numbers to Bob, the next to write. Her alert's Take over
    and Dismiss buttons are still in the operator chat: they must not take over Bob or correct Bob's alert."""
    async with running_bot(config, engine) as svc:
        old = await angry_alert(fake, svc)
        fake.backdate(OPERATORS, old["message_id"], hours=49)  # too old for Telegram to delete: /forget leaves it
        old_ids = await customer_id(svc, ANN), (await svc.db.alerts())[0]["id"]
        await forgets(fake, ANN, 1)
        fake.send_text(BOB, ANGRY, first_name="Bob")
        await operator_chat_has(fake, "Alert #", count=2)
        assert (await customer_id(svc, BOB), (await svc.db.alerts())[0]["id"]) == old_ids  # the numbers came back
        for button in old["reply_markup"]["inline_keyboard"][0]:
            fake.press_button(OPERATORS, old["message_id"], button["callback_data"], user_id=OLGA, first_name="Olga")
        await fake.wait_for("answerCallbackQuery", count=3)
        takeover, corrections = await svc.handoff.active(old_ids[0]), await svc.db.label_corrections()
    assert [c.params.get("text") for c in fake.calls("answerCallbackQuery")][1:] == [
        "This customer's data was deleted."] * 2
    assert takeover is None and corrections == []


async def test_forget_deletes_the_bots_posts_about_the_customer_from_the_operator_chat(config, engine, fake):
    async with running_bot(config, engine) as svc:
        alert = await angry_alert(fake, svc)
        operator_says(fake, "So sorry, Ann - sending a new one today.", reply_to=alert["message_id"])
        await fake.wait_for(copies_to(ANN))
        await forgets(fake, ANN, 1)
        await operator_chat_has(fake, FORGOTTEN_NOTE)
    assert fake.message(OPERATORS, alert["message_id"]) is None
    left = [fake.message(OPERATORS, m["message_id"]) for m in fake.sent_messages(OPERATORS)]
    assert not [m for m in left if m and "Ann" in (m.get("text") or "")]


async def test_an_angry_customer_waiting_for_an_answer_still_alerts_operators_once(db, tiny_engine):
    from bot.service import ConversationService, Sender

    # No knowledge and no free chat: every question waits for a person ("no answer in the shop's knowledge").
    config = replace(tiny_engine.config, chat=replace(tiny_engine.config.chat, free_chat="off"))
    sentiments = {"Is the oak side table in stock?": ("neutral", 0.8),
                  "Hello?? Nobody answers, this is ridiculous!": ("negative", 0.8),
                  "Still nothing, what a terrible shop!": ("negative", 0.8)}
    service = ConversationService(db, ScriptedEngine(tiny_engine, sentiments=sentiments), config)
    await service.start()
    ann = Sender("console", "ann")
    alerts = [(await service.handle_text(ann, text)).alert for text in sentiments]
    assert [a.reason if a else None for a in alerts] == [
        NO_ANSWER,  # the note: Ann waits for a person
        NEGATIVE,  # her mood turned: a different reason, not held back by the pending note
        None,  # the same reason again within the cooldown: no flood
    ]


async def test_take_over_answers_the_customers_note_so_their_next_question_makes_a_new_one(config, engine, fake):
    config = replace(config, chat=replace(config.chat, free_chat="off"))  # no knowledge: questions wait for a person
    async with running_bot(config, engine) as svc:
        fake.send_text(ANN, "Is the oak side table in stock?", first_name="Ann", username="ann_k")
        note = await linked(svc, await operator_chat_has(fake, f"Alert #1: {NO_ANSWER}"))
        take = note["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
        fake.press_button(OPERATORS, note["message_id"], take, user_id=OLGA, first_name="Olga")
        taken = await operator_chat_has(fake, "Olga is handling Ann")
        hand_back = taken["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
        fake.press_button(OPERATORS, taken["message_id"], hand_back, user_id=OLGA, first_name="Olga")
        await operator_chat_has(fake, "is back with the bot (by Olga)")
        fake.send_text(ANN, "Do you also ship to Macau?", first_name="Ann", username="ann_k")
        second = await operator_chat_has(fake, f"Alert #2: {NO_ANSWER}")  # a new question, a new note
    assert "Do you also ship to Macau?" in second["text"]


async def test_a_taken_over_customer_over_the_rate_limit_still_reaches_the_operator_and_the_bot_stays_quiet(
        config, engine, fake):
    config = replace(config, chat=replace(config.chat, rate_limit_per_minute=3))
    async with running_bot(config, engine) as svc:
        await taken_over(fake, svc)  # the alert is Ann's first message of the minute
        flood = [f"hello? ({i})" for i in range(4)]  # the last two are over the limit
        for text in flood:
            fake.send_text(ANN, text)
        for text in flood:
            await operator_chat_has(fake, text)
    assert sent_texts(fake, ANN)[1:] == [config.handoff.customer_notice.for_lang("en")]  # no "slow down"


async def test_an_edit_during_a_takeover_reaches_the_operator_and_the_bot_stays_quiet(config, engine, fake):
    """Ann corrects what she wrote while Olga has her: Olga sees the new wording; the bot does not ask Ann to resend."""
    async with running_bot(config, engine) as svc:
        await taken_over(fake, svc)
        first = fake.send_text(ANN, "The teapot lid is cracked")
        await operator_chat_has(fake, "The teapot lid is cracked")
        fake.edit_text(ANN, first, "The teapot lid and spout are cracked")
        relay = await operator_chat_has(fake, "The teapot lid and spout are cracked")
        operator_says(fake, "Sending a new one today.", relay["message_id"])
        await fake.wait_for(copies_to(ANN))
    assert "edited" in relay["text"]
    assert sent_texts(fake, ANN)[1:] == [config.handoff.customer_notice.for_lang("en"),  # no "please resend"
                                         "Sending a new one today."]


async def test_a_live_location_moving_during_a_takeover_is_not_relayed_as_edits(config, engine, fake):
    """Ann shares her live location while Olga has her: Olga sees it once, not an "edited a message" per move."""
    from tests.test_telegram import live_location

    async with running_bot(config, engine) as svc:
        await taken_over(fake, svc)
        fake.queue_raw_update(live_location(ANN, 500, 52.52))
        await operator_chat_has(fake, "💬 Ann (@ann_k) sent:")
        for step in range(1, 4):
            fake.queue_raw_update(live_location(ANN, 500, 52.52 + step / 1000, edited=True))
        fake.send_text(ANN, "hello?")  # relayed after the moves: the customer's chat goes in order
        await operator_chat_has(fake, "hello?")
    assert not [text for text in sent_texts(fake, OPERATORS) if "edited a message" in (text or "")]
