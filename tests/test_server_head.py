"""Sentiment on a model server by a head on its embeddings: fitted once on first start, cached, read per message, and
fitted again when the server's embeddings change; a server that cannot template the prompt keeps the label logprobs.
Against the real llama.cpp server (last-token pooling) on a few of the shipped rows."""

from __future__ import annotations

import logging
import shutil

import numpy as np
import pytest

from bot.config import load_config
from bot.llm.backends import load_backend
from bot.llm.backends.server_head import head_path
from bot.llm.head import LinearHead, training_rows
from testkit.fakes.model_proxy import ModelProxy
from tests.conftest import remote

ROWS = training_rows()[::20]  # ~200 rows of every file: both languages, three labels
# The embedded 135M model's Chinese through a server is weak (README, "A head on the server's embeddings"): on these
# few rows its head reads a Chinese complaint as praise, so only the English one must alert here.
COMPLAINTS = ("My order arrived broken and nobody answers my emails. This is terrible!",)
CALM = ("Do you ship to Canada?", "能用微信付款吗？", "Thank you so much, the tea is wonderful!")


@pytest.fixture(scope="module")
def fitted(llama_server, tmp_path_factory):
    """(config, engine, log text): a bot's first start on the server, which fits the head."""
    config = remote(load_config(environ={}), llama_server.url, tmp_path_factory.mktemp("first"), method="head")
    handler = _Collect()
    logging.getLogger("bot").addHandler(handler)
    try:
        engine = load_backend(config)
        engine.prepare_roles(ROWS)
    finally:
        logging.getLogger("bot").removeHandler(handler)
    yield config, engine, handler.text
    engine.close()


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.text = ""

    def emit(self, record: logging.LogRecord) -> None:
        self.text += record.getMessage() + "\n"


async def test_the_first_start_fits_a_head_on_the_servers_embeddings_which_alerts_on_complaints_only(fitted):
    config, engine, logged = fitted
    assert "fitting one on the server's embeddings" in logged and head_path(config, engine.model).is_file()
    assert "missed about half" not in logged  # the start-up warning is about the label logprobs, not read here
    threshold = config.alerts.threshold
    for text in COMPLAINTS:
        reading = await engine.sentiment(text)
        assert reading.label == "negative" and reading.confidence >= threshold, (text, reading)
        assert set(reading.scores) == {"negative", "neutral", "positive"}  # three classes, unlike the label logprobs
        assert sum(reading.scores.values()) == pytest.approx(1.0)
    for text in CALM:
        reading = await engine.sentiment(text)
        assert not (reading.label == "negative" and reading.confidence >= threshold), (text, reading)


async def test_the_next_start_reads_with_the_cached_head_embedding_one_probe_not_the_rows(fitted, llama_server,
                                                                                           tmp_path):
    config, first, _ = fitted
    cached = head_path(config, first.model)
    with ModelProxy(llama_server.url.removesuffix("/v1")) as proxy:
        again = remote(load_config(environ={}), proxy.url, tmp_path, method="head", cache_dir=config.model.cache_dir)
        engine = load_backend(again)
        engine.prepare_roles(ROWS)
        inputs = [body["input"] for body in proxy.bodies("/embeddings")]
        assert sum(1 if isinstance(one, str) else len(one) for one in inputs) == 2  # load's check and the probe
        reading = await engine.sentiment(COMPLAINTS[0])
        engine.close()
    assert reading == await first.sentiment(COMPLAINTS[0])
    assert LinearHead.load(cached).meta == first.head.head.meta


async def test_a_head_fitted_on_other_embeddings_is_fitted_again(fitted, llama_server, tmp_path, caplog):
    config, first, _ = fitted
    moved = remote(load_config(environ={}), llama_server.url, tmp_path, method="head")
    path = head_path(moved, first.model)
    path.parent.mkdir(parents=True)
    shutil.copy(head_path(config, first.model), path)
    other = LinearHead.load(path)  # as if the server had served another model, or pooled by the mean
    other.meta["probe"] = (-np.asarray(other.meta["probe"])).tolist()
    other.save(path)
    engine = load_backend(moved)
    with caplog.at_level(logging.WARNING):
        engine.prepare_roles(ROWS[:40])
    engine.close()
    assert "fitted on other embeddings" in caplog.text
    assert LinearHead.load(path).meta["probe"] == first.head.head.meta["probe"]


async def test_a_cached_head_that_cannot_be_read_is_fitted_again(fitted, llama_server, tmp_path, caplog):
    _, first, _ = fitted
    config = remote(load_config(environ={}), llama_server.url, tmp_path, method="head")
    path = head_path(config, first.model)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"PK\x03\x04 cut short")  # a save a full disk ended
    engine = load_backend(config)
    with caplog.at_level(logging.WARNING):
        engine.prepare_roles(ROWS[:40])
    engine.close()
    assert "cannot be read" in caplog.text and LinearHead.load(path).classes == ["negative", "neutral", "positive"]


async def test_a_server_without_llamacpps_template_endpoint_keeps_the_label_logprobs(llama_server, tmp_path, caplog):
    with ModelProxy(llama_server.url.removesuffix("/v1")) as proxy:
        proxy.openai_only = True  # vLLM and Ollama have no /apply-template
        config = remote(load_config(environ={}), proxy.url, tmp_path, method="head")
        engine = load_backend(config)
        with caplog.at_level(logging.WARNING):
            engine.prepare_roles(ROWS)
        reading = await engine.sentiment(COMPLAINTS[0])
        engine.close()
    assert engine.head is None and not head_path(config, engine.model).exists()
    assert set(reading.scores) == {"negative", "positive"}  # the label logprobs' two
    assert proxy.bodies("/chat/completions")[-1]["max_tokens"] == 1
    assert "missed about half of all complaints" in caplog.text  # the 135M model's label logprobs: said at start
