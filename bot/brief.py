"""The handoff brief: what an operator reads before stepping in, from the stored conversation and plain patterns.

No model call: shopbot's model (135M parameters embedded) is too small to summarise a conversation reliably, so
the brief quotes the customer's key sentences verbatim instead of inventing a summary, and says so."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.lexicon import language_of
from storage.db import StoredMessage

BRIEF_MESSAGES = 30  # the newest stored messages a brief is made from
TREND_LENGTH = 5  # customer messages whose sentiment makes the trend
MAX_QUOTES = 3  # the latest customer message and the most negative ones before it
QUOTE_CHARS = 200  # each quote, and each of the bot's replies, is cut to this
BOT_REPLIES = 2  # the bot's newest replies shown
MAX_FINDS = 5  # order numbers, phones, emails: each list is cut to this
NOT_READ = "—"
QUOTED_NOTE = "their words (quoted, not summarised: the model is too small to summarise reliably)"

# Order numbers only next to a word saying so, so a price or a date is never one: "order #A-1234", "order no. 5531",
# "订单号：2024113001", "单号 SO88231". The number itself has a digit and may carry letters and dashes.
_ORDER = re.compile(
    r"(?:\border(?:\s+(?:no\.?|number|id))?\b|\bref(?:erence)?\b|订单(?:号|编号)?|单号)\s*(?:is|是|为)?\s*[:：#№]?\s*"
    r"(?P<number>#?(?=[A-Za-z0-9-]*\d)[A-Za-z0-9][A-Za-z0-9-]{3,})",
    re.IGNORECASE)
_HASH_NUMBER = re.compile(r"(?<![\w&])#(?P<number>\d{4,})\b")  # "#10442" alone is an order number too
# ASCII classes, not \w: Chinese characters are word characters, and "邮箱ann@shop.cn" has no space before the address.
_EMAIL = re.compile(r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# A phone: an international "+...", a Chinese mobile (11 digits from 13-19) or a number written with separators
# ("(555) 123-4567", "010-6552 1234"), 7 to 15 digits. A bare run of digits is more likely an order or an amount.
_PHONE = re.compile(r"(?<![A-Za-z0-9+#])(?:\+\d[\d\s().-]{6,18}\d|1[3-9]\d{9}|\(?\d{2,4}\)?[\s.-]\d{3,4}[\s.-]?\d{3,4})(?![A-Za-z0-9])")


@dataclass(frozen=True)
class Brief:
    """What the customer wants, in their words, how they feel, and what the bot already told them."""

    intent: str | None  # None: not read
    language: str
    quotes: list[str]  # the customer's key sentences, verbatim (cut to QUOTE_CHARS), oldest first
    trend: list[str | None]  # sentiment labels of their last messages, oldest first; None: not read
    orders: list[str]
    phones: list[str]
    emails: list[str]
    bot_said: list[str]  # the bot's last replies, oldest first, cut to QUOTE_CHARS

    def text(self) -> str:
        """Plain text, a few lines; each line bounded, so the whole is far below one Telegram message."""
        lines = ["📋 Brief",
                 f"Wants: {self.intent or NOT_READ + ' (intent not read)'}",
                 f"Language: {self.language}",
                 f"Sentiment trend: {' → '.join(label or '?' for label in self.trend) or NOT_READ}"]
        lines += [f"In {QUOTED_NOTE}:"] + [f"  “{q}”" for q in self.quotes] if self.quotes else [
            "In their words: nothing written yet"]
        found = [f"{name} {', '.join(items)}" for name, items in
                 (("order", self.orders), ("phone", self.phones), ("email", self.emails)) if items]
        lines.append(f"Mentioned: {'; '.join(found)}" if found else "Mentioned: no order number, phone or email")
        lines += ["The bot told them:"] + [f"  “{s}”" for s in self.bot_said] if self.bot_said else [
            "The bot told them: nothing yet"]
        return "\n".join(lines)


def build(messages: list[StoredMessage]) -> Brief:
    """The brief of a conversation (stored messages with their intents, oldest first)."""
    said = [m for m in messages if m.role == "customer" and m.kind == "text"]
    texts = [m.text for m in said]
    return Brief(
        intent=wants(said),
        language=language_of(" ".join(texts[-TREND_LENGTH:])) if texts else NOT_READ,
        quotes=[_cut(m.text) for m in key_messages(said)],
        trend=[m.sentiment for m in said[-TREND_LENGTH:]],
        orders=_unique(order_numbers(t) for t in texts),
        phones=_unique(phone_numbers(t) for t in texts),
        emails=_unique(emails(t) for t in texts),
        bot_said=[_cut(m.text) for m in [m for m in messages if m.role == "bot" and m.kind == "text"][-BOT_REPLIES:]],
    )


def wants(said: list[StoredMessage]) -> str | None:
    """The intent of their latest message that says what they want: a last "still nothing!!" reads as `other` (or
    `complaint`) while the question it follows up is what an operator must answer. None: no intent read."""
    read = [m.intent for m in said if m.intent]
    specific = [i for i in read if i not in ("other", "complaint")]
    return (specific or read or [None])[-1]


def key_messages(said: list[StoredMessage]) -> list[StoredMessage]:
    """The latest customer message, and before it the most negative ones (by the model's confidence), in order."""
    if not said:
        return []
    *earlier, latest = said
    negative = sorted((m for m in earlier if m.sentiment == "negative"), key=lambda m: -(m.confidence or 0))
    return sorted(negative[:MAX_QUOTES - 1], key=lambda m: m.id) + [latest]


def order_numbers(text: str) -> list[str]:
    found = [m["number"].lstrip("#") for m in _ORDER.finditer(text)]
    return found + [m["number"] for m in _HASH_NUMBER.finditer(text) if m["number"] not in found]


def phone_numbers(text: str) -> list[str]:
    orders = order_numbers(text)
    phones = [m.group().strip() for m in _PHONE.finditer(text)]
    return [p for p in phones if 7 <= sum(c.isdigit() for c in p) <= 15 and p not in orders]


def emails(text: str) -> list[str]:
    return _EMAIL.findall(text)


def _unique(lists) -> list[str]:
    seen: dict[str, None] = {}
    for items in lists:
        seen.update(dict.fromkeys(items))
    return list(seen)[:MAX_FINDS]


def _cut(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= QUOTE_CHARS else text[:QUOTE_CHARS - 1].rstrip() + "…"
