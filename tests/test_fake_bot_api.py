"""The Bot API fake speaks well enough for python-telegram-bot's real Bot and Application."""

import asyncio
import datetime as dtm
import time

import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, ReplyKeyboardMarkup, Update
from telegram.error import BadRequest, Forbidden, InvalidToken, RetryAfter, TimedOut
from telegram.ext import Application, ContextTypes, MessageHandler, filters

from testkit.fakes.bot_api import FakeBotApi
from testkit.telegram_helpers import TOKEN  # the token the shared `fake` fixture serves

CHAT = 42


def make_bot(fake: FakeBotApi, token: str = TOKEN) -> Bot:
    return Bot(token, base_url=f"{fake.url}/bot", base_file_url=f"{fake.url}/file/bot")


async def test_get_me_and_send_message_are_recorded(fake):
    async with make_bot(fake) as bot:  # initialize() calls getMe
        assert bot.username == "shopbot_test_bot" and bot.id == int(TOKEN.split(":")[0])
        keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Yes", callback_data="y")]])
        msg = await bot.send_message(CHAT, "42", reply_markup=keyboard)
        second = await bot.send_message(CHAT, "again", reply_to_message_id=msg.message_id,
                                        reply_markup=ReplyKeyboardMarkup([["a"]]))

    assert msg.text == "42" and msg.chat.id == CHAT and msg.from_user.is_bot
    assert msg.reply_markup == keyboard
    assert second.message_id == msg.message_id + 1
    assert second.reply_to_message.message_id == msg.message_id
    assert second.reply_markup is None  # Telegram doesn't echo reply keyboards
    (call, _) = fake.calls("sendMessage")
    # Form values are decoded: ints and nested JSON come back typed, free text stays a string.
    assert call.params["chat_id"] == CHAT and call.params["text"] == "42"
    assert call.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "y"
    assert [m["text"] for m in fake.sent_messages(CHAT)] == ["42", "again"]
    assert [c.method for c in fake.calls()][0] == "getMe"


async def test_get_updates_honours_offset_and_wakes_long_poll(fake):
    first = fake.send_text(CHAT, "hi", username="ann")
    second = fake.send_command(CHAT, "start", "promo")
    async with make_bot(fake) as bot:
        updates = await bot.get_updates(timeout=0)
        assert [u.update_id for u in updates] == [first, second]
        assert updates[0].message.text == "hi" and updates[0].effective_user.username == "ann"
        assert updates[1].message.text == "/start promo"
        assert updates[1].message.entities[0].type == "bot_command"
        assert updates[1].message.message_id == updates[0].message.message_id + 1
        assert await bot.get_updates(offset=first + 1, timeout=0) == (updates[1],)
        assert await bot.get_updates(offset=second + 1, timeout=0) == ()

        # A long poll returns as soon as an update arrives, not after its timeout.
        asyncio.get_running_loop().call_later(0.1, fake.send_location, CHAT)
        started = time.monotonic()
        (update,) = await bot.get_updates(offset=second + 1, timeout=5)
        assert time.monotonic() - started < 1.5
        assert update.message.location.latitude == pytest.approx(52.52)

        for send in (fake.send_photo, fake.send_sticker, fake.send_voice, fake.send_document):
            send(CHAT)
        media = await bot.get_updates(offset=update.update_id + 1, timeout=0)
        assert [bool(u.message.photo) for u in media] == [True, False, False, False]
        assert media[1].message.sticker and media[2].message.voice and media[3].message.document


async def test_scripted_429_raises_retry_after_then_recovers(fake, monkeypatch):
    monkeypatch.setenv("PTB_TIMEDELTA", "true")  # opt into PTB's non-deprecated retry_after
    fake.fail_next("sendMessage", status=429, retry_after=7)
    async with make_bot(fake) as bot:
        with pytest.raises(RetryAfter) as exc:
            await bot.send_message(CHAT, "hello")
        assert exc.value.retry_after == dtm.timedelta(seconds=7)
        await bot.send_message(CHAT, "hello")
    assert [c.status for c in fake.calls("sendMessage")] == [429, 200]
    assert len(fake.sent_messages()) == 1


async def test_forbidden_bad_request_and_blocked_chats(fake):
    fake.fail_next("sendMessage", status=403, chat_id=7)
    fake.fail_next("sendMessage", status=400, description="Bad Request: chat not found",
                   chat_id=7)
    async with make_bot(fake) as bot:
        await bot.send_message(CHAT, "other chats are unaffected by chat_id=7")
        with pytest.raises(Forbidden, match="blocked by the user"):
            await bot.send_message(7, "x")
        with pytest.raises(BadRequest, match="Chat not found"):  # PTB strips "Bad Request: "
            await bot.send_message(7, "x")
        fake.block_chat(CHAT)
        for _ in range(2):
            with pytest.raises(Forbidden):
                await bot.send_chat_action(CHAT, "typing")
        fake.unblock_chat(CHAT)
        assert await bot.send_chat_action(CHAT, "typing")
    assert [c.status for c in fake.calls("sendChatAction")] == [403, 403, 200]


async def test_photo_upload_buttons_edits_and_unknown_methods(fake):
    async with make_bot(fake) as bot:
        photo = await bot.send_photo(CHAT, b"\x89PNG\r\n" + bytes(range(256)), caption="menu")
        assert fake.calls("sendPhoto")[0].params == {"chat_id": CHAT, "photo": 262,
                                                     "caption": "menu"}
        assert photo.caption == "menu" and photo.photo[0].file_size == 262
        keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Buy", callback_data="buy:1")]])
        offer = await bot.send_message(CHAT, "Offer", reply_markup=keyboard)
        fake.press_button(CHAT, offer.message_id, "buy:1")
        (update,) = await bot.get_updates(timeout=0)
        query = update.callback_query
        assert query.data == "buy:1" and query.message.text == "Offer"
        assert await query.answer("ok")
        edited = await query.edit_message_text("Sold")
        assert edited.text == "Sold" and edited.reply_markup is None
        with pytest.raises(BadRequest, match="not modified"):
            await query.edit_message_text("Sold")
        assert await bot.set_my_commands([("start", "Start")])
        assert await bot.delete_message(CHAT, photo.message_id)
        with pytest.raises(BadRequest, match="not found"):
            await bot.delete_message(CHAT, photo.message_id)
        assert await bot.do_api_request("someFutureMethod", {"x": 1}) is True
    assert fake.calls("someFutureMethod")[0].params == {"x": 1}
    assert fake.message(CHAT, offer.message_id)["text"] == "Sold"
    assert [m.get("text") for m in fake.sent_messages()] == [None, "Offer"]


async def test_delay_makes_ptb_time_out_and_wrong_token_is_rejected(fake):
    fake.delay("sendMessage", 1.0)
    async with make_bot(fake) as bot:
        with pytest.raises(TimedOut):
            await bot.send_message(CHAT, "slow", read_timeout=0.2)
    with pytest.raises(InvalidToken):
        async with make_bot(fake, token="999:WRONG"):
            pass


def test_wait_for_sync_times_out_with_a_dump_of_recent_calls(fake):
    async def send() -> None:
        async with make_bot(fake) as bot:
            await bot.send_message(CHAT, "hello")

    asyncio.run(send())
    assert fake.wait_for_sync("sendMessage")[0].result["text"] == "hello"
    with pytest.raises(AssertionError, match=r"(?s)recent calls:.*sendMessage -> 200"):
        fake.wait_for_sync("sendPhoto", timeout=0.1)


async def test_application_polls_and_echoes(fake):
    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await update.message.reply_text(f"echo: {update.message.text}", do_quote=True)

    app = (
        Application.builder()
        .token(TOKEN)
        .base_url(f"{fake.url}/bot")
        .base_file_url(f"{fake.url}/file/bot")
        .build()
    )
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, echo))
    started = time.monotonic()
    async with app:
        await app.start()
        await app.updater.start_polling(poll_interval=0.0, timeout=1)
        fake.send_text(CHAT, "hello shop")
        await fake.wait_for(lambda c: c.method == "sendMessage" and c.status == 200)
        await app.updater.stop()
        await app.stop()
    assert time.monotonic() - started < 5
    (reply,) = fake.sent_messages(CHAT)
    assert reply["text"] == "echo: hello shop"
    assert reply["reply_to_message"]["text"] == "hello shop"
    # The updater's final getUpdates confirmed the update, so a restart won't see it again.
    assert fake.calls("getUpdates")[-1].result == []


async def test_forum_topics_behave_as_telegram_says(fake):
    group = -100777
    fake.send_text(group, "hi all", chat_type="supergroup")
    async with make_bot(fake) as bot:
        with pytest.raises(BadRequest, match="(?i)not a forum"):
            await bot.create_forum_topic(group, "Ann")
        fake.make_forum(group)
        assert (await bot.get_chat(group)).is_forum
        topic = await bot.create_forum_topic(group, "Ann · Telegram 1001")
        thread = topic.message_thread_id
        posted = await bot.send_message(group, "in the topic", message_thread_id=thread)
        assert posted.is_topic_message and posted.message_thread_id == thread
        assert posted.reply_to_message.forum_topic_created.name == "Ann · Telegram 1001"  # the topic's first message
        fake.send_text(group, "an operator writes", chat_type="supergroup", thread_id=thread)
        (update,) = [u for u in await bot.get_updates(timeout=0) if u.message.text == "an operator writes"]
        assert update.message.is_topic_message and update.message.message_thread_id == thread

        await bot.close_forum_topic(group, thread)
        with pytest.raises(BadRequest, match="(?i)topic_closed"):
            await bot.send_message(group, "closed", message_thread_id=thread)
        with pytest.raises(BadRequest, match="(?i)topic_not_modified"):
            await bot.close_forum_topic(group, thread)
        await bot.reopen_forum_topic(group, thread)
        await bot.delete_forum_topic(group, thread)
        with pytest.raises(BadRequest, match="(?i)message thread not found"):
            await bot.send_message(group, "gone", message_thread_id=thread)
        with pytest.raises(BadRequest, match="(?i)topic_id_invalid"):
            await bot.reopen_forum_topic(group, thread)
        assert fake.topics(group) == {}
        with pytest.raises(BadRequest, match="(?i)topic_name_invalid"):
            await bot.create_forum_topic(group, "x" * 129)
        fake.make_forum(group, can_manage_topics=False)
        with pytest.raises(BadRequest, match="(?i)not enough rights"):
            await bot.create_forum_topic(group, "Bob")
