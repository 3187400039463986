"""CSAT and business hours end to end (#18): the real Application over the fake Bot API, real SQLite, plain group."""

import asyncio
import io
import re
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone

import pytest

from bot.config import HoursSettings
from bot.hours import when_text
from bot.telegram import chart
from storage.db import Rated
from testkit.telegram_helpers import OPERATORS, linked, replies, running_bot, sent_texts
from tests.test_handoff import engine  # noqa: F401 (the fixture: the tiny model with scripted sentiments)
from tests.test_handoff import (ANN, BOB, OLGA, PIET, angry_alert, customer_id, operator_chat_has, operator_says,
                                rating_asked)


def rating_question(fake, chat_id: int) -> dict:
    return [m for m in fake.sent_messages(chat_id) if "csat:" in str(m.get("reply_markup"))][-1]


async def hand_back_by_button(fake, svc) -> dict:
    """Ann's alert, Olga answers (a takeover), then presses Hand back; the rating question Ann gets."""
    alert = await angry_alert(fake, svc)
    assert "📋 Brief" in alert["text"]  # the plain group gets the same brief as a forum topic
    operator_says(fake, "So sorry! A new one ships today.", alert["message_id"])
    note = await operator_chat_has(fake, "is handling Ann")
    fake.press_button(OPERATORS, note["message_id"], note["reply_markup"]["inline_keyboard"][0][0]["callback_data"],
                      user_id=OLGA, first_name="Olga")
    await operator_chat_has(fake, "is back with the bot (by Olga)")
    await rating_asked(fake, ANN)
    return rating_question(fake, ANN)


async def test_hand_back_asks_once_the_tap_is_stored_and_stats_show_it(config, engine, fake):
    texts = config.knowledge.languages["en"]
    async with running_bot(config, engine) as svc:
        question = await hand_back_by_button(fake, svc)
        buttons = question["reply_markup"]["inline_keyboard"][0]
        assert question["text"] == texts.csat_question and [b["text"] for b in buttons] == ["1", "2", "3", "4", "5"]
        fake.press_button(ANN, question["message_id"], buttons[3]["callback_data"])  # 4
        await fake.wait_for("editMessageText")
        fake.press_button(ANN, question["message_id"], buttons[0]["callback_data"])  # a second tap: 1, not counted
        for forged in ("csat:9999:5", "csat:1:9", "csat:one:5", f"{buttons[4]['callback_data']}0", "csat:"):
            fake.press_button(ANN, question["message_id"], forged)
        await fake.wait_for("answerCallbackQuery", count=8)
        fake.send_command(OPERATORS, "stats", user_id=OLGA, chat_type="supergroup")
        stats = await operator_chat_has(fake, "Today so far")
        photo = (await fake.wait_for("sendPhoto"))[0]
        ratings = await svc.db.csat_ratings(0)
    answers = [c.params.get("text") for c in fake.calls("answerCallbackQuery")]
    assert answers[1:] == [texts.csat_thanks, texts.csat_already, None, None, None, None, None]  # [0]: Hand back's
    assert fake.message(ANN, question["message_id"])["text"] == texts.csat_thanks
    assert "reply_markup" not in fake.message(ANN, question["message_id"])  # no buttons left to tap
    assert ratings == [4]
    assert "CSAT after hand-back: 4.0 average of 1 rating (5★ 0, 4★ 1, 3★ 0, 2★ 0, 1★ 0)" in stats["text"]
    assert "Negative: " in stats["text"]
    assert "Alert to first operator answer (reply or Take over, median): " in stats["text"]
    assert "CSAT 4.0 of 5 from 1 ratings" in photo.params["caption"]


async def piet_hands_back(fake, svc, asks_for_a_person: str) -> tuple[dict, str]:
    """Bob asks for a person (an alert), Piet takes him over and releases him: the alert and its Take over data."""
    fake.send_text(BOB, asks_for_a_person, first_name="Bob")
    await replies(fake, BOB)
    alert = await linked(svc, await operator_chat_has(fake, "Alert #"))
    take = alert["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    fake.press_button(OPERATORS, alert["message_id"], take, user_id=PIET, first_name="Piet")
    await operator_chat_has(fake, "Piet is handling")
    fake.send_command(OPERATORS, "release", user_id=PIET, first_name="Piet", chat_type="supergroup",
                      reply_to_message_id=alert["message_id"])
    return alert, take


async def test_release_and_idle_hand_backs_ask_once_each_in_the_customers_language(config, engine, fake):
    config = replace(config, handoff=replace(config.handoff, idle_minutes=0.02))  # 1.2 s
    zh = config.knowledge.languages["zh"]
    async with running_bot(config, engine) as svc:
        alert, take = await piet_hands_back(fake, svc, "我要转人工")
        await operator_chat_has(fake, "is back with the bot (by Piet)")
        fake.send_command(OPERATORS, "release", user_id=PIET, first_name="Piet", chat_type="supergroup",
                          reply_to_message_id=alert["message_id"])  # nothing to hand back: no second question
        await operator_chat_has(fake, "The bot has Bob already")
        # A second takeover, left idle: handed back by the job, and asked again (one question per hand-back).
        fake.press_button(OPERATORS, alert["message_id"], take, user_id=PIET, first_name="Piet")
        await operator_chat_has(fake, "is back with the bot (no operator reply", count=1)
        await rating_asked(fake, BOB, count=2)
        bob = await customer_id(svc, BOB)
        assert await svc.db.add_csat_survey(bob, (await svc.db.last_ended_takeover(bob))["id"]) is None
    questions = [m for m in fake.sent_messages(BOB) if "csat:" in str(m.get("reply_markup"))]
    assert [q["text"] for q in questions] == [zh.csat_question, zh.csat_question]
    assert len({q["reply_markup"]["inline_keyboard"][0][0]["callback_data"] for q in questions}) == 2


async def test_the_rating_question_and_thanks_reach_a_traditional_script_customer_in_her_script(config, engine, fake):
    """The shop wrote its CSAT texts in simplified script; a customer who writes Traditional reads them in Traditional,
    as every other text the bot sends her."""
    zh = config.knowledge.languages["zh"]
    async with running_bot(config, engine) as svc:
        await piet_hands_back(fake, svc, "我要轉人工")  # asks for a person in Traditional script
        await rating_asked(fake, BOB)
        question = rating_question(fake, BOB)
        five = question["reply_markup"]["inline_keyboard"][0][4]["callback_data"]
        fake.press_button(BOB, question["message_id"], five)
        await fake.wait_for(lambda c: c.method == "editMessageText" and c.params["chat_id"] == BOB)
    thanks = [c.params.get("text") for c in fake.calls("answerCallbackQuery")][-1]
    assert question["text"] == "您對這次服務滿意嗎？請從 1（很差）到 5（非常好）打分。" != zh.csat_question
    assert thanks == "感謝您的評分！" != zh.csat_thanks
    assert fake.message(BOB, question["message_id"])["text"] == thanks


async def test_rating_is_only_the_customers_own(db):
    ann = await db.customer("telegram", str(ANN))
    bob = await db.customer("telegram", str(BOB))
    takeover, _ = await db.start_takeover(ann.id, "7", "Olga")
    await db.end_takeover(ann.id, "released")
    survey = await db.add_csat_survey(ann.id, takeover["id"])
    assert await db.add_csat_survey(ann.id, takeover["id"]) is None  # once per hand-back
    assert await db.rate_csat(survey, bob.id, 1) is Rated.UNKNOWN  # Bob cannot rate Ann's
    assert await db.rate_csat(survey, ann.id, 5) is Rated.RECORDED
    assert await db.rate_csat(survey, ann.id, 2) is Rated.ALREADY
    assert await db.csat_ratings(0) == [5]
    await db.forget(ann.id)
    assert await db.csat_ratings(0) == []  # /forget takes the ratings with it


async def test_stats_numbers_match_the_stored_data(config, engine, fake):
    # One customer each: the sentiment read for their one message, and the rating they gave after a hand-back.
    seeded = [("negative", 5), ("negative", 5), ("positive", 4), ("neutral", 2)]
    async with running_bot(config, engine) as svc:
        db = svc.db
        for n, (label, rating) in enumerate(seeded):
            c = await db.customer("telegram", str(5000 + n))
            await db.set_sentiment(await db.add_message(c.id, "customer", "hi"), label, 0.9)
            takeover, _ = await db.start_takeover(c.id, "7", "Olga")
            await db.end_takeover(c.id, "released")
            assert await db.rate_csat(await db.add_csat_survey(c.id, takeover["id"]), c.id, rating) is Rated.RECORDED
        fake.send_command(OPERATORS, "stats", user_id=OLGA, chat_type="supergroup")
        stats = (await operator_chat_has(fake, "Today so far"))["text"]
        photo = (await fake.wait_for("sendPhoto"))[0]
    assert "Customers: 4\nMessages: 4\nNegative: 50%\n" in stats
    assert "CSAT after hand-back: 4.0 average of 4 ratings (5★ 2, 4★ 1, 3★ 0, 2★ 1, 1★ 0)" in stats
    assert "In all: 4, 50% negative" in photo.params["caption"] and "CSAT 4.0 of 5 from 4 ratings" in photo.params[
        "caption"]


def closed_now(mode: str) -> HoursSettings:
    """Weekdays 09:00-18:00 UTC, but today and tomorrow are holidays: closed now, open the day after tomorrow."""
    today = datetime.now(timezone.utc).date()
    return HoursSettings(timezone="UTC", mon="09:00-18:00", tue="09:00-18:00", wed="09:00-18:00", thu="09:00-18:00",
                         fri="09:00-18:00", sat="09:00-18:00", sun="09:00-18:00",
                         holidays=(today.isoformat(), (today + timedelta(days=1)).isoformat()),
                         alerts_outside_hours=mode)


def away_note(config, lang: str) -> str:
    s = config.hours.schedule()
    now = datetime.now(timezone.utc)
    return config.knowledge.languages[lang].away_note.format(when=when_text(s.next_opening(now), now, lang),
                                                             timezone="UTC")


async def test_outside_hours_the_customer_hears_when_a_person_is_back_and_alerts_wait_for_the_digest(config, engine,
                                                                                                    fake):
    closed = replace(config, hours=closed_now("digest"))
    async with running_bot(closed, engine) as svc:
        fake.send_command(ANN, "human")
        (answer,) = await replies(fake, ANN)
        fake.send_text(BOB, "我要转人工", first_name="Bob")
        (bob_answer,) = await replies(fake, BOB)
        await asyncio.sleep(0.5)  # the outbox had its chance to (wrongly) send
        held = await svc.db.held_alerts()
    assert answer == f"{config.handoff.human_reply.for_lang('en')}\n\n{away_note(closed, 'en')}"
    assert "(UTC time)" in answer and " at 09:00" in answer
    assert bob_answer.endswith(away_note(closed, "zh")) and "09:00（UTC 时间）" in bob_answer
    assert len(held) == 2
    assert sent_texts(fake, OPERATORS) == []  # nothing reached the operators at night

    opened = replace(config, hours=replace(closed_now("digest"), holidays=()))  # a restart, and the shop is open
    opened = replace(opened, hours=replace(opened.hours, **{d: "00:00-24:00" for d in
                                                           ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}))
    opened = replace(opened, alerts=replace(opened.alerts, outbox_retry_seconds=0.2))  # the outbox's next run: soon
    async with running_bot(opened, engine) as svc:
        digest = await operator_chat_has(fake, "came in while the shop was closed")
        await operator_chat_has(fake, "Alert #", count=2)
        left = await svc.db.held_alerts()
    lines = digest["text"].splitlines()
    assert lines[0].startswith("☀️ Open again. 2 alerts") and len(lines) == 3
    assert "Ann" in lines[1] and "customer asked for a person" in lines[1] and "Bob" in lines[2] and "转人工" in lines[2]
    texts = sent_texts(fake, OPERATORS)
    assert texts[0] == digest["text"] and [t.split(":")[0] for t in texts[1:]] == ["⚠️ Alert #1", "⚠️ Alert #2"]
    assert left == []


async def test_outside_hours_with_send_alerts_go_out_anyway(config, engine, fake):
    closed = replace(config, hours=closed_now("send"))
    async with running_bot(closed, engine):
        fake.send_command(ANN, "human")
        (answer,) = await replies(fake, ANN)
        alert = await operator_chat_has(fake, "Alert #")
    assert answer.endswith(away_note(closed, "en")) and "customer asked for a person" in alert["text"]


def test_chart_is_a_phone_sized_png_with_negative_bars_and_csat_points():
    from PIL import Image

    days = [(0, 0)] * 12 + [(10, 5), (4, 0)]  # yesterday half negative, today none
    ratings = [[]] * 12 + [[5, 3], [4]]
    png = chart.daily_png(days, ratings, date(2026, 11, 30))
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and 20_000 < len(png) < 400_000
    image = Image.open(io.BytesIO(png)).convert("RGB")
    assert image.size == (960, 720)
    pixels = image.load()

    def columns(colour: str) -> list[int]:
        rgb = tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))
        return sorted({x for x in range(image.width) for y in range(image.height) if pixels[x, y] == rgb})

    # The legend's swatches sit at the left; the bars and points are the rest.
    red, blue, green = (columns(c) for c in (chart.RED, chart.BLUE, chart.GREEN))
    red = [x for x in red if x > image.width * 0.25]
    assert red and min(red) > image.width * 0.8  # only yesterday's bar is red
    assert max(blue) > max(red)  # today's bar, blue only, right of it
    assert green and min(green) > image.width * 0.8  # CSAT points on the last two days only
    assert re.search(r"CSAT 4\.0 of 5 from 3 ratings", chart.caption(days, ratings))
