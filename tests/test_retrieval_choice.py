"""Retrieval's layer and weights are measured for the model in use, cached beside it, and a configured value wins:
run on the embedded SmolLM2-135M-Instruct (the measurement takes about 80 s)."""

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from bot.config import ConfigError, SignalWeights
from bot.knowledge import Knowledge
from bot.retrieval_choice import choose

pytestmark = pytest.mark.real_model

FIXTURE = Path(__file__).parent / "fixtures" / "knowledge.csv"


@pytest.fixture
def engine(real_engine, tmp_path, monkeypatch):
    """The real engine with its model cache in tmp_path (no choice cached yet); its token layer restored after."""
    monkeypatch.setattr(real_engine, "config", replace(real_engine.config, model=replace(
        real_engine.config.model, cache_dir=tmp_path)))
    monkeypatch.setattr(real_engine.knowledge_reader, "layer", real_engine.knowledge_reader.layer)
    return real_engine


def settings(engine, token_layer="auto", weights="auto"):
    knowledge = engine.config.knowledge
    languages = {lang: replace(s, weights=weights) for lang, s in knowledge.languages.items()}
    return replace(knowledge, token_layer=token_layer, languages=languages)


async def test_the_first_knowledge_measures_the_models_layer_and_weights_and_later_starts_reuse_them(engine, db):
    knowledge = Knowledge(db, engine, settings(engine))
    await knowledge.import_file(FIXTURE)
    cache = engine.config.model.cache_dir / "retrieval" / f"{engine.name}.json"
    (choice,) = json.loads(cache.read_text(encoding="utf-8")).values()
    assert choice["layer"] in engine.token_layers and choice["tried"] == list(engine.token_layers)
    assert engine.token_layer == choice["layer"]
    assert set(choice["weights"]) == {"en", "zh"} and "sure & right" in choice["tally"]["zh"]
    stored = await db.knowledge()
    assert {row["embedded_with"] for row in stored} == {f"{engine.name} layer {choice['layer']}"}

    # A later start reads the cached choice, not a new measurement: edit it, and the edit is what is used.
    other = next(layer for layer in engine.token_layers if layer != choice["layer"])
    key = next(iter(json.loads(cache.read_text(encoding="utf-8"))))
    edited = {**choice, "layer": other, "weights": {**choice["weights"], "en": {
        "lexical": 1.0, "tokens": 0.5, "likelihood": 2.0, "intents": 2.0}}}
    cache.write_text(json.dumps({key: edited}), encoding="utf-8")
    picked = await choose(engine, settings(engine))
    assert (picked.layer, engine.token_layer) == (other, other)
    assert picked.weights["en"] == SignalWeights(lexical=1.0, tokens=0.5, likelihood=2.0, intents=2.0)
    restarted = Knowledge(db, engine, settings(engine))
    await restarted.load()  # the entries are embedded again at the other layer
    assert {row["embedded_with"] for row in await db.knowledge()} == {f"{engine.name} layer {other}"}


async def test_by_default_nothing_is_measured_the_layer_is_a_fifth_of_the_depth_and_the_weights_are_configured(
        engine, db):
    knowledge = Knowledge(db, engine, engine.config.knowledge)  # the shipped config.toml: token_layer "fifth"
    await knowledge.import_file(FIXTURE)
    assert engine.token_layer == round(engine.decoder.shape.layers / 5)
    assert not (engine.config.model.cache_dir / "retrieval").exists()  # no first-start measurement
    assert (await knowledge.find("Can I come by on a Monday?")).entry.entry_id == "hours"


async def test_a_configured_layer_and_weights_override_the_measurement(engine):
    weights = SignalWeights(lexical=1.0, tokens=2.0, likelihood=0.0, intents=2.0)
    picked = await choose(engine, settings(engine, token_layer=3, weights=weights))
    assert (picked.layer, engine.token_layer, picked.weights) == (3, 3, {})  # the configured weights apply as given
    assert not (engine.config.model.cache_dir / "retrieval").exists()  # nothing measured
    with pytest.raises(ConfigError, match=f"knowledge.token_layer: must be between 1 and {engine.decoder.shape.layers}"):
        await choose(engine, settings(engine, token_layer=99, weights=weights))


async def test_the_measurements_batched_likelihood_matches_the_one_retrieval_uses(engine):
    """The measurement reads every question against every entry in batches; it must score as find's call does."""
    from bot.retrieval_choice import _calibration_set

    entries, questions = _calibration_set()
    pairs = [(e.question, e.answer) for e in entries if e.lang == "en"]
    texts = [text for lang, text, _ in questions if lang == "en"][:3]
    table = await engine.likelihood_table(pairs, texts)
    for text, row in zip(texts, table):
        one = await engine.knowledge_likelihood(pairs, text)
        assert np.corrcoef(row, one)[0, 1] > 0.95 and abs(row - one).max() < 0.3
