"""The sentiment role: three ways to read a label and a probability from the one loaded model."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from bot.config import ConfigError, SentimentSettings
from bot.llm.generation import greedy, pad_id
from bot.llm.head import L2, POOLS, SentimentHead, fit_head
from bot.llm.model import Decoder
from bot.llm.prompts import as_data, sentiment_messages
from bot.llm.sentiment_scores import CONTENT_FREE, POLAR, Sentiment, calibrated, decide, unsure
from bot.llm.slots import Scratch

log = logging.getLogger(__name__)

SENTINEL = "\x00MESSAGE\x00"
FEATURE_BATCH = 16  # messages read in one pass while calibrating
HEAD_DEPTHS = (0.5,)  # where a new head reads the model, as fractions of its depth (measured: README)


class PromptPass:
    """One prompt whose fixed part is computed once: each call runs only the messages' tokens after it.

    The customer's text sits alone in the user turn, with special tokens defused, so the model reads it as
    data under the system instruction; only the tokens after it (the assistant turn's opening) follow.
    """

    def __init__(self, decoder: Decoder, tokenizer: PreTrainedTokenizerBase, instruction: str,
                 special_tokens: list[str]):
        self.decoder, self.tokenizer, self._special = decoder, tokenizer, special_tokens
        prompt = tokenizer.apply_chat_template(
            sentiment_messages(instruction, SENTINEL), add_generation_prompt=True, tokenize=False
        )
        prefix, self._suffix = prompt.split(SENTINEL)
        self._prefix_ids = self.ids(prefix)
        self._prefix: Scratch | None = None  # built on first use, on the model thread

    def ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    @torch.inference_mode()
    def _run(self, texts: Sequence[str], layers: Sequence[int] = (), depth: int | None = None):
        """(hidden [B, T, H], {layer: [B, T, H]}, each row's length): the messages right-padded after the prefix.

        Right padding needs no mask: causal attention never lets a message's tokens see the pads after them."""
        if self._prefix is None:
            self._prefix = Scratch()
            self.decoder.forward(torch.tensor([self._prefix_ids]), torch.arange(len(self._prefix_ids))[None],
                                 self._prefix)
        rows = [self.ids(as_data(text, self._special) + self._suffix) for text in texts]
        lengths = [len(r) for r in rows]
        width = max(lengths)
        ids = torch.tensor([r + [pad_id(self.tokenizer)] * (width - len(r)) for r in rows])  # [B, T]
        positions = (len(self._prefix_ids) + torch.arange(width))[None].expand(len(rows), -1)
        hidden, kept = self.decoder.forward(ids, positions, Scratch(self._prefix, len(rows)), tuple(layers), depth)
        return hidden, kept, lengths

    def last_logits(self, text: str) -> torch.Tensor:
        """(vocab,) next-token logits after the prompt; only the last position goes through the LM head."""
        hidden, _, _ = self._run([text])
        return self.decoder.logits(hidden[0, -1])

    def states(self, texts: Sequence[str], layers: Sequence[int]) -> list[list[torch.Tensor]]:
        """For each text, each of `layers`' (T, hidden) output over its tokens; one batched pass for all texts,
        and blocks past the deepest layer never run."""
        _, kept, lengths = self._run(texts, layers, depth=max(layers))
        return [[kept[layer][row, :n] for layer in layers] for row, n in enumerate(lengths)]


class SentimentReader:
    """The configured method, plus the others for `shopbot eval --method`, on the engine's one model."""

    def __init__(
        self,
        decoder: Decoder,
        tokenizer: PreTrainedTokenizerBase,
        settings: SentimentSettings,
        special_tokens: list[str],
        head_file: Path | None = None,
        model_name: str = "",
        stop_ids: frozenset[int] = frozenset(),
    ):
        self.decoder, self.tokenizer, self.settings = decoder, tokenizer, settings
        self._special, self._model_name, self._stop_ids = special_tokens, model_name, stop_ids
        self._prompt = PromptPass(decoder, tokenizer, settings.instruction, special_tokens)
        # Label words as the model would start its answer: the first token of each word.
        self._label_ids = [self._prompt.ids(label)[0] for label in POLAR]
        self._calibration: np.ndarray | None = None
        self._head_file = head_file
        self._head: tuple[SentimentHead, PromptPass] | None = None
        self.method = settings.method
        if self.method == "head" and head_file is None:
            log.warning("no sentiment head for this model: reading sentiment by label logits instead "
                        "(`shopbot calibrate FILE.csv` makes a head)")
            self.method = "logits"
        elif self.method == "head":
            self._load_head()  # a configured head that is missing or wrong stops start-up, naming the key

    # --- the learned head --------------------------------------------------------------------------

    def _load_head(self) -> tuple[SentimentHead, PromptPass]:
        if self._head is None:
            head_file = self._head_file
            if head_file is None or not head_file.is_file():
                raise ConfigError(
                    "sentiment.head_path",
                    f"no sentiment head for this model ({head_file or 'none shipped'}); "
                    "run `shopbot calibrate FILE.csv` or pick sentiment.method = \"logits\"",
                )
            self.use_head(SentimentHead.load(head_file), str(head_file))
        return self._head

    @property
    def head(self) -> SentimentHead:
        return self._load_head()[0]

    def use_head(self, head: SentimentHead, source: str = "the head") -> None:
        """Read with `head` from now on (the configured one loads on first use)."""
        shape = self.decoder.shape
        fits = head.dim == len(head.layers) * len(POOLS) * shape.hidden
        if not fits or max(head.layers) >= shape.layers:
            raise ConfigError("sentiment.head_path", f"{source} was fitted for another model")
        # The head was fitted on hidden states under its own instruction: read them under the same one.
        same = head.instruction == self.settings.instruction
        self._head = head, self._prompt if same else PromptPass(self.decoder, self.tokenizer, head.instruction,
                                                                 self._special)

    @staticmethod
    def _pool(states: list[torch.Tensor]) -> np.ndarray:
        """(len(layers) * len(POOLS) * hidden,) per layer: the last token's state, then the mean over tokens."""
        return torch.cat([part for s in states for part in (s[-1], s.float().mean(dim=0))]).float().numpy()

    def head_layers(self) -> tuple[int, ...]:
        """The layers a newly calibrated head reads on this model."""
        depth = self.decoder.shape.layers
        return tuple(sorted({max(1, min(depth - 1, round(depth * f))) for f in HEAD_DEPTHS}))

    def head_features(self, texts: Sequence[str], progress=None) -> np.ndarray:
        """(N, D) features for fitting a new head: the configured instruction, the layers of head_layers()."""
        layers = self.head_layers()
        rows = []
        for start in range(0, len(texts), FEATURE_BATCH):
            rows += [self._pool(states) for states in self._prompt.states(texts[start:start + FEATURE_BATCH], layers)]
            if progress:
                progress.update(len(rows))
        return np.stack(rows)

    def fit_head(self, features, labels: list[str], l2: float | None = None, data: str = "") -> SentimentHead:
        """A head over head_features() rows; `data` names what it was fitted on (kept in the file)."""
        meta = {"model": self._model_name, "data": data}
        return fit_head(np.asarray(features), labels, self.settings.instruction, self.head_layers(), meta,
                        L2 if l2 is None else l2)

    def _by_head(self, texts: Sequence[str]) -> list[Sentiment]:
        head, prompt = self._load_head()
        features = np.stack([self._pool(states) for states in prompt.states(texts, head.layers)])
        return [self._decide(dict(zip(head.classes, probs))) for probs in head.probabilities(features).tolist()]

    # --- label-word scores -------------------------------------------------------------------------

    def _polar_probs(self, text: str) -> np.ndarray:
        logits = self._prompt.last_logits(text)[self._label_ids]
        return torch.softmax(logits, dim=0).numpy()

    def _by_label_logits(self, text: str) -> Sentiment:
        if self._calibration is None:
            # The model's bias with no content at all; dividing it out means neither label wins by default.
            self._calibration = np.mean([self._polar_probs(t) for t in CONTENT_FREE], axis=0)
        return self._decide(calibrated(self._polar_probs(text), self._calibration))

    # --- the seed's baseline -----------------------------------------------------------------------

    def _by_generation(self, text: str) -> Sentiment:
        """The whole prompt, decode a few tokens greedily, parse the word."""
        ids = self._prompt.ids(self.tokenizer.apply_chat_template(
            sentiment_messages(self.settings.instruction, as_data(text, self._special)),
            add_generation_prompt=True, tokenize=False,
        ))
        tokens, first = greedy(self.decoder, ids, self.settings.generation.max_new_tokens, self._stop_ids)
        answer = self.tokenizer.decode(tokens, skip_special_tokens=True).lower()
        first_step = torch.softmax(first[self._label_ids], dim=0).numpy()
        scores = dict(zip(POLAR, first_step.tolist()))
        found = re.search(r"positive|negative|neutral", answer)
        if found is None or found.group() == "neutral":
            return unsure(scores)
        return Sentiment(found.group(), scores[found.group()], scores)

    # --- dispatch ----------------------------------------------------------------------------------

    def read(self, text: str, method: str | None = None) -> Sentiment:
        return self.read_many([text], method)[0]

    def read_many(self, texts: Sequence[str], method: str | None = None) -> list[Sentiment]:
        """Each text's sentiment; the head reads them all in one batched pass, the other methods one by one."""
        method = method or self.method
        if method == "head":
            return self._by_head(texts)
        if method == "generate":
            return [self._by_generation(text) for text in texts]
        if method == "logits":
            return [self._by_label_logits(text) for text in texts]
        raise ValueError(f"unknown sentiment method {method!r}")

    def _decide(self, scores: dict[str, float]) -> Sentiment:
        return decide(scores, self.settings.neutral_below)
