"""Checks on the model's reply before a customer sees it: no chat-template tokens, no system prompt read back,
no half sentence or half word."""

from __future__ import annotations

import re
from collections.abc import Iterable

MIN_LEAK_CHARS = 30  # shorter prompt sentences ("Answer briefly.") are ordinary phrases, not a leak
_SENTENCE = re.compile(r"[^.!?。！？]+[.!?。！？]?")


def _normal(text: str) -> str:
    return " ".join(text.lower().split())


def leaks_prompt(reply: str, system_prompt: str) -> bool:
    """True when the reply repeats a whole sentence of the system prompt (case and spacing ignored)."""
    reply = _normal(reply)
    return any(len(s) >= MIN_LEAK_CHARS and s in reply
               for s in (_normal(m.group()) for m in _SENTENCE.finditer(system_prompt)))


def clean_reply(reply: str, special_tokens: Iterable[str], system_prompt: str) -> str:
    """The reply with template tokens removed; empty (so the fallback is sent) if it gives the prompt away."""
    for token in special_tokens:
        reply = reply.replace(token, "")
    # Also marker text of templates this tokenizer does not know, e.g. "<|system|>" or "<|user|>".
    reply = re.sub(r"<\|[^|<>\s]{1,30}\|>", "", reply).strip()
    return "" if leaks_prompt(reply, system_prompt) else reply


SENTENCE_END = re.compile(r"[.!?。！？…](?=\s|$)|[。！？]")


def end_at_sentence(text: str) -> str:
    """The text up to its last complete sentence (all of it when no sentence ends)."""
    ends = [m.end() for m in SENTENCE_END.finditer(text)]
    return text[: ends[-1]] if ends else text


def whole_words(text: str, final: bool = False) -> str:
    """A reply still being written, as a customer may see it: without the word still being written."""
    if not final and not _ends_a_word(text):
        text = text[:max(text.rfind(" "), text.rfind("\n"), 0)]
    return text.strip()


def _ends_a_word(text: str) -> bool:
    """Whether the text so far ends on a whole word (CJK characters each count as one)."""
    if not text or text.endswith("\ufffd"):  # half a multi-byte character
        return False
    return text[-1].isspace() or is_cjk(text[-1])


def is_cjk(char: str) -> bool:
    """CJK ideographs and punctuation, full-width forms: each is a word of its own."""
    return "\u2e80" <= char <= "\u9fff" or "\uff00" <= char <= "\uffef"
