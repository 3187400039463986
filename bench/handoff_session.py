"""Scripted operator handoff over the fake Bot API (issue #5's "Done when"): embedded model, real SQLite.

angry customer -> alert with buttons -> an operator's reply reaches the customer -> the customer's next
message reaches the operator chat and gets no bot reply -> Hand back -> the bot answers the next message
with the operator's turn in the history the model sees. Prints the transcript of both chats and one line per
check; exit code 0 when all checks pass.

    .venv/bin/python bench/handoff_session.py
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # for testkit.fakes / testkit.telegram_helpers when run as a script

from bot.config import load_config  # noqa: E402
from bot.llm.engine import Engine  # noqa: E402
from testkit.fakes.bot_api import FakeBotApi  # noqa: E402
from testkit.fakes.engine import ScriptedEngine  # noqa: E402
from testkit.telegram_helpers import OPERATORS, TOKEN, linked, over_fake, running_bot  # noqa: E402

ANN, OLGA = 2001, 7
ANGRY = "My order arrived broken and nobody answers! This is unacceptable."
OPERATOR_REPLY = "Hi Ann, this is Olga from the shop. I am so sorry: a replacement teapot ships today, free of charge."
DURING = "Thank you Olga. Will I get a tracking number?"
AFTER = "Hello again, did the replacement ship?"
TIMEOUT = 300.0  # seconds; the embedded model on a busy 2-core machine can be slow


def to_chat(chat_id: int, method: str = "sendMessage"):
    return lambda c: c.method == method and c.status == 200 and c.params["chat_id"] == chat_id


async def session(fake: FakeBotApi, config, engine: ScriptedEngine, checks: list[tuple[str, bool]]) -> None:
    async with running_bot(config, engine) as svc:
        print("Ann:", ANGRY)
        fake.send_text(ANN, ANGRY, first_name="Ann", username="ann_k")
        await fake.wait_for(to_chat(ANN), TIMEOUT)
        alerts = await fake.wait_for(to_chat(OPERATORS), 30)
        alert = await linked(svc, fake.sent_messages(OPERATORS)[0])
        buttons = [b["text"] for row in (alert.get("reply_markup") or {}).get("inline_keyboard", []) for b in row]
        checks.append(("the angry message raised an alert in the operator chat", len(alerts) == 1))
        checks.append(("the alert carries Take over and Dismiss buttons", buttons == ["Take over", "Dismiss"]))

        print("Olga (replying to the alert):", OPERATOR_REPLY)
        fake.send_text(OPERATORS, OPERATOR_REPLY, user_id=OLGA, first_name="Olga", chat_type="supergroup",
                       reply_to_message_id=alert["message_id"])
        await fake.wait_for(to_chat(ANN, "copyMessage"), 30)
        checks.append(("the operator's reply reached Ann (a copy, not a forward)",
                       fake.sent_messages(ANN)[-1].get("text") == OPERATOR_REPLY
                       and "forward_origin" not in fake.sent_messages(ANN)[-1]))

        bot_messages_before = len(fake.calls("sendMessage"))
        print("Ann:", DURING)
        fake.send_text(ANN, DURING, first_name="Ann", username="ann_k")
        await fake.wait_for(lambda c: to_chat(OPERATORS)(c) and DURING in c.params["text"], 60)
        relayed = [m for m in fake.sent_messages(OPERATORS) if DURING in (m.get("text") or "")]
        to_ann = [c.params["text"] for c in fake.calls("sendMessage")[bot_messages_before:]
                  if c.params["chat_id"] == ANN]
        checks.append(("Ann's next message reached the operator chat, threaded under the alert",
                       relayed[0].get("reply_to_message", {}).get("message_id") == alert["message_id"]))
        checks.append(("the bot did not answer it (only the one-time 'a person is handling this chat' notice)",
                       to_ann == [config.handoff.customer_notice.for_lang("en")]))

        note = next(m for m in fake.sent_messages(OPERATORS) if "is handling" in (m.get("text") or ""))
        print("Olga presses Hand back")
        fake.press_button(OPERATORS, note["message_id"], note["reply_markup"]["inline_keyboard"][0][0]["callback_data"],
                          user_id=OLGA, first_name="Olga")
        await fake.wait_for(lambda c: to_chat(OPERATORS)(c) and "back with the bot" in c.params["text"], 30)
        rating = config.knowledge.languages["en"].csat_question
        await fake.wait_for(lambda c: to_chat(ANN)(c) and c.params["text"] == rating, 30)
        checks.append(("Ann was asked once for a 1-5 rating after the hand-back",
                       [c.params["text"] for c in fake.calls("sendMessage")].count(rating) == 1))

        replies_before = len(engine.histories)
        print("Ann:", AFTER)
        fake.send_text(ANN, AFTER, first_name="Ann", username="ann_k")
        await fake.wait_for(lambda c: to_chat(ANN)(c) and c.params["text"] not in (config.handoff.customer_notice.for_lang("en"), rating),
                            TIMEOUT, count=2)
        seen = engine.histories[replies_before] if len(engine.histories) > replies_before else []
        checks.append(("the bot answered the message after the hand-back", len(engine.histories) == replies_before + 1))
        checks.append(("the model saw the operator's turn in its context", ("operator", OPERATOR_REPLY) in seen))
        stored = await svc.db.messages((await svc.db.customer("telegram", str(ANN))).id)

    print("\n--- Ann's chat as stored in SQLite")
    for m in stored:
        mood = f"  [{m.sentiment} {m.confidence:.2f}]" if m.sentiment else ""
        print(f"{m.role:>8} ({m.kind}): {m.text}{mood}")
    print("\n--- operator chat")
    for m in fake.sent_messages(OPERATORS):
        buttons = [b["text"] for row in (m.get("reply_markup") or {}).get("inline_keyboard", []) for b in row]
        print(m.get("text"), f"\n  [buttons: {', '.join(buttons)}]" if buttons else "", "\n", sep="")
    print("--- the history the model saw for its last reply")
    for role, text in seen:
        print(f"{role:>8}: {text}")


async def main() -> int:
    checks: list[tuple[str, bool]] = []
    with tempfile.TemporaryDirectory() as tmp, FakeBotApi(TOKEN) as fake:
        config = load_config(environ={})
        config = over_fake(replace(config, storage=replace(config.storage, path=Path(tmp) / "shopbot.db")), fake)
        # The model writes the reply after the hand-back, as a shop's chat-capable model would: the embedded one is
        # below free_chat's "auto" size, and without knowledge its bot would hand that message to a person instead.
        config = replace(config, chat=replace(config.chat, free_chat="on"))
        engine = ScriptedEngine(Engine.load(config))  # nothing scripted: it only records what the model saw
        try:
            await session(fake, config, engine, checks)
        finally:
            engine.inner.close()
    print()
    for name, ok in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    return 0 if checks and all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
