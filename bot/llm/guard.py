"""Checks on the model's reply before a customer sees it: no chat-template tokens, no system prompt read back,
no half sentence or half word."""

from __future__ import annotations

import re
from collections.abc import Iterable

MIN_LEAK_CHARS = 30  # shorter prompt sentences ("Answer briefly.") are ordinary phrases, not a leak
# A draft ending in this much of a prompt sentence's start is held: it may be the prompt being read back, and a
# draft, once shown, can't be taken back. Short, so a held draft shows at most a few words ("you are the").
DRAFT_HOLD_CHARS = 12
_SENTENCE = re.compile(r"[^.!?。！？]+[.!?。！？]?")


def _normal(text: str) -> str:
    return " ".join(text.lower().split())


def _prompt_sentences(system_prompt: str) -> list[str]:
    """The prompt's sentences long enough that repeating one is a leak, normalised."""
    return [s for s in (_normal(m.group()) for m in _SENTENCE.finditer(system_prompt)) if len(s) >= MIN_LEAK_CHARS]


def leaks_prompt(reply: str, system_prompt: str) -> bool:
    """True when the reply repeats a whole sentence of the system prompt (case and spacing ignored)."""
    reply = _normal(reply)
    return any(s in reply for s in _prompt_sentences(system_prompt))


def _ends_in_prompt_sentence(draft: str, system_prompt: str) -> bool:
    """True when the draft ends with the first DRAFT_HOLD_CHARS or more characters of a prompt sentence."""
    draft = _normal(draft)
    for sentence in _prompt_sentences(system_prompt):
        for start in range(max(0, len(draft) - len(sentence)), len(draft) - DRAFT_HOLD_CHARS + 1):
            if sentence.startswith(draft[start:]):
                return True
    return False


def clean_reply(reply: str, special_tokens: Iterable[str], system_prompt: str) -> str:
    """The reply with template tokens removed; empty (so the fallback is sent) if it gives the prompt away."""
    for token in special_tokens:
        reply = reply.replace(token, "")
    # Also marker text of templates this tokenizer does not know, e.g. "<|system|>" or "<|user|>".
    reply = re.sub(r"<\|[^|<>\s]{1,30}\|>", "", reply).strip()
    return "" if leaks_prompt(reply, system_prompt) else reply


def clean_draft(draft: str, special_tokens: Iterable[str], system_prompt: str) -> str:
    """A reply still being written as clean_reply sees it; empty (not shown) also while it is part way through a
    prompt sentence, which the final check would catch only once whole: a draft never shows what the final
    reply would be replaced for."""
    draft = clean_reply(draft, special_tokens, system_prompt)
    return "" if _ends_in_prompt_sentence(draft, system_prompt) else draft


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
