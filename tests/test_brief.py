"""The handoff brief (#18): order numbers, phones and emails by plain patterns (en and zh), the sentiment trend, the
language, the quoted key sentences and what the bot said; bounded whatever the conversation."""

import pytest

from bot.brief import QUOTED_NOTE, build, emails, order_numbers, phone_numbers
from bot.config import ConfigError, load_config
from bot.telegram.handlers.sending import utf16_len
from bot.telegram.topics import NAME_LIMIT, topic_name
from storage.db import Customer, StoredMessage
from tests.test_config import override


def said(*turns: tuple) -> list[StoredMessage]:
    """(role, text[, sentiment, confidence[, intent]]) turns as stored, oldest first."""
    return [StoredMessage(i, t[0], "text", t[1], *(t[2:4] or (None, None)), created_at=float(i), intent=t[4] if
                          len(t) > 4 else None) for i, t in enumerate(turns, 1)]


@pytest.mark.parametrize("text, orders", [
    ("Where is order #A-1234?", ["A-1234"]),
    ("Order No: 5531 arrived broken", ["5531"]),
    ("my order number is SO-2024-0042", ["SO-2024-0042"]),
    ("about #10442 please", ["10442"]),
    ("我的订单号是2024113001，还没到", ["2024113001"]),
    ("单号：SO88231", ["SO88231"]),
    ("the order is late, I paid 129.00 on 2024-11-30", []),  # no number next to "order"; a price and a date
    ("I want a refund for 2 items", []),
])
def test_order_numbers_are_found_next_to_a_word_saying_so(text, orders):
    assert order_numbers(text) == orders


@pytest.mark.parametrize("text, phones", [
    ("call me on +86 138 1234 5678", ["+86 138 1234 5678"]),
    ("电话13812345678谢谢", ["13812345678"]),
    ("座机：010-6552 1234", ["010-6552 1234"]),
    ("US: (555) 123-4567 or +1-555-123-4567", ["(555) 123-4567", "+1-555-123-4567"]),
    ("order 12345678 total 2024", []),  # a bare run of digits is an order or an amount, not a phone
    ("delivered 2024-11-30", []),
])
def test_phone_numbers_in_english_and_chinese_formats(text, phones):
    assert phone_numbers(text) == phones


@pytest.mark.parametrize("text, found", [
    ("write to ann.k+shop@mail.example.com please", ["ann.k+shop@mail.example.com"]),
    ("邮箱ann@shop.cn，谢谢", ["ann@shop.cn"]),  # no space before the address in Chinese
    ("@ann_k on telegram, not an email", []),
])
def test_emails(text, found):
    assert emails(text) == found


def test_the_brief_quotes_the_latest_and_most_negative_messages_with_the_trend():
    brief = build(said(
        ("customer", "hi, where is my parcel?", "neutral", 0.7, "order_status"),
        ("bot", "It ships within 2 days."),
        ("customer", "It is a week late, this is terrible!", "negative", 0.95, "complaint"),
        ("customer", "ok", "neutral", 0.6, "other"),
        ("customer", "still nothing, mildly annoyed", "negative", 0.71),
        ("customer", "order #A-1234, call +86 138 1234 5678", "negative", 0.8),
        ("bot", "I have asked a person from the shop to join."),
    ))
    assert brief.trend == ["neutral", "negative", "neutral", "negative", "negative"]
    # The two most negative before the latest, in the order they were written, then the latest.
    assert brief.quotes == ["It is a week late, this is terrible!", "still nothing, mildly annoyed",
                            "order #A-1234, call +86 138 1234 5678"]
    assert (brief.orders, brief.phones, brief.language) == (["A-1234"], ["+86 138 1234 5678"], "en")
    text = brief.text()
    assert "Wants: order_status" in text and QUOTED_NOTE in text
    assert "Sentiment trend: neutral → negative → neutral → negative → negative" in text
    assert "The bot told them:\n  “It ships within 2 days.”\n  “I have asked a person" in text


def test_a_brief_without_intent_or_findings_says_so_and_reads_chinese():
    brief = build(said(("customer", "你好，我的快递到哪里了？"), ("customer", "太慢了！", "negative", 0.9)))
    text = brief.text()
    assert brief.language == "zh" and brief.intent is None
    assert "Wants: — (intent not read)" in text
    assert "Sentiment trend: ? → negative" in text  # the first message's sentiment was not read
    assert "Mentioned: no order number, phone or email" in text and "The bot told them: nothing yet" in text


def test_the_brief_stays_short_whatever_the_conversation():
    long = "terrible " * 2000 + "order 77881 a@b.io +44 20 7946 0958"
    brief = build(said(*[("customer", f"{i} {long}", "negative", 0.9) for i in range(30)],
                       ("bot", "sorry " * 500)))
    assert utf16_len(brief.text()) < 1500  # a third of one Telegram message: the alert around it fits too
    assert all(q.endswith("…") for q in brief.quotes)


def test_topic_names_fit_telegrams_limit():
    plain = Customer(1, "telegram", "1001", "Ann", "ann_k")
    assert topic_name(plain) == "Ann @ann_k · Telegram 1001"
    long = topic_name(Customer(2, "web", "v-42", "😀" * 200, None))
    assert utf16_len(long) <= NAME_LIMIT and long.endswith("… · web v-42")


def test_an_unknown_topic_mode_fails_at_start_naming_the_key(tmp_path):
    with pytest.raises(ConfigError) as exc:
        load_config(override(tmp_path, "handoff.topic_per_customer", "sometimes"), environ={})
    assert exc.value.key == "handoff.topic_per_customer" and "alert, first_message, off" in exc.value.reason
