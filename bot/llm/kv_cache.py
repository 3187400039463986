"""Each active conversation's KV cache, kept between turns so a new turn processes only its new tokens."""

from __future__ import annotations

from collections import OrderedDict

import torch
from transformers import DynamicCache


class ConversationCaches:
    """Least-recently-used caches keyed by conversation, bounded by the tokens they hold in all.

    A cache is reused for the longest prefix its tokens share with the new prompt (a history trimmed at the
    front, or a reply stored differently from how it was generated, shares less and recomputes more)."""

    def __init__(self, max_tokens: int):
        self.max_tokens = max_tokens
        self._caches: OrderedDict[object, tuple[torch.Tensor, DynamicCache]] = OrderedDict()

    def take(self, key: object, ids: torch.Tensor) -> DynamicCache | None:
        """The key's cache cropped to the prefix it shares with `ids` (1-D), leaving at least one token to run."""
        if key not in self._caches:
            return None
        cached_ids, cache = self._caches.pop(key)
        n = min(len(cached_ids), len(ids) - 1)
        same = (cached_ids[:n] == ids[:n]).int()
        shared = int(same.cumprod(0).sum()) if n > 0 else 0
        if shared == 0:
            return None
        if shared < len(cached_ids):
            cache.crop(shared - len(cached_ids))  # a negative count: how many of the newest tokens to drop
        return cache

    def put(self, key: object, ids: torch.Tensor, cache: DynamicCache) -> None:
        """Keep `cache` (holding `ids`, 1-D) as the key's newest; the least recently used go over the bound."""
        if len(ids) > self.max_tokens:
            return
        self._caches[key] = (ids, cache)
        while sum(len(i) for i, _ in self._caches.values()) > self.max_tokens:
            self._caches.popitem(last=False)

    def forget(self, key: object) -> None:
        self._caches.pop(key, None)
