"""Streamed replies: the reply grows while the model writes it, in the console and as Telegram drafts."""

import asyncio
import io
import os
import pty

import torch

from bot.channels.console import chat
from bot.service import ConversationService, Sender
from testkit.fakes.engine import ScriptedEngine
from testkit.telegram_helpers import replies, running_bot, sent_texts

SEED = 1
REPLY = "Your parcel left our warehouse this morning and should arrive on Friday."


async def test_the_service_reports_a_model_reply_as_it_grows(db, tiny_engine):
    # The random tiny model's sampled words are shown only while they read as the customer's language. Which seed
    # samples such words depends on the CPU's rounding (seed 1 did on the Intel machines, not on the AMD ones): the
    # first of a few seeds whose reply reads so must stream it.
    service = ConversationService(db, tiny_engine, tiny_engine.config)
    for seed in range(SEED, SEED + 8):
        torch.manual_seed(seed)
        partials: list[str] = []
        outcome = await service.handle_text(Sender("console", str(seed)), "where is my parcel",
                                            on_partial=partials.append)
        if partials:
            break
    assert partials, "the model's reply was not streamed"
    assert all(len(a) <= len(b) for a, b in zip(partials, partials[1:]))
    # What was shown is the start of what was sent (a draft in another language than the reply's start is not
    # shown, so the last draft may be shorter than the reply).
    assert outcome.reply.startswith(partials[-1]) or partials[-1].startswith(outcome.reply) or outcome.fallback


async def test_the_console_prints_the_reply_as_it_grows(db, tiny_engine):
    engine = ScriptedEngine(tiny_engine, replies={"where is my parcel": REPLY})
    out = io.StringIO()
    person, terminal = pty.openpty()  # a real terminal: the console reads it as it reads a person's
    os.write(person, b"where is my parcel\n\x04")  # a line, then Ctrl-D
    try:
        with open(terminal, encoding="utf-8") as stdin:
            await chat(ConversationService(db, engine, tiny_engine.config), "1", False, stdin, out)
    finally:
        os.close(person)
    text = out.getvalue()
    assert f"bot> {REPLY}\n  sentiment: [" in text  # one reply line, written word by word, then the mood


async def test_telegram_shows_drafts_at_most_once_a_second_then_sends_the_reply(config, fake, tiny_engine):
    engine = ScriptedEngine(tiny_engine, replies={"where is my parcel": REPLY})
    engine.word_seconds = 0.25  # 12 words: about 3 s of writing
    async with running_bot(config, engine):
        fake.send_text(1001, "where is my parcel")
        assert await replies(fake, 1001) == [REPLY]
    # Answered ones only: a draft still in flight when the reply is done is cut off, its request half sent.
    drafts = [d for d in fake.calls("sendMessageDraft") if d.status == 200]
    assert 2 <= len(drafts) <= 5
    assert all(int(d.params["chat_id"]) == 1001 for d in drafts)
    assert REPLY.startswith(drafts[-1].params["text"]) and len(drafts[-1].params["text"]) > len(drafts[0].params["text"])
    gaps = [b.time - a.time for a, b in zip(drafts, drafts[1:])]
    assert min(gaps) >= 0.9
    assert sent_texts(fake, 1001) == [REPLY]  # the draft is a preview: the reply is still one message


async def test_flood_control_on_drafts_never_costs_the_reply(config, fake, tiny_engine):
    engine = ScriptedEngine(tiny_engine, replies={"where is my parcel": REPLY})
    engine.word_seconds = 0.1
    fake.fail_next("sendMessageDraft", status=429, retry_after=30)
    async with running_bot(config, engine):
        fake.send_text(1001, "where is my parcel")
        assert await replies(fake, 1001) == [REPLY]
    assert len(fake.calls("sendMessageDraft")) == 1  # refused, and paused for the 30 s Telegram asked for


async def test_a_draft_never_shows_a_system_prompt_sentence_the_final_check_replaces(db, tiny_config, tiny_engine):
    # The model starts well, then reads its instructions back: the guard replaces the final reply, and no draft
    # may have shown the sentence before that (a draft, once shown, can't be taken back).
    prompt = tiny_config.chat.system_prompt
    leaked = prompt.split(". ")[0] + "."  # "You are the friendly customer-service assistant of a small online shop."
    engine = ScriptedEngine(tiny_engine, replies={"who are you": f"Happy to help! {leaked} Anything else?"})
    partials: list[str] = []
    outcome = await ConversationService(db, engine, tiny_config).handle_text(Sender("console", "1"), "who are you",
                                                                             on_partial=partials.append)
    assert outcome.reply == tiny_config.chat.fallback_reply.for_lang("en")
    assert "Happy to help!" in partials  # drafts still stream up to where the prompt starts
    assert not any("friendly customer-service" in p for p in partials), partials
