"""Picking the next token (greedy or sampled, with a repetition penalty) and showing a reply as it grows."""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from transformers import PreTrainedTokenizerBase

from bot.config import GenerationSettings
from bot.llm.guard import whole_words
from bot.llm.model import Decoder
from bot.llm.slots import Scratch


def pad_id(tokenizer: PreTrainedTokenizerBase) -> int:
    """The token that fills a batch's padding: the tokenizer's pad token, else its end-of-sequence token."""
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id


def next_tokens(logits: torch.Tensor, seen: Sequence[Sequence[int]], settings: GenerationSettings) -> list[int]:
    """logits [B, vocab] fp32 -> one token per row; `seen[b]` are the row's tokens so far (penalised as
    transformers' repetition_penalty does: positive logits divided, negative ones multiplied)."""
    if settings.repetition_penalty != 1.0:
        for b, tokens in enumerate(seen):
            ids = torch.tensor(sorted(set(tokens)), dtype=torch.long)
            picked = logits[b, ids]
            logits[b, ids] = torch.where(picked > 0, picked / settings.repetition_penalty,
                                         picked * settings.repetition_penalty)
    if settings.temperature <= 0:
        return logits.argmax(-1).tolist()
    probs = torch.softmax(logits / settings.temperature, -1)
    if settings.top_p < 1.0:  # keep the smallest set of tokens whose probability reaches top_p
        sorted_probs, order = probs.sort(-1, descending=True)
        outside = sorted_probs.cumsum(-1) - sorted_probs > settings.top_p
        probs = probs.scatter(-1, order, sorted_probs.masked_fill(outside, 0.0))
    return torch.multinomial(probs, 1)[:, 0].tolist()


@torch.inference_mode()
def greedy(decoder: Decoder, ids: list[int], max_new: int, stop_ids: frozenset[int]) -> tuple[list[int], torch.Tensor]:
    """One prompt decoded greedily without a slot (short answers); returns (tokens, first step's logits)."""
    cache = Scratch()
    tokens = torch.tensor([ids])
    hidden, _ = decoder.forward(tokens, torch.arange(len(ids))[None], cache)
    first = logits = decoder.logits(hidden[0, -1])
    out: list[int] = []
    while len(out) < max_new:
        token = int(logits.argmax())
        if token in stop_ids:
            break
        out.append(token)
        hidden, _ = decoder.forward(torch.tensor([[token]]), torch.tensor([[cache.length]]), cache)
        logits = decoder.logits(hidden[0, -1])
    return out, first


class Growing:
    """Calls `on_text` with the whole reply so far each time its decoded text grows by whole words."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, on_text: Callable[[str], None]):
        self.tokenizer, self.on_text = tokenizer, on_text
        self.shown = ""

    def show(self, tokens: list[int], final: bool = False) -> None:
        text = whole_words(self.tokenizer.decode(tokens, skip_special_tokens=True), final)
        if len(text) > len(self.shown):
            self.shown = text
            self.on_text(text)

