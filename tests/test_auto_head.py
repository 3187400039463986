"""A model without a sentiment head gets one on first load, fitted on the shipped rows and cached for the next."""

from __future__ import annotations

from dataclasses import replace

from bot.config import load_config
from bot.llm.auto_head import training_rows
from bot.llm.engine import Engine
from bot.llm.head import LinearHead, calibrated_path
from bot.llm.loading import model_slug
from bot.service import ConversationService
from storage.db import Database
from tests.conftest import with_model


def test_the_shipped_training_rows_cover_three_classes_in_both_languages():
    rows = training_rows()
    assert {r.label for r in rows} == {"negative", "neutral", "positive"}
    chinese = [r for r in rows if any("\u4e00" <= ch <= "\u9fff" for ch in r.text)]
    assert {r.label for r in chinese} == {"negative", "neutral", "positive"} and len(rows) - len(chinese) > 1000


async def test_a_model_without_a_head_gets_one_fitted_at_start_and_cached(tiny_model_dir, tmp_path, capsys):
    config = with_model(load_config(environ={}), str(tiny_model_dir), tmp_path)
    config = replace(config, sentiment=replace(config.sentiment, method="head"),
                     model=replace(config.model, cache_dir=tmp_path / "models"))
    cached = calibrated_path(config.model.cache_dir, model_slug(config.model))
    engine = Engine.load(config)
    db = await Database.open(config.storage.path)
    try:
        assert engine.sentiment_reader.method == "logits"  # nothing to read with yet
        await ConversationService(db, engine, config).start()
        assert "sentiment head: " in capsys.readouterr().err  # progress shown while it fits
        assert cached.is_file() and engine.sentiment_reader.method == "head"
        head = LinearHead.load(cached)
        assert head.classes == ["negative", "neutral", "positive"] and head.meta["n"] == len(training_rows())
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
        assert "sentiment head: " not in capsys.readouterr().err
    finally:
        await db.close()
        again.close()
