"""Turn a role's generation settings into transformers `generate()` arguments."""

from __future__ import annotations

from transformers import PreTrainedTokenizerBase

from bot.config import GenerationSettings


def pad_id(tokenizer: PreTrainedTokenizerBase) -> int:
    """The token that fills a batch's padding: the tokenizer's pad token, else its end-of-sequence token."""
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id


def generation_kwargs(settings: GenerationSettings, tokenizer: PreTrainedTokenizerBase) -> dict:
    kwargs = {
        "max_new_tokens": settings.max_new_tokens,
        "repetition_penalty": settings.repetition_penalty,
        "pad_token_id": pad_id(tokenizer),
    }
    if settings.temperature > 0:
        kwargs.update(do_sample=True, temperature=settings.temperature, top_p=settings.top_p)
    else:
        kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
    return kwargs
