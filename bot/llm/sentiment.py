"""The reading role: a message's sentiment (three ways from the one loaded model) and its intent (a head on the same
pass, or keywords)."""

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
from bot.llm.head import L2, POOLS, LinearHead, fit_head
from bot.llm.intents import Intent, Reading, keyword_intent
from bot.llm.model import Decoder
from bot.llm.prompts import SENTINEL, as_data, sentiment_messages
from bot.llm.sentiment_scores import CONTENT_FREE, POLAR, Sentiment, calibrated, decide, unsure
from bot.llm.slots import Scratch

log = logging.getLogger(__name__)

FEATURE_BATCH = 128  # messages per model call while calibrating (states() groups them into passes)
# Padded tokens (rows x longest row) in one batched forward pass. Measured on 2 cores (SmolLM2-135M, 512 mixed
# comments, one run): 512 / 1024 / 1536 / 4096 all read 13-16 rows/s; rows of one length matter far more.
PASS_TOKENS = 1024
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

    def _row(self, text: str) -> list[int]:
        """A message's token ids after the prefix: its text, then the assistant turn's opening."""
        return self.ids(as_data(text, self._special) + self._suffix)

    @torch.inference_mode()
    def _run(self, rows: list[list[int]], layers: Sequence[int] = (), depth: int | None = None):
        """(hidden [B, T, H], {layer: [B, T, H]}): the token rows right-padded after the prefix.

        Right padding needs no mask: causal attention never lets a message's tokens see the pads after them."""
        if self._prefix is None:
            self._prefix = Scratch()
            self.decoder.forward(torch.tensor([self._prefix_ids]), torch.arange(len(self._prefix_ids))[None],
                                 self._prefix)
        width = max(len(r) for r in rows)
        ids = torch.tensor([r + [pad_id(self.tokenizer)] * (width - len(r)) for r in rows])  # [B, T]
        positions = (len(self._prefix_ids) + torch.arange(width))[None].expand(len(rows), -1)
        return self.decoder.forward(ids, positions, Scratch(self._prefix, len(rows)), tuple(layers), depth)

    def last_logits(self, text: str) -> torch.Tensor:
        """(vocab,) next-token logits after the prompt; only the last position goes through the LM head."""
        hidden, _ = self._run([self._row(text)])
        return self.decoder.logits(hidden[0, -1])

    def states(self, texts: Sequence[str], layers: Sequence[int]) -> list[list[torch.Tensor]]:
        """For each text, each of `layers`' (T, hidden) output over its tokens; blocks past the deepest layer never
        run. Texts of about the same token length share a pass, so few pads are computed."""
        rows = [self._row(text) for text in texts]
        states: list[list[torch.Tensor]] = [[] for _ in rows]
        for group in _passes(rows):
            _, kept = self._run([rows[i] for i in group], layers, depth=max(layers))
            for b, i in enumerate(group):
                states[i] = [kept[layer][b, :len(rows[i])] for layer in layers]
        return states


def _passes(rows: list[list[int]]) -> list[list[int]]:
    """Indices of `rows` grouped shortest first, each group's rows x longest row within PASS_TOKENS (a longer row
    alone). A pad costs a token's compute: a 100-character Chinese comment is ~180 tokens here, an English one ~27."""
    groups: list[list[int]] = []
    for i in sorted(range(len(rows)), key=lambda i: len(rows[i])):
        if groups and (len(groups[-1]) + 1) * len(rows[i]) <= PASS_TOKENS:
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


class SentimentReader:
    """The configured sentiment method, plus the others for `shopbot eval --method`, and the intent head beside it,
    on the engine's one model."""

    def __init__(
        self,
        decoder: Decoder,
        tokenizer: PreTrainedTokenizerBase,
        settings: SentimentSettings,
        special_tokens: list[str],
        head_file: Path | None = None,
        model_name: str = "",
        stop_ids: frozenset[int] = frozenset(),
        intent_head_file: Path | None = None,
    ):
        self.decoder, self.tokenizer, self.settings = decoder, tokenizer, settings
        self._special, self._model_name, self._stop_ids = special_tokens, model_name, stop_ids
        self._prompts: dict[str, PromptPass] = {}  # one per instruction: heads under the same one share its pass
        self._prompt = self._prompt_for(settings.instruction)
        # Label words as the model would start its answer: the first token of each word.
        self._label_ids = [self._prompt.ids(label)[0] for label in POLAR]
        self._calibration: np.ndarray | None = None
        self._head_file = head_file
        self._head: tuple[LinearHead, PromptPass] | None = None
        self.method = settings.method
        if self.method == "head" and head_file is None:
            # Serving fits one before the first message (auto_head); until then, and in commands that do not
            # serve, label logits read sentiment.
            log.info("no sentiment head for this model yet: label logits read sentiment until one is fitted "
                     "(before serving, or by `shopbot calibrate FILE.csv`)")
            self.method = "logits"
        elif self.method == "head":
            self._load_head()  # a configured head that is missing or wrong stops start-up, naming the key
        self._intent: tuple[LinearHead, PromptPass] | None = None  # None: intents are read by keywords
        if intent_head_file is not None:
            self.use_intent_head(LinearHead.load(intent_head_file), str(intent_head_file))

    def _prompt_for(self, instruction: str) -> PromptPass:
        if instruction not in self._prompts:
            self._prompts[instruction] = PromptPass(self.decoder, self.tokenizer, instruction, self._special)
        return self._prompts[instruction]

    # --- the learned head --------------------------------------------------------------------------

    def _load_head(self) -> tuple[LinearHead, PromptPass]:
        if self._head is None:
            head_file = self._head_file
            if head_file is None or not head_file.is_file():
                raise ConfigError(
                    "sentiment.head_path",
                    f"no sentiment head for this model ({head_file or 'none shipped'}); "
                    "run `shopbot calibrate FILE.csv` or pick sentiment.method = \"logits\"",
                )
            self.use_head(LinearHead.load(head_file), str(head_file))
        return self._head

    @property
    def head(self) -> LinearHead:
        return self._load_head()[0]

    def use_head(self, head: LinearHead, source: str = "the head") -> None:
        """Read sentiment with `head` from now on (the configured one loads on first use)."""
        if not self._fits(head):
            raise ConfigError("sentiment.head_path", f"{source} was fitted for another model")
        # The head was fitted on hidden states under its own instruction: read them under the same one.
        self._head = head, self._prompt_for(head.instruction)

    @property
    def intent_head(self) -> LinearHead | None:
        return self._intent[0] if self._intent else None

    def use_intent_head(self, head: LinearHead, source: str = "the intent head") -> None:
        """Read intents with `head` from now on."""
        if not self._fits(head):
            raise ConfigError("model.cache_dir", f"{source} was fitted for another model: delete it (the next start "
                                                 "fits one for this model)")
        self._intent = head, self._prompt_for(head.instruction)

    def shares_pass(self, head: LinearHead) -> bool:
        """Whether `head` reads the sentiment head's forward pass (same instruction, no deeper): no extra cost."""
        return (self.method == "head" and head.instruction == self.head.instruction
                and max(head.layers) <= max(self.head.layers))

    def _fits(self, head: LinearHead) -> bool:
        shape = self.decoder.shape
        return head.dim == len(head.layers) * len(POOLS) * shape.hidden and max(head.layers) < shape.layers

    @staticmethod
    def _pool(state: torch.Tensor) -> np.ndarray:
        """(len(POOLS) * hidden,) one layer's (T, hidden) states: the last token's, then the mean over tokens."""
        return torch.cat([state[-1], state.float().mean(dim=0)]).float().numpy()

    def _pooled(self, prompt: PromptPass, texts: Sequence[str], layers: set[int]) -> list[dict[int, np.ndarray]]:
        """Each text's pooled states at `layers`, from one batched pass under `prompt`."""
        layers = sorted(layers)
        return [{layer: self._pool(state) for layer, state in zip(layers, states)}
                for states in prompt.states(texts, layers)]

    @staticmethod
    def _features(pooled: list[dict[int, np.ndarray]], layers: Sequence[int]) -> np.ndarray:
        """(N, D) a head's input: each of its layers' pooled states, in its order."""
        return np.stack([np.concatenate([row[layer] for layer in layers]) for row in pooled])

    def head_layers(self) -> tuple[int, ...]:
        """The layers a newly calibrated head reads on this model."""
        depth = self.decoder.shape.layers
        return tuple(sorted({max(1, min(depth - 1, round(depth * f))) for f in HEAD_DEPTHS}))

    def _fit_source(self, like: LinearHead | None) -> tuple[str, tuple[int, ...]]:
        """The instruction and layers a new head reads: `like`'s (to share its pass), else the configured
        instruction at head_layers()."""
        return (like.instruction, like.layers) if like else (self.settings.instruction, self.head_layers())

    def head_features(self, texts: Sequence[str], progress=None, like: LinearHead | None = None) -> np.ndarray:
        """(N, D) features for fitting a new head, read where _fit_source(like) says."""
        instruction, layers = self._fit_source(like)
        prompt = self._prompt_for(instruction)
        rows: list[np.ndarray] = []
        for start in range(0, len(texts), FEATURE_BATCH):
            rows += list(self._features(self._pooled(prompt, texts[start:start + FEATURE_BATCH], set(layers)), layers))
            if progress:
                progress.update(len(rows))
        return np.stack(rows)

    def fit_head(self, features, labels: list[str], l2: float | None = None, data: str = "",
                 like: LinearHead | None = None) -> LinearHead:
        """A head (sentiment or intent: the labels say) over head_features(like=like) rows; `data` names what it was
        fitted on (kept in the file)."""
        instruction, layers = self._fit_source(like)
        meta = {"model": self._model_name, "data": data}
        return fit_head(np.asarray(features), labels, instruction, layers, meta, L2 if l2 is None else l2)

    def _sentiments(self, head: LinearHead, features: np.ndarray) -> list[Sentiment]:
        return [self._decide(scores) for scores in head.scores(features)]

    def _by_head(self, texts: Sequence[str]) -> list[Sentiment]:
        head, prompt = self._load_head()
        return self._sentiments(head, self._features(self._pooled(prompt, texts, set(head.layers)), head.layers))

    # --- intents -----------------------------------------------------------------------------------

    @staticmethod
    def _intents(head: LinearHead, features: np.ndarray) -> list[Intent]:
        probs = head.probabilities(features)
        return [Intent(head.classes[i], float(row[i])) for row, i in zip(probs, probs.argmax(axis=1))]

    def intents(self, texts: Sequence[str], method: str | None = None) -> list[Intent]:
        """Each text's intent: by the intent head ("head", the default when there is one; its own pass) or by
        keywords ("keywords")."""
        method = method or ("head" if self._intent else "keywords")
        if method == "keywords":
            return [keyword_intent(text) for text in texts]
        if method != "head":
            raise ValueError(f"unknown intent method {method!r}")
        if self._intent is None:
            raise ConfigError("model.cache_dir", "no intent head for this model: `shopbot calibrate --task intent "
                                                 "FILE.csv` fits one, or read with --method keywords")
        head, prompt = self._intent
        return self._intents(head, self._features(self._pooled(prompt, texts, set(head.layers)), head.layers))

    def read_messages(self, texts: Sequence[str]) -> list[Reading]:
        """Each text's sentiment and intent: with both heads on one prompt, from one batched pass (the intent costs
        a second matrix product); else each read on its own."""
        if self._intent is not None and self.shares_pass(self._intent[0]):
            (head, prompt), intent_head = self._load_head(), self._intent[0]
            pooled = self._pooled(prompt, texts, set(head.layers) | set(intent_head.layers))
            sentiments = self._sentiments(head, self._features(pooled, head.layers))
            intents = self._intents(intent_head, self._features(pooled, intent_head.layers))
        else:
            sentiments, intents = self.read_many(texts), self.intents(texts)
        return [Reading(s, i) for s, i in zip(sentiments, intents, strict=True)]

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
        """Each text's sentiment; the head reads them in batched passes, the other methods one by one."""
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
