"""shopbot's own decoder and its KV slots: the same numbers as transformers, a next turn that runs only its new
tokens in its own slot, slots bounded and reused least recently used first, replies decoded together step by step."""

import asyncio
import json
import subprocess
import threading
import sys
from dataclasses import replace

import pytest
import torch
from transformers import AutoModelForCausalLM

from bot.config import ConfigError, load_config
from bot.llm import loading, model
from bot.llm import weights as model_weights
from bot.llm.engine import Engine
from bot.llm.replies import ReplyLoop, ReplyRequest, Turn
from bot.llm.slots import Scratch, Slots
from bot.service import ConversationService, Sender
from tests.conftest import REPO, dump_config, tiny_checkpoint, with_model


def greedy(config, **model):
    chat = replace(config.chat, generation=replace(config.chat.generation, temperature=0.0))
    return replace(config, chat=chat, model=replace(config.model, **model))


def all_logits(decoder, ids: list[int]) -> torch.Tensor:
    """Teacher-forced: [S, vocab] logits at every position of `ids`."""
    hidden, _ = decoder.forward(torch.tensor([ids]), torch.arange(len(ids))[None], Scratch())
    return decoder.logits(hidden[0])


def test_bulk_reading_unpacks_each_weight_once_and_reads_the_same(tiny_config):
    """`shopbot analyze` keeps the 4-bit matrices unpacked after the first large pass: the hidden states its heads
    read are exactly those of unpacking them for every pass."""
    engine = Engine.load(tiny_config)
    try:
        decoder = engine.decoder
        tokens = torch.randint(0, 100, (4, 100))  # 400 rows at once: the large-batch path
        positions = torch.arange(100).expand(4, -1)
        unpacked_each_time, _ = decoder.forward(tokens, positions, Scratch())
        decoder.keep_unpacked()
        first, _ = decoder.forward(tokens, positions, Scratch())
        assert all(ly.qkv.unpacked is not None and ly.down.unpacked is not None for ly in decoder.layers)
        second, _ = decoder.forward(tokens, positions, Scratch())
        assert torch.equal(unpacked_each_time, first) and torch.equal(first, second)
    finally:
        engine.close()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_a_large_batch_reads_what_the_int4_kernel_reads_in_either_bulk_dtype(tiny_config, monkeypatch, dtype):
    """A large batch multiplies unpacked weights (fp32, or bf16 where this CPU's bf16 GEMM measured faster): its hidden
    states are the int4 kernel's, the path the bot reads each customer message on, up to bf16 rounding."""
    monkeypatch.setattr(model_weights, "bulk_dtype", lambda: dtype)
    engine = Engine.load(tiny_config)
    try:
        tokens = torch.randint(0, 100, (4, 100))  # 400 rows at once: the large-batch path; one row of 100: the kernel
        positions = torch.arange(100).expand(4, -1)
        bulk, _ = engine.decoder.forward(tokens, positions, Scratch())
        kernel = torch.cat([engine.decoder.forward(tokens[b:b + 1], positions[b:b + 1], Scratch())[0]
                            for b in range(4)])
        cosine = torch.nn.functional.cosine_similarity(bulk.float(), kernel.float(), dim=-1)
        assert cosine.min() > 0.99, cosine.min()
    finally:
        engine.close()


def test_the_model_is_loaded_on_the_thread_that_serves_every_call(tiny_config, monkeypatch):
    """Each thread that runs torch's parallel ops gets an OpenMP team, and with two teams on 2 cores every op ran ~2x
    slower: loading, calls from the event loop and benchmarks all run on the engine's one thread."""
    loaded_on = []
    real_load = loading.load
    monkeypatch.setattr(loading, "load", lambda settings: loaded_on.append(threading.current_thread()) or
                        real_load(settings))
    engine = Engine.load(tiny_config)
    try:
        assert loaded_on[0] is not threading.current_thread()
        assert engine.on_model_thread(threading.current_thread) is loaded_on[0]
        assert asyncio.run(engine.run(threading.current_thread)) is loaded_on[0]
    finally:
        engine.close()


@pytest.mark.parametrize("architecture", ["llama", "qwen2"])
def test_our_decoder_computes_what_transformers_computes(tmp_path, tiny_config, architecture):
    directory = tiny_checkpoint(tmp_path / architecture, architecture)
    ids = list(range(3, 40))
    reference = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32)(torch.tensor([ids])).logits[0]
    for weights, tolerance in (("fp32", 1e-4), ("bf16", 0.1), ("int8", 0.2), ("int4", 0.5)):
        settings = replace(tiny_config.model, source=str(directory), weights=weights)
        with torch.inference_mode():
            ours = all_logits(loading.load(settings).decoder, ids)
        assert (ours - reference).abs().max() < tolerance, weights


@pytest.mark.parametrize("bf16_arithmetic", [True, False], ids=["avx512-bf16", "avx2"])
def test_decoding_token_by_token_gives_the_logits_of_one_pass_on_either_kind_of_cpu(tmp_path, tiny_config, monkeypatch,
                                                                                  bf16_arithmetic):
    """Decode attention runs in bf16 where the CPU has bf16 arithmetic and in fp32 elsewhere; on both, each decoded
    token's logits are those of one pass over the whole text."""
    monkeypatch.setattr(model, "BF16_ARITHMETIC", bf16_arithmetic)
    directory = tiny_checkpoint(tmp_path, "llama")
    ids = list(range(3, 40))
    with torch.inference_mode():
        decoder = loading.load(replace(tiny_config.model, source=str(directory), weights="bf16")).decoder
        whole = all_logits(decoder, ids)
        cache = Scratch()
        decoder.forward(torch.tensor([ids[:10]]), torch.arange(10)[None], cache)
        steps = [decoder.logits(decoder.forward(torch.tensor([[ids[i]]]), torch.tensor([[i]]), cache)[0][0, -1])
                 for i in range(10, len(ids))]
    assert (torch.stack(steps) - whole[10:]).abs().max() < 0.02


def test_an_architecture_we_do_not_run_is_refused_naming_the_key(tmp_path, tiny_config):
    from transformers import GPT2Config, GPT2LMHeadModel

    directory = tiny_checkpoint(tmp_path / "gpt2")
    GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=400)).save_pretrained(directory)
    with pytest.raises(ConfigError, match="model.source: .*gpt2"):
        loading.load(replace(tiny_config.model, source=str(directory)))


def test_loading_leaves_transformers_modeling_stack_unimported(tiny_model_dir, tmp_path):
    """The model-specific config classes import torch.distributed and sympy: 52 MB of resident memory for nothing."""
    config = dump_config(with_model(load_config(environ={}), str(tiny_model_dir), tmp_path), tmp_path)
    script = ("import sys; from bot.config import load_config; from bot.llm.engine import Engine; "
              f"Engine.load(load_config({str(config)!r})).close(); "
              "print(sorted(m for m in ('sympy', 'torch.distributed.tensor', 'transformers.modeling_utils') "
              "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


class Passes:
    """Records how many tokens each forward pass of the engine's decoder ran, per row."""

    def __init__(self, engine: Engine):
        self.decoder, self.shapes = engine.decoder, []
        self._forward = self.decoder.forward
        self.decoder.forward = self.spy

    def spy(self, tokens, *args, **kwargs):
        self.shapes.append(tuple(tokens.shape))
        return self._forward(tokens, *args, **kwargs)

    def __enter__(self):
        return self

    def __exit__(self, *_):
        del self.decoder.forward


async def test_a_next_turn_continues_in_its_slot_and_runs_only_its_new_tokens(db, tiny_config):
    engine = Engine.load(greedy(tiny_config))
    service = ConversationService(db, engine, engine.config)
    try:
        prefills = []
        for text in ("where is my parcel", "my order arrived broken", "thank you"):
            with Passes(engine) as passes:
                await service.handle_text(Sender("console", "1"), text)
            prefills.append([s for s in passes.shapes if s[1] > 1])
        customer = await service.customer(Sender("console", "1"))
        held = engine.caches.holds(customer.id)
    finally:
        engine.close()
    # Later turns' prompts are longer (they hold the earlier turns), yet each runs fewer tokens than the first.
    system = len(engine.tokenizer.apply_chat_template([{"role": "system", "content": engine.config.chat.system_prompt}]))
    reply_prefills = [p[-1][1] for p in prefills]
    assert all(n < reply_prefills[0] for n in reply_prefills[1:]), reply_prefills
    assert held > system + 3 * 8  # system prompt + three turns with their 8-token replies


async def test_replies_are_the_same_with_or_without_a_slot_kept(tmp_path, tiny_config):
    from storage.db import Database

    replies = {}
    for kept in (True, False):
        engine = Engine.load(greedy(tiny_config))
        db = await Database.open(tmp_path / f"{kept}.db")
        service = ConversationService(db, engine, engine.config)
        try:
            replies[kept] = []
            for text in ("where is my parcel", "my order arrived broken", "thank you"):
                replies[kept].append((await service.handle_text(Sender("console", "1"), text)).reply)
                if not kept:
                    engine.caches.forget((await service.customer(Sender("console", "1"))).id)
        finally:
            await db.close()
            engine.close()
    assert replies[True] == replies[False]


async def test_a_reply_whose_prompt_does_not_fit_its_slot_fails_at_once_instead_of_waiting_forever(tiny_engine):
    # A shop fact longer than model.context_tokens: the turn ends before its prefill, and the caller must hear of it
    # (the service then sends the fallback) rather than wait for a prefill that never starts.
    facts = ["Returns are free within 30 days of delivery. " * 120]
    with pytest.raises(ValueError, match="context_tokens"):
        await asyncio.wait_for(tiny_engine.reply([], "can I return it?", facts), 60)
    assert (await asyncio.wait_for(tiny_engine.reply([], "thank you"), 60)).strip()  # the engine serves on


async def test_a_long_conversation_still_gets_a_reply_from_its_newest_turns(db, tiny_config):
    # Valid: context_tokens 2048 >= history_tokens 1700 + 8 new tokens + 256. The 60 turns' own tokens fit the
    # history budget (60 x 24 <= 1700 - 256), but with the chat template's tokens around each they overflow the slot.
    config = greedy(replace(tiny_config, chat=replace(tiny_config.chat, history_tokens=1700)))
    engine = Engine.load(config)
    service = ConversationService(db, engine, config)
    try:
        customer = await service.customer(Sender("console", "1"))
        for i in range(30):
            await db.add_message(customer.id, "customer", "ok, and the blue one too?")
            await db.add_message(customer.id, "bot", "ok, and the blue one too?")
        assert engine.count_tokens("ok, and the blue one too?") == 24
        outcome = await asyncio.wait_for(service.handle_text(Sender("console", "1"), "thank you"), 60)
        held = engine.caches.holds(customer.id)
    finally:
        engine.close()
    assert outcome.model_error is None  # the model wrote the reply (this random model's may still be blank)
    assert 0 < held <= config.model.context_tokens


def test_slots_are_bounded_in_bytes_and_the_least_recently_used_is_reused(tiny_engine):
    shape = tiny_engine.decoder.shape
    per_token = 2 * shape.layers * shape.kv_heads * shape.head_dim * 2  # bf16 keys and values
    slots = Slots(shape, context=64, budget_bytes=2 * 64 * per_token + 100, dtype=torch.bfloat16)
    assert slots.count == 2
    with pytest.raises(ConfigError, match=r"model\.kv_cache_mb: .* holds no conversation of model\.context_tokens"):
        Slots(shape, context=64, budget_bytes=64 * per_token - 1, dtype=torch.bfloat16)  # a start-up error, keyed
    a = slots.take("a", list(range(10)))
    slots.give_back(a.slot, list(range(9)))
    b = slots.take("b", list(range(10)))
    assert slots.take("b", list(range(12))) is None  # b's slot is busy: its next turn waits for it
    slots.give_back(b.slot, list(range(9)))
    assert slots.holds("a") == 9 and slots.holds("b") == 9
    again = slots.take("a", list(range(12)))  # a's next turn: continues where it was, nothing to redo
    assert (again.slot, again.held) == (a.slot, 9)
    slots.give_back(again.slot, list(range(11)))
    c = slots.take("c", list(range(5)))  # a new conversation takes the least recently used slot: b's
    assert c.slot == b.slot and slots.holds("b") == 0 and slots.holds("a") == 11
    assert slots.take("d", list(range(5))) is not None  # a's slot is idle: reused, a starts over next time
    assert slots.take("e", list(range(5))) is None  # every slot busy: a new reply waits
    slots.forget("a")
    assert slots.holds("a") == 0


async def test_forget_drops_the_customers_slot(db, tiny_engine):
    service = ConversationService(db, tiny_engine, tiny_engine.config)
    await service.handle_text(Sender("console", "1"), "where is my parcel")
    customer = await service.customer(Sender("console", "1"))
    assert tiny_engine.caches.holds(customer.id) > 0
    await service.forget(Sender("console", "1"))
    assert tiny_engine.caches.holds(customer.id) == 0


def test_rows_join_and_leave_the_running_batch_at_every_step(tiny_engine):
    """A reply arriving while others decode joins at the next step; a finished one leaves at once."""
    engine = tiny_engine  # a loop of its own, stepped only here (the engine's worker may still be finishing a step)
    slots = Slots(engine.decoder.shape, engine.caches.context, 2**22, engine.decoder.dtype)
    # No stop tokens: each reply runs to max_new_tokens, so "a" is still decoding when "b" joins (the tiny model's
    # random weights could otherwise end "a" at any step, the one "b" joins at included).
    loop = ReplyLoop(engine.decoder, engine.tokenizer, slots, engine.config.chat, engine.special_tokens,
                     frozenset(), batch_size=4)
    results, steps = {}, []
    turns = {}

    def add(name: str) -> None:
        turns[name] = Turn(ReplyRequest([], f"where is my parcel {name}"), finish=lambda r: results.__setitem__(name, r))
        loop.add(turns[name])

    def step() -> None:
        loop.step()
        running = {name for name, turn in turns.items() if turn in loop.running}
        # after every step: each reply not yet handed over is decoding, and a handed-over one has left the batch
        assert running == set(turns) - set(results)
        steps.append(running)

    add("a")
    for _ in range(3):
        step()
    add("b")
    while loop.busy:
        step()
    assert steps[:3] == [{"a"}] * 3 and {"a", "b"} in steps and steps[-1] == set()
    assert set(results) == {"a", "b"} and all(isinstance(reply, str) for reply in results.values())


@pytest.mark.parametrize("weights", ["int4", "int8", "bf16", "fp32"])
async def test_every_weight_format_loads_and_answers(db, tiny_config, weights):
    engine = Engine.load(replace(tiny_config, model=replace(tiny_config.model, weights=weights)))
    try:
        outcome = await ConversationService(db, engine, engine.config).handle_text(Sender("console", "1"), "hello")
        assert outcome.reply and outcome.sentiment is not None
    finally:
        engine.close()


def test_shopbot_bench_json_prints_every_figure(tiny_config, tmp_path, capsys):
    """`shopbot bench --json`: one JSON object with the keys the README names, each a measured positive number."""
    from bot.cli import main

    assert main(["bench", "--json", "--config", str(dump_config(tiny_config, tmp_path))]) == 0
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    keys = ("decode_tok_s", "prefill_tok_s", "batch8_tok_s", "sentiment_ms", "first_text_s", "peak_rss_mb")
    assert all(figures[key] > 0 for key in keys) and figures["load_rss_mb"] > 0
