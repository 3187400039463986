"""The console channel: a terminal chat with the shop bot, or JSON lines in and out for scripts."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import TextIO

from bot.service import ConversationService, Outcome, Sender

CHANNEL = "console"


def outcome_json(user: str, outcome: Outcome) -> str:
    s = outcome.sentiment
    return json.dumps(
        {
            "user": user,
            "sentiment": s.label if s else None,
            "confidence": round(s.confidence, 4) if s else None,
            "reply": outcome.reply,
            "alert": outcome.alert is not None,
        },
        ensure_ascii=False,
    )


def outcome_text(outcome: Outcome) -> str:
    s = outcome.sentiment
    mood = f"[{s.label} {s.confidence:.2f}]" if s else "[sentiment unavailable]"
    alert = "  (operators alerted)" if outcome.alert else ""
    return f"  sentiment: {mood}{alert}\nbot> {outcome.reply}"


async def chat(service: ConversationService, user: str, as_json: bool,
               stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout) -> int:
    """Read one message per line until EOF; answer each in turn."""
    interactive = stdin.isatty() and not as_json
    sender = Sender(CHANNEL, user, display_name=f"console user {user}")
    if interactive:
        print(f"Chatting as customer {user!r}. Ctrl-D to quit.", file=stdout)
    while True:
        if interactive:
            print("you> ", end="", file=stdout, flush=True)
        line = await asyncio.to_thread(stdin.readline)
        if not line:
            return 0
        outcome = await service.handle_text(sender, line.rstrip("\r\n"))
        print(outcome_json(user, outcome) if as_json else outcome_text(outcome), file=stdout, flush=True)
