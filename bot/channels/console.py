"""The console channel: a terminal chat with the shop bot, or JSON lines in and out for scripts."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import TextIO

from bot.service import HUMAN_COMMAND, ConversationService, Outcome, Sender

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


def mood_line(outcome: Outcome) -> str:
    s = outcome.sentiment
    mood = f"[{s.label} {s.confidence:.2f}]" if s else "[sentiment unavailable]"
    alert = "  (operators alerted)" if outcome.alert else ""
    return f"  sentiment: {mood}{alert}"


def outcome_text(outcome: Outcome) -> str:
    return f"{mood_line(outcome)}\nbot> {outcome.reply}"


async def chat(service: ConversationService, user: str, as_json: bool,
               stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout) -> int:
    """Read one message per line until EOF; answer each in turn. A line "/human" asks for a person, as in Telegram."""
    interactive = stdin.isatty() and not as_json
    if hasattr(stdin, "reconfigure"):  # a real stream: a byte not in its encoding (Latin-1 piped in) becomes U+FFFD
        stdin.reconfigure(errors="replace")  # rather than ending the session with UnicodeDecodeError
    sender = Sender(CHANNEL, user, display_name=f"console user {user}")
    if interactive:
        print(f"Chatting as customer {user!r}. Ctrl-D to quit.", file=stdout)
    while True:
        if interactive:
            print("you> ", end="", file=stdout, flush=True)
        line = await _next_line(stdin)
        if not line:
            return 0
        text = line.rstrip("\r\n")
        stream = _Stream(stdout) if interactive else None
        if text.strip() == HUMAN_COMMAND:
            outcome = await service.request_human(sender)
        else:
            outcome = await service.handle_text(sender, text, on_partial=stream.show if stream else None)
        if stream:
            stream.finish(outcome)
        else:
            print(outcome_json(user, outcome) if as_json else outcome_text(outcome), file=stdout, flush=True)


async def _next_line(stdin: TextIO) -> str:
    """The next line, "" at EOF. At a terminal it is read once typed, on the event loop: a thread blocked in readline
    would hold the exit after Ctrl-C until the next Enter."""
    if not stdin.isatty():
        # A pipe or file: one read brings several lines into stdin's buffer, where the loop cannot see them.
        return await asyncio.to_thread(stdin.readline)
    loop = asyncio.get_running_loop()
    typed = loop.create_future()
    loop.add_reader(stdin.fileno(), lambda: typed.done() or typed.set_result(None))
    try:
        await typed
    finally:
        loop.remove_reader(stdin.fileno())
    return stdin.readline()  # a terminal hands over a whole line (or EOF) at a time: this does not wait


class _Stream:
    """A reply printed as it grows; then what the model's guard changed at the end, and the sentiment."""

    def __init__(self, stdout: TextIO):
        self.stdout, self.shown = stdout, ""

    def show(self, so_far: str) -> None:
        if not self.shown:
            print("bot> ", end="", file=self.stdout)
        if so_far.startswith(self.shown):  # else the guard rewrote the start: the final reply says it all
            print(so_far[len(self.shown):], end="", file=self.stdout, flush=True)
            self.shown = so_far

    def finish(self, outcome: Outcome) -> None:
        reply = outcome.reply or ""
        if not self.shown:
            print(f"bot> {reply}", file=self.stdout)
        elif reply.startswith(self.shown):
            print(reply[len(self.shown):], file=self.stdout)
        else:  # trimmed to its last full sentence, or replaced (fallback): the final text, whole
            print(f"\nbot> {reply}", file=self.stdout)
        print(mood_line(outcome), file=self.stdout, flush=True)
