"""A real Engine with scripted answers for chosen texts and a gate that holds replies (slow-model stand-in)."""

from __future__ import annotations

import asyncio
from typing import Sequence

from bot.llm.engine import Engine
from bot.llm.sentiment import Sentiment


class ScriptedEngine:
    """Delegates to `inner`; `sentiments`/`replies` override it for exact texts; replies wait for `gate`.

    `histories` records the history each reply was asked with (what the model saw), in call order, and `facts`
    the shop facts each reply was given; `embedded` the texts whose token vectors were computed."""

    def __init__(self, inner: Engine, sentiments: dict[str, tuple[str, float]] | None = None,
                 replies: dict[str, str] | None = None):
        self.inner = inner
        self.sentiments = sentiments or {}
        self.replies = replies or {}
        self.histories: list[list[tuple[str, str]]] = []
        self.facts: list[list[str]] = []
        self.embedded: list[str] = []
        self.gate = asyncio.Event()
        self.gate.set()

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    async def sentiment(self, text: str) -> Sentiment:
        if text in self.sentiments:
            label, confidence = self.sentiments[text]
            return Sentiment(label, confidence, {label: confidence})
        return await self.inner.sentiment(text)

    async def reply(self, history: Sequence[tuple[str, str]], text: str, facts: Sequence[str] = ()) -> str:
        self.histories.append(list(history))
        self.facts.append(list(facts))
        await self.gate.wait()
        return self.replies.get(text) or await self.inner.reply(history, text, facts)

    async def token_vectors(self, text: str):
        self.embedded.append(text)
        return await self.inner.token_vectors(text)
