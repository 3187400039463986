"""The one engine that owns the model: loads it once and serves both roles on one thread, off the event loop.

Model calls (reading batches: sentiment and intent, retrieval) run one at a time; replies are decoded step by step in between them
(replies.py), so a sentiment pass or a newly arrived turn never waits for a whole batch of replies."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence, TypeVar

import numpy as np

from bot.config import Config, ConfigError
from bot.llm import loading
from bot.llm.auto_head import ensure_heads
from bot.llm.batching import Batcher
from bot.llm.head import find_head
from bot.llm.replies import ReplyLoop, ReplyRequest, Turn
from bot.llm.retrieval import KnowledgeReader
from bot.llm.intents import Reading
from bot.llm.sentiment import Sentiment, SentimentReader
from bot.llm.slots import Slots
from bot.llm.turns import CountsTurns

log = logging.getLogger(__name__)
T = TypeVar("T")


def model_thread() -> ThreadPoolExecutor:
    """The one thread that runs torch for the engine, loading included. Each thread that runs torch's parallel ops
    gets an OpenMP team of its own, and once there are more team threads than cores libgomp stops spinning between
    ops and sleeps: with the model loaded on one thread and served on another, every op was ~2x slower on 2 cores
    (1 Dec: decode 49.7 -> 21-24 tokens/s, 8 rows 152 -> 66-69; loaded on the serving thread 42-54 and 136-175)."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="shopbot-model")


class ModelTimeout(RuntimeError):
    """A model call took longer than model.timeout_seconds."""


class Engine(CountsTurns):
    """Synchronous torch code behind an async facade: one worker thread runs every model call in turn."""

    retrieval_signals = frozenset({"tokens", "likelihood"})  # the model's token vectors and query likelihood

    def __init__(self, loaded: loading.Loaded, config: Config, worker: ThreadPoolExecutor):
        """`worker`: the model thread `loaded` was loaded on (Engine.load), which runs every call to it."""
        self.decoder, self.tokenizer, self.config = loaded.decoder, loaded.tokenizer, config
        self.stop_ids = loaded.stop_ids  # tokens that end a reply
        # Every added token (<|im_start|>, <file_sep>, ...) is parsed from raw text, so all are neutralised.
        self.special_tokens = [t for t in self.tokenizer.get_added_vocab() if len(t) > 1]
        self._worker = worker
        self.name = loading.model_slug(config.model)  # stored with knowledge vectors: another model re-embeds
        head = find_head(config.sentiment.head_path, config.model.cache_dir, self.name)
        intent_head = find_head("", config.model.cache_dir, self.name, "intent")
        self.sentiment_reader = SentimentReader(self.decoder, self.tokenizer, config.sentiment, self.special_tokens,
                                                head, self.name, self.stop_ids, intent_head)
        self.knowledge_reader = KnowledgeReader(self.decoder, self.tokenizer, self.special_tokens)
        # The conversations' KV caches, in slots; `caches.forget(customer)` drops one (/forget).
        self.caches = Slots(self.decoder.shape, config.model.context_tokens, config.model.kv_cache_mb * 2**20,
                            self.decoder.dtype)
        self.replies = ReplyLoop(self.decoder, self.tokenizer, self.caches, config.chat, self.special_tokens,
                                 self.stop_ids, config.model.batch_size)
        self._readings = Batcher(self.run, self.sentiment_reader.read_messages, config.model.batch_size)
        self._stepping = False  # a decode step is queued on the worker (see _kick)
        self._step_lock = threading.Lock()
        self._closed = False
        self.parameters = loading.estimated_parameters(loaded.config)  # decides chat.free_chat = "auto"

    @classmethod
    def load(cls, config: Config) -> "Engine":
        """The model loaded on the thread that will run every call to it (see model_thread)."""
        started = time.perf_counter()
        worker = model_thread()
        engine = worker.submit(lambda: cls(loading.load(config.model), config, worker)).result()
        log.info("model %s loaded in %.1f s", config.model.source, time.perf_counter() - started)
        return engine

    @classmethod
    def load_to_serve(cls, config: Config) -> "Engine":
        """Engine.load in a process that serves customers, whose memory is kept small (return_large_frees)."""
        loading.return_large_frees()
        return cls.load(config)

    def close(self) -> None:
        with self._step_lock:  # a running step sees it and queues no other
            self._closed = True
        self._worker.shutdown(wait=True, cancel_futures=True)

    def prepare_roles(self) -> None:
        """Before serving: a model with no sentiment or intent head gets them fitted once (minutes, shown on stderr)."""
        self.on_model_thread(ensure_heads, self)

    def on_model_thread(self, fn: Callable[..., T], *args) -> T:
        """Run `fn` on the engine's thread and wait for it (blocking: for setup and benchmarks, not the event loop)."""
        return self._worker.submit(fn, *args).result()

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

    async def read_message(self, text: str) -> Reading:
        """The message's sentiment and intent; customers waiting at the same time are read in one batched pass."""
        return await self._readings(text)

    async def sentiment(self, text: str) -> Sentiment:
        """The message's sentiment (read with its intent, which costs next to nothing more)."""
        return (await self._readings(text)).sentiment

    async def reply(self, history: Sequence[tuple[str, str]], text: str, facts: Sequence[str] = (),
                    on_text: Callable[[str], None] | None = None, conversation: object = None) -> str:
        """The chat role's reply; `on_text(reply so far)` is called on the event loop as it grows (streaming).

        `conversation` (a customer id) keeps its KV slot for the next turn. Replies decode together, step by
        step (up to model.batch_size rows); the timeout counts from when this reply's prefill starts."""
        loop = asyncio.get_running_loop()
        done, started = loop.create_future(), asyncio.Event()
        relay = None
        if on_text is not None:
            relay = lambda so_far: loop.call_soon_threadsafe(on_text, so_far)  # noqa: E731 (from the model thread)
        turn = Turn(ReplyRequest(history, text, facts, relay, conversation),
                    finish=lambda result: loop.call_soon_threadsafe(_settle, done, result, started),
                    started=lambda: loop.call_soon_threadsafe(started.set))
        self.replies.add(turn)
        self._kick()
        try:
            await started.wait()
            return await asyncio.wait_for(asyncio.shield(done), self.config.model.timeout_seconds)
        except asyncio.TimeoutError:
            turn.cancelled = True
            raise ModelTimeout(f"model call exceeded {self.config.model.timeout_seconds} s") from None
        except asyncio.CancelledError:
            turn.cancelled = True  # its row leaves at the next step
            raise

    def _kick(self) -> None:
        """Make sure a decode step is queued on the worker while replies are running or waiting."""
        with self._step_lock:
            if not self._stepping:
                self._stepping = True
                self._worker.submit(self._step)

    def _step(self) -> None:
        """One decode step on the worker; it queues the next behind whatever else was asked for meanwhile."""
        try:
            self.replies.step()
        finally:
            with self._step_lock:
                if self._closed:
                    return
                self._stepping = self.replies.busy
                if self._stepping:
                    self._worker.submit(self._step)

    async def token_vectors(self, text: str) -> np.ndarray:
        return await self.run(self.knowledge_reader.token_vectors, text)

    @property
    def token_layers(self) -> tuple[int, ...]:
        return self.knowledge_reader.layers

    @property
    def token_layer(self) -> int:
        return self.knowledge_reader.layer

    def use_token_layer(self, layer: int) -> None:
        depth = self.decoder.shape.layers
        if not 1 <= layer <= depth:
            raise ConfigError("knowledge.token_layer", f"must be between 1 and {depth}, the layers of {self.name}")
        self.knowledge_reader.layer = layer

    async def layer_vectors(self, texts: Sequence[str], layers: Sequence[int]) -> list[list[np.ndarray]]:
        return await self.run(self.knowledge_reader.layer_vectors, texts, layers)

    async def likelihood_table(self, entries: Sequence[tuple[str, str]], texts: Sequence[str]) -> np.ndarray:
        return await self.run(self.knowledge_reader.likelihood_table, entries, texts)

    async def knowledge_likelihood(self, entries: Sequence[tuple[str, str]], text: str) -> np.ndarray:
        return await self.run(self.knowledge_reader.likelihood, entries, text)

    async def forget(self, conversation: object) -> None:
        """Drop the conversation's KV slot (/forget)."""
        await self.run(self.caches.forget, conversation)

    # --- synchronous model calls (benches and tools; the service goes through the async facade) -------------

    def generate_reply(self, history: Sequence[tuple[str, str]], text: str, facts: Sequence[str] = (),
                       conversation: object = None) -> str:
        """One customer's reply, alone, on the calling thread (never while the service runs replies)."""
        return self.generate_replies([ReplyRequest(history, text, facts, conversation=conversation)])[0]

    def generate_replies(self, requests: Sequence[ReplyRequest]) -> list[str]:
        """Several customers' replies decoded together on the calling thread, as the service would."""
        results: dict[int, str | BaseException] = {}
        for i, request in enumerate(requests):
            self.replies.add(Turn(request, finish=lambda result, i=i: results.__setitem__(i, result)))
        while len(results) < len(requests):
            self.replies.step()
        errors = [r for r in results.values() if isinstance(r, BaseException)]
        if errors:
            raise errors[0]
        return [results[i] for i in range(len(requests))]


def _settle(future: asyncio.Future, result: str | BaseException, started: asyncio.Event) -> None:
    """Hand the reply (or its error) over. `started` is set too: a turn can end before its prefill starts (a
    prompt that does not fit model.context_tokens), and its caller waits for that before it waits for the reply."""
    started.set()
    if future.done():
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)
