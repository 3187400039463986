"""A topic per customer (#18) end to end: the real Application over the fake Bot API with forum topics, tiny model,
real SQLite. The plain-group workflow is tests/test_handoff.py's, unchanged."""

from dataclasses import replace

import pytest

from bot.telegram.topics import NO_TOPIC_NOTE, RECREATED_NOTE
from testkit.fakes.bot_api import FakeBotApi
from testkit.fakes.engine import ScriptedEngine
from testkit.telegram_helpers import OPERATORS, linked, over_fake, replies, running_bot
from tests.test_csat import rating_question
from bot.telegram.handlers.operator import FORGOTTEN_NOTE
from tests.test_handoff import forgets, rating_asked

ANN, OLGA = 1001, 7
ANGRY = "My order #A-1234 arrived broken and nobody answers!"
SENTIMENTS = {ANGRY: ("negative", 0.8), "hello?": ("neutral", 0.7), "ok thanks": ("positive", 0.9),
              "one more thing": ("neutral", 0.7)}


@pytest.fixture
def engine(tiny_engine):
    return ScriptedEngine(tiny_engine, sentiments=SENTIMENTS, intents={ANGRY: ("order_status", 0.8)})


@pytest.fixture
def config(tiny_config, fake):
    """A forum operator chat; polling only (how updates arrive is tests/test_telegram.py's business)."""
    fake.make_forum(OPERATORS)
    return over_fake(tiny_config, fake)


def posted(fake: FakeBotApi, needle: str):
    return lambda c: (c.method == "sendMessage" and c.status == 200 and c.params["chat_id"] == OPERATORS
                      and needle in c.params["text"])


async def operators_see(fake: FakeBotApi, needle: str, count: int = 1) -> dict:
    """The bot's `count`-th operator-chat message containing `needle`, once sent."""
    await fake.wait_for(posted(fake, needle), count=count)
    return [m for m in fake.sent_messages(OPERATORS) if needle in (m.get("text") or "")][count - 1]


def topic_texts(fake: FakeBotApi, thread: int) -> list[str]:
    return [m.get("text") for m in fake.sent_messages(OPERATORS) if m.get("message_thread_id") == thread]


def writes_in_topic(fake: FakeBotApi, text: str, thread: int) -> int:
    return fake.send_text(OPERATORS, text, user_id=OLGA, first_name="Olga", chat_type="supergroup", thread_id=thread)


async def angry_topic(fake: FakeBotApi) -> tuple[int, dict]:
    """Ann writes angrily: her topic's thread id and the alert in it."""
    fake.send_text(ANN, ANGRY, first_name="Ann", username="ann_k")
    alert = await operators_see(fake, "Alert #")
    return alert["message_thread_id"], alert


async def test_topic_brief_operator_writes_hand_back_closes_new_message_reopens(config, engine, fake):
    async with running_bot(config, engine) as svc:
        thread, alert = await angry_topic(fake)
        assert fake.topics(OPERATORS) == {thread: {"name": "Ann @ann_k · Telegram 1001", "closed": False}}
        for line in ("📋 Brief", "Sentiment trend: negative", "Language: en", "Mentioned: order A-1234",
                     f"“{ANGRY}”", "Wants: order_status"):
            assert line in alert["text"]
        assert [b["text"] for b in alert["reply_markup"]["inline_keyboard"][0]] == ["Take over", "Dismiss"]
        bot_reply = (await replies(fake, ANN))[0]
        assert (await operators_see(fake, "🤖 Bot: "))["text"] == f"🤖 Bot: {bot_reply}"  # what the bot told her

        writes_in_topic(fake, "So sorry! A new teapot ships today.", thread)  # no reply-to needed
        await fake.wait_for(lambda c: c.method == "copyMessage" and c.status == 200 and c.params["chat_id"] == ANN)
        note = await operators_see(fake, "Olga is handling Ann (@ann_k) now")
        assert "Write in this topic to answer" in note["text"] and "📋 Brief" in note["text"]

        fake.send_text(ANN, "hello?", first_name="Ann", username="ann_k")
        await operators_see(fake, "💬 Ann (@ann_k) (neutral 0.70):\nhello?")
        assert (await replies(fake, ANN, 2))[1:] == ["So sorry! A new teapot ships today.", config.handoff.customer_notice.for_lang("en")]

        fake.press_button(OPERATORS, note["message_id"], note["reply_markup"]["inline_keyboard"][0][0]["callback_data"],
                          user_id=OLGA, first_name="Olga")
        await operators_see(fake, "is back with the bot (by Olga)")
        await fake.wait_for("closeForumTopic")
        assert fake.topics(OPERATORS)[thread]["closed"]

        fake.send_text(ANN, "ok thanks", first_name="Ann", username="ann_k")
        await operators_see(fake, "ok thanks")
        await replies(fake, ANN, 3)  # the bot answers her again
        await operators_see(fake, "🤖 Bot: ", count=2)
        assert fake.topics(OPERATORS) == {thread: {"name": "Ann @ann_k · Telegram 1001", "closed": False}}
        assert len(fake.calls("reopenForumTopic")) == 1
    in_topic = topic_texts(fake, thread)
    assert len(in_topic) == len(fake.sent_messages(OPERATORS))  # nothing about Ann outside her topic
    in_order = ["Alert #1", "🤖 Bot: ", "Olga is handling", "hello?", "🤖 Bot (notice): ", "is back with the bot",
                "ok thanks", "🤖 Bot: "]
    assert len(in_topic) == len(in_order) and all(m in t for m, t in zip(in_order, in_topic)), in_topic


async def test_the_whole_forum_flow_ends_in_a_rating_that_stats_show(config, engine, fake):
    """The issue's flow: angry customer, topic and brief, the operator writes in the topic, the customer gets it,
    hand-back closes the topic, the customer rates the help, /stats shows the rating."""
    texts = config.knowledge.languages["en"]
    async with running_bot(config, engine) as svc:
        thread, alert = await angry_topic(fake)
        assert "📋 Brief" in alert["text"] and "Wants: order_status" in alert["text"]
        writes_in_topic(fake, "So sorry! A new teapot ships today.", thread)
        note = await operators_see(fake, "Olga is handling Ann (@ann_k) now")
        await fake.wait_for(lambda c: c.method == "copyMessage" and c.status == 200 and c.params["chat_id"] == ANN)
        fake.press_button(OPERATORS, note["message_id"], note["reply_markup"]["inline_keyboard"][0][0]["callback_data"],
                          user_id=OLGA, first_name="Olga")
        await fake.wait_for("closeForumTopic")
        await rating_asked(fake, ANN)
        question = rating_question(fake, ANN)
        assert question["text"] == texts.csat_question
        fake.press_button(ANN, question["message_id"], question["reply_markup"]["inline_keyboard"][0][4]["callback_data"])
        await fake.wait_for("editMessageText")
        fake.send_command(OPERATORS, "stats", user_id=OLGA, chat_type="supergroup")
        stats = await operators_see(fake, "Today so far")
        ratings = await svc.db.csat_ratings(0)
    assert ratings == [5] and fake.topics(OPERATORS)[thread]["closed"]
    assert "CSAT after hand-back: 5.0 average of 1 rating" in stats["text"]
    assert "Intents: order_status 1" in stats["text"]


async def test_a_deleted_topic_is_made_again_and_nothing_is_lost(config, engine, fake):
    async with running_bot(config, engine) as svc:
        thread, _ = await angry_topic(fake)
        await operators_see(fake, "🤖 Bot: ")
        fake.delete_topic(OPERATORS, thread)
        fake.send_text(ANN, "hello?", first_name="Ann", username="ann_k")
        line = await operators_see(fake, "hello?")
        topic = await svc.db.topic(OPERATORS, (await svc.db.customer("telegram", str(ANN))).id)
    new = line["message_thread_id"]
    assert new != thread and topic["thread_id"] == new
    assert list(fake.topics(OPERATORS)) == [new]
    assert topic_texts(fake, new)[0].startswith(RECREATED_NOTE) and "📋 Brief" in topic_texts(fake, new)[0]


async def test_forget_deletes_the_customers_topic_and_tells_operators_why_it_went(config, engine, fake):
    async with running_bot(config, engine) as svc:
        thread, _ = await angry_topic(fake)
        await operators_see(fake, "🤖 Bot: ")
        await forgets(fake, ANN, 1)
        note = await operators_see(fake, FORGOTTEN_NOTE)
        assert fake.topics(OPERATORS) == {}
        assert [m["text"] for m in fake.sent_messages(OPERATORS) if fake.message(OPERATORS, m["message_id"])] == [
            FORGOTTEN_NOTE]  # the alert, the bot's reply shown to operators: gone with the topic
        fake.send_text(ANN, ANGRY, first_name="Ann", username="ann_k")  # a new customer to the bot: a topic of her own
        new = (await operators_see(fake, "Alert #", count=2))["message_thread_id"]
    assert "message_thread_id" not in note  # the main chat: the topic it would explain is gone
    assert list(fake.topics(OPERATORS)) == [new] and new != thread
    assert not topic_texts(fake, new)[0].startswith(RECREATED_NOTE)  # nothing of the forgotten Ann is shown again


async def test_stats_asked_in_a_customers_topic_is_answered_there(config, engine, fake):
    async with running_bot(config, engine):
        thread, _ = await angry_topic(fake)
        fake.send_command(OPERATORS, "stats", user_id=OLGA, chat_type="supergroup", thread_id=thread)
        stats = await operators_see(fake, "Today so far")
        photo = (await fake.wait_for("sendPhoto"))[0]
    assert stats["message_thread_id"] == thread and photo.params["message_thread_id"] == thread


async def test_a_closed_then_deleted_topic_is_made_again_when_the_customer_writes(config, engine, fake):
    config = replace(config, handoff=replace(config.handoff, idle_minutes=0.01))  # idle hand-back after 0.6 s
    async with running_bot(config, engine) as svc:
        thread, _ = await angry_topic(fake)
        writes_in_topic(fake, "Checking, one moment.", thread)
        await operators_see(fake, "is back with the bot (no operator reply")
        await fake.wait_for("closeForumTopic")
        fake.delete_topic(OPERATORS, thread)
        fake.send_text(ANN, "hello?", first_name="Ann", username="ann_k")
        line = await operators_see(fake, "hello?")
    assert line["message_thread_id"] != thread and not fake.topics(OPERATORS)[line["message_thread_id"]]["closed"]


async def test_the_topic_survives_a_restart(config, engine, fake):
    async with running_bot(config, engine):
        thread, _ = await angry_topic(fake)
        await operators_see(fake, "🤖 Bot: ")
    async with running_bot(config, engine):  # a new process, the same SQLite file
        fake.send_text(ANN, "hello?", first_name="Ann", username="ann_k")
        line = await operators_see(fake, "hello?")
        writes_in_topic(fake, "We are on it.", thread)
        await fake.wait_for(lambda c: c.method == "copyMessage" and c.status == 200 and c.params["chat_id"] == ANN)
    assert line["message_thread_id"] == thread and len(fake.calls("createForumTopic")) == 1


async def test_a_failed_topic_post_is_shown_with_the_next_one(config, engine, fake):
    async with running_bot(config, engine):
        thread, _ = await angry_topic(fake)
        await operators_see(fake, "🤖 Bot: ")
        fake.fail_next("sendMessage", status=400, chat_id=OPERATORS)  # "hello?"'s line is refused
        fake.send_text(ANN, "hello?", first_name="Ann", username="ann_k")
        await replies(fake, ANN, 2)
        fake.send_text(ANN, "one more thing", first_name="Ann", username="ann_k")
        await operators_see(fake, "one more thing")
    lines = [t for t in topic_texts(fake, thread) if t.startswith("💬")]
    assert [t.split("\n")[1] for t in lines] == ["hello?", "one more thing"]


async def test_first_message_mode_opens_the_topic_before_any_alert(config, engine, fake):
    config = replace(config, handoff=replace(config.handoff, topic_per_customer="first_message"))
    async with running_bot(config, engine):
        fake.send_text(ANN, "hello?", first_name="Ann", username="ann_k")
        line = await operators_see(fake, "hello?")
        await operators_see(fake, "🤖 Bot: ")
    assert line["message_thread_id"] in fake.topics(OPERATORS)
    assert not any("Alert #" in t for t in topic_texts(fake, line["message_thread_id"]))


async def test_without_the_manage_topics_right_alerts_go_to_the_main_chat_with_a_note(config, engine, fake):
    fake.make_forum(OPERATORS, can_manage_topics=False)
    async with running_bot(config, engine) as svc:
        fake.send_text(ANN, ANGRY, first_name="Ann", username="ann_k")
        alert = await linked(svc, await operators_see(fake, "Alert #"))
        fake.send_text(OPERATORS, "Sorry, on it.", user_id=OLGA, first_name="Olga", chat_type="supergroup",
                       reply_to_message_id=alert["message_id"])  # the plain-group workflow
        await fake.wait_for(lambda c: c.method == "copyMessage" and c.status == 200 and c.params["chat_id"] == ANN)
    assert alert["text"].startswith(NO_TOPIC_NOTE.split("(")[0]) and "not enough rights" in alert["text"].lower()
    assert "message_thread_id" not in alert and fake.topics(OPERATORS) == {}


async def test_a_plain_group_gets_no_topics(tiny_config, engine, fake):
    async with running_bot(over_fake(tiny_config, fake), engine):
        fake.send_text(ANN, ANGRY, first_name="Ann", username="ann_k")
        alert = await operators_see(fake, "Alert #")
    assert "message_thread_id" not in alert and "📋 Brief" in alert["text"]
    assert fake.calls("createForumTopic") == []


async def test_release_in_a_closed_topic_is_answered_in_the_main_chat(config, engine, fake):
    async with running_bot(config, engine):
        thread, alert = await angry_topic(fake)
        take = alert["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
        fake.press_button(OPERATORS, alert["message_id"], take, user_id=OLGA, first_name="Olga")
        note = await operators_see(fake, "Olga is handling Ann")
        fake.press_button(OPERATORS, note["message_id"], note["reply_markup"]["inline_keyboard"][0][0]["callback_data"],
                          user_id=OLGA, first_name="Olga")
        await fake.wait_for("closeForumTopic")
        fake.send_command(OPERATORS, "release", user_id=OLGA, first_name="Olga", chat_type="supergroup",
                          thread_id=thread)  # in her topic, closed by the hand-back
        answer = await operators_see(fake, "The bot has Ann (@ann_k) already.")
    assert "message_thread_id" not in answer  # the closed topic can't take it: the main chat does
    assert not [m for m in fake.sent_messages(OPERATORS) if "shopbot hit an error" in (m.get("text") or "")]
