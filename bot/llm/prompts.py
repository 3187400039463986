"""The two roles' prompts: chat messages for the shop persona and for the sentiment instruction."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

GROUNDING = "\nAnswer only from these facts of the shop:\n"
# Stands for the message in a sentiment prompt run through a chat template once, so the template's text around the
# message is known (the local engine computes the part before it once; a server head fills it in per message).
SENTINEL = "\x00MESSAGE\x00"
# Stored roles -> chat-template roles. An operator speaks for the shop, so the model sees it as its own turn.
TEMPLATE_ROLE = {"customer": "user", "bot": "assistant", "operator": "assistant"}


def as_data(text: str, special_tokens: Iterable[str]) -> str:
    """Customer text as plain data: a typed `<|im_start|>` must not become a real chat-template token."""
    for token in special_tokens:
        if token and token in text:
            # A zero-width joiner after the first character keeps the text readable but unparseable as a token.
            text = text.replace(token, token[0] + "\u2060" + token[1:])
    return text


def chat_messages(system_prompt: str, history: Sequence[tuple[str, str]], text: str) -> list[dict[str, str]]:
    """System prompt, then past turns (stored role, text) oldest first, then the new customer message."""
    messages = [{"role": "system", "content": system_prompt}]
    messages += [{"role": TEMPLATE_ROLE[role], "content": past} for role, past in history]
    messages.append({"role": "user", "content": text})
    return messages


def sentiment_messages(instruction: str, text: str) -> list[dict[str, str]]:
    """The sentiment instruction as the system turn; the customer's text alone as the user turn."""
    return [{"role": "system", "content": instruction}, {"role": "user", "content": text}]


def grounded(system_prompt: str, facts: Sequence[str]) -> str:
    """The chat system prompt with the shop's facts to answer from (unchanged without facts)."""
    return system_prompt + GROUNDING + "\n".join(f"- {fact}" for fact in facts) if facts else system_prompt
