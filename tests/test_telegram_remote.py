"""`shopbot run` with backend = "openai": Telegram end to end over the fake Bot API, the model on a real llama.cpp
server, including the server dying while customers write."""

from __future__ import annotations

import pytest

from bot.config import load_config
from testkit.llama_server import LlamaServer
from testkit.telegram_helpers import OPERATORS, over_fake, replies, running_bot, sent_texts
from tests.conftest import remote

pytestmark = pytest.mark.real_model

ANGRY, HAPPY = 4001, 4002


async def test_telegram_end_to_end_on_the_remote_backend(llama_server, fake, tmp_path):
    config = over_fake(remote(load_config(environ={}), llama_server.url, tmp_path), fake)
    async with running_bot(config, None) as svc:  # the Application loads the backend the config names
        assert svc.engine.name.startswith("openai:")
        fake.send_text(ANGRY, "My order arrived broken and nobody answers my emails. This is terrible!")
        fake.send_text(HAPPY, "Thank you so much, the tea is wonderful and it arrived quickly!")
        angry, happy = (await replies(fake, ANGRY, timeout=240))[0], (await replies(fake, HAPPY, timeout=240))[0]
        alerts = await svc.db.alerts()
    assert angry.strip() and happy.strip()
    assert config.chat.fallback_reply.for_lang("en") not in (angry, happy)
    assert len(alerts) == 1 and alerts[0]["label"] == "negative"
    operator_messages = [m["text"] for m in fake.sent_messages(OPERATORS)]
    assert len(operator_messages) == 1 and f"Telegram id {ANGRY}" in operator_messages[0]
    drafts = [d.params["text"] for d in fake.calls("sendMessageDraft") if d.status == 200]
    # A draft is the reply so far; the sent reply may end earlier (cut back to its last full sentence).
    assert all(any(d.startswith(r) or r.startswith(d) for r in (angry, happy)) for d in drafts)


async def test_the_server_dying_gives_fallbacks_one_operator_note_and_loses_nothing(fake, tmp_path):
    with LlamaServer() as server:
        config = over_fake(remote(load_config(environ={}), server.url, tmp_path), fake)
        async with running_bot(config, None) as svc:
            fake.send_text(ANGRY, "Hello, do you sell oolong tea?")
            first = (await replies(fake, ANGRY, timeout=240))[0]
            server.kill()
            fake.send_text(ANGRY, "How much is it?")
            fake.send_text(HAPPY, "Do you ship to Canada?")
            await replies(fake, ANGRY, 2, timeout=240)
            await replies(fake, HAPPY, timeout=240)
            server.start()
            fake.send_text(ANGRY, "Thanks, and green tea?")
            last = (await replies(fake, ANGRY, 3, timeout=240))[2]
            customer = await svc.db.customer("telegram", str(ANGRY))
            stored = [(m.role, m.text) for m in await svc.db.messages(customer.id)]
    fallback = config.chat.fallback_reply.for_lang("en")
    assert first != fallback and last != fallback and last.strip()
    assert sent_texts(fake, ANGRY) == [first, fallback, last] and sent_texts(fake, HAPPY) == [fallback]
    assert stored == [("customer", "Hello, do you sell oolong tea?"), ("bot", first), ("customer", "How much is it?"),
                      ("bot", fallback), ("customer", "Thanks, and green tea?"), ("bot", last)]
    notes = sent_texts(fake, OPERATORS)
    assert len(notes) == 1 and server.url in notes[0] and "fallback" in notes[0]  # two failures, one note
