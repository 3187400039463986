"""KV caches in preallocated slots: one per active conversation, bounded in bytes, least recently used reused first.

A customer's next turn continues in their slot: only the tokens the slot does not already hold run through the
model, and nothing is copied. A conversation without a slot of its own starts from the chat system prompt's
keys and values, computed once (`share`) and copied into the slot (a few dozen tokens).
"""

from __future__ import annotations

import math
import mmap
from collections import OrderedDict
from dataclasses import dataclass

import torch

from bot.config import ConfigError
from bot.llm.model import Shape, attend


@dataclass
class Row:
    """A conversation at the model: its slot, and how many of its tokens the slot holds."""

    slot: int
    held: int


class Slots:
    """keys/values [layers, slots, KVH, context, D] allocated once. Pages the model never wrote stay unbacked
    (calloc'd zero pages), so resident memory follows what conversations hold, up to the bound."""

    def __init__(self, shape: Shape, context: int, budget_bytes: int, dtype: torch.dtype):
        self.context = context
        per_token = 2 * shape.layers * shape.kv_heads * shape.head_dim * torch.finfo(dtype).bits // 8
        self.count = budget_bytes // (per_token * context)
        if self.count < 1:
            raise ConfigError("model.kv_cache_mb", f"{budget_bytes // 2**20} MB holds no conversation of "
                              f"model.context_tokens = {context} on this model (one needs "
                              f"{per_token * context / 2**20:.0f} MB): raise it, or lower model.context_tokens")
        dims = (shape.layers, self.count, shape.kv_heads, context, shape.head_dim)
        self.keys, self.values = _untouched_zeros(dims, dtype), _untouched_zeros(dims, dtype)
        self.tokens: list[list[int]] = [[] for _ in range(self.count)]  # what each slot holds
        self._owner: dict[object, int] = {}
        self._idle: OrderedDict[int, None] = OrderedDict.fromkeys(range(self.count))  # least recently used first
        self.shared: tuple[list[int], list[torch.Tensor], list[torch.Tensor]] | None = None

    @property
    def free(self) -> int:
        """Slots a new conversation could take now (idle ones; their conversations start over)."""
        return len(self._idle)

    def share(self, ids: list[int], keys: list[torch.Tensor], values: list[torch.Tensor]) -> None:
        """Every conversation may start from these per-layer keys/values [KVH, len(ids), D] of `ids`."""
        self.shared = (ids, keys, values)

    def take(self, key: object, ids: list[int]) -> Row | None:
        """A slot for the conversation `key` about to run `ids`: its own when it has one, else the least recently
        used idle one with the shared prefix copied in. At least one token is left to run. None: all are busy."""
        slot = self._owner.get(key) if key is not None else None
        if slot is not None and slot not in self._idle:
            return None  # the conversation's previous turn is still at the model
        if slot is None:
            if not self._idle:
                return None
            slot = next(iter(self._idle))
            self._disown(slot)
            self.tokens[slot] = []
            if self.shared is not None:
                shared_ids, keys, values = self.shared
                n = _common(shared_ids, ids[:-1])
                for layer in range(len(keys)):
                    self.keys[layer, slot, :, :n] = keys[layer][:, :n]
                    self.values[layer, slot, :, :n] = values[layer][:, :n]
                self.tokens[slot] = shared_ids[:n]
            if key is not None:
                self._owner[key] = slot
        self._idle.pop(slot, None)
        held = _common(self.tokens[slot], ids[:-1])
        self.tokens[slot] = ids[:held]
        return Row(slot, held)

    def give_back(self, slot: int, tokens: list[int]) -> None:
        """The row is done and its slot holds `tokens`: kept for its conversation's next turn, or, with no
        conversation (or one forgotten meanwhile), the first to be reused."""
        kept = slot in self._owner.values()
        self.tokens[slot] = tokens if kept else []
        self._idle[slot] = None
        self._idle.move_to_end(slot, last=kept)

    def forget(self, key: object) -> None:
        """Drop a conversation's slot contents (/forget); a slot in use is dropped when given back."""
        slot = self._owner.pop(key, None)
        if slot is not None and slot in self._idle:
            self.tokens[slot] = []
            self._idle.move_to_end(slot, last=False)

    def holds(self, key: object) -> int:
        """Tokens held for a conversation (0 without a slot)."""
        slot = self._owner.get(key)
        return 0 if slot is None else len(self.tokens[slot])

    def _disown(self, slot: int) -> None:
        for key, owned in list(self._owner.items()):
            if owned == slot:
                del self._owner[key]


def _untouched_zeros(dims: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """Zeros in an anonymous mapping: a page costs memory only once written. (numpy's large zeros ask for 2 MB
    huge pages, so one token written per slot and layer backed the whole cache: +500 MB at 8 customers.)"""
    buffer = mmap.mmap(-1, math.prod(dims) * torch.finfo(dtype).bits // 8)
    return torch.frombuffer(buffer, dtype=dtype).view(dims)  # the tensor keeps the mapping alive


def _common(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


class InSlots:
    """Attention for rows in slots: each row's new keys/values are written at its positions in its slot and its
    queries attend over everything the slot holds up to them."""

    def __init__(self, slots: Slots, rows: list[Row]):
        self.slots, self.rows = slots, rows
        self._slot = torch.tensor([r.slot for r in rows])
        self._at = torch.tensor([r.held for r in rows])

    def __call__(self, layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        keys, values = self.slots.keys[layer], self.slots.values[layer]  # [slots, KVH, context, D]
        S = q.shape[2]
        if len(self.rows) == 1:
            slot, start = self.rows[0].slot, self.rows[0].held
            keys[slot, :, start:start + S] = k[0]
            values[slot, :, start:start + S] = v[0]
            return attend(q, keys[slot:slot + 1, :, :start + S], values[slot:slot + 1, :, :start + S], start)
        # Several rows decode one token each: write all at once, attend row by row over views (no copies).
        keys[self._slot, :, self._at] = k[:, :, 0]
        values[self._slot, :, self._at] = v[:, :, 0]
        return torch.cat([attend(q[b:b + 1], keys[r.slot:r.slot + 1, :, :r.held + 1],
                                 values[r.slot:r.slot + 1, :, :r.held + 1], r.held)
                          for b, r in enumerate(self.rows)])


class Scratch:
    """Attention for a one-off pass whose keys/values are kept in plain tensors: a fixed prefix computed once
    (the system prompt, a role's instruction), or batched rows that all start from such a prefix."""

    def __init__(self, prefix: "Scratch | None" = None, rows: int = 1):
        self.keys: list[torch.Tensor] = []  # per layer [B, KVH, T, D]
        self.values: list[torch.Tensor] = []
        if prefix is not None:
            self.keys = [k.expand(rows, -1, -1, -1) for k in prefix.keys]
            self.values = [v.expand(rows, -1, -1, -1) for v in prefix.values]

    @property
    def length(self) -> int:
        return self.keys[0].shape[2] if self.keys else 0

    def __call__(self, layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        if layer < len(self.keys):
            start = self.keys[layer].shape[2]
            self.keys[layer] = torch.cat([self.keys[layer], k], 2)
            self.values[layer] = torch.cat([self.values[layer], v], 2)
        else:
            start = 0
            self.keys.append(k)
            self.values.append(v)
        return attend(q, self.keys[layer], self.values[layer], start)
