"""A sentiment reading and the label-probability arithmetic every backend shares (no torch: a remote bot imports it)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

POLAR = ("negative", "positive")
CONTENT_FREE = ("N/A", "", "[MASK]")  # contextual calibration inputs (Zhao et al., 2021)


@dataclass(frozen=True)
class Sentiment:
    label: str  # 'negative' | 'neutral' | 'positive'
    confidence: float  # probability of `label` under the method, in [0, 1]
    scores: dict[str, float]


def calibrated(probs: np.ndarray, content_free: np.ndarray) -> dict[str, float]:
    """POLAR probabilities with the model's bias divided out: `content_free` is the mean of the same probabilities
    on CONTENT_FREE inputs, so with no content neither label wins by default."""
    probs = probs / content_free
    return dict(zip(POLAR, (probs / probs.sum()).tolist()))


def decide(scores: dict[str, float], neutral_below: float) -> Sentiment:
    """The top label. A two-class reading (no neutral score) is neutral when its pole is weaker than
    `neutral_below`; a three-class head has learned where neutral lies, and a second cut only took real complaints
    and praise from it (README, "Chinese customer messages")."""
    label = max(scores, key=scores.get)
    if label != "neutral" and "neutral" not in scores and scores[label] < neutral_below:
        return unsure(scores)
    return Sentiment(label, scores[label], scores)


def unsure(scores: dict[str, float]) -> Sentiment:
    """Neutral between the poles, as sure as the poles are close."""
    return Sentiment("neutral", 1.0 - abs(scores.get("positive", 0.0) - scores.get("negative", 0.0)), scores)
