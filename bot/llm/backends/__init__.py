"""The seam between the bot and its model: what every backend offers, and the one chosen by [model] backend."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Callable, Protocol, Sequence

import numpy as np

from bot.config import Config
from bot.llm.intents import Reading
from bot.llm.sentiment_scores import Sentiment


class ModelServerDown(ConnectionError):
    """The model server does not answer; the message names its URL (and never holds customer text)."""


class ModelRefused(RuntimeError):
    """The model server refused one request (a 4xx answer other than 429, such as a prompt longer than its context):
    others may pass. The message names the status and the server's reason."""


class ModelBackend(Protocol):
    """What the conversation service and the knowledge use of a model, wherever it runs."""

    config: Config
    name: str  # names the model in stored knowledge vectors: another model's are computed again
    special_tokens: list[str]  # chat-template tokens customer text must not smuggle in, nor a reply show
    # Knowledge signals the model gives: "tokens" (token_vectors, every backend has it) and "likelihood"
    # (knowledge_likelihood(entries, text) -> (entries,), only on backends that list it).
    retrieval_signals: frozenset[str]
    # Layers whose token vectors retrieval may read, the one read before any choice first (bot/retrieval_choice.py
    # measures them, then calls use_token_layer(layer)). Empty: a server's embedding, nothing to choose.
    token_layers: tuple[int, ...]
    open_turns: int  # customer messages between reaching the model and their reply
    parameters: int | None  # the model's size where the bot knows it (None: a server that does not say)

    def close(self) -> None: ...
    def prepare_roles(self) -> None: ...  # once before serving, blocking (a local model may fit its heads)
    def count_tokens(self, text: str) -> int: ...
    def truncate(self, text: str, max_tokens: int) -> str: ...
    def turn(self) -> AbstractAsyncContextManager[None]: ...
    async def sentiment(self, text: str) -> Sentiment: ...
    async def read_message(self, text: str) -> Reading: ...  # sentiment and intent (README, "Intents")
    async def reply(self, history: Sequence[tuple[str, str]], text: str, facts: Sequence[str] = (),
                    on_text: Callable[[str], None] | None = None, conversation: object = None) -> str: ...
    async def token_vectors(self, text: str) -> np.ndarray: ...
    # Only where token_layers is not empty (measuring the model: bot/retrieval_choice.py):
    def use_token_layer(self, layer: int) -> None: ...  # token_vectors reads this layer from now on
    # per text, its token vectors at each layer; (texts, entries) knowledge_likelihood of every pair
    async def layer_vectors(self, texts: Sequence[str], layers: Sequence[int]) -> list[list[np.ndarray]]: ...
    async def likelihood_table(self, entries: Sequence[tuple[str, str]], texts: Sequence[str]) -> np.ndarray: ...
    async def forget(self, conversation: object) -> None: ...


def load_backend(config: Config) -> ModelBackend:
    """The configured backend, ready to serve (blocking: call it off the event loop)."""
    if config.model.backend == "openai":
        from bot.llm.backends.openai import RemoteEngine

        return RemoteEngine.load(config)
    from bot.llm.engine import Engine  # torch is imported only here: a remote bot never loads it

    return Engine.load_to_serve(config)
