"""Behaviour over Telegram with the embedded model: only the angry customer raises an alert, and only once."""

from dataclasses import replace

import pytest

from testkit.fakes.bot_api import FakeBotApi
from testkit.telegram_helpers import OPERATORS, TOKEN, over_fake, replies, running_bot

pytestmark = pytest.mark.real_model

ANGRY, HAPPY = 3001, 3002


async def test_only_the_angry_customer_raises_one_alert_despite_two_angry_messages(real_engine, tmp_path):
    with FakeBotApi(TOKEN) as fake:
        config = replace(real_engine.config, storage=replace(real_engine.config.storage, path=tmp_path / "s.db"))
        config = over_fake(config, fake)
        async with running_bot(config, real_engine) as svc:
            fake.send_text(ANGRY, "My order arrived broken and nobody answers!", first_name="Ann")
            fake.send_text(HAPPY, "Great, thank you so much for the quick help!", first_name="Bob")
            fake.send_text(ANGRY, "This is the worst shop ever, I want my money back!", first_name="Ann")
            await replies(fake, ANGRY, 2, timeout=180)
            await replies(fake, HAPPY, timeout=180)
            alerts = await svc.db.alerts()
        operator_messages = [m["text"] for m in fake.sent_messages(OPERATORS)]  # after shutdown: all handled
    assert len(operator_messages) == 1 and f"Telegram id {ANGRY}" in operator_messages[0]
    assert "negative" in operator_messages[0]
    assert len(alerts) == 1 and alerts[0]["delivered_at"] is not None
