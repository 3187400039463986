"""Shared fixtures: configs in tmp_path, a tiny random model the tests build themselves, the real embedded model."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from bot.config import Config, load_config

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"
CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def tiny_checkpoint(out: Path, architecture: str = "llama") -> Path:
    """A randomly initialised 3-layer model (Llama, or Qwen2 with its QKV bias) with a small byte-level BPE
    tokenizer and a ChatML template, saved as a transformers checkpoint in `out`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    corpus = ["my order arrived broken", "thank you, great shop", "where is my parcel", "你好，我的订单"] * 20
    bpe.train_from_iterator(corpus, trainers.BpeTrainer(
        vocab_size=400, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, bos_token="<|im_start|>", eos_token="<|im_end|>", pad_token="<|endoftext|>",
        additional_special_tokens=specials,
    )
    tokenizer.chat_template = CHATML
    config_class, model_class = {"llama": (LlamaConfig, LlamaForCausalLM), "qwen2": (Qwen2Config, Qwen2ForCausalLM)}[
        architecture]
    config = config_class(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=3,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=architecture == "llama",
    )
    torch.manual_seed(20241130)  # the same random model in every run: a test failing on it fails every time
    model = model_class(config)
    for name, parameter in model.named_parameters():
        if name.endswith(".bias"):  # transformers starts biases at zero: make Qwen2's QKV bias count
            torch.nn.init.normal_(parameter, std=0.5)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return tiny_checkpoint(tmp_path_factory.mktemp("tiny-model"))


def with_model(config: Config, source: str, tmp_path: Path, **chat_generation) -> Config:
    """The repo's default config pointed at `source`, with the database in tmp_path. The model chats freely (a
    random tiny model is far below chat.free_chat's "auto" size, and these tests are about its replies; its random
    words are in no language, so chat.same_language_only is off: tests/test_reply_rules.py covers that rule) and reads
    sentiment by logits (no head is fitted for it at start: tests/test_auto_head.py covers that). What it caches
    (its retrieval choice) goes beside the temporary model, not into the repo's data/models."""
    config = replace(
        config,
        model=replace(config.model, source=source, cache_dir=Path(source).with_name(f"{Path(source).name}-cache")),
        storage=replace(config.storage, path=tmp_path / "shopbot.db"),
        chat=replace(config.chat, free_chat="on", same_language_only=False),
        sentiment=replace(config.sentiment, method="logits"),
    )
    if chat_generation:
        config = replace(config, chat=replace(config.chat, generation=replace(config.chat.generation, **chat_generation)))
    return config


@pytest.fixture
def tiny_config(tiny_model_dir, tmp_path) -> Config:
    return with_model(load_config(environ={}), str(tiny_model_dir), tmp_path, max_new_tokens=8)


@pytest.fixture(scope="session")
def tiny_engine(tiny_model_dir, tmp_path_factory):
    from bot.llm.engine import Engine

    engine = Engine.load(with_model(load_config(environ={}), str(tiny_model_dir), tmp_path_factory.mktemp("e"),
                                    max_new_tokens=8))
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def real_engine():
    """The embedded SmolLM2-135M-Instruct, converted once into the repo's data/models cache, greedy replies.

    Free chat is on: these tests are about the model's own replies ("auto" keeps a 135M model from free chat;
    tests/test_reply_rules.py covers that rule)."""
    from bot.llm.engine import Engine

    config = load_config(environ={})
    config = replace(config, chat=replace(config.chat, free_chat="on", generation=replace(
        config.chat.generation, temperature=0.0, max_new_tokens=32)))
    engine = Engine.load(config)
    yield engine
    engine.close()


@pytest.fixture
async def db(tmp_path):
    from storage.db import Database

    database = await Database.open(tmp_path / "shopbot.db")
    yield database
    await database.close()


async def backdate(db, message_id: int, at: float) -> None:
    """Date a stored message `at` (seconds since 1970): the database stamps each message with the time it is added."""
    await db._db.execute("UPDATE messages SET created_at = ? WHERE id = ?", (at, message_id))
    await db._db.commit()


def dump_config(config: Config, tmp_path: Path) -> Path:
    """Write the parts of `config` tests change (model, storage, chat) over the shipped file. model.cache_dir stays
    the shipped relative one, so the heads a test's commands fit land under its own tmp_path, never another test's."""
    text = (REPO / "config.toml").read_text(encoding="utf-8")
    text = text.replace('source = "embedded"', f'source = "{config.model.source}"')
    text = text.replace('path = "data/shopbot.db"', f'path = "{config.storage.path}"')
    text = text.replace("max_new_tokens = 96", f"max_new_tokens = {config.chat.generation.max_new_tokens}")
    text = text.replace('free_chat = "auto"', f'free_chat = "{config.chat.free_chat}"')
    text = text.replace('method = "head"', f'method = "{config.sentiment.method}"')
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def fake():
    """A fake Telegram Bot API server on 127.0.0.1, stopped after the test."""
    from testkit.fakes.bot_api import FakeBotApi
    from testkit.telegram_helpers import TOKEN

    with FakeBotApi(TOKEN) as api:
        yield api


@pytest.fixture(params=["polling", "webhook"])
def config(request, tiny_config, fake) -> Config:
    """The tiny-model config pointed at the fake Bot API; every end-to-end test runs with both ways of
    receiving updates (long polling, and the fake posting to the bot's webhook)."""
    from testkit.telegram_helpers import over_fake

    return over_fake(tiny_config, fake, request.param)


@pytest.fixture(scope="session")
def llama_server():
    """A real llama.cpp server (xllamacpp) serving the embedded GGUF on 127.0.0.1, for the whole session."""
    from testkit.llama_server import LlamaServer

    with LlamaServer() as server:
        yield server


def remote(config: Config, base_url: str, tmp_path: Path, method: str = "logits", **model) -> Config:
    """`config` on the remote backend at `base_url`, greedy 32-token replies written by the model (free chat on:
    "auto" is off for the embedded 135M model the test server runs), the database and model cache in tmp_path.
    Sentiment by label logprobs unless `method` says otherwise: the default "head" would first fit a head on the
    server's embeddings of every shipped row (minutes; tests/test_server_head.py fits one on a few)."""
    from testkit.llama_server import on_server

    generation = replace(config.chat.generation, temperature=0.0, max_new_tokens=32)
    # a loaded CI machine: a slow reply is not the failure tested
    model = {"timeout_seconds": 240.0, "cache_dir": tmp_path / "models", **model}
    return replace(on_server(config, base_url, **model),
                   chat=replace(config.chat, generation=generation, free_chat="on"),
                   sentiment=replace(config.sentiment, method=method),
                   storage=replace(config.storage, path=tmp_path / "shopbot.db"))


@pytest.fixture
def remote_config(llama_server, tmp_path) -> Config:
    return remote(load_config(environ={}), llama_server.url, tmp_path)


@pytest.fixture
def remote_engine(remote_config):
    from bot.llm.backends import load_backend

    engine = load_backend(remote_config)
    yield engine
    engine.close()
