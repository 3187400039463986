"""The retrieval role: how well each shop-knowledge entry matches a customer message, read from the one model.

Two readings of the model (measured on the sample shop: README, "Shop knowledge"):
- token vectors: each content token's hidden state a few layers up; a message matches an entry when each of
  its words finds a close word in the entry (late interaction, as ColBERT scores passages);
- likelihood: how much more probable the customer's words become after the entry's text (query likelihood,
  as UPR reranks passages), read on a few candidates only because it costs a forward pass per entry.
"""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from bot.lexicon import EN_GRAMMAR
from bot.llm.generation import pad_id
from bot.llm.model import Decoder
from bot.llm.prompts import as_data
from bot.llm.sentiment import PromptPass
from bot.llm.slots import Scratch

# The depths whose token vectors retrieval may read: bot/retrieval_choice.py measures them per model and picks one.
LAYER_FRACTIONS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.65, 0.8)
FIRST_FRACTION = 0.2  # token_layer "fifth", the default (layer 6 of 30 on SmolLM2-135M, where it was first tuned)
RETRIEVAL_INSTRUCTION = "You match a shop customer's question to the shop's FAQ."
LIKELIHOOD_CONTEXT = "Shop FAQ: {question} {answer}\nA customer writes: "


class KnowledgeReader:
    """Token vectors and likelihoods for retrieval, on the engine's one model (call on the engine thread)."""

    def __init__(self, decoder: Decoder, tokenizer: PreTrainedTokenizerBase, special_tokens: list[str]):
        self.decoder, self.tokenizer, self._special = decoder, tokenizer, special_tokens
        self._prompt = PromptPass(decoder, tokenizer, RETRIEVAL_INSTRUCTION, special_tokens)
        depth = decoder.shape.layers
        self.layer = max(1, round(depth * FIRST_FRACTION))  # the one token_vectors reads (set by the choice)
        # The candidates, the first layer first: the measurement keeps it unless another is clearly better.
        self.layers = (self.layer, *sorted({max(1, round(depth * f)) for f in LAYER_FRACTIONS} - {self.layer}))

    def token_vectors(self, text: str) -> np.ndarray:
        """(content tokens, hidden) float32 at the chosen layer, rows L2-normalised; zero rows without a content word."""
        return self.layer_vectors([text], [self.layer])[0][0]

    def layer_vectors(self, texts: Sequence[str], layers: Sequence[int]) -> list[list[np.ndarray]]:
        """For each text, its token vectors at each of `layers`: one batched forward pass for them all."""
        out = []
        for text, states in zip(texts, self._prompt.states(texts, layers)):  # per layer (T, hidden)
            ids = self._prompt.ids(as_data(text, self._special))
            # The prompt's message tokens and the bare text's tokens line up: both start at a turn boundary.
            keep = [i for i, token in enumerate(ids) if _is_content(self.tokenizer.decode([token]))]
            out.append([torch.nn.functional.normalize(s.float()[keep] if keep else s.float()[:0], dim=1).numpy()
                        for s in states])
        return out

    @torch.inference_mode()
    def likelihood(self, entries: Sequence[tuple[str, str]], text: str) -> np.ndarray:
        """(len(entries),) mean log-probability of the message's tokens after each (question, answer) entry.

        One right-padded batch: every row is entry context + message, so causal attention never sees padding."""
        message = self._ids(as_data(text, self._special))
        rows, starts = [], []
        for question, answer in entries:
            context = self._ids(LIKELIHOOD_CONTEXT.format(question=question, answer=answer))
            rows.append(context + message)
            starts.append(len(context))
        width = max(len(r) for r in rows)
        pad = pad_id(self.tokenizer)
        ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows])  # (E, width), right-padded
        positions = torch.arange(width)[None].expand(len(rows), -1)
        hidden, _ = self.decoder.forward(ids, positions, Scratch())  # (E, width, h)
        # Only the positions that predict the message's tokens go through the LM head (the vocabulary is large):
        # the token at position p is predicted by the state at p - 1.
        at = torch.tensor(starts)[:, None] - 1 + torch.arange(len(message))
        states = hidden.gather(1, at[:, :, None].expand(-1, -1, hidden.shape[-1]))  # (E, message, h)
        logp = torch.log_softmax(self.decoder.logits(states), dim=-1)  # (E, message, vocab)
        target = torch.tensor(message).expand(len(rows), -1)
        scores = logp.gather(2, target[:, :, None]).squeeze(2).mean(dim=1).tolist()
        return np.array(scores)

    @torch.inference_mode()
    def likelihood_table(self, entries: Sequence[tuple[str, str]], texts: Sequence[str]) -> np.ndarray:
        """(texts, entries): likelihood(entries, text) for many texts at once (measuring a model: bot/retrieval_choice.py).

        Each entry's context runs once; all texts continue from it in one right-padded batch."""
        messages = [self._ids(as_data(text, self._special)) for text in texts]
        lengths = torch.tensor([len(m) for m in messages])
        width = int(lengths.max())
        ids = torch.tensor([m + [pad_id(self.tokenizer)] * (width - len(m)) for m in messages])  # (Q, width)
        valid = torch.arange(width)[None] < lengths[:, None]  # (Q, width) the messages' own tokens
        table = np.zeros((len(texts), len(entries)))
        for e, (question, answer) in enumerate(entries):
            context = self._ids(LIKELIHOOD_CONTEXT.format(question=question, answer=answer))
            prefix = Scratch()
            last, _ = self.decoder.forward(torch.tensor([context]), torch.arange(len(context))[None], prefix)
            positions = (len(context) + torch.arange(width))[None].expand(len(texts), -1)
            hidden, _ = self.decoder.forward(ids, positions, Scratch(prefix, len(texts)))  # (Q, width, h)
            # The token at j is predicted by the state before it: the context's last one for j = 0.
            before = torch.cat([last[:, -1:].expand(len(texts), -1, -1), hidden[:, :-1]], 1)  # (Q, width, h)
            logp = torch.zeros(len(texts), width)
            for chunk in valid.nonzero().split(256):  # (n, 2) row, position: the vocabulary is large
                rows, at = chunk[:, 0], chunk[:, 1]
                scores = torch.log_softmax(self.decoder.logits(before[rows, at]).float(), dim=-1)  # (n, vocab)
                logp[rows, at] = scores.gather(1, ids[rows, at][:, None]).squeeze(1)
            table[:, e] = (logp.sum(1) / lengths).numpy()
        return table

    def _ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]


def _is_content(piece: str) -> bool:
    """A token worth matching: not a function word, not bare punctuation (CJK byte pieces count as content)."""
    word = piece.strip().lower()
    # The grammar words only, not all of EN_STOP: stored entries' vectors were kept by this list, and a longer one
    # would match new messages against them differently until every entry is embedded again.
    return bool(word) and word not in EN_GRAMMAR and not re.fullmatch(r"[^\w\ufffd]+", word)
