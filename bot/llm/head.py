"""Learned heads (sentiment, intent): logistic regression on the model's own hidden states (or a model server's
embeddings of them), fitted, saved, loaded."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bot.evaluation import Row, read_rows

SHIPPED_DIR = Path(__file__).resolve().parent / "heads"
TRAINING_DIR = SHIPPED_DIR / "train"  # sentiment rows; licences: heads/train/SOURCE.md
INTENT_TRAINING_DIR = TRAINING_DIR / "intent"  # intent rows, written for shopbot
POOLS = ("last", "mean")  # per layer: the prompt's last token, the mean over the message and turn-end tokens
L2 = 0.03  # weight penalty on standardised features: best of 0.01-0.3 on unseen customer messages, both models
INTENT_L2 = 0.03  # the intent head's: best of 0.03-1 on a held-out fifth of its training rows (README, "Intents")
# A head file per task and model: "<slug>.npz" is the sentiment head (the name it always had), "<slug>.intent.npz"
# the intent head. Both read the same prompt pass, so one forward pass gives both readings.
FILE_SUFFIX = {"sentiment": "", "intent": ".intent"}


@dataclass
class LinearHead:
    """Reads `classes` from features made by the prompt `instruction` at hidden-state `layers` (1 = first block's
    output): a sentiment head or an intent head."""

    classes: list[str]
    instruction: str
    layers: tuple[int, ...]
    mean: np.ndarray  # (D,) feature standardisation, D = len(layers) * len(POOLS) * hidden
    std: np.ndarray  # (D,)
    weight: np.ndarray  # (C, D)
    bias: np.ndarray  # (C,)
    meta: dict = field(default_factory=dict)  # model it was fitted for, data, sizes

    @property
    def dim(self) -> int:
        return self.mean.shape[0]

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """(N, D) features -> (N, C) class probabilities."""
        z = (features - self.mean) / self.std @ self.weight.T + self.bias
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def scores(self, features: np.ndarray) -> list[dict[str, float]]:
        """(N, D) features -> N {class: probability}."""
        return [dict(zip(self.classes, row)) for row in self.probabilities(features).tolist()]

    def predict(self, features: np.ndarray) -> list[str]:
        """(N, D) features -> N labels."""
        return [self.classes[i] for i in self.probabilities(features).argmax(axis=1)]

    def save(self, path: str | Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as f:
            np.savez(f, classes=np.array(self.classes), instruction=np.array(self.instruction),
                     layers=np.array(self.layers), mean=self.mean, std=self.std,
                     weight=self.weight, bias=self.bias, meta=np.array(json.dumps(self.meta)))

    @classmethod
    def load(cls, path: str | Path) -> "LinearHead":
        with np.load(path, allow_pickle=False) as data:
            return cls(
                classes=[str(c) for c in data["classes"]],
                instruction=str(data["instruction"]),
                layers=tuple(int(layer) for layer in data["layers"]),
                mean=data["mean"].astype(np.float32),
                std=data["std"].astype(np.float32),
                weight=data["weight"].astype(np.float32),
                bias=data["bias"].astype(np.float32),
                meta=json.loads(str(data["meta"])),
            )


def fit_head(features: np.ndarray, labels: list[str], instruction: str, layers: tuple[int, ...], meta: dict,
             l2: float = L2) -> LinearHead:
    """Multinomial logistic regression (L-BFGS, L2-regularised weights) on standardised features. scipy, not torch:
    a bot on a model server fits its head with no torch installed."""
    import scipy.optimize  # ~40 MB of RSS: imported only by a process that fits

    labels = [str(label) for label in labels]
    classes = sorted(set(labels))
    if len(classes) < 2:
        raise ValueError("need at least two different labels to fit a head")
    mean = features.mean(axis=0)
    std = features.std(axis=0) + 1e-6
    x = ((features - mean) / std).astype(np.float64)  # (N, D)
    target = np.eye(len(classes))[[classes.index(label) for label in labels]]  # (N, C) one-hot
    n, (rows, dim) = len(labels), (len(classes), x.shape[1])

    def loss_and_gradient(flat: np.ndarray) -> tuple[float, np.ndarray]:
        weight, bias = flat[:rows * dim].reshape(rows, dim), flat[rows * dim:]
        z = x @ weight.T + bias  # (N, C)
        z -= z.max(axis=1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        loss = -(target * log_p).sum() / n + l2 * np.square(weight).sum()
        error = (np.exp(log_p) - target) / n  # (N, C) d loss / d z
        return loss, np.concatenate([(error.T @ x + 2 * l2 * weight).ravel(), error.sum(axis=0)])

    found = scipy.optimize.minimize(loss_and_gradient, np.zeros(rows * dim + rows), jac=True, method="L-BFGS-B",
                                    options={"maxiter": 500})
    return LinearHead(
        classes=classes,
        instruction=instruction,
        layers=layers,
        mean=mean.astype(np.float32),
        std=std.astype(np.float32),
        weight=found.x[:rows * dim].reshape(rows, dim).astype(np.float32),
        bias=found.x[rows * dim:].astype(np.float32),
        meta={**meta, "n": len(labels), "l2": l2},
    )


def training_rows(folder: Path = TRAINING_DIR, known: tuple[str, ...] | None = None) -> list[Row]:
    """Every labelled row the package ships in `folder` for fitting heads, files in name order."""
    return [row for path in sorted(folder.glob("*.csv")) for row in read_rows(path, known=known)]


def calibrated_path(cache_dir: Path, slug: str, task: str = "sentiment") -> Path:
    """Where `shopbot calibrate` saves the `task` head for this model: next to the model cache."""
    return cache_dir / "heads" / f"{slug}{FILE_SUFFIX[task]}.npz"


def find_head(head_path: str, cache_dir: Path, slug: str, task: str = "sentiment") -> Path | None:
    """The `task` head to use: the configured file, else one calibrated here, else the one shipped for this model."""
    if head_path:
        return Path(head_path)
    for candidate in (calibrated_path(cache_dir, slug, task), SHIPPED_DIR / f"{slug}{FILE_SUFFIX[task]}.npz"):
        if candidate.is_file():
            return candidate
    return None
