"""A real Engine with scripted answers (or failures) for chosen texts and a gate that holds replies (slow-model
stand-in)."""

from __future__ import annotations

import asyncio
from typing import Sequence

from bot.llm.engine import Engine
from bot.llm.intents import Intent, Reading
from bot.llm.sentiment import Sentiment


class ScriptedEngine:
    """Delegates to `inner`; `sentiments`/`intents`/`replies` override it for exact texts, `reply_errors` make the
    reply to a text raise (the model failing or timing out); replies wait for `gate`.

    `histories` records the history each reply was asked with (what the model saw), in call order, and `facts`
    the shop facts each reply was given; `embedded` the texts whose token vectors were computed."""

    def __init__(self, inner: Engine, sentiments: dict[str, tuple[str, float]] | None = None,
                 replies: dict[str, str] | None = None, reply_errors: dict[str, Exception] | None = None,
                 intents: dict[str, tuple[str, float]] | None = None):
        self.inner = inner
        self.sentiments = sentiments or {}
        self.intents = intents or {}
        self.replies = replies or {}
        self.reply_errors = reply_errors or {}
        self.histories: list[list[tuple[str, str]]] = []
        self.facts: list[list[str]] = []
        self.embedded: list[str] = []
        self.word_seconds = 0.0
        self.gate = asyncio.Event()
        self.gate.set()

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    async def sentiment(self, text: str) -> Sentiment:
        return (await self.read_message(text)).sentiment

    async def read_message(self, text: str) -> Reading:
        """The scripted sentiment and intent where given; the model reads the rest (not at all if both are)."""
        sentiment = intent = None
        if text in self.sentiments:
            label, confidence = self.sentiments[text]
            sentiment = Sentiment(label, confidence, {label: confidence})
        if text in self.intents:
            intent = Intent(*self.intents[text])
        if sentiment is None or intent is None:
            reading = await self.inner.read_message(text)
            sentiment, intent = sentiment or reading.sentiment, intent or reading.intent
        return Reading(sentiment, intent)

    async def reply(self, history: Sequence[tuple[str, str]], text: str, facts: Sequence[str] = (),
                    on_text=None, conversation=None) -> str:
        """A scripted reply grows word by word, `word_seconds` apart, as a model streams it."""
        self.histories.append(list(history))
        self.facts.append(list(facts))
        await self.gate.wait()
        if text in self.reply_errors:
            raise self.reply_errors[text]
        if not self.replies.get(text):
            return await self.inner.reply(history, text, facts, on_text, conversation)
        words = self.replies[text].split(" ")
        for n in range(1, len(words) + 1):
            if on_text is not None:
                on_text(" ".join(words[:n]))
            await asyncio.sleep(self.word_seconds)
        return self.replies[text]

    async def token_vectors(self, text: str):
        self.embedded.append(text)
        return await self.inner.token_vectors(text)
