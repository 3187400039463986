"""Behaviour claimed of the embedded SmolLM2-135M-Instruct model, run for real on this CPU."""

import pytest

from bot.service import ConversationService, Sender
from storage.db import Database

pytestmark = pytest.mark.real_model


async def test_a_clearly_angry_complaint_is_not_read_positive_and_alerts(db, real_engine):
    service = ConversationService(db, real_engine, real_engine.config)
    outcome = await service.handle_text(Sender("console", "1"), "My order arrived broken and nobody answers!")
    assert outcome.sentiment.label == "negative"
    assert outcome.alert is not None and outcome.alert.confidence >= real_engine.config.alerts.threshold
    assert outcome.reply.strip() and not outcome.fallback


async def test_alert_cooldown_means_one_alert_per_angry_customer(db, real_engine):
    service = ConversationService(db, real_engine, real_engine.config)
    angry = Sender("console", "2")
    outcomes = [await service.handle_text(angry, text) for text in (
        "My order arrived broken and nobody answers!",
        "This is the worst shop ever, I want my money back!",
    )]
    assert [o.sentiment.label for o in outcomes] == ["negative", "negative"]
    assert [o.alert is not None for o in outcomes] == [True, False]
    assert len(await db.alerts(outcomes[0].customer.id)) == 1


async def test_history_from_an_earlier_run_is_used(tmp_path, real_engine):
    question = "What colour was the teapot I ordered?"
    first = await Database.open(tmp_path / "shopbot.db")
    await ConversationService(first, real_engine, real_engine.config).handle_text(
        Sender("console", "3"), "Hello, I am Mirela. I ordered a blue teapot.")
    await first.close()

    second = await Database.open(tmp_path / "shopbot.db")  # a new run: nothing in memory, only the file
    service = ConversationService(second, real_engine, real_engine.config)
    remembered = await service.handle_text(Sender("console", "3"), question)
    stranger = await service.handle_text(Sender("console", "4"), question)
    await second.close()
    assert "blue" in remembered.reply.lower()
    assert "blue" not in stranger.reply.lower()
