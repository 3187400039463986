"""Continuous batching of chat replies: every decode step runs all active replies at once; a finished reply leaves
and a waiting one joins at the next step, each in its own KV slot."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
from transformers import PreTrainedTokenizerBase

from bot.config import ChatSettings
from bot.llm.generation import Growing, next_tokens
from bot.llm.model import Decoder
from bot.llm.guard import end_at_sentence
from bot.llm.prompts import as_data, chat_messages, grounded
from bot.llm.slots import InSlots, Row, Scratch, Slots


@dataclass(frozen=True)
class ReplyRequest:
    """One customer's turn for the chat role."""

    history: Sequence[tuple[str, str]]
    text: str
    facts: Sequence[str] = ()
    on_text: Callable[[str], None] | None = None  # called on the model thread with the reply so far
    conversation: object = None  # keeps a KV slot for the next turn under this key


@dataclass(eq=False)
class Turn:
    """A reply on its way: waiting for a slot, then decoding one token per step."""

    request: ReplyRequest
    finish: Callable[[str | BaseException], None]  # hands over the reply (or the error); called once
    started: Callable[[], None] = lambda: None  # its prefill begins
    cancelled: bool = False  # set from any thread: the row leaves at the next step
    tokens: list[int] = field(default_factory=list)  # prompt, then the reply's tokens
    prompt_length: int = 0
    row: Row | None = None
    growing: Growing | None = None

    @property
    def new(self) -> list[int]:
        return self.tokens[self.prompt_length:]


class ReplyLoop:
    """Runs on the engine's thread, one `step()` at a time; `add()` may be called from any thread."""

    def __init__(self, decoder: Decoder, tokenizer: PreTrainedTokenizerBase, slots: Slots, chat: ChatSettings,
                 special_tokens: list[str], stop_ids: frozenset[int], batch_size: int):
        self.decoder, self.tokenizer, self.slots, self.chat = decoder, tokenizer, slots, chat
        self._special, self._stop_ids = special_tokens, stop_ids
        self.batch_size = min(batch_size, slots.count)
        self._waiting: deque[Turn] = deque()  # appended by any thread, taken by the engine's (deque ops are atomic)
        self.running: list[Turn] = []

    def add(self, turn: Turn) -> None:
        self._waiting.append(turn)

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    @property
    def busy(self) -> bool:
        return bool(self.running or self._waiting)

    @torch.inference_mode()
    def step(self) -> None:
        """Let waiting turns join (each prefilled in its slot), then run one decode step over all rows."""
        self._admit()
        for turn in list(self.running):
            self._accept(turn)
        if not self.running:
            return
        try:
            self._decode()
        except Exception as exc:  # every reply of the step hears of it
            for turn in list(self.running):
                self._end(turn, exc)

    def _admit(self) -> None:
        while self._waiting and len(self.running) < self.batch_size:
            turn = self._waiting[0]
            try:
                if not turn.cancelled and not turn.tokens:
                    turn.tokens = self._prompt(turn.request)
                    turn.prompt_length = len(turn.tokens)
            except Exception as exc:
                self._waiting.popleft()
                self._end(turn, exc)
                continue
            if not turn.cancelled:
                turn.row = self.slots.take(turn.request.conversation, turn.tokens)
                if turn.row is None:
                    return  # every slot is busy (or this conversation's is): it joins when a reply ends
            self._waiting.popleft()
            if turn.cancelled:
                continue
            turn.started()
            try:
                self._prefill(turn)
            except Exception as exc:
                self._end(turn, exc)
                continue
            self.running.append(turn)

    def _prompt(self, request: ReplyRequest) -> list[int]:
        """The chat role's prompt: the shop system prompt (+ the shop's facts to answer from) + history + message,
        without the oldest past turns that would not leave the reply room in a slot."""
        system = grounded(self.chat.system_prompt, request.facts)
        history = [(role, as_data(past, self._special)) for role, past in request.history]
        text = as_data(request.text, self._special)
        room = self.slots.context - self.chat.generation.max_new_tokens

        def ids(dropped: int) -> list[int]:
            messages = chat_messages(system, history[dropped:], text)
            return self.tokenizer.apply_chat_template(messages, add_generation_prompt=True,
                                                      return_dict=True)["input_ids"]

        # The history was cut to chat.history_tokens by its text alone; the template's tokens around each turn
        # (~5 a turn) can still overflow the slot. Fewest oldest turns to leave out: a binary search (6 templates
        # for 60 turns, not one per turn, on the thread every decode step waits for).
        low, high = 0, len(history)
        while low < high:
            middle = (low + high) // 2
            low, high = (low, middle) if len(ids(middle)) <= room else (middle + 1, high)
        prompt = ids(low)
        if len(prompt) > room:  # the system prompt, facts and message alone do not fit
            raise ValueError(f"prompt of {len(prompt)} tokens does not fit model.context_tokens")
        return list(prompt)

    def _prefill(self, turn: Turn) -> None:
        """Run the prompt's tokens the slot does not hold yet; pick the reply's first token."""
        if self.slots.shared is None:
            self._share_system_prompt()
        row = turn.row
        new = torch.tensor([turn.tokens[row.held:]])  # [1, S]
        positions = torch.arange(row.held, len(turn.tokens))[None]
        hidden, _ = self.decoder.forward(new, positions, InSlots(self.slots, [row]))
        row.held = len(turn.tokens)
        if turn.request.on_text is not None:
            turn.growing = Growing(self.tokenizer, turn.request.on_text)
        turn.tokens += next_tokens(self.decoder.logits(hidden[:, -1]), [turn.tokens], self.chat.generation)

    def _share_system_prompt(self) -> None:
        """Run the chat system prompt once; every conversation without a slot of its own starts from it."""
        ids = self.tokenizer.apply_chat_template([{"role": "system", "content": self.chat.system_prompt}],
                                                 return_dict=True)["input_ids"]
        cache = Scratch()
        self.decoder.forward(torch.tensor([ids]), torch.arange(len(ids))[None], cache)
        self.slots.share(list(ids), [k[0] for k in cache.keys], [v[0] for v in cache.values])

    def _accept(self, turn: Turn) -> None:
        """Look at the turn's newest token: the reply ends there, or it grows by it."""
        token = turn.tokens[-1]
        if turn.cancelled:
            self._end(turn, "")
        elif token in self._stop_ids:
            turn.tokens.pop()
            self._end(turn, self._text(turn, cut=False))
        elif len(turn.new) >= self.chat.generation.max_new_tokens or turn.row.held + 1 >= self.slots.context:
            self._end(turn, self._text(turn, cut=True))
        elif turn.growing is not None:
            turn.growing.show(turn.new)

    def _decode(self) -> None:
        """One token for every running row: [B, 1] in, each row's next token out."""
        rows = [turn.row for turn in self.running]
        tokens = torch.tensor([[turn.tokens[-1]] for turn in self.running])
        positions = torch.tensor([[row.held] for row in rows])
        hidden, _ = self.decoder.forward(tokens, positions, InSlots(self.slots, rows))
        for row in rows:
            row.held += 1
        picked = next_tokens(self.decoder.logits(hidden[:, -1]), [t.tokens for t in self.running],
                             self.chat.generation)
        for turn, token in zip(self.running, picked):
            turn.tokens.append(token)

    def _text(self, turn: Turn, cut: bool) -> str:
        reply = self.tokenizer.decode(turn.new, skip_special_tokens=True).strip()
        if turn.growing is not None:
            turn.growing.show(turn.new, final=True)
        return end_at_sentence(reply) if cut else reply  # cut off by the token limit: drop the half sentence

    def _end(self, turn: Turn, result: str | BaseException) -> None:
        """The row leaves: its slot keeps what it holds for the conversation's next turn."""
        if turn in self.running:
            self.running.remove(turn)
        if turn.row is not None:
            self.slots.give_back(turn.row.slot, turn.tokens[:turn.row.held])
            turn.row = None
        turn.finish(result)
