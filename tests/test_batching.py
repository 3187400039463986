"""Customers at the model at the same time: their sentiment is read in one batch, their replies decode together
step by step, each as if alone."""

import asyncio
import time
from dataclasses import replace

import pytest

from bot.llm.batching import Batcher
from bot.llm.engine import Engine
from bot.service import ConversationService, Sender
from storage.db import Database

MESSAGES = ["where is my parcel", "the cup arrived broken", "do you sell green tea", "谢谢，茶很好喝"]


def with_batch(config, batch_size: int):
    chat = replace(config.chat, generation=replace(config.chat.generation, temperature=0.0, max_new_tokens=12))
    return replace(config, model=replace(config.model, batch_size=batch_size), chat=chat)


async def crowd(tmp_path, config, batch_size: int) -> tuple[list[str], list[list[str]], list[int]]:
    """Four customers write at once, twice: their replies, what each saw streamed, and how many rows every
    decode step ran (the real model: a random one writes only whitespace when greedy)."""
    engine = Engine.load(with_batch(config, batch_size))
    rows: list[int] = []
    forward = engine.decoder.forward
    engine.decoder.forward = lambda tokens, *a, **k: rows.append(tokens.shape[0]) or forward(tokens, *a, **k)
    db = await Database.open(tmp_path / f"batch-{batch_size}.db")
    service = ConversationService(db, engine, engine.config)
    streamed: list[list[str]] = [[] for _ in MESSAGES]

    async def customer(n: int) -> list[str]:
        return [(await service.handle_text(Sender("console", str(n)), f"{MESSAGES[n]} {turn}",
                                           on_partial=streamed[n].append)).reply for turn in range(2)]

    try:
        replies = await asyncio.gather(*(customer(n) for n in range(len(MESSAGES))))
    finally:
        await db.close()
        engine.close()
    return [r for pair in replies for r in pair], streamed, rows


async def test_customers_writing_at_once_decode_together_and_get_the_replies_they_would_alone(tmp_path,
                                                                                               real_engine):
    alone, _, alone_rows = await crowd(tmp_path, real_engine.config, batch_size=1)
    together, streamed, together_rows = await crowd(tmp_path, real_engine.config, batch_size=8)
    assert max(alone_rows) == 1
    assert max(together_rows) == len(MESSAGES)  # all four in one decode step, though each arrived a few ms apart
    assert real_engine.config.chat.fallback_reply.for_lang("en") not in together
    same = sum(a == b for a, b in zip(alone, together))
    assert same >= len(alone) - 2, (alone, together)  # bf16 sums in another order may flip a rare near-tie
    for n, seen in enumerate(streamed):  # each customer watched their own replies grow, never another's
        own = together[2 * n:2 * n + 2]  # (a reply cut by the token limit ends at its last whole sentence)
        assert seen and all(any(r.startswith(s) or s.startswith(r) for r in own) for s in seen)


def test_sentiment_of_customers_waiting_together_is_read_in_one_pass_as_if_alone(real_engine):
    reader = real_engine.sentiment_reader
    texts = ["This is the worst shop ever, nobody answers me.", "Thank you, the tea is lovely!",
             "我的快递三天了还没到", "Where is my order?"]
    alone = [reader.read(text) for text in texts]
    rows: list[int] = []
    forward = real_engine.decoder.forward
    real_engine.decoder.forward = lambda tokens, *a, **k: rows.append(tokens.shape[0]) or forward(tokens, *a, **k)
    try:
        together = reader.read_many(texts)
    finally:
        del real_engine.decoder.forward
    assert rows == [len(texts)]
    assert [s.label for s in together] == [s.label for s in alone]
    for one, many in zip(alone, together):
        assert many.confidence == pytest.approx(one.confidence, abs=0.02)  # padded rows: bf16 sums in another order


async def test_a_failed_batch_fails_every_request_in_it_and_the_next_batch_runs(tiny_engine):
    calls: list[list[str]] = []

    def batch(texts):
        calls.append(list(texts))
        if "bad" in texts:
            raise RuntimeError("model broke")
        return [t.upper() for t in texts]

    batcher = Batcher(tiny_engine.run, batch, max_size=8)
    blocker = asyncio.ensure_future(tiny_engine.run(time.sleep, 0.2))  # the model is busy
    await asyncio.sleep(0.05)
    first = await asyncio.gather(batcher("ok"), batcher("bad"), return_exceptions=True)
    await blocker
    assert calls == [["ok", "bad"]]
    assert [type(r) for r in first] == [RuntimeError, RuntimeError]
    assert await batcher("fine") == "FINE"
