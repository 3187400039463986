"""Heads for a model that has none: fitted on first load from the rows shipped in heads/train/, cached."""

from __future__ import annotations

import logging
from pathlib import Path

from bot.evaluation import Progress, Row
from bot.llm.head import INTENT_L2, INTENT_TRAINING_DIR, LinearHead, calibrated_path, find_head, training_rows
from bot.llm.intents import INTENTS
from bot.llm.loading import model_slug

log = logging.getLogger(__name__)

def ensure_heads(engine) -> list[Path]:
    """Before serving: the heads this model lacks, fitted and cached (the paths fitted; none if it had both)."""
    return [path for path in (ensure_head(engine), ensure_intent_head(engine)) if path is not None]


def ensure_head(engine, rows: list[Row] | None = None) -> Path | None:
    """With sentiment.method = "head" and no head for this model: fit one, save it beside the converted model
    (where `shopbot calibrate` saves), and read with it from now on. The path fitted, or None if one existed.

    Runs before the engine serves (it holds the model for ~50-150 ms a row: about 2-6 minutes, shown on stderr)."""
    config = engine.config
    slug = model_slug(config.model)
    if config.sentiment.method != "head" or find_head(config.sentiment.head_path, config.model.cache_dir, slug):
        return None
    reader = engine.sentiment_reader
    head, path = fit_and_save(engine, "sentiment", training_rows() if rows is None else rows,
                              "shipped training rows (heads/train)")
    reader.use_head(head, str(path))
    reader.method = "head"
    return path


def ensure_intent_head(engine, rows: list[Row] | None = None) -> Path | None:
    """Sentiment read by a head, and no intent head for this model or one on another pass (a new sentiment
    instruction): fit one on the shipped intent rows under the sentiment head's prompt and layers, so one forward
    pass reads both. The path fitted, or None if the head in use fits.

    With sentiment read another way there is no pass to share: intents come from a head that exists, else keywords."""
    reader = engine.sentiment_reader
    current = reader.intent_head
    if reader.method != "head" or (current is not None and reader.shares_pass(current)):
        return None
    head, path = fit_and_save(engine, "intent", training_rows(INTENT_TRAINING_DIR, INTENTS) if rows is None else rows,
                              "shipped intent rows (heads/train/intent)")
    reader.use_intent_head(head, str(path))
    return path


def fit_and_save(engine, task: str, rows: list[Row], data: str) -> tuple[LinearHead, Path]:
    """A `task` head fitted on `rows` (an intent head on the sentiment head's pass), saved where `shopbot calibrate`
    saves."""
    config, reader = engine.config, engine.sentiment_reader
    slug = model_slug(config.model)
    log.warning("no %s head for %s: fitting one on %d rows, once (cached for later starts)", task, slug, len(rows))
    like = reader.head if task == "intent" and reader.method == "head" else None
    limit = config.chat.max_message_tokens
    features = reader.head_features([engine.truncate(row.text, limit) for row in rows],
                                    Progress(len(rows), f"{task} head"), like=like)
    head = reader.fit_head(features, [row.label for row in rows], INTENT_L2 if task == "intent" else None, data, like)
    path = calibrated_path(config.model.cache_dir, slug, task)
    head.save(path)
    log.warning("saved the %s head to %s", task, path)
    return head, path
