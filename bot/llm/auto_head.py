"""A sentiment head for a model that has none: fitted on first load from the rows shipped in heads/train/, cached."""

from __future__ import annotations

import logging
from pathlib import Path

from bot.evaluation import Progress, Row, read_rows
from bot.llm.head import SHIPPED_DIR, calibrated_path, find_head
from bot.llm.loading import model_slug

log = logging.getLogger(__name__)

TRAINING_DIR = SHIPPED_DIR / "train"  # licences: heads/train/SOURCE.md


def training_rows(folder: Path = TRAINING_DIR) -> list[Row]:
    """Every labelled row the package ships for fitting heads, files in name order."""
    return [row for path in sorted(folder.glob("*.csv")) for row in read_rows(path)]


def ensure_head(engine, rows: list[Row] | None = None) -> Path | None:
    """With sentiment.method = "head" and no head for this model: fit one, save it beside the converted model
    (where `shopbot calibrate` saves), and read with it from now on. The path fitted, or None if one existed.

    Runs before the engine serves (it holds the model for ~50-150 ms a row: about 2-6 minutes, shown on stderr)."""
    config = engine.config
    slug = model_slug(config.model)
    if config.sentiment.method != "head" or find_head(config.sentiment.head_path, config.model.cache_dir, slug):
        return None
    rows = training_rows() if rows is None else rows
    log.warning("no sentiment head for %s: fitting one on %d shipped rows, once (cached for later starts)",
                slug, len(rows))
    reader = engine.sentiment_reader
    limit = config.chat.max_message_tokens
    features = reader.head_features([engine.truncate(row.text, limit) for row in rows],
                                    Progress(len(rows), "sentiment head"))
    head = reader.fit_head(features, [row.label for row in rows], data="shipped training rows (heads/train)")
    path = calibrated_path(config.model.cache_dir, slug)
    head.save(path)
    reader.use_head(head, str(path))
    reader.method = "head"
    log.warning("saved the sentiment head to %s", path)
    return path
