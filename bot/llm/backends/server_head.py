"""A sentiment head on a model server's embeddings: the server's last-token state of the whole sentiment prompt, read
by the same logistic head the bot fits in-process. Fitted once per served model on the shipped rows, cached, and
fitted again when the server's embeddings change (another model, another pooling, another instruction)."""

from __future__ import annotations

import logging
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import httpx
import numpy as np

from bot.config import Config
from bot.evaluation import Progress, Row
from bot.llm.head import LinearHead, calibrated_path, fit_head, training_rows
from bot.llm.prompts import SENTINEL, sentiment_messages

log = logging.getLogger(__name__)

BATCH = 8  # prompts per /embeddings request while fitting: 32 took over a minute on a busy 2-core server
# Embedded at every start and kept in the head: the same text must embed the same way, else the server now runs
# another model or pooling, and a head fitted on the old vectors would read noise.
PROBE = "Hello! Is the shop open on Sunday?"
SAME_EMBEDDINGS = 0.99  # cosine of the probe's vectors then and now (llama.cpp's differ by ~1e-6 between runs)
# Weight penalty of the fit: a server's one last-layer vector takes less than the in-process head's many middle-layer
# features (L2). Best of 0.001-0.3 by 5-fold cross-validation on the shipped rows for the 135M model, within 0.002 of
# the best (0.01) for the 0.5B; at 0.03 both alerted on fewer complaints (README, "Measured: what operators see ...").
SERVER_L2 = 0.003


@dataclass(frozen=True)
class ServerHead:
    """A head over the server's embeddings of `prompt` (the sentiment instruction through the server's chat template,
    SENTINEL where the message goes)."""

    head: LinearHead
    prompt: str

    def text(self, message: str) -> str:
        return self.prompt.replace(SENTINEL, message)


def templated_prompt(client: httpx.Client, root: str, instruction: str) -> str | None:
    """The sentiment prompt as the server's chat template writes it, generation prompt included (llama.cpp's POST
    /apply-template); None where the server has no such endpoint (vLLM, Ollama)."""
    try:
        response = client.post(f"{root}/apply-template", json={"messages": sentiment_messages(instruction, SENTINEL)})
        prompt = response.json()["prompt"] if response.status_code == 200 else ""
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return None
    return prompt if isinstance(prompt, str) and prompt.count(SENTINEL) == 1 else None


def embed(client: httpx.Client, url: str, model: str, texts: Sequence[str], progress: Progress | None = None
          ) -> np.ndarray:
    """(N, dim) the server's embeddings of the texts, in order."""
    vectors: list[list[float]] = []
    for start in range(0, len(texts), BATCH):
        response = client.post(f"{url}/embeddings", json={"model": model, "input": list(texts[start:start + BATCH])})
        response.raise_for_status()
        vectors += [entry["embedding"] for entry in sorted(response.json()["data"], key=lambda entry: entry["index"])]
        if progress:
            progress.update(len(vectors))
    return np.asarray(vectors, dtype=np.float32)


def head_path(config: Config, model: str) -> Path:
    """Where the head for the served `model` is cached: beside the local heads, named for the server's model (llama.cpp
    names it by its file's path)."""
    return calibrated_path(config.model.cache_dir, "server-" + re.sub(r"[^A-Za-z0-9._-]+", "_", Path(model).name))


def ensure_server_head(client: httpx.Client, url: str, model: str, config: Config, rows: Sequence[Row] | None,
                       as_sent: Callable[[str], str]) -> ServerHead | None:
    """The head for this server's model: the cached one if the server still embeds as it did, else one fitted now on
    `rows` (None: the shipped training rows, read only then), each text `as_sent` (progress on stderr), and cached.
    None where the server cannot template the prompt."""
    prompt = templated_prompt(client, url.removesuffix("/v1"), config.sentiment.instruction)
    if prompt is None:
        return None
    probe = embed(client, url, model, [prompt.replace(SENTINEL, PROBE)])[0]
    path = head_path(config, model)
    if path.is_file():
        try:
            cached = LinearHead.load(path)
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:  # cut short by a full disk, or not a head
            log.warning("the sentiment head in %s cannot be read (%s): fitting it again", path, exc)
        else:
            if _still_fits(cached, prompt, probe):
                return ServerHead(cached, prompt)
            log.warning("the sentiment head in %s was fitted on other embeddings (another model, pooling or "
                        "instruction): fitting it again", path)
    rows = training_rows() if rows is None else rows
    log.warning("no sentiment head for %s on this server: fitting one on the server's embeddings of %d rows, once "
                "(cached in %s)", model, len(rows), path)
    features = embed(client, url, model, [prompt.replace(SENTINEL, as_sent(row.text)) for row in rows],
                     Progress(len(rows), "sentiment head"))
    meta = {"model": model, "data": "shipped training rows (heads/train), through the server", "prompt": prompt,
            "probe": probe.tolist()}
    head = fit_head(features, [row.label for row in rows], config.sentiment.instruction, (), meta, SERVER_L2)
    head.save(path)
    log.warning("saved the sentiment head to %s", path)
    return ServerHead(head, prompt)


def _still_fits(head: LinearHead, prompt: str, probe: np.ndarray) -> bool:
    """Whether `head` was fitted on this prompt and on embeddings like the server's now."""
    then = np.asarray(head.meta.get("probe", []), dtype=np.float32)
    if head.meta.get("prompt") != prompt or then.shape != probe.shape:
        return False
    return float(then @ probe / (np.linalg.norm(then) * np.linalg.norm(probe) + 1e-9)) >= SAME_EMBEDDINGS
