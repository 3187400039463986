"""Speed options: conversation KV caches (a next turn runs only its new tokens, same reply, bounded memory), int8."""

from dataclasses import replace

import torch
from transformers import DynamicCache

from bot.llm.engine import Engine
from bot.llm.kv_cache import ConversationCaches
from bot.service import ConversationService, Sender


def greedy(config, kv_cache_tokens: int):
    chat = replace(config.chat, kv_cache_tokens=kv_cache_tokens,
                   generation=replace(config.chat.generation, temperature=0.0))
    return replace(config, chat=chat)


async def converse(db, engine: Engine) -> tuple[list[str], list[int]]:
    """Three turns of one customer; the replies, and how many tokens each reply's first forward pass ran."""
    first_pass: list[int] = []
    calls: list[int] = []
    hook = engine.model.get_decoder().embed_tokens.register_forward_hook(
        lambda _m, args, _o: calls.append(args[0].shape[1]))
    service = ConversationService(db, engine, engine.config)
    replies = []
    try:
        for text in ("where is my parcel", "my order arrived broken", "thank you"):
            calls.clear()
            replies.append((await service.handle_text(Sender("console", "1"), text)).reply)
            # The tiny random model never stops early: its prefill is the max_new_tokens-th pass from the end.
            first_pass.append(calls[-engine.config.chat.generation.max_new_tokens])
    finally:
        hook.remove()
    return replies, first_pass


async def test_a_turn_runs_only_the_tokens_no_cache_holds_and_replies_the_same(tmp_path, tiny_config):
    from storage.db import Database

    results = {}
    for tokens in (0, 4096):
        engine = Engine.load(greedy(tiny_config, tokens))
        db = await Database.open(tmp_path / f"{tokens}.db")
        try:
            results[tokens] = await converse(db, engine)
        finally:
            await db.close()
            engine.close()
    (plain, plain_passes), (cached, cached_passes) = results[0], results[4096]
    assert cached == plain  # the cache changes the work, never the reply
    # A first turn starts from the system prompt every conversation shares; later turns from their own cache.
    assert all(c < p / 2 for c, p in zip(cached_passes, plain_passes)), (cached_passes, plain_passes)


def holding(tokens: int) -> DynamicCache:
    cache = DynamicCache()
    cache.update(torch.zeros(1, 1, tokens, 2), torch.zeros(1, 1, tokens, 2), 0)
    return cache


def test_caches_stay_within_their_token_bound_least_recently_used_first():
    caches = ConversationCaches(max_tokens=10)
    for key in ("a", "b", "c"):
        caches.put(key, torch.arange(4), holding(4))
    assert caches.take("a", torch.arange(6)) is None  # 12 tokens > 10: the oldest went
    assert caches.take("b", torch.arange(6)) is not None
    caches.put("big", torch.arange(11), holding(11))  # larger than the whole bound: not kept
    assert caches.take("big", torch.arange(12)) is None


async def test_forget_drops_the_customers_cache(db, tiny_engine):
    service = ConversationService(db, tiny_engine, tiny_engine.config)
    await service.handle_text(Sender("console", "1"), "where is my parcel")
    customer = await service.customer(Sender("console", "1"))
    assert customer.id in tiny_engine.caches._caches
    await service.forget(Sender("console", "1"))
    assert customer.id not in tiny_engine.caches._caches


async def test_an_int8_model_loads_and_answers(db, tiny_config):
    engine = Engine.load(replace(tiny_config, model=replace(tiny_config.model, quantize="int8")))
    try:
        assert "LinearPackedParams" in {type(m).__name__ for m in engine.model.modules()}  # int8 weights
        outcome = await ConversationService(db, engine, engine.config).handle_text(Sender("console", "1"), "hello")
        assert outcome.reply and outcome.sentiment is not None
    finally:
        engine.close()
