"""KV caches kept between model calls: each active conversation's, and the chat system prompt's shared by all,
and how several of them are laid side by side for one batched generate()."""

from __future__ import annotations

from collections import OrderedDict
from typing import Iterable, Sequence

import torch
from transformers import DynamicCache


class ConversationCaches:
    """Least-recently-used caches keyed by conversation, bounded by the tokens they hold in all, plus one shared
    prefix (the chat system prompt) that a conversation without a cache of its own starts from.

    A cache is reused for the longest prefix its tokens share with the new prompt (a history trimmed at the
    front, or a reply stored differently from how it was generated, shares less and recomputes more).
    Cached tensors are never changed in place: a batch copies what it reuses (see `stitch`)."""

    def __init__(self, max_tokens: int):
        self.max_tokens = max_tokens
        self._caches: OrderedDict[object, tuple[torch.Tensor, DynamicCache]] = OrderedDict()
        self.shared: tuple[torch.Tensor, DynamicCache] | None = None  # set by share()

    def take(self, key: object, ids: torch.Tensor) -> DynamicCache | None:
        """A cache of the longest prefix of `ids` (1-D) held for it, leaving at least one token to run: the key's
        own (which leaves the store until put back) or a copy of the shared one; None when nothing is held."""
        own = self._caches.pop(key, None) if key is not None else None
        reused = [(_shared_prefix(entry[0], ids[:-1]), entry[1]) for entry in (own, self.shared) if entry is not None]
        n, cache = max(reused, key=lambda r: r[0], default=(0, None))
        if n == 0:
            return None
        if self.shared is not None and cache is self.shared[1]:
            return _prefix_copy(cache, n)
        if n < cache.get_seq_length():
            cache.crop(n - cache.get_seq_length())  # a negative count: how many of the newest tokens to drop
        return cache

    def put(self, key: object, ids: torch.Tensor, cache: DynamicCache) -> None:
        """Keep `cache` (holding `ids`, 1-D) as the key's newest; the least recently used go over the bound."""
        if len(ids) > self.max_tokens:
            return
        self._caches[key] = (ids, cache)
        while sum(len(i) for i, _ in self._caches.values()) > self.max_tokens:
            self._caches.popitem(last=False)

    def share(self, ids: torch.Tensor, cache: DynamicCache) -> None:
        """Every conversation may start from `cache` (holding `ids`, 1-D); kept outside the LRU bound."""
        if self.max_tokens:
            self.shared = (ids, cache)

    def forget(self, key: object) -> None:
        self._caches.pop(key, None)


def cache_from(layers: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> DynamicCache:
    """A new cache holding each layer's (keys, values), copied: update() concatenates onto empty tensors."""
    cache = DynamicCache()
    for layer, (keys, values) in enumerate(layers):
        cache.update(keys, values, layer)
    return cache


def _prefix_copy(cache: DynamicCache, n: int) -> DynamicCache:
    return cache_from((c.keys[:, :, :n], c.values[:, :, :n]) for c in cache.layers)


def _shared_prefix(a: torch.Tensor, b: torch.Tensor) -> int:
    n = min(len(a), len(b))
    return int((a[:n] == b[:n]).int().cumprod(0).sum()) if n else 0


def stitch(prompts: Sequence[torch.Tensor], caches: Sequence[DynamicCache | None], pad_id: int):
    """Several prompts (1-D ids) as one batch that each starts from its cache (from `take`) of its first tokens.

    Row i is laid out as [pad][its cached tokens][pad][its new tokens]: every row's cached part ends at the same
    slot S, so the caches line up as one (B, heads, S, dim) cache, and every row's new tokens end at the last
    slot, so all rows generate from the same step on. The mask hides the pads; generate() numbers positions by
    the mask, so a row's tokens keep the positions they had alone. Returns (input_ids (B, S+N), attention_mask
    (B, S+N), cache holding S slots); a single row uses its cache as it is."""
    held = [c.get_seq_length() if c is not None else 0 for c in caches]
    if len(prompts) == 1:
        return prompts[0][None], torch.ones_like(prompts[0])[None], caches[0] or DynamicCache()
    width_held = max(held)
    width_new = max(len(ids) - n for ids, n in zip(prompts, held))
    batch, width = len(prompts), width_held + width_new
    input_ids = torch.full((batch, width), pad_id, dtype=torch.long)
    mask = torch.zeros((batch, width), dtype=torch.long)
    for row, (ids, n) in enumerate(zip(prompts, held)):
        input_ids[row, width_held - n:width_held] = ids[:n]
        input_ids[row, width - (len(ids) - n):] = ids[n:]
        mask[row, width_held - n:width_held] = 1
        mask[row, width - (len(ids) - n):] = 1
    if not width_held:
        return input_ids, mask, DynamicCache()

    def side_by_side(layer: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, heads, S, dim) keys and values of every row's cache at `layer`, each ending at slot S."""
        source = next(c for c in caches if c is not None).layers[layer].keys  # (1, heads, T, dim)
        keys = source.new_zeros(batch, source.shape[1], width_held, source.shape[3])
        values = torch.zeros_like(keys)
        for row, (cache, n) in enumerate(zip(caches, held)):
            if n:
                keys[row, :, width_held - n:] = cache.layers[layer].keys[0]
                values[row, :, width_held - n:] = cache.layers[layer].values[0]
        return keys, values

    depth = len(next(c for c in caches if c is not None).layers)
    return input_ids, mask, cache_from(side_by_side(layer) for layer in range(depth))


def row_cache(cache: DynamicCache, row: int, slots: torch.Tensor) -> DynamicCache:
    """One row's cache out of a batch, kept at `slots` (1-D indices, the row's real tokens); a single row with no
    pads is cropped in place, rows of a batch are copied out."""
    if cache.layers[0].keys.shape[0] == 1 and int(slots[-1]) == len(slots) - 1:
        if len(slots) < cache.get_seq_length():
            cache.crop(len(slots) - cache.get_seq_length())
        return cache
    return cache_from((c.keys[row:row + 1, :, slots], c.values[row:row + 1, :, slots]) for c in cache.layers)
