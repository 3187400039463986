"""The bot on a remote model server ([model] backend = "openai"), against a real llama.cpp server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import replace
from pathlib import Path

import pytest

from bot.cli import main
from bot.config import MODEL_KEY_ENV, ConfigError, load_config
from bot.llm.backends import load_backend
from bot.llm.backends.openai import ANSWER_START, CHOICE_CONFIDENCE
from bot.service import ConversationService, Sender
from testkit.fakes.model_proxy import LocalModelServer, ModelProxy
from testkit import free_port
from testkit.llama_server import LlamaServer
from tests.conftest import REPO, remote

pytestmark = pytest.mark.real_model

KNOWLEDGE = Path(__file__).parent / "fixtures" / "knowledge.csv"
COMPLAINT = "My order arrived broken and nobody answers my emails. This is terrible!"
THANKS = "Thank you so much, the tea is wonderful and it arrived quickly!"


async def test_a_streamed_reply_grows_in_whole_words_and_ends_as_the_same_reply(remote_engine):
    plain = await remote_engine.reply([], "Hello! Do you sell green tea?")
    partials: list[str] = []
    streamed = await remote_engine.reply([], "Hello! Do you sell green tea?", on_text=partials.append)
    assert plain.strip() and streamed == plain  # greedy: streaming changes how, not what
    assert len(partials) >= 3
    assert all(later.startswith(earlier) for earlier, later in zip(partials, partials[1:]))
    assert partials[-1].startswith(plain)  # the whole text streamed; the reply ends at its last full sentence


async def test_sentiment_is_a_probability_and_a_complaint_reads_negative(remote_engine):
    complaint, thanks = await remote_engine.sentiment(COMPLAINT), await remote_engine.sentiment(THANKS)
    for reading in (complaint, thanks):
        assert sum(reading.scores.values()) == pytest.approx(1.0)
        assert 0.0 <= reading.confidence <= 1.0
    assert complaint.label == "negative" and complaint.confidence >= remote_engine.config.alerts.threshold
    assert thanks.label != "negative"


async def test_chinese_messages_are_read_from_label_probabilities_questions_calm_complaints_alerting(remote_engine):
    # Without the answer's start in the request the model began a Chinese word, whose first token llama.cpp sends
    # no logprobs for, and the constrained choice answered "negative" to most plain questions.
    threshold = remote_engine.config.alerts.threshold
    for question in ("能用微信付款吗？", "请问这款台灯有白色的吗？"):
        reading = await remote_engine.sentiment(question)
        assert reading.confidence != CHOICE_CONFIDENCE and sum(reading.scores.values()) == pytest.approx(1.0)
        assert not (reading.label == "negative" and reading.confidence >= threshold), (question, reading)
    complaint = await remote_engine.sentiment("太差了！杯子到的时候已经碎了，客服也一直不回消息。")
    assert complaint.label == "negative" and complaint.confidence >= threshold, complaint
    assert complaint.confidence != CHOICE_CONFIDENCE  # a probability, not the constrained choice's fixed one


async def test_messages_read_at_once_share_one_calibration_and_a_server_without_logprobs_falls_back_once(
        llama_server, tmp_path, caplog):
    messages = [COMPLAINT, THANKS, "Where is my parcel?", "请问这款台灯有白色的吗？"]
    with ModelProxy(llama_server.url.removesuffix("/v1")) as proxy:
        engine = load_backend(remote(load_config(environ={}), proxy.url, tmp_path))
        try:
            await asyncio.gather(*(engine.sentiment(m) for m in messages))
            # Three content-free inputs asked once, not once for each message that arrived before it was known.
            assert len(proxy.bodies("/chat/completions")) == 3 + len(messages)
        finally:
            engine.close()

        proxy.drop_logprobs = True
        engine = load_backend(remote(load_config(environ={}), proxy.url, tmp_path))
        try:
            with caplog.at_level(logging.WARNING):
                readings = await asyncio.gather(*(engine.sentiment(m) for m in messages))
        finally:
            engine.close()
    assert all(r.confidence == CHOICE_CONFIDENCE for r in readings)  # the constrained choice for every message
    assert sum("gives no logprobs" in r.getMessage() for r in caplog.records) == 1


async def test_method_generate_reads_a_constrained_choice_at_its_fixed_confidence(remote_config):
    config = replace(remote_config, sentiment=replace(remote_config.sentiment, method="generate"))
    engine = load_backend(config)
    try:
        readings = [await engine.sentiment(text) for text in (COMPLAINT, THANKS, "Where is my order?")]
    finally:
        engine.close()
    for reading in readings:  # "positive" with the whitespace llama.cpp's grammar allows is the longest answer
        assert reading.label in ("negative", "neutral", "positive")
        assert reading.confidence == CHOICE_CONFIDENCE


async def test_knowledge_answers_from_its_entries_through_the_servers_embeddings(remote_engine, db):
    assert remote_engine.retrieval_signals == {"tokens"}  # llama.cpp started with --embeddings
    config = replace(remote_engine.config, knowledge=replace(remote_engine.config.knowledge, file=KNOWLEDGE))
    service = ConversationService(db, remote_engine, config)
    await service.start()
    asked = await service.handle_text(Sender("console", "1"), "How long does delivery take?")
    assert "3 to 5 working days" in asked.reply
    chinese = await service.handle_text(Sender("console", "2"), "快递多久能到？")
    assert "3到5个工作日" in chinese.reply
    cars = await service.handle_text(Sender("console", "3"), "Do you sell used cars?")
    assert cars.alert is not None and "a person from the shop" in cars.reply


async def test_llama_cpp_tells_the_models_size_so_auto_free_chat_is_off_for_the_135m_model_and_a_warning_says_why(
        remote_config, db, caplog):
    config = replace(remote_config, chat=replace(remote_config.chat, free_chat="auto"))
    with caplog.at_level(logging.WARNING):
        engine = load_backend(config)
    try:
        assert 130_000_000 < engine.parameters < 140_000_000  # llama.cpp's GET /models meta.n_params
        service = ConversationService(db, engine, config)
        await service.start()
        asked = await service.handle_text(Sender("console", "1"), "Hello, do you sell oolong tea?")
    finally:
        engine.close()
    assert asked.reply == config.knowledge.languages["en"].follow_up_reply  # not the small model's own words
    assert any("missed about half of all complaints" in r.getMessage() for r in caplog.records)


def test_an_unreachable_server_at_start_is_a_clear_error_naming_its_url(tmp_path, capsys):
    url = f"http://127.0.0.1:{free_port()}/v1"
    text = (REPO / "config.toml").read_text(encoding="utf-8").replace(
        'source = "embedded"', f'source = "embedded"\nbackend = "openai"\nbase_url = "{url}"')
    text = text.replace('path = "data/shopbot.db"', f'path = "{tmp_path / "s.db"}"')
    (tmp_path / "config.toml").write_text(text, encoding="utf-8")
    assert main(["chat", "--config", str(tmp_path / "config.toml")]) == 1
    assert f"cannot reach the model server at {url}" in capsys.readouterr().err


async def test_a_server_that_stops_accepting_connections_is_down_not_a_model_error(tmp_path, monkeypatch):
    import socket

    from bot.llm.backends import ModelServerDown
    from bot.llm.backends import openai

    monkeypatch.setattr(openai, "CONNECT_SECONDS", 0.2)
    monkeypatch.setattr(openai, "FIRST_BACKOFF_SECONDS", 0.01)
    # A listening socket whose backlog is full: connections are neither accepted nor refused (a powered-off host,
    # a firewall dropping packets), so connecting times out; nothing was sent, so it is tried again.
    with socket.create_server(("127.0.0.1", 0), backlog=0) as hung:
        port = hung.getsockname()[1]
        waiting = [socket.socket() for _ in range(3)]
        for client in waiting:
            client.setblocking(False)
            client.connect_ex(("127.0.0.1", port))
        config = remote(load_config(environ={}), f"http://127.0.0.1:{port}/v1", tmp_path)
        engine = openai.RemoteEngine(config, "model", frozenset(), None)
        try:
            with pytest.raises(ModelServerDown, match=r"is not answering \(ConnectTimeout\)"):
                await engine.reply([], "Hello!")
        finally:
            engine.close()
            for client in waiting:
                client.close()


class StreamingServer(LocalModelServer):
    """A real HTTP server answering every streamed /chat/completions with `events` (raw server-sent-event text) and
    every other one with a constrained-choice "neutral"; `url` is its API root."""

    def __init__(self, events: str):
        from http.server import BaseHTTPRequestHandler

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                streamed = body.get("stream")
                answer = events.encode() if streamed else json.dumps(
                    {"choices": [{"message": {"content": '{"label": "neutral"}'}, "finish_reason": "stop"}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream" if streamed else "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        super().__init__(Handler)


def _delta(text: str) -> str:
    return "data: " + json.dumps({"choices": [{"delta": {"content": text}, "finish_reason": None}]}) + "\n\n"


async def test_an_error_event_in_the_stream_is_a_model_failure_not_half_a_reply(tmp_path, db):
    """llama.cpp reports a failure during a streamed answer as an `error:` line (then `data: [DONE]`), other servers
    as `event: error`: the customer gets the fallback reply and operators the note, not the words before it."""
    from bot.llm.backends import openai

    errors = {"llama.cpp": 'error: {"code": 500, "message": "slot failed", "type": "server_error"}\n\n',
              "event": 'event: error\ndata: {"message": "slot failed"}\n\n'}
    for server_kind, error in errors.items():
        with StreamingServer(_delta("Your order ") + _delta("will ship") + error + "data: [DONE]\n\n") as server:
            config = remote(load_config(environ={}), server.url, tmp_path)
            config = replace(config, sentiment=replace(config.sentiment, method="generate"))
            engine = openai.RemoteEngine(config, "model", frozenset(), None)
            try:
                service = ConversationService(db, engine, config)
                await service.start()
                shown: list[str] = []
                outcome = await service.handle_text(Sender("console", server_kind), "Where is my order?",
                                                    on_partial=shown.append)
            finally:
                engine.close()
        assert outcome.reply == config.chat.fallback_reply.for_lang("en"), server_kind
        assert outcome.model_error, server_kind  # the operators hear that the model failed


async def test_429_and_503_are_retried_and_the_reply_is_asked_for_until_answered_once(llama_server, tmp_path):
    with ModelProxy(llama_server.url.removesuffix("/v1")) as proxy:
        engine = load_backend(remote(load_config(environ={}), proxy.url, tmp_path))
        try:
            proxy.refuse = [429, 503]
            reply = await engine.reply([], "Hello!")
        finally:
            engine.close()
    assert reply.strip()
    assert len(proxy.bodies("/chat/completions")) == 3  # two refused, one answered


async def test_requests_in_flight_never_exceed_max_concurrency(llama_server, tmp_path):
    with ModelProxy(llama_server.url.removesuffix("/v1")) as proxy:
        engine = load_backend(remote(load_config(environ={}), proxy.url, tmp_path, max_concurrency=2))
        try:
            replies = await asyncio.gather(*(engine.reply([], f"Question number {i}: do you ship abroad?")
                                             for i in range(6)))
        finally:
            engine.close()
    assert all(r.strip() for r in replies)
    assert proxy.most_in_flight == 2


# Request fields each server documents for POST /v1/chat/completions (and /v1/embeddings). Unknown fields are refused
# by OpenAI, so shopbot sends only fields all of them take.
# vLLM: docs.vllm.ai "OpenAI-Compatible Server" (chat: the OpenAI fields plus extra sampling parameters).
# Ollama: docs.ollama.com/api/openai-compatibility (logprobs/top_logprobs since v0.12.11, ollama#12899).
OLLAMA_CHAT = {"model", "messages", "frequency_penalty", "presence_penalty", "response_format", "seed", "stop",
               "stream", "stream_options", "temperature", "top_p", "max_tokens", "tools", "logprobs", "top_logprobs"}
OPENAI_CHAT = OLLAMA_CHAT | {"n", "logit_bias", "user", "tool_choice"}  # vLLM takes all of these too
EMBEDDINGS = {"model", "input", "encoding_format", "dimensions", "user"}


async def test_request_bodies_use_only_fields_openai_vllm_and_ollama_all_document(llama_server, tmp_path, db):
    with ModelProxy(llama_server.url.removesuffix("/v1")) as proxy:
        config = remote(load_config(environ={}), proxy.url, tmp_path)
        config = replace(config, knowledge=replace(config.knowledge, file=KNOWLEDGE))
        engine = load_backend(config)
        try:
            service = ConversationService(db, engine, config)
            await service.start()
            await service.handle_text(Sender("console", "1"), "How long does delivery take?")
            await engine.reply([("customer", "Hello"), ("bot", "Hi!")], "Do you ship abroad?", on_text=lambda _: None)
            await engine.reply([], "Do you ship abroad?", facts=["We ship to the EU."])
            chooser = load_backend(replace(config, sentiment=replace(config.sentiment, method="generate")))
            await chooser.sentiment(COMPLAINT)
            chooser.close()
        finally:
            engine.close()
    chats = proxy.bodies("/chat/completions")
    assert {body.get("stream") for body in chats} >= {True, False}
    assert any("top_logprobs" in body for body in chats) and any("response_format" in body for body in chats)
    # the answer's start travels as an ordinary assistant message, which every server takes
    assert all(body["messages"][-1] == {"role": "assistant", "content": ANSWER_START}
               for body in chats if "top_logprobs" in body)
    for body in chats:
        assert set(body) <= OLLAMA_CHAT & OPENAI_CHAT, set(body) - OLLAMA_CHAT
        assert body["model"] and all(set(m) == {"role", "content"} for m in body["messages"])
    embeddings = proxy.bodies("/embeddings")
    assert embeddings and all(set(body) <= EMBEDDINGS for body in embeddings)


async def test_the_api_key_comes_from_the_environment_is_sent_and_never_logged(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    key = "sk-shopbot-test-key-0123456789"
    with LlamaServer(api_key=key) as server:
        config = remote(load_config(environ={MODEL_KEY_ENV: key}), server.url, tmp_path)
        engine = load_backend(config)
        try:
            assert (await engine.reply([], "Hello!")).strip()
        finally:
            engine.close()
        with pytest.raises(ConfigError) as refused:
            load_backend(remote(load_config(environ={MODEL_KEY_ENV: "wrong"}), server.url, tmp_path))
    assert refused.value.key == MODEL_KEY_ENV
    assert key not in caplog.text and key not in repr(config)


async def test_ordinary_shop_questions_are_not_read_as_complaints(remote_engine):
    """What operators see must not change with the backend: a plain question does not alert."""
    threshold = remote_engine.config.alerts.threshold
    for question in ("Do you ship to Canada?", "What sizes does the linen shirt come in?", "Can I pay by card?"):
        reading = await remote_engine.sentiment(question)
        assert not (reading.label == "negative" and reading.confidence >= threshold), (question, reading)


def test_analyze_reads_through_the_server_keeps_what_it_read_when_the_server_dies_and_continues(tmp_path, capsys):
    import csv
    import threading
    import time

    def write(name: str, texts: list[str]) -> Path:
        with open(tmp_path / name, "w", encoding="utf-8", newline="") as f:
            csv.writer(f).writerows([["text"], *([t] for t in texts)])
        return tmp_path / name

    def rows(out: Path) -> list[dict]:
        with open(out / "rows.csv", encoding="utf-8-sig", newline="") as f:
            return list(csv.DictReader(f))

    def kill_after(answers: int) -> None:
        """SIGKILL the server once `answers` more sentiment requests have reached it."""
        asked = len(proxy.bodies("/chat/completions")) + answers
        while len(proxy.bodies("/chat/completions")) < asked:
            time.sleep(0.02)
        server.kill()

    port = free_port()
    server = LlamaServer(port=port, parallel=2, embeddings=False).start()
    try:
        with ModelProxy(server.url.removesuffix("/v1")) as proxy:
            text = (REPO / "config.toml").read_text(encoding="utf-8").replace(
                'source = "embedded"', f'source = "embedded"\nbackend = "openai"\nbase_url = "{proxy.url}"\n'
                                       "max_concurrency = 2")
            # A loaded CI machine: a slow answer is not the failure tested.
            text = text.replace("timeout_seconds = 60.0", "timeout_seconds = 240.0")
            # Comments read whole up to 3,000 characters: one of 3,000 is more than the server's 2,048-token context.
            text = text.replace("max_message_tokens = 256", "max_message_tokens = 1500")
            text = text.replace("history_tokens = 1024", "history_tokens = 1500")
            (tmp_path / "config.toml").write_text(text, encoding="utf-8")
            config = str(tmp_path / "config.toml")
            small = write("small.csv", [COMPLAINT, THANKS, "很好吃" * 1000, "Where is my parcel?", "送餐太慢了，菜都凉了"])
            assert main(["analyze", str(small), "--out", str(tmp_path / "small"), "--config", config]) == 0
            assert "4 rows read now, 0 from an earlier run, 1 skipped" in capsys.readouterr().err
            assert {r["text"]: r["sentiment"] for r in rows(tmp_path / "small")}[COMPLAINT] == "negative"
            with open(tmp_path / "small" / "skipped.csv", encoding="utf-8-sig", newline="") as f:
                [refused] = list(csv.DictReader(f))
            assert refused["ref"] == "4" and f"the model server at {proxy.url} refused" in refused["reason"]
            assert f"Labels were read by the model server at {proxy.url}" in \
                (tmp_path / "small" / "report.md").read_text(encoding="utf-8")

            # 60 comments in calls of 8 (4 x max_concurrency): the server dies after about 20 of them were asked.
            big = write("big.csv", [f"comment number {i}: the parcel was late" for i in range(60)])
            out = tmp_path / "big"
            capsys.readouterr()
            threading.Thread(target=kill_after, args=(20,), daemon=True).start()
            assert main(["analyze", str(big), "--out", str(out), "--config", config]) == 1
            err = capsys.readouterr().err
            assert f"the model server at {proxy.url}" in err and "Run the same command again to continue" in err
            kept = rows(out)
            assert 0 < len(kept) < 60 and all(r["sentiment"] in ("negative", "neutral", "positive") for r in kept)

            server = LlamaServer(port=port, parallel=2, embeddings=False).start()  # back on the same address
            assert main(["analyze", str(big), "--out", str(out), "--config", config]) == 0
            assert f"{60 - len(kept)} rows read now, {len(kept)} from an earlier run" in capsys.readouterr().err
            assert sorted(int(r["ref"]) for r in rows(out)) == list(range(2, 62))  # every line once
    finally:
        server.kill()
