"""The one engine that owns the model: loads it once and serves both roles, one call at a time, off the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Sequence, TypeVar

import numpy as np
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase
from transformers.generation.streamers import BaseStreamer

from bot.config import Config
from bot.llm import loading
from bot.llm.generation import generation_kwargs, pad_id
from bot.llm.guard import end_at_sentence, whole_words
from bot.llm.auto_head import ensure_head
from bot.llm.head import find_head
from bot.llm.batching import Batcher
from bot.llm.kv_cache import ConversationCaches, row_cache, stitch
from bot.llm.prompts import as_data, chat_messages, grounded
from bot.llm.retrieval import KnowledgeReader
from bot.llm.sentiment import Sentiment, SentimentReader

log = logging.getLogger(__name__)
T = TypeVar("T")


class ModelTimeout(RuntimeError):
    """A model call took longer than model.timeout_seconds."""


class Engine:
    """Synchronous torch code behind an async facade: one worker thread runs every model call in turn."""

    retrieval_signals = frozenset({"tokens", "likelihood"})  # the model's token vectors and query likelihood

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
        self._sentiments = Batcher(self.run, self.sentiment_reader.read_many, config.model.batch_size)
        self._replies = Batcher(self.run, self.generate_replies, config.model.batch_size, coming=self._replies_coming)
        self.open_turns = 0  # customer messages between reaching the model and their reply (see turn())
        self.parameters = loading.estimated_parameters(model.config)  # decides chat.free_chat = "auto"
        eos = model.generation_config.eos_token_id
        self._stop_ids = torch.tensor(sorted({*(eos if isinstance(eos, list) else [eos]), pad_id(tokenizer)} - {None}))

    @classmethod
    def load(cls, config: Config) -> "Engine":
        started = time.perf_counter()
        model, tokenizer = loading.load(config.model)
        engine = cls(model, tokenizer, config)
        log.info("model %s loaded in %.1f s", config.model.source, time.perf_counter() - started)
        return engine

    def close(self) -> None:
        self._worker.shutdown(wait=True, cancel_futures=True)

    def prepare_roles(self) -> None:
        """Before serving: a model with no sentiment head gets one fitted once (minutes, shown on stderr)."""
        ensure_head(self)

    # --- cheap tokenizer helpers (no model call; safe on the event loop) --------------------------

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def truncate(self, text: str, max_tokens: int) -> str:
        """The text cut to at most `max_tokens` tokens (kept whole when it fits)."""
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return text if len(ids) <= max_tokens else self.tokenizer.decode(ids[:max_tokens])

    # --- turns: which customers are at the model ----------------------------------------------------

    @contextlib.asynccontextmanager
    async def turn(self):
        """Around one customer message's model calls: a reply batch may wait a moment for those about to join it."""
        self.open_turns += 1
        try:
            yield
        finally:
            self.open_turns -= 1

    def _replies_coming(self) -> int:
        """Customers in a turn who may ask for a reply in a moment (not those still waiting for their sentiment)."""
        return self.open_turns - self._sentiments.waiting - self._replies.waiting

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
        """The message's sentiment; customers waiting at the same time are read in one batched pass."""
        return await self._sentiments(text)

    async def reply(self, history: Sequence[tuple[str, str]], text: str, facts: Sequence[str] = (),
                    on_text: Callable[[str], None] | None = None, conversation: object = None) -> str:
        """The chat role's reply; `on_text(reply so far)` is called on the event loop as it grows (streaming).

        `conversation` (a customer id) keeps its KV cache for the next turn. Customers waiting at the same time
        are answered in one batch (model.batch_size)."""
        relay = None
        if on_text is not None:
            loop = asyncio.get_running_loop()
            relay = lambda so_far: loop.call_soon_threadsafe(on_text, so_far)  # noqa: E731 (from the model thread)
        return await self._replies(ReplyRequest(history, text, facts, relay, conversation))

    async def token_vectors(self, text: str) -> np.ndarray:
        return await self.run(self.knowledge_reader.token_vectors, text)

    async def knowledge_likelihood(self, entries: Sequence[tuple[str, str]], text: str) -> np.ndarray:
        return await self.run(self.knowledge_reader.likelihood, entries, text)

    async def forget(self, conversation: object) -> None:
        """Drop the conversation's KV cache (/forget)."""
        await self.run(self.caches.forget, conversation)

    # --- synchronous model calls (run on the worker thread) ---------------------------------------

    def generate_reply(self, history: Sequence[tuple[str, str]], text: str, facts: Sequence[str] = (),
                       conversation: object = None) -> str:
        """One customer's reply, alone (benches and tools; the service goes through `reply`)."""
        return self.generate_replies([ReplyRequest(history, text, facts, conversation=conversation)])[0]

    @torch.inference_mode()
    def generate_replies(self, requests: Sequence[ReplyRequest]) -> list[str]:
        """The chat role for one or more customers in one generate(): per customer the shop system prompt (+ the
        shop's facts to answer from) + trimmed history + the message, sampled per chat.generation.

        Each row starts from the longest cached prefix it has (its conversation's cache, else the system
        prompt's), and its conversation's cache is kept for the next turn."""
        chat = self.config.chat
        prompts = [self._chat_ids(r) for r in requests]
        reuse = chat.kv_cache_tokens > 0
        if reuse and self.caches.shared is None:
            self._share_system_prompt()
        reused = [self.caches.take(r.conversation, ids) if reuse else None for r, ids in zip(requests, prompts)]
        kwargs = generation_kwargs(chat.generation, self.tokenizer)
        input_ids, mask, cache = stitch(prompts, reused, kwargs["pad_token_id"])
        width = input_ids.shape[1]
        streamer = None
        if any(r.on_text for r in requests):
            streamer = _Growing(self.tokenizer, [r.on_text for r in requests], set(self._stop_ids.tolist()))
        device = self.model.device
        output = self.model.generate(input_ids=input_ids.to(device), attention_mask=mask.to(device),
                                     past_key_values=cache, streamer=streamer, **kwargs).cpu()  # (B, width + new)
        # generate() ran every token but the last one it sampled through the model: the cache holds those.
        mask = torch.cat([mask, torch.ones(len(requests), cache.get_seq_length() - width, dtype=mask.dtype)], dim=1)
        replies = []
        for row, request in enumerate(requests):
            new = output[row, width:]
            length = _stop_at(new, self._stop_ids)
            reply = self.tokenizer.decode(new[:length], skip_special_tokens=True).strip()
            if length >= chat.generation.max_new_tokens:
                reply = end_at_sentence(reply)  # cut off by the token limit: drop the half sentence
            replies.append(reply)
            if reuse and request.conversation is not None:
                # The row's real tokens: not the pads, nor what a finished row was padded with while others ran.
                slots = mask[row, :width + length + 1].nonzero().squeeze(1)
                self.caches.put(request.conversation, output[row, slots], row_cache(cache, row, slots.to(device)))
        return replies

    def _chat_ids(self, request: ReplyRequest) -> torch.Tensor:
        """(T,) the chat role's prompt for one request."""
        system = grounded(self.config.chat.system_prompt, request.facts)
        history = [(role, as_data(past, self.special_tokens)) for role, past in request.history]
        messages = chat_messages(system, history, as_data(request.text, self.special_tokens))
        return self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_dict=True,
                                                  return_tensors="pt")["input_ids"][0]

    def _share_system_prompt(self) -> None:
        """Run the chat system prompt once; every conversation without a cache of its own starts from it."""
        ids = self.tokenizer.apply_chat_template([{"role": "system", "content": self.config.chat.system_prompt}],
                                                 return_dict=True, return_tensors="pt")["input_ids"]
        cache = self.model(ids.to(self.model.device), use_cache=True).past_key_values
        self.caches.share(ids[0], cache)


@dataclass(frozen=True)
class ReplyRequest:
    """One customer's turn for the chat role."""

    history: Sequence[tuple[str, str]]
    text: str
    facts: Sequence[str] = ()
    on_text: Callable[[str], None] | None = None  # called on the model thread with the reply so far
    conversation: object = None  # keeps a KV cache for the next turn under this key


def _stop_at(tokens: torch.Tensor, stop_ids: torch.Tensor) -> int:
    """How many of the generated `tokens` (1-D) come before the first end-of-turn or padding token."""
    ends = torch.isin(tokens, stop_ids).nonzero()
    return int(ends[0, 0]) if len(ends) else len(tokens)


class _Growing(BaseStreamer):
    """Calls each row's `on_text` with its whole reply so far, each time the decoded text grows by whole words."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, on_text: Sequence[Callable[[str], None] | None],
                 stop_ids: set[int]):
        self.tokenizer, self.on_text, self.stop_ids = tokenizer, on_text, stop_ids
        self.tokens: list[list[int]] = [[] for _ in on_text]
        self.ended = [callback is None for callback in on_text]
        self.shown = ["" for _ in on_text]
        self.prompt_seen = False

    def put(self, value: torch.Tensor) -> None:
        if not self.prompt_seen:  # the first call hands over the prompt
            self.prompt_seen = True
            return
        for row, token in enumerate(value.reshape(-1).tolist()):
            if self.ended[row]:
                continue
            if token in self.stop_ids:
                self._show(row, final=True)
                self.ended[row] = True
                continue
            self.tokens[row].append(token)
            self._show(row)

    def end(self) -> None:
        for row, ended in enumerate(self.ended):
            if not ended:
                self._show(row, final=True)

    def _show(self, row: int, final: bool = False) -> None:
        text = self.tokenizer.decode(self.tokens[row], skip_special_tokens=True)
        text = whole_words(text, final)
        if len(text) > len(self.shown[row]):
            self.shown[row] = text
            self.on_text[row](text)
