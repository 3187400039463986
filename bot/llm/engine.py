"""The one engine that owns the model: loads it once and serves both roles, one call at a time, off the event loop."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence, TypeVar

import numpy as np
import torch
from transformers import DynamicCache, PreTrainedModel, PreTrainedTokenizerBase, TextStreamer

from bot.config import Config
from bot.llm import loading
from bot.llm.generation import generation_kwargs
from bot.llm.head import find_head
from bot.llm.kv_cache import ConversationCaches
from bot.llm.prompts import as_data, chat_messages
from bot.llm.retrieval import KnowledgeReader
from bot.llm.sentiment import Sentiment, SentimentReader

log = logging.getLogger(__name__)
T = TypeVar("T")


class ModelTimeout(RuntimeError):
    """A model call took longer than model.timeout_seconds."""


class Engine:
    """Synchronous torch code behind an async facade: one worker thread runs every model call in turn."""

    def __init__(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, config: Config):
        self.model = model
        self.tokenizer = tokenizer
        self.config = config
        # Every added token (<|im_start|>, <file_sep>, ...) is parsed from raw text, so all are neutralised.
        self.special_tokens = [t for t in tokenizer.get_added_vocab() if len(t) > 1]
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shopbot-model")
        head = find_head(config.sentiment.head_path, config.model.cache_dir, loading.model_slug(config.model))
        self.sentiment_reader = SentimentReader(model, tokenizer, config.sentiment, self.special_tokens, head)
        self.knowledge_reader = KnowledgeReader(model, tokenizer, self.special_tokens)
        self.caches = ConversationCaches(config.chat.kv_cache_tokens)
        self.name = loading.model_slug(config.model)  # stored with knowledge vectors: another model re-embeds

    @classmethod
    def load(cls, config: Config) -> "Engine":
        started = time.perf_counter()
        model, tokenizer = loading.load(config.model)
        engine = cls(model, tokenizer, config)
        log.info("model %s loaded in %.1f s", config.model.source, time.perf_counter() - started)
        return engine

    def close(self) -> None:
        self._worker.shutdown(wait=True, cancel_futures=True)

    # --- cheap tokenizer helpers (no model call; safe on the event loop) --------------------------

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def truncate(self, text: str, max_tokens: int) -> str:
        """The text cut to at most `max_tokens` tokens (kept whole when it fits)."""
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return text if len(ids) <= max_tokens else self.tokenizer.decode(ids[:max_tokens])

    # --- async facade ------------------------------------------------------------------------------

    async def run(self, fn: Callable[..., T], *args) -> T:
        """Run a model call on the engine's thread; waiting callers queue, the event loop stays free.

        The timeout counts from when the call starts running, not while it waits its turn: a busy shop's
        queue must not turn every waiting customer's reply into the fallback."""
        loop = asyncio.get_running_loop()
        started = asyncio.Event()

        def call() -> T:
            loop.call_soon_threadsafe(started.set)
            return fn(*args)

        future = loop.run_in_executor(self._worker, call)
        try:
            await started.wait()
        except asyncio.CancelledError:
            future.cancel()  # still queued: drop it rather than run it for nobody
            raise
        try:
            return await asyncio.wait_for(future, self.config.model.timeout_seconds)
        except asyncio.TimeoutError:
            raise ModelTimeout(f"model call exceeded {self.config.model.timeout_seconds} s") from None

    async def sentiment(self, text: str) -> Sentiment:
        return await self.run(self.sentiment_reader.read, text)

    async def reply(self, history: Sequence[tuple[str, str]], text: str, facts: Sequence[str] = (),
                    on_text: Callable[[str], None] | None = None, conversation: object = None) -> str:
        """The chat role's reply; `on_text(reply so far)` is called on the event loop as it grows (streaming).

        `conversation` (a customer id) keeps its KV cache for the next turn."""
        relay = None
        if on_text is not None:
            loop = asyncio.get_running_loop()
            relay = lambda so_far: loop.call_soon_threadsafe(on_text, so_far)  # noqa: E731 (from the model thread)
        return await self.run(self.generate_reply, history, text, facts, relay, conversation)

    async def token_vectors(self, text: str) -> np.ndarray:
        return await self.run(self.knowledge_reader.token_vectors, text)

    async def knowledge_likelihood(self, entries: Sequence[tuple[str, str]], text: str) -> np.ndarray:
        return await self.run(self.knowledge_reader.likelihood, entries, text)

    # --- synchronous model calls (run on the worker thread) ---------------------------------------

    @torch.inference_mode()
    def generate_reply(self, history: Sequence[tuple[str, str]], text: str, facts: Sequence[str] = (),
                       on_text: Callable[[str], None] | None = None, conversation: object = None) -> str:
        """The chat role: shop system prompt (+ the shop's facts to answer from) + trimmed history + the message,
        sampled per chat.generation."""
        chat = self.config.chat
        history = [(role, as_data(past, self.special_tokens)) for role, past in history]
        system = chat.system_prompt
        if facts:
            system += GROUNDING + "\n".join(f"- {fact}" for fact in facts)
        messages = chat_messages(system, history, as_data(text, self.special_tokens))
        inputs = self.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_dict=True, return_tensors="pt"
        ).to(self.model.device)
        streamer = _Growing(self.tokenizer, on_text) if on_text else None
        ids = inputs["input_ids"][0]  # (T,)
        cache = self.caches.take(conversation, ids) if conversation is not None else None
        cache = DynamicCache() if cache is None else cache
        output = self.model.generate(**inputs, **generation_kwargs(chat.generation, self.tokenizer), streamer=streamer,
                                     past_key_values=cache)
        if conversation is not None and chat.kv_cache_tokens:
            # generate() ran every token but the last one it sampled through the model: the cache holds those.
            self.caches.put(conversation, output[0, :cache.get_seq_length()], cache)
        new_tokens = output[0, inputs["input_ids"].shape[1]:]
        reply = self.tokenizer.decode(new_tokens, skip_special_tokens=True).strip()
        if len(new_tokens) >= chat.generation.max_new_tokens:
            reply = end_at_sentence(reply)  # cut off by the token limit: drop the half sentence
        return reply


class _Growing(TextStreamer):
    """Calls `on_text` with the whole reply so far each time the decoded text grows by complete words."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, on_text: Callable[[str], None]):
        super().__init__(tokenizer, skip_prompt=True, skip_special_tokens=True)
        self._on_text, self._so_far = on_text, ""

    def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
        if text:
            self._so_far += text
            self._on_text(self._so_far.strip())


GROUNDING = "\nAnswer only from these facts of the shop:\n"
SENTENCE_END = re.compile(r"[.!?。！？…](?=\s|$)|[。！？]")


def end_at_sentence(text: str) -> str:
    """The text up to its last complete sentence (all of it when no sentence ends)."""
    ends = [m.end() for m in SENTENCE_END.finditer(text)]
    return text[: ends[-1]] if ends else text
