"""The model on an OpenAI-compatible server (llama.cpp's llama-server, vLLM, Ollama): every role over HTTP.

Only the OpenAI API's own request fields are sent, so a server that refuses unknown fields (OpenAI itself) takes
them too. No torch and no weights in this process: the bot stays small and the server can sit on another machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
import math
from dataclasses import dataclass
from typing import AsyncIterator, Callable, Sequence

import httpx
import numpy as np

from bot.config import MODEL_KEY_ENV, Config, ConfigError
from bot.evaluation import Row
from bot.llm.backends import ModelRefused, ModelServerDown
from bot.llm.backends.server_head import ServerHead, ensure_server_head
from bot.llm.guard import end_at_sentence, is_cjk, whole_words
from bot.llm.intents import Reading, keyword_intent
from bot.llm.prompts import as_data, chat_messages, grounded, sentiment_messages
from bot.llm.sentiment_scores import CONTENT_FREE, POLAR, Sentiment, calibrated, decide, unsure
from bot.llm.turns import CountsTurns

log = logging.getLogger(__name__)

RETRIES = 3  # a 429, a 5xx or an unanswered request is tried again this often, FIRST_BACKOFF doubling each time
FIRST_BACKOFF_SECONDS = 0.5
MAX_RETRY_AFTER_SECONDS = 10.0  # a server's Retry-After is honoured up to this
CONNECT_SECONDS = 5.0
TOP_LOGPROBS = 20  # the most the OpenAI API returns (and vLLM's default limit)
# A constrained choice has no probability. This one alerts at the default alerts.threshold (0.7) but never counts as
# alerts.very_negative (0.9), which would bypass the cooldown.
CHOICE_CONFIDENCE = 0.75
CHOICE_LABELS = ("negative", "neutral", "positive")
# The start of the assistant's answer, sent as its turn so far (a prefill): the model's next token is then a label
# word, in English whatever the customer wrote. Without it the model often answered the question ("The", "You") or
# started a Chinese word, whose first token llama.cpp sends no logprobs for (it lies inside a UTF-8 character).
# Measured against two other prefills and none: README, "what operators see".
ANSWER_START = "Answer:"
# Read through a server, the label probabilities of the embedded 135M model alerted on about half of all complaints;
# a 0.5B model's on all of them (README, "what operators see"). Below this size the bot warns at start.
ALERTS_MIN_PARAMETERS = 400_000_000
CHARS_PER_TOKEN = 3  # estimate for non-CJK text; real BPE averages ~4, so the estimate errs on the long side
# The server applies the chat template, so its tokens are unknown here: the markers of common model families.
SPECIAL_TOKENS = ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|begin_of_text|>", "<|start_header_id|>",
                  "<|end_header_id|>", "<|eot_id|>", "<start_of_turn>", "<end_of_turn>", "[INST]", "[/INST]",
                  "<s>", "</s>"]


@dataclass
class _Connection:
    """The HTTP client and the concurrency slots of one event loop (asyncio objects belong to the loop they run on)."""

    client: httpx.AsyncClient
    slots: asyncio.Semaphore
    calibrating: asyncio.Lock  # the first messages read at once wait for one content-free calibration


class RemoteEngine(CountsTurns):
    """The ModelBackend on a server: one request per role call, up to model.max_concurrency in flight at once."""

    token_layers: tuple[int, ...] = ()  # the server's embedding has no layer to choose

    def __init__(self, config: Config, model: str, retrieval_signals: frozenset[str], parameters: int | None):
        """`parameters`: the model's size where the server tells it (llama.cpp does; vLLM and Ollama do not)."""
        self.config = config
        self.model = model
        self.name = f"openai:{model}"
        self.special_tokens = SPECIAL_TOKENS
        self.retrieval_signals = retrieval_signals
        self.parameters = parameters
        self.url = config.model.base_url.rstrip("/")
        self._logprobs = config.sentiment.method != "generate"  # else the constrained choice
        self.answer_start = ANSWER_START  # bench/remote_alerts.py --compare sets others on a fresh engine
        self._content_free: np.ndarray | None = None  # mean label probabilities on CONTENT_FREE inputs
        self.head: ServerHead | None = None  # set by prepare_roles where the server can give it
        self._connections: dict[asyncio.AbstractEventLoop, _Connection] = {}
        self._closing: asyncio.Task | None = None  # a running loop's client closing (held so it is not collected)

    @classmethod
    def load(cls, config: Config) -> "RemoteEngine":
        """Check the server answers, settle the model name and whether it gives embeddings (blocking)."""
        url = config.model.base_url.rstrip("/")
        with _client(config) as client:
            served = _served_models(client, url)
            model = _pick_model(config.model.model, list(served), url)
            signals = frozenset({"tokens"}) if _has_embeddings(client, url, model) else frozenset()
        parameters = _parameters(served.get(model, {}))
        size = "size not given" if parameters is None else f"{parameters / 1e9:.2f} B parameters"
        log.info("model %s (%s) on the server at %s; knowledge search: %s", model, size, url,
                 "its embeddings and shared words" if signals else "shared words only (the server gives no embeddings)")
        return cls(config, model, signals, parameters)

    def prepare_roles(self, rows: Sequence[Row] | None = None) -> None:
        """With sentiment.method = "head" and a server that embeds and templates (llama.cpp): the sentiment head on
        its embeddings, fitted on `rows` (the shipped training rows) if none fits yet. Else label logprobs, with a
        warning where the model is too small for them to catch complaints."""
        if self.config.sentiment.method == "head" and "tokens" in self.retrieval_signals:
            self.head = self._server_head(rows)
        log.info("sentiment: %s", "a head on the server's embeddings" if self.head else "label probabilities")
        if self.head is None and self.parameters is not None and self.parameters < ALERTS_MIN_PARAMETERS:
            log.warning("the server's model has %.2f B parameters: read by their label probabilities, a model this "
                        "small missed about half of all complaints (README, \"what operators see\"); for sentiment "
                        "alerts serve a model of 0.5 B or more, or serve it from llama.cpp with embeddings so a head "
                        "reads them", self.parameters / 1e9)

    def _server_head(self, rows: Sequence[Row] | None) -> ServerHead | None:
        """The head on the server's embeddings (None where the server cannot apply the chat template)."""
        limit = self.config.chat.max_message_tokens

        def as_sent(text: str) -> str:  # a row's text as the bot sends a customer's message
            return as_data(self.truncate(text, limit), self.special_tokens)

        try:
            with _client(self.config) as client:
                head = ensure_server_head(client, self.url, self.model, self.config, rows, as_sent)
        except httpx.HTTPError as exc:  # the next start fits again from the first row
            raise ModelServerDown(f"the model server at {self.url} failed while the sentiment head was fitted "
                                  f"({type(exc).__name__}: {exc})") from None
        if head is None:
            log.info("the server cannot apply the chat template (a head needs llama.cpp's server)")
        return head

    def close(self) -> None:
        """Close the HTTP connections (called on the thread of the loops that used them)."""
        for loop, connection in self._connections.items():
            if loop.is_running():  # this loop, closing down: it runs the task before it ends
                self._closing = loop.create_task(connection.client.aclose())
            elif not loop.is_closed():
                loop.run_until_complete(connection.client.aclose())
        self._connections.clear()

    # --- token estimates (the server's tokenizer is not here) -----------------------------------------

    def count_tokens(self, text: str) -> int:
        cjk = sum(map(is_cjk, text))
        return cjk + math.ceil((len(text) - cjk) / CHARS_PER_TOKEN)

    def truncate(self, text: str, max_tokens: int) -> str:
        """The text cut to about `max_tokens` tokens (kept whole when it fits)."""
        if self.count_tokens(text) <= max_tokens:
            return text
        used = 0.0
        for end, char in enumerate(text):
            used += 1.0 if is_cjk(char) else 1.0 / CHARS_PER_TOKEN
            if used > max_tokens:
                return text[:end]
        return text

    # --- the roles ------------------------------------------------------------------------------------

    async def sentiment(self, text: str) -> Sentiment:
        """One call per message: the head on the server's embedding of the sentiment prompt where prepare_roles set
        one; else the label words' probabilities as the token after ANSWER_START, calibrated like the local "logits"
        method; a constrained choice where the server gives no logprobs (or method = "generate")."""
        if self.head is not None:
            answer = await self._post("/embeddings", {"model": self.model,
                                                      "input": self.head.text(as_data(text, self.special_tokens))})
            scores = self.head.head.scores(np.asarray([answer["data"][0]["embedding"]], dtype=np.float32))[0]
            return decide(scores, self.config.sentiment.neutral_below)
        if self._logprobs:
            reference = await self._content_free_probs()
            if reference is not None:
                probs = await self._polar_probs(text)
                if isinstance(probs, np.ndarray):
                    return decide(calibrated(probs, reference), self.config.sentiment.neutral_below)
                if probs is Unread.NO_LABEL:  # the model leans to neither label: nothing to alert on
                    return unsure(dict.fromkeys(POLAR, 0.5))
                # This answer alone came without logprobs (llama.cpp sends none for a token inside a UTF-8 character,
                # which ANSWER_START makes rare): this message is read as a constrained choice.
        return await self._choice(text)

    async def read_message(self, text: str) -> Reading:
        """The sentiment from the server; the intent by keywords: a server gives no hidden states for the intent head,
        and asking it as a second call per message would double the server's work (README, "Intents")."""
        return Reading(await self.sentiment(text), keyword_intent(text))

    async def reply(self, history: Sequence[tuple[str, str]], text: str, facts: Sequence[str] = (),
                    on_text: Callable[[str], None] | None = None, conversation: object = None) -> str:
        """The chat role's reply; with `on_text` it is streamed (server-sent events) and `on_text(reply so far)` is
        called as it grows by whole words. `conversation` needs nothing here: the server caches prompts itself."""
        generation = self.config.chat.generation
        history = [(role, as_data(past, self.special_tokens)) for role, past in history]
        body = {"model": self.model, "max_tokens": generation.max_new_tokens, "temperature": generation.temperature,
                "top_p": generation.top_p, "stream": on_text is not None,
                "messages": chat_messages(grounded(self.config.chat.system_prompt, facts), history,
                                          as_data(text, self.special_tokens))}
        async with self._call("/chat/completions", body) as response:
            if on_text is None:
                choice = json.loads(await response.aread())["choices"][0]
                reply, finish = choice["message"].get("content") or "", choice.get("finish_reason")
            else:
                reply, finish = await _streamed(response, on_text)
        reply = reply.strip()
        return end_at_sentence(reply) if finish == "length" else reply  # cut off: drop the half sentence

    async def token_vectors(self, text: str) -> np.ndarray:
        """(1, dim) the server's embedding of the text, unit length: one pooled vector stands for its tokens."""
        answer = await self._post("/embeddings", {"model": self.model, "input": text})
        vector = np.asarray(answer["data"][0]["embedding"], dtype=np.float32)
        return (vector / (np.linalg.norm(vector) + 1e-9))[None, :]

    async def forget(self, conversation: object) -> None:
        """Nothing to drop: shopbot keeps no model state per customer on a server."""

    # --- sentiment ------------------------------------------------------------------------------------

    def _sentiment_body(self, text: str, answer_start: str = "", **fields) -> dict:
        """The sentiment prompt; with `answer_start` the assistant's turn begins with it (llama.cpp and Ollama
        continue a last assistant message; vLLM and OpenAI answer in a new turn after it)."""
        messages = sentiment_messages(self.config.sentiment.instruction, as_data(text, self.special_tokens))
        if answer_start:
            messages.append({"role": "assistant", "content": answer_start})
        return {"model": self.model, "messages": messages, "temperature": 0.0, **fields}

    async def _polar_probs(self, text: str) -> np.ndarray | Unread:
        """(2,) POLAR probabilities of the first token after answer_start, or why there are none."""
        answer = await self._post("/chat/completions", self._sentiment_body(
            text, self.answer_start, max_tokens=1, logprobs=True, top_logprobs=TOP_LOGPROBS))
        content = (answer["choices"][0].get("logprobs") or {}).get("content") or []
        return label_probs(content[0].get("top_logprobs") or []) if content else Unread.NO_LOGPROBS

    async def _content_free_probs(self) -> np.ndarray | None:
        """The model's bias towards either label with no content at all (computed once); None: the server gives no
        logprobs, and from then on sentiment is a constrained choice."""
        async with self._connection().calibrating:
            if self._content_free is None and self._logprobs:
                probs = [await self._polar_probs(text) for text in CONTENT_FREE]
                # The content-free inputs are plain ASCII: no logprobs for them means the server gives none at all.
                if any(p is Unread.NO_LOGPROBS for p in probs):
                    log.warning("the model server at %s gives no logprobs: sentiment is read as a constrained choice "
                                "with a fixed confidence of %.2f (README, \"A remote model server\")", self.url,
                                CHOICE_CONFIDENCE)
                    self._logprobs = False
                else:
                    listed = [p for p in probs if isinstance(p, np.ndarray)]
                    self._content_free = np.mean(listed, axis=0) if listed else np.full(len(POLAR), 1 / len(POLAR))
        return self._content_free

    async def _choice(self, text: str) -> Sentiment:
        """The label as a JSON-schema enum the server must answer with, at a fixed confidence."""
        schema = {"type": "object", "properties": {"label": {"type": "string", "enum": list(CHOICE_LABELS)}},
                  "required": ["label"], "additionalProperties": False}
        # The schema ends the answer; max_tokens only bounds it (llama.cpp's grammar lets the model add whitespace:
        # 16 tokens cut SmolLM2's '{\n  "label" : "positive"' in the middle of the label).
        answer = await self._post("/chat/completions", self._sentiment_body(text, max_tokens=64, response_format={
            "type": "json_schema", "json_schema": {"name": "sentiment", "strict": True, "schema": schema}}))
        label = json.loads(answer["choices"][0]["message"]["content"])["label"]
        if label not in CHOICE_LABELS:
            raise ValueError(f"the model server ignored the answer schema (label {label!r})")
        return Sentiment(label, CHOICE_CONFIDENCE, {label: CHOICE_CONFIDENCE})

    # --- HTTP -----------------------------------------------------------------------------------------

    def _connection(self) -> _Connection:
        loop = asyncio.get_running_loop()
        if loop not in self._connections:
            settings = self.config.model
            self._connections = {other: c for other, c in self._connections.items() if not other.is_closed()}
            self._connections[loop] = _Connection(
                httpx.AsyncClient(headers=_auth(self.config),
                                  timeout=httpx.Timeout(settings.timeout_seconds, connect=CONNECT_SECONDS),
                                  limits=httpx.Limits(max_connections=settings.max_concurrency)),
                asyncio.Semaphore(settings.max_concurrency), asyncio.Lock())
        return self._connections[loop]

    async def _post(self, path: str, body: dict) -> dict:
        async with self._call(path, body) as response:
            return json.loads(await response.aread())

    @contextlib.asynccontextmanager
    async def _call(self, path: str, body: dict) -> AsyncIterator[httpx.Response]:
        """One model call: a slot of max_concurrency, then model.timeout_seconds for all of it (from when it starts,
        not while it waits for a slot); a 429, a 5xx or a request the server never answered is sent again, with
        backoff. Nothing is retried once the answer has started, so a reply is never written twice."""
        connection = self._connection()
        request = connection.client.build_request("POST", self.url + path, json=body)
        async with connection.slots, asyncio.timeout(self.config.model.timeout_seconds):
            for attempt in range(RETRIES + 1):
                last = attempt == RETRIES
                try:
                    response = await connection.client.send(request, stream=True)
                except httpx.TransportError as exc:  # refused, unanswered, or a kept-alive connection it had closed
                    if isinstance(exc, httpx.TimeoutException) and not isinstance(exc, httpx.ConnectTimeout):
                        raise  # a read or write timeout: the request may be under way, and a reply is written once
                    if last:
                        raise ModelServerDown(f"the model server at {self.url} is not answering "
                                              f"({type(exc).__name__})") from exc
                    await asyncio.sleep(FIRST_BACKOFF_SECONDS * 2 ** attempt)
                    continue
                try:
                    if response.status_code == 429 or response.status_code >= 500:
                        if last:
                            raise ModelServerDown(f"the model server at {self.url} answered {response.status_code} "
                                                  f"{RETRIES + 1} times in a row")
                        await asyncio.sleep(_backoff(response, attempt))
                        continue
                    if response.is_error:
                        await response.aread()
                        raise ModelRefused(f"the model server at {self.url} refused {path}: "
                                           f"{response.status_code} {response.text[:300]}")
                    try:
                        yield response
                    except httpx.TransportError as exc:  # the server went away mid-answer
                        raise ModelServerDown(f"the model server at {self.url} broke off its answer "
                                              f"({type(exc).__name__})") from exc
                    return
                finally:
                    await response.aclose()


class Unread(enum.Enum):
    """Why a message's label logprobs give no reading."""

    NO_LOGPROBS = "the answer came without logprobs"
    NO_LABEL = "neither label word among the first token's top logprobs"


def label_probs(top: list[dict]) -> np.ndarray | Unread:
    """(2,) POLAR probabilities of the answer's first token from its top logprobs: every listed token that starts
    exactly one label word counts for it (" Negative", "neg"); a label with none listed gets the least listed
    probability (its upper bound). With neither label listed the model was not answering with a label at all
    (its first token was "The", "You"): Unread.NO_LABEL, since equal floors would calibrate to a confident lean."""
    found = np.zeros(len(POLAR))
    for entry in top:
        word = entry["token"].strip().lower()
        starts = [len(word) >= 3 and label.startswith(word) for label in POLAR]
        if sum(starts) == 1:
            found[starts.index(True)] += math.exp(entry["logprob"])
    if not found.any():
        return Unread.NO_LABEL
    floor = min((math.exp(entry["logprob"]) for entry in top), default=1.0)
    return np.where(found > 0, found, floor)


async def _streamed(response: httpx.Response, on_text: Callable[[str], None]) -> tuple[str, str | None]:
    """The reply and its finish reason from server-sent events; `on_text` sees it grow by whole words."""
    text, finish, shown, event = "", None, "", ""
    async for line in response.aiter_lines():
        field, _, value = line.partition(":")
        value = value.strip()
        if field == "event":
            event = value
            continue
        # llama.cpp sends a failure during the answer as an "error:" line (then [DONE]), others as "event: error":
        # the words before it are half a reply, never to be sent as if whole.
        if field == "error" or (field == "data" and event == "error"):
            raise RuntimeError(f"the model server stopped the reply: {value[:300]}")
        if field != "data":
            event = "" if not line else event  # a blank line ends the event; comments and ids change nothing
            continue
        if value == "[DONE]":
            break
        chunk = json.loads(value)
        if "error" in chunk:
            raise RuntimeError(f"the model server stopped the reply: {chunk['error']}")
        for choice in chunk.get("choices") or []:  # a last chunk may carry usage only
            text += (choice.get("delta") or {}).get("content") or ""
            finish = choice.get("finish_reason") or finish
        so_far = whole_words(text)
        if len(so_far) > len(shown):
            shown = so_far
            on_text(so_far)
    final = whole_words(text, final=True)
    if len(final) > len(shown):
        on_text(final)
    return text, finish


def _client(config: Config) -> httpx.Client:
    """A blocking client for start-up calls: model.timeout_seconds each (an embedding batch while fitting too)."""
    return httpx.Client(headers=_auth(config), timeout=httpx.Timeout(config.model.timeout_seconds,
                                                                    connect=CONNECT_SECONDS))


def _auth(config: Config) -> dict[str, str]:
    return {"Authorization": f"Bearer {config.model_api_key}"} if config.model_api_key else {}


def _backoff(response: httpx.Response, attempt: int) -> float:
    """Seconds before the next try: the server's Retry-After when it gives one (capped), else doubling."""
    try:
        return min(float(response.headers["retry-after"]), MAX_RETRY_AFTER_SECONDS)
    except (KeyError, ValueError):
        return FIRST_BACKOFF_SECONDS * 2 ** attempt


def _served_models(client: httpx.Client, url: str) -> dict[str, dict]:
    """The models the server lists (GET /models), by name: the start-up check that it answers at all."""
    try:
        response = client.get(f"{url}/models")
    except httpx.TransportError as exc:
        raise ModelServerDown(f"cannot reach the model server at {url} ({type(exc).__name__}: {exc}); is it "
                              "running, and is [model] base_url right?") from None
    if response.status_code in (401, 403):
        raise ConfigError(MODEL_KEY_ENV, f"the model server at {url} refused it ({response.status_code}); "
                                         "set the server's API key in this environment variable")
    if response.status_code != 200:
        raise ModelServerDown(f"the model server at {url} answered {response.status_code} to GET {url}/models; "
                              "[model] base_url is the API root, usually ending in /v1")
    return {entry["id"]: entry for entry in response.json().get("data", [])}


def _parameters(listed: dict) -> int | None:
    """The model's size from its GET /models entry: llama.cpp lists it as meta.n_params; vLLM and Ollama do not."""
    count = (listed.get("meta") or {}).get("n_params")
    return count if isinstance(count, int) and count > 0 else None


def _pick_model(configured: str, served: list[str], url: str) -> str:
    """The configured model name, else the server's only one."""
    if configured:
        if configured not in served:  # Ollama also resolves "name" to "name:latest"; the server has the last word
            log.warning("model.model %r is not among the models the server at %s lists (%s)", configured, url,
                        ", ".join(served) or "none")
        return configured
    if len(served) != 1:
        raise ConfigError("model.model", f"the server at {url} serves {len(served)} models "
                                         f"({', '.join(served) or 'none listed'}): name the one to use")
    return served[0]


def _has_embeddings(client: httpx.Client, url: str, model: str) -> bool:
    """Whether the server embeds text (POST /embeddings): a chat-only vLLM or llama-server does not."""
    try:
        response = client.post(f"{url}/embeddings", json={"model": model, "input": "shop"})
        return response.status_code == 200 and bool(response.json()["data"][0]["embedding"])
    except (httpx.HTTPError, ValueError, KeyError, IndexError):
        return False
