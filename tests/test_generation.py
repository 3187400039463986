"""Picking the next token: sampled tokens follow the model's probabilities, only from the top-p set."""

import math

import torch

from bot.config import GenerationSettings
from bot.llm.generation import NUCLEUS_CANDIDATES, next_tokens

VOCAB = 2 * NUCLEUS_CANDIDATES  # larger than where the top-p set is looked for first
ROWS = 6000  # draws at once, one per row


def logits_of(probs: list[float]) -> torch.Tensor:
    """[ROWS, VOCAB] logits whose softmax puts `probs` on the first tokens and the rest evenly on the others."""
    rest = (1 - sum(probs)) / (VOCAB - len(probs))
    return torch.tensor([math.log(p) for p in probs] + [math.log(rest)] * (VOCAB - len(probs))).expand(ROWS, -1).clone()


def draws(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    settings = GenerationSettings(max_new_tokens=1, temperature=1.0, top_p=top_p, repetition_penalty=1.0)
    return torch.tensor(next_tokens(logits, [[] for _ in range(ROWS)], settings))


def test_sampling_draws_only_from_the_top_p_set_in_proportion():
    torch.manual_seed(0)
    picked = draws(logits_of([0.5, 0.3, 0.15]), top_p=0.9)  # the fourth token would start after 0.95 > 0.9
    assert set(picked.tolist()) <= {0, 1, 2}
    shares = torch.bincount(picked, minlength=3)[:3] / ROWS
    assert torch.allclose(shares, torch.tensor([0.5, 0.3, 0.15]) / 0.95, atol=0.03), shares


def test_a_flat_distribution_keeps_its_whole_top_p_set():
    """Here the top-p set is larger than the tokens looked at first: every one of its tokens can still be drawn."""
    torch.manual_seed(0)
    picked = draws(torch.zeros(ROWS, VOCAB), top_p=0.9)
    assert len(set(picked.tolist())) > NUCLEUS_CANDIDATES


def test_without_top_p_every_token_keeps_its_probability():
    torch.manual_seed(0)
    picked = draws(logits_of([0.4, 0.2]), top_p=1.0)
    shares = torch.bincount(picked, minlength=VOCAB) / ROWS
    assert abs(shares[0] - 0.4) < 0.03 and abs(shares[1] - 0.2) < 0.03
    assert abs(shares[2:].sum() - 0.4) < 0.03  # the many unlikely tokens together
