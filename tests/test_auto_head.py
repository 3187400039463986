"""A model without sentiment and intent heads gets them on first load, fitted on the shipped rows and cached for the
next."""

from __future__ import annotations

from dataclasses import replace

from bot.config import load_config
from bot.llm.engine import Engine
from bot.llm.head import INTENT_TRAINING_DIR, LinearHead, calibrated_path, training_rows
from bot.llm.intents import INTENTS
from bot.llm.loading import model_slug
from bot.service import ConversationService
from storage.db import Database
from tests.conftest import with_model


def test_the_shipped_training_rows_cover_three_classes_in_both_languages():
    rows = training_rows()
    assert {r.label for r in rows} == {"negative", "neutral", "positive"}
    chinese = [r for r in rows if any("\u4e00" <= ch <= "\u9fff" for ch in r.text)]
    assert {r.label for r in chinese} == {"negative", "neutral", "positive"} and len(rows) - len(chinese) > 1000


def test_the_shipped_intent_rows_cover_every_intent_in_both_languages():
    rows = training_rows(INTENT_TRAINING_DIR, INTENTS)
    chinese = [r for r in rows if any("\u4e00" <= ch <= "\u9fff" for ch in r.text)]
    assert {r.label for r in chinese} == {r.label for r in rows} == set(INTENTS)
    assert min(sum(r.label == label for r in chinese) for label in INTENTS) >= 40


async def test_a_model_without_a_head_gets_one_fitted_at_start_and_cached(tiny_model_dir, tmp_path, capsys):
    config = with_model(load_config(environ={}), str(tiny_model_dir), tmp_path)
    config = replace(config, sentiment=replace(config.sentiment, method="head"),
                     model=replace(config.model, cache_dir=tmp_path / "models"))
    cached = calibrated_path(config.model.cache_dir, model_slug(config.model))
    cached_intents = calibrated_path(config.model.cache_dir, model_slug(config.model), "intent")
    engine = Engine.load(config)
    db = await Database.open(config.storage.path)
    try:
        assert engine.sentiment_reader.method == "logits"  # nothing to read with yet
        await ConversationService(db, engine, config).start()
        err = capsys.readouterr().err
        assert "sentiment head: " in err and "intent head: " in err  # progress shown while they fit
        assert cached.is_file() and engine.sentiment_reader.method == "head"
        head = LinearHead.load(cached)
        assert head.classes == ["negative", "neutral", "positive"] and head.meta["n"] == len(training_rows())
        intents = LinearHead.load(cached_intents)  # on the sentiment head's pass: one forward pass reads both
        assert intents.classes == sorted(INTENTS) and engine.sentiment_reader.shares_pass(intents)
        assert (intents.instruction, intents.layers) == (head.instruction, head.layers)
        reading = await engine.read_message("Can I pay by bank transfer?")
        assert reading.intent.label in INTENTS
        sentiment = await engine.sentiment("The parcel never came and nobody answers me.")
        assert set(sentiment.scores) == {"negative", "neutral", "positive"}
    finally:
        await db.close()
        engine.close()

    again = Engine.load(config)  # the next start reads the cached head: no second fit
    db = await Database.open(config.storage.path)
    try:
        assert again.sentiment_reader.method == "head"
        await ConversationService(db, again, config).start()
        assert "head: " not in capsys.readouterr().err
        assert again.sentiment_reader.intent_head is not None
    finally:
        await db.close()
        again.close()
