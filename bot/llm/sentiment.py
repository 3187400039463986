"""The sentiment role: three ways to read a label and a probability from the one loaded model."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from bot.config import ConfigError, SentimentSettings
from bot.llm.generation import generation_kwargs
from bot.llm.head import SentimentHead
from bot.llm.prompts import as_data, sentiment_messages

POLAR = ("negative", "positive")
SENTINEL = "\x00MESSAGE\x00"
CONTENT_FREE = ("N/A", "", "[MASK]")  # contextual calibration inputs (Zhao et al., 2021)


@dataclass(frozen=True)
class Sentiment:
    label: str  # 'negative' | 'neutral' | 'positive'
    confidence: float  # probability of `label` under the method, in [0, 1]
    scores: dict[str, float]


class SentimentReader:
    """Holds the sentiment instruction as a cached KV prefix so each message costs one short forward pass."""

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        settings: SentimentSettings,
        special_tokens: list[str],
        head_file: Path | None = None,
    ):
        self.model, self.tokenizer, self.settings = model, tokenizer, settings
        self._special = special_tokens
        prompt = tokenizer.apply_chat_template(
            sentiment_messages(settings.instruction, SENTINEL), add_generation_prompt=True, tokenize=False
        )
        prefix, self._suffix = prompt.split(SENTINEL)
        self._prefix_ids = self._ids(prefix)
        self._prefix_cache = None  # built on first use, on the model thread
        # Label words as the model would start its answer: the first token of each word.
        self._label_ids = [self._ids(label)[0, 0].item() for label in POLAR]
        self._calibration: np.ndarray | None = None
        layers = model.config.num_hidden_layers
        self._mid_layer = round(layers * 2 / 3)
        self.head = self._load_head(head_file) if settings.method == "head" else None

    def _load_head(self, head_file: Path | None) -> SentimentHead:
        if head_file is None or not head_file.is_file():
            raise ConfigError(
                "sentiment.head_path",
                f"no sentiment head for this model ({head_file or 'none shipped'}); "
                "run `shopbot calibrate FILE.csv` or pick sentiment.method = \"logits\"",
            )
        head = SentimentHead.load(head_file)
        if head.dim != 3 * self.model.config.hidden_size:
            raise ConfigError("sentiment.head_path", f"{head_file} was fitted for another model (size {head.dim})")
        return head

    def _ids(self, text: str) -> torch.Tensor:
        return self.tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"].to(self.model.device)

    def read(self, text: str, method: str | None = None) -> Sentiment:
        method = method or self.settings.method
        if method == "generate":
            return self._by_generation(text)
        if method == "logits":
            return self._by_label_logits(text)
        if method == "head":
            return self._by_head(text)
        raise ValueError(f"unknown sentiment method {method!r}")

    # --- the shared forward pass -------------------------------------------------------------------

    @torch.inference_mode()
    def _forward(self, text: str, hidden: bool):
        """One forward pass over the customer's tokens only, on top of the cached instruction prefix."""
        if self._prefix_cache is None:
            self._prefix_cache = self.model(self._prefix_ids, use_cache=True).past_key_values
        ids = self._ids(as_data(text, self._special) + self._suffix)
        try:
            return self.model(
                ids, past_key_values=self._prefix_cache, use_cache=True, output_hidden_states=hidden
            )
        finally:
            # Drop this message's tokens again (a negative crop removes that many in transformers 4 and 5).
            self._prefix_cache.crop(-ids.shape[1])

    def features(self, text: str) -> np.ndarray:
        """(3*hidden,) final-layer last token, a two-thirds-deep layer's last token, final-layer mean."""
        states = self._forward(text, hidden=True).hidden_states  # each (1, T, hidden)
        final, mid = states[-1][0], states[self._mid_layer][0]
        return torch.cat([final[-1], mid[-1], final.mean(dim=0)]).float().cpu().numpy()

    # --- the three methods -------------------------------------------------------------------------

    def _by_head(self, text: str) -> Sentiment:
        probs = self.head.probabilities(self.features(text)[None])[0]
        return self._decide(dict(zip(self.head.classes, probs.tolist())))

    def _polar_probs(self, text: str) -> np.ndarray:
        logits = self._forward(text, hidden=False).logits[0, -1, self._label_ids]
        return torch.softmax(logits.float(), dim=0).cpu().numpy()

    def _by_label_logits(self, text: str) -> Sentiment:
        if self._calibration is None:
            # The model's bias with no content at all; dividing it out means neither label wins by default.
            self._calibration = np.mean([self._polar_probs(t) for t in CONTENT_FREE], axis=0)
        probs = self._polar_probs(text) / self._calibration
        return self._decide(dict(zip(POLAR, (probs / probs.sum()).tolist())))

    @torch.inference_mode()
    def _by_generation(self, text: str) -> Sentiment:
        """The seed's baseline: the whole prompt, generate a few tokens greedily, parse the word."""
        ids = self._ids(self.tokenizer.apply_chat_template(
            sentiment_messages(self.settings.instruction, as_data(text, self._special)),
            add_generation_prompt=True, tokenize=False,
        ))
        out = self.model.generate(
            ids, **generation_kwargs(self.settings.generation, self.tokenizer),
            output_scores=True, return_dict_in_generate=True,
        )
        answer = self.tokenizer.decode(out.sequences[0, ids.shape[1]:], skip_special_tokens=True).lower()
        first_step = torch.softmax(out.scores[0][0, self._label_ids].float(), dim=0).cpu().numpy()
        scores = dict(zip(POLAR, first_step.tolist()))
        found = re.search(r"positive|negative|neutral", answer)
        if found is None or found.group() == "neutral":
            return Sentiment("neutral", 1.0 - abs(scores["positive"] - scores["negative"]), scores)
        return Sentiment(found.group(), scores[found.group()], scores)

    def _decide(self, scores: dict[str, float]) -> Sentiment:
        label = max(scores, key=scores.get)
        if label != "neutral" and scores[label] < self.settings.neutral_below:
            # Unsure between the poles: report neutral, as sure as the poles are close.
            pos, neg = scores.get("positive", 0.0), scores.get("negative", 0.0)
            return Sentiment("neutral", 1.0 - abs(pos - neg), scores)
        return Sentiment(label, scores[label], scores)
