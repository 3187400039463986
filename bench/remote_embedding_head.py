"""Would a sentiment head on a llama.cpp server's /v1/embeddings vectors give operators the local head's alerts?

    .venv/bin/python bench/remote_embedding_head.py [raw|instruction ...]   # ~13 min per variant on 2 cores, alone

For each variant of the embedded text (the message alone, or wrapped in [sentiment] instruction) it embeds the
shipped training rows (bot/llm/heads/train: what the local head is fitted on) through the server (xllamacpp, the
embedded GGUF, mean pooling), fits the same logistic head (bot/llm/head.py), then reads the three-class dev sets
(bench/devsets, never fitted on) and the sample shop's questions. An alert is negative at >= [alerts] threshold.
An experiment (issue #15): the backend does not read sentiment this way (README, "what operators see").
"""

from __future__ import annotations

import csv
import sys
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.remote_alerts import DEVSETS  # noqa: E402
from bench.shop_alerts import COMPLAINTS, QUESTIONS  # noqa: E402
from bot.config import load_config  # noqa: E402
from bot.evaluation import LABELS, metrics, read_rows  # noqa: E402
from bot.llm.head import training_rows  # noqa: E402
from bot.llm.head import fit_head  # noqa: E402
from bot.llm.sentiment_scores import decide  # noqa: E402
from testkit.llama_server import LlamaServer  # noqa: E402

BATCH = 32
VARIANTS = {"raw": "{message}", "instruction": "{instruction}\n\nMessage: {message}\nAnswer:"}


def embed(client: httpx.Client, url: str, texts: list[str]) -> np.ndarray:
    """(N, dim) the server's embeddings of the texts, in order."""
    vectors = []
    for start in range(0, len(texts), BATCH):
        answer = client.post(f"{url}/embeddings", json={"model": "x", "input": texts[start:start + BATCH]})
        answer.raise_for_status()
        vectors += [entry["embedding"] for entry in sorted(answer.json()["data"], key=lambda entry: entry["index"])]
    return np.asarray(vectors, dtype=np.float32)


def main() -> int:
    config = load_config(None)
    threshold, train = config.alerts.threshold, training_rows()
    with QUESTIONS.open(encoding="utf-8-sig", newline="") as f:
        shop = list(csv.DictReader(f))
    with LlamaServer(parallel=4, threads=2, embeddings=True) as server, httpx.Client(timeout=600) as client:
        for name in sys.argv[1:] or list(VARIANTS):
            prompt = VARIANTS[name].replace("{instruction}", config.sentiment.instruction)

            def read(texts: list[str]):
                probs = head.probabilities(embed(client, server.url, [prompt.replace("{message}", t) for t in texts]))
                return [decide(dict(zip(head.classes, p.tolist())), config.sentiment.neutral_below) for p in probs]

            started = time.perf_counter()
            features = embed(client, server.url, [prompt.replace("{message}", row.text) for row in train])
            seconds = time.perf_counter() - started
            head = fit_head(features, [row.label for row in train], prompt, (), {})
            cells = []
            for lang in ("en", "zh"):
                rows = read_rows(DEVSETS / f"customer_messages_{lang}.csv")
                readings = read([row.text for row in rows])
                alerting = {label: sum(row.label == label and r.label == "negative" and r.confidence >= threshold
                                       for row, r in zip(rows, readings)) for label in LABELS}
                f1 = metrics([row.label for row in rows], [r.label for r in readings])["macro_f1"]
                cells.append(", ".join(f"{label} {n}/30" for label, n in alerting.items()) + f", F1 {f1:.2f}")
            questions, complaints = {"en": 0, "zh": 0}, 0
            for row, reading in zip(shop, read([row["question"] for row in shop])):
                alerts = reading.label == "negative" and reading.confidence >= threshold
                if any(word in row["question"] for word in COMPLAINTS):
                    complaints += alerts
                else:
                    questions[row["lang"]] += alerts
            shop_cell = f"{questions['en']} of 16 / {questions['zh']} of 16, {complaints} of 2"
            cells.append(f"embedding {len(train)} rows: {seconds:.0f} s")
            print(f"| {name} | {shop_cell} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
