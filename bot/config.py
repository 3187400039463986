"""Load and validate config.toml into typed settings; a bad value fails at start naming its key."""

from __future__ import annotations

import ipaddress
import json
import os
import re
import tomllib
from dataclasses import asdict, field, replace
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Callable, Literal, Union, get_args, get_origin

from pydantic import AfterValidator, BeforeValidator, ConfigDict, TypeAdapter, ValidationError, model_validator
from pydantic.dataclasses import dataclass

from bot import hours
from bot.llm.intents import INTENTS

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "config.toml"  # the shipped one, in a source checkout
TOKEN_ENV = "TELEGRAM_BOT_TOKEN"
WEB_SECRET_ENV = "SHOPBOT_WEB_SECRET"  # signs the web chat's visitor cookies
WEB_SECRET_MIN_CHARS = 32
MODEL_KEY_ENV = "SHOPBOT_MODEL_API_KEY"  # the remote model server's API key (backend = "openai"), if it wants one
# Config fields read from the environment, never from the file.
SECRETS = ("telegram_token", "model_api_key", "web_secret")


class ConfigError(ValueError):
    """A config value is missing or wrong; the message starts with the dotted key."""

    def __init__(self, key: str, reason: str):
        super().__init__(f"config error: {key}: {reason}")
        self.key, self.reason = key, reason


def rule(ok: Callable[[Any], bool], reason: str) -> AfterValidator:
    """What a value must be: pydantic refuses a value failing `ok`, and the error names its key with `reason`."""
    def check(value: Any) -> Any:
        if not ok(value):
            raise ValueError(reason)
        return value
    return AfterValidator(check)


def at_least(low: int, note: str = "") -> AfterValidator:
    return rule(lambda value: value >= low, f"must be >= {low}{note}")


def above(low: int) -> AfterValidator:
    return rule(lambda value: value > low, f"must be > {low}")


def between(low: int, high: int) -> AfterValidator:
    return rule(lambda value: low <= value <= high, f"must be between {low} and {high}")


def template(**example: Any) -> AfterValidator:
    """A text the bot fills in with str.format: only the names in `example` may appear."""
    def check(text: str) -> str:
        try:
            text.format(**example)
        except (KeyError, IndexError, ValueError) as exc:
            names = " and ".join(f"{{{name}}}" for name in example)
            raise ValueError(f"only {names} can be filled in ({exc!r})") from None
        return text
    return AfterValidator(check)


def within(key: str, ok: bool, reason: str) -> None:
    """A check across the keys of one table, naming `key` (relative to the table) when it fails."""
    if not ok:
        raise ConfigError(key, reason)


def _non_empty_path(value: Any) -> Any:
    if value == "":
        raise ValueError("must be a non-empty path string")
    return value


def _is_network(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return True


def _optional_path(value: Any) -> Any:
    if isinstance(value, str) and not value.strip():
        return None  # the file's "" is none
    return value


def _chat_id(value: Any) -> int | None:
    if value is None or value == 0:  # the file's 0 is none
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"must be an integer chat id, got {value!r}")
    return value


def _listen(text: str) -> str:
    if text:  # empty: that server is off
        listen_address("", text)
    return text


Text = Annotated[str, rule(lambda text: bool(text.strip()), "must not be empty")]
TelegramText = Annotated[str, rule(lambda text: bool(text.strip()),
                                   "must not be empty (Telegram refuses empty messages)")]
Words = tuple[Text, ...]  # a TOML list of non-empty strings


class Localized(dict):
    """A text a customer reads, by language code; English stands in for a language the table lacks."""

    def for_lang(self, lang: str) -> str:
        return self[lang] if lang in self else self["en"]


def localized(text: Any) -> Any:
    """A customer text in their language: one string (the same in every language, as before #16), or a table by
    language code with at least "en", written as dotted keys: `fallback_reply.en = "..."`, `fallback_reply.zh = "..."`."""
    return Annotated[dict[str, text], BeforeValidator(lambda value: {"en": value} if isinstance(value, str) else value),
                     rule(lambda texts: "en" in texts, 'needs an "en" text (it stands in for other languages)'),
                     AfterValidator(Localized)]


def silent() -> Any:
    """The default of an optional customer text: empty, the bot says nothing."""
    return field(default_factory=lambda: Localized(en=""))


HttpUrl = Annotated[str, rule(lambda url: url.startswith(("http://", "https://")), "must be an http(s) URL")]
Origin = Annotated[str, rule(lambda url: url.startswith(("http://", "https://")) and url.count("/") == 2,
                             "must be a scheme and host like \"https://shop.example\" (no path)")]
Listen = Annotated[str, AfterValidator(_listen)]
Network = Annotated[str, rule(_is_network,
                              "must be an IP address or network, e.g. \"127.0.0.1\" or \"10.0.0.0/8\"")]
Fraction = Annotated[float, between(0, 1)]
Intent = Annotated[str, rule(lambda name: name in INTENTS, f"must be one of {', '.join(INTENTS)}")]
NonEmptyPath = Annotated[Path, BeforeValidator(_non_empty_path)]
# A knowledge entry's framing: {answer} must appear (and {question} may).
AnswerText = Annotated[str, template(answer="", question=""),
                       rule(lambda text: "\0" in text.format(answer="\0", question=""), "must contain {answer}")]
SentimentMethod = Literal["generate", "logits", "head"]
SENTIMENT_METHODS = get_args(SentimentMethod)

# Frozen, so settings are values that dataclasses.replace copies (and checks again); a key the class does not
# have is a typo; strict: a value of the wrong TOML type is refused, never converted ("5" is no 5, true no 1).
# A key without a default below (the texts customers and operators see) must be in the file, as in the shipped one.
# allow_inf_nan=False: "inf" seconds or minutes would pass every lower bound, then fail deep inside (a timer that
# cannot be scheduled) instead of at start with the key.
settings = dataclass(frozen=True, kw_only=True, config=ConfigDict(extra="forbid", strict=True, allow_inf_nan=False))


@settings
class GenerationSettings:
    max_new_tokens: Annotated[int, between(1, 4096)] = 96
    temperature: Annotated[float, between(0, 5)] = 0.7  # 0 means greedy (deterministic)
    top_p: Annotated[float, rule(lambda p: 0 < p <= 1, "must be in (0, 1]")] = 0.9
    repetition_penalty: Annotated[float, above(0)] = 1.2


@settings
class ModelSettings:
    # "embedded", a .gguf file, a checkpoint directory, or a hub id
    source: Annotated[str, rule(lambda source: bool(source.strip()), "must name a model")] = "embedded"
    cache_dir: NonEmptyPath = Path("data/models")
    weights: Literal["int4", "int8", "bf16", "fp32"] = "int4"  # the format the weights are held and multiplied in
    threads: Annotated[int, at_least(0)] = 0  # 0: let torch decide
    context_tokens: int = 2048  # the longest conversation (prompt + reply) one KV slot holds
    # all KV slots together: active conversations' caches kept between turns (LRU)
    kv_cache_mb: Annotated[int, at_least(1)] = 512
    # customers whose sentiment or reply waits at the same time run as one batch (1 = one by one)
    batch_size: Annotated[int, at_least(1)] = 8
    timeout_seconds: Annotated[float, above(0)] = 60.0
    # "local": the model in this process; "openai": an OpenAI-compatible server at base_url
    backend: Literal["local", "openai"] = "local"
    base_url: str = ""  # backend = "openai": e.g. http://127.0.0.1:8080/v1
    model: str = ""  # backend = "openai": the model name the server knows; empty: the server's only model
    # backend = "openai": requests in flight at once (the server batches them)
    max_concurrency: Annotated[int, at_least(1)] = 4

    @model_validator(mode="after")
    def _server_named(self) -> ModelSettings:
        within("base_url", self.backend != "openai" or self.base_url.startswith(("http://", "https://")),
               "must be the server's http(s) URL, e.g. http://127.0.0.1:8080/v1")
        return self


@settings
class SentimentSettings:
    method: SentimentMethod = "logits"
    instruction: Text
    head_path: str = ""  # empty: the head shipped with shopbot
    neutral_below: Fraction = 0.6
    generation: GenerationSettings = GenerationSettings(max_new_tokens=10, temperature=0.0)


@settings
class ChatSettings:
    system_prompt: Text
    history_tokens: Annotated[int, rule(lambda tokens: tokens >= 64, "must be at least 64")] = 1024
    max_message_tokens: int = 256
    fallback_reply: localized(Text)
    empty_reply: localized(Text)
    # a customer's messages beyond this are stored, not answered; 0: no limit
    rate_limit_per_minute: Annotated[int, at_least(0, " (0 turns the limit off)")] = 20
    slow_down_reply: localized(Text)  # said once when a customer goes over the rate limit
    same_language_only: bool = True  # a model-written reply in another language is replaced by a hand-over
    # without knowledge: "on" the model writes replies, "off" small talk + a person
    free_chat: Literal["auto", "on", "off"] = "auto"
    generation: GenerationSettings = GenerationSettings()

    @model_validator(mode="after")
    def _message_fits_history(self) -> ChatSettings:
        within("max_message_tokens", 1 <= self.max_message_tokens <= self.history_tokens,
               "must be between 1 and chat.history_tokens")
        return self


@settings
class AlertSettings:
    threshold: Fraction = 0.7
    cooldown_minutes: Annotated[float, at_least(0)] = 30.0
    operator_chat_id: Annotated[int | None, BeforeValidator(_chat_id)] = None
    context_turns: Annotated[int, at_least(0)] = 6
    # undelivered alerts (operator chat unreachable) are retried this often
    outbox_retry_seconds: Annotated[float, rule(lambda seconds: 0 < seconds <= 86400,
                                                "must be > 0 and at most 86400 (a day)")] = 60.0
    # Escalation beyond one negative message (#5); each alert names the rule that fired.
    negatives_in_a_row: Annotated[int, at_least(0, " (0 turns the rule off)")] = 3
    very_negative: float = 0.9  # a negative read at least this sure alerts even within the cooldown
    human_phrases: Words = ()  # a message containing one (any case) asks for a person
    # A customer message read as one of these intents alerts whatever its sentiment (README, "Intents")
    always_alert_intents: tuple[Intent, ...] = ("human",)

    @model_validator(mode="after")
    def _very_negative_is_above_the_threshold(self) -> AlertSettings:
        within("very_negative", self.threshold <= self.very_negative <= 1.0, "must be between alerts.threshold and 1")
        return self


@settings
class HandoffSettings:
    # a takeover with no operator reply for this long goes back to the bot
    idle_minutes: Annotated[float, above(0)] = 30.0
    customer_notice: localized(TelegramText)  # told to the customer once per takeover
    human_reply: localized(TelegramText)  # the answer to /human or a request for a person
    # a forum operator chat: each customer gets a topic at their first alert, their first message, or never
    topic_per_customer: Literal["alert", "first_message", "off"] = "alert"


def _hours_rule(parse: Callable[[str], Any]) -> AfterValidator:
    """A [hours] value bot/hours.py can read: its ValueError is the reason the key is refused."""
    def check(text: str) -> str:
        parse(text)
        return text
    return AfterValidator(check)


DayHours = Annotated[str, _hours_rule(hours.openings)]


@settings
class HoursSettings:
    """Business hours: outside them the bot still answers; hand-overs say when a person is back."""

    timezone: Annotated[str, _hours_rule(hours.zone)]  # IANA name, e.g. "Europe/Berlin"
    mon: DayHours = hours.CLOSED  # "09:00-18:00", "09:00-12:00, 13:00-18:00", "22:00-02:00", or "closed"
    tue: DayHours = hours.CLOSED
    wed: DayHours = hours.CLOSED
    thu: DayHours = hours.CLOSED
    fri: DayHours = hours.CLOSED
    sat: DayHours = hours.CLOSED
    sun: DayHours = hours.CLOSED
    holidays: tuple[Annotated[str, _hours_rule(hours.holiday)], ...] = ()  # dates the shop stays closed
    # "send": alerts go out outside hours too; "digest": they wait, listed in one message at the next opening
    alerts_outside_hours: Literal["send", "digest"] = "send"

    @model_validator(mode="after")
    def _opens_some_day(self) -> HoursSettings:
        within("mon", any(hours.openings(getattr(self, day)) for day in hours.DAYS),
               "no day has opening hours: give at least one day a range like \"09:00-18:00\" (or drop [hours] "
               "for a shop that is always open)")
        return self

    def schedule(self) -> hours.Schedule:
        return hours.Schedule(hours.zone(self.timezone), tuple(hours.openings(getattr(self, day)) for day in hours.DAYS),
                              frozenset(map(hours.holiday, self.holidays)))


@settings
class CsatSettings:
    """The customer's 1-5 rating, asked once after an operator hands them back to the bot."""

    enabled: bool = True


@settings
class TelegramSettings:
    base_url: HttpUrl = "https://api.telegram.org/bot"
    base_file_url: HttpUrl = "https://api.telegram.org/file/bot"
    # "polling": the bot fetches updates; "webhook": Telegram posts them
    mode: Literal["polling", "webhook"] = "polling"
    poll_timeout: Annotated[int, at_least(0)] = 30
    webhook_listen: Listen = "127.0.0.1:8443"  # host:port the webhook server binds (behind a reverse proxy)
    webhook_url: str = ""  # the public https URL Telegram posts to; its path is the path served
    show_sentiment: bool = False
    stream_drafts: bool = True  # show a model-written reply growing (sendMessageDraft) before it is sent
    # Every text a customer reads is one string, or one per language (`welcome.zh = "..."`): README, "Languages"
    welcome: localized(TelegramText)
    help: localized(TelegramText)
    non_text_reply: localized(TelegramText)
    reset_reply: localized(TelegramText)
    forget_confirm: localized(TelegramText)
    forget_yes: localized(TelegramText)
    forget_no: localized(TelegramText)
    forget_done: localized(Annotated[TelegramText, template(messages=0, alerts=0)])  # the counts deleted
    forget_cancelled: localized(TelegramText)
    edited_reply: localized(str) = silent()  # empty: edits are ignored silently
    group_reply: localized(str) = silent()  # empty: the bot stays silent in groups
    # tell a customer their place in line when this many batches are ahead; 0: never
    queue_notice_at: Annotated[int, at_least(0, " (0 turns the notice off)")] = 3
    queue_notice: localized(Annotated[TelegramText, template(position=1)])
    storage_error_reply: localized(TelegramText)  # when SQLite fails (disk full, locked)

    @model_validator(mode="after")
    def _webhook_has_an_address(self) -> TelegramSettings:
        if self.mode == "webhook":
            listen_address("webhook_listen", self.webhook_listen)
            within("webhook_url", self.webhook_url.startswith(("https://", "http://")),
                   "must be the public URL Telegram posts updates to, e.g. https://shop.example.com/telegram")
        return self


@settings
class SignalWeights:
    """How much each retrieval signal counts for a language. The defaults were tuned on SmolLM2-135M and measured as
    good on the 0.5B Qwen2 model too (README, "Choosing a model"); "auto" instead measures them per model."""

    lexical: Annotated[float, at_least(0)] = 1.0  # shared words / Chinese character n-grams (TF-IDF)
    tokens: Annotated[float, at_least(0)] = 1.0  # the model's token vectors, word against word
    likelihood: Annotated[float, at_least(0)] = 1.0  # how much the entry makes the model expect the customer's words
    # shared shop intents (bot/concepts.py: "postage" and "shipping fee" are one intent)
    intents: Annotated[float, at_least(0)] = 2.0

    @model_validator(mode="after")
    def _one_counts(self) -> SignalWeights:
        within("", self.lexical + self.tokens + self.likelihood + self.intents > 0, "at least one must be > 0")
        return self


@settings
class LanguageSettings:
    # "entry": the knowledge entry's own text, wrapped; "model": the chat model writes
    answer_from: Literal["entry", "model"] = "entry"
    wrap: AnswerText = "{answer}"  # how an entry's answer is framed
    unknown_reply: Text  # a shop question with no entry in this language: a person follows up
    unsure_reply: AnswerText  # no entry is a sure match: the closest one, and a person follows up
    off_topic_reply: Text  # not about the shop: a polite steer back
    shop_words: Words = ()  # a message with none of these (and no word of the knowledge) is off-topic
    # ... and one with one of these and no shop word or shop intent, even when it shares a word with the knowledge
    not_shop_words: Words = ()
    # Small talk the bot answers itself unless the model chats freely (no knowledge, chat.free_chat on):
    greetings: Words = ()  # a message of only these (and punctuation) gets greeting_reply
    thanks: Words = ()  # ... of only these gets thanks_reply
    greeting_reply: Text
    thanks_reply: Text
    follow_up_reply: Text  # without knowledge or free chat anything else, and a model reply in another language
    # [hours]: a hand-over outside business hours adds this; {when}: the next opening, {timezone}: the shop's
    away_note: Annotated[Text, template(when="", timezone="")]
    csat_question: Text  # after a hand-back, above the 1-5 buttons
    csat_thanks: Text  # the question becomes this once rated
    csat_already: Text  # a second tap: not counted again
    # a table: these weights; "auto": measured for the loaded model (bot/retrieval_choice.py, cached beside it)
    weights: SignalWeights | Literal["auto"] = SignalWeights()


# Shop talk in general, beyond the words of a shop's own knowledge (which count too). A message with neither is
# steered back to the shop; when in doubt a message counts as a shop question (a person follows up).
EN_SHOP_WORDS = ("shop", "store", "order", "buy", "bought", "sell", "price", "cost", "pay", "ship", "deliver",
                 "parcel", "package", "arrive", "send", "return", "refund", "exchange", "swap", "size", "small",
                 "large", "discount", "product", "item", "stock", "warranty", "invoice", "receipt", "cancel",
                 "open", "broken", "damaged")  # not "you" or "can i": "Thank you!" is no shop question
ZH_SHOP_WORDS = ("店", "买", "卖", "订单", "下单", "价", "钱", "付", "发货", "寄", "快递", "物流", "到货", "几天",
                 "多久", "退", "换", "折扣", "优惠", "商品", "货", "保修", "发票", "取消", "尺码", "营业", "坏", "碎",
                 "开门", "客服")  # not 你们 ("you"): 谢谢你们 is no shop question
# Talk about anything but a shop: the weather, a joke, sport, homework, writing, films, restaurants, cooking, code,
# sightseeing. A message with one of these and no shop word or intent is steered back, though it shares a word with
# the knowledge ("what's the weather like in Hangzhou tomorrow?" and the address entry) and the model reads it as shop
# talk.
EN_NOT_SHOP_WORDS = ("weather like", "weather going to", "weather gonna", "weather tomorrow", "the weather in",
                     "will it rain", "going to rain", "gonna rain", "tell me a joke", "tell us a joke", "any jokes",
                     "football", "who won", "world cup", "champions league", "my homework", "with homework",
                     "math homework", "calc homework", "equation", "derivative", "poem about", "essay", "cover letter",
                     "capital of", "stock market", "python", "debug", "programming", "recommend a movie",
                     "recommend a good movie", "recommend a film", "recommend a good film", "recommend a tv",
                     "hotpot place", "place to eat", "recommend a restaurant", "good restaurant", "recipe",
                     "translate this", "translate for me", "worth visiting", "worth a visit", "tourist attraction",
                     "sightseeing", "things to do in", "places to visit", "travel tips")
ZH_NOT_SHOP_WORDS = ("天气怎么样", "天气如何", "什么天气", "下雨吗", "会下雨", "下雨不", "下不下雨", "讲个笑话", "说个笑话",
                     "足球", "国足", "球赛", "那场球", "谁赢了", "踢赢", "数学题", "数学作业", "这道题", "这题怎么", "方程",
                     "作文", "一首诗", "写首诗", "写一首", "周报", "请假条", "股市", "好看的电影", "好看的电视剧",
                     "电视剧推荐", "火锅店", "好吃的火锅", "餐厅推荐", "推荐一家餐厅", "菜谱", "怎么做好吃", "怎么做才好吃",
                     "帮我翻译", "翻译一下", "的首都", "值得去", "好玩吗", "好玩的地方", "景点", "旅游攻略", "游玩",
                     "闷热")
# The languages shopbot knows; a [knowledge.languages.xx] table in the file is laid over its language's texts here.
LANGUAGES = {
    "en": LanguageSettings(
        answer_from="entry", wrap='{answer}\n\nNot what you asked? Write "talk to a person" and someone from the shop '
                                  'will answer you here.',
        unknown_reply="I don't have that information, so I have asked a person from the shop to follow "
                      "up here.",
        unsure_reply="I am not sure our shop's information answers this, so I have asked a person from the "
                     "shop to follow up here. The closest I found: {answer}",
        off_topic_reply="I can only help with questions about our shop: orders, delivery, returns, payment "
                        "and our products. What can I do for you?",
        shop_words=EN_SHOP_WORDS,
        not_shop_words=EN_NOT_SHOP_WORDS,
        greetings=("hi", "hello", "hey", "good morning", "good afternoon", "good evening", "anyone there",
                   "anybody there", "are you there", "have a question", "quick question", "can i ask you something",
                   "can i ask something", "can i ask a question", "i need help", "need some help"),
        thanks=("thanks", "thank you", "thank u", "thx", "ty", "tysm", "cheers", "ok", "okay", "alright", "all right",
                "got it", "noted", "cool", "nice", "perfect", "great", "bye", "goodbye", "no worries", "no problem",
                "all good", "that's all", "that is all", "nothing else", "never mind", "nevermind", "nvm",
                "i'll think about it", "let me think about it", "see you", "have a nice day", "have a good day",
                "good night", "👍", "👌", "🙏"),
        greeting_reply="Hello! How can I help you?",
        thanks_reply="You're welcome! Write any time if there is anything else.",
        follow_up_reply="Thank you for your message. A person from the shop will read it and answer you here "
                        "as soon as they can.",
        away_note="Our team is away right now: a person will be back {when} ({timezone} time) and will "
                  "answer you here. Until then I am happy to help with anything I can.",
        csat_question="How did we do? Please rate the help you got from 1 (poor) to 5 (excellent).",
        csat_thanks="Thank you for your rating!",
        csat_already="You have rated this already. Thank you!"),
    "zh": LanguageSettings(
        answer_from="entry", wrap="{answer}\n\n没解答您的问题？回复“转人工”，店里的工作人员会在这里回复您。",
        unknown_reply="这个问题我暂时没有相关信息，已请店里的工作人员在这里跟进回复您。",
        unsure_reply="我不确定本店的信息能回答这个问题，已请店里的工作人员在这里跟进回复您。最相关的信息是：{answer}",
        off_topic_reply="我只能解答与本店相关的问题，例如订单、配送、退换货、付款和商品。请问有什么可以帮您？",
        shop_words=ZH_SHOP_WORDS,
        not_shop_words=ZH_NOT_SHOP_WORDS,
        greetings=("你好", "您好", "嗨", "哈喽", "在吗", "在不在", "早上好", "下午好", "晚上好",
                   "有人吗", "有人在吗", "在线吗", "咨询一下", "咨询下", "问一下", "问下", "问个问题", "有个问题", "想问"),
        thanks=("谢谢", "多谢", "感谢", "谢了", "好的", "好", "知道了", "收到", "嗯", "明白", "了解", "好滴", "好哒", "没问题",
                "再见", "拜拜", "没事了", "没事", "不用了", "不用", "没有了", "没了", "就这些", "就这样", "先这样", "先看看", "考虑一下",
                "考虑考虑", "再看看", "再想想", "辛苦了", "晚安", "👍", "👌", "🙏"),
        greeting_reply="您好！请问有什么可以帮您？",
        thanks_reply="不客气！还有其他问题随时联系我们。",
        follow_up_reply="感谢您的留言。店里的工作人员会尽快在这里回复您。",
        away_note="店员现在不在线，将于{when}（{timezone} 时间）回来并在这里回复您。在此之前，我很乐意尽力帮您。",
        csat_question="您对这次服务满意吗？请从 1（很差）到 5（非常好）打分。",
        csat_thanks="感谢您的评分！",
        csat_already="您已经评过分了，谢谢！"),
}


@settings
class KnowledgeSettings:
    # CSV id,lang,question,answer[,also_asked]; None: no knowledge, the model answers freely
    file: Annotated[Path | None, BeforeValidator(_optional_path)] = None
    # entries the likelihood signal re-reads for each message (a forward pass each)
    candidates: Annotated[int, at_least(1)] = 8
    # the best entry leads the runner-up by this much (z-score units): answered plainly
    sure_margin: Annotated[float, at_least(0)] = 1.0
    # the layer whose token vectors are compared: "fifth" = a fifth of the model's depth; "auto": measured for the
    # loaded model (bot/retrieval_choice.py); a number: that layer
    token_layer: Annotated[int, at_least(1)] | Literal["fifth", "auto"] = "fifth"
    languages: dict[str, LanguageSettings] = field(default_factory=lambda: dict(LANGUAGES))


@settings
class StorageSettings:
    path: Annotated[NonEmptyPath, rule(lambda path: not path.is_dir(), "is a folder; name the database file in it, "
                                       "e.g. data/shopbot.db")] = Path("data/shopbot.db")
    # conversations older than this are deleted daily; 0: kept forever
    retention_days: Annotated[int, at_least(0, " (0 keeps everything)")] = 0


@settings
class WebTexts:
    """What the web chat page says, in one language (the visitor's, from the browser or the widget's page)."""

    title: Text  # the chat's heading
    greeting: Text  # shown above an empty conversation (not stored)
    input_label: Text  # the message box's label, read by screen readers
    placeholder: Text
    send: Text
    new_chat: Text  # the /reset button
    reset_done: Text
    forget: Text  # the "forget me" button
    forget_confirm: Text
    forget_yes: Text
    forget_no: Text
    forget_done: Annotated[Text, template(messages=0, alerts=0)]  # the counts deleted
    too_long: Annotated[Text, template(limit=1)]  # a message over web.max_message_chars
    error: Text  # the shop's server could not be reached
    open_chat: Text  # the widget's corner button
    close_chat: Text
    you: Text  # who wrote each message, as screen readers announce it
    shop: Text
    operator: Text


@settings
class WebSettings:
    listen: Listen = ""  # "host:port" of the web chat; empty: `shopbot run` serves none
    allowed_origins: tuple[Origin, ...] = ()  # other sites that may embed the widget and call the API
    show_sentiment: bool = False
    max_message_chars: Annotated[int, at_least(1)] = 4096  # Telegram's limit, so both channels take the same messages
    # every visitor behind one address together; 0: no limit
    requests_per_minute_per_address: Annotated[int, at_least(0, " (0: no limit)")] = 60
    # reverse proxies whose X-Forwarded-For names the visitor's address; empty: the header is ignored
    trusted_proxies: tuple[Network, ...] = ()
    history_messages: Annotated[int, at_least(0)] = 200  # shown when the page is opened again
    # language code -> texts; the first is the default
    texts: Annotated[dict[str, WebTexts], rule(bool, "must hold at least one language, e.g. [web.texts.en]")]


@settings
class MonitoringSettings:
    listen: Listen = ""  # host:port of /healthz and /metrics; empty: no monitoring server


@settings
class Config:
    model: ModelSettings = ModelSettings()
    sentiment: SentimentSettings
    chat: ChatSettings
    alerts: AlertSettings = AlertSettings()
    telegram: TelegramSettings
    handoff: HandoffSettings
    storage: StorageSettings = StorageSettings()
    hours: HoursSettings | None = None  # None: always open
    csat: CsatSettings = CsatSettings()
    knowledge: KnowledgeSettings = KnowledgeSettings()
    monitoring: MonitoringSettings = MonitoringSettings()
    web: WebSettings
    telegram_token: str | None = field(default=None, repr=False)  # from the environment only
    model_api_key: str | None = field(default=None, repr=False)  # from the environment only
    web_secret: str | None = field(default=None, repr=False)  # from the environment only

    @model_validator(mode="after")
    def _context_holds_a_turn(self) -> Config:
        within("model.context_tokens",
               self.model.context_tokens >= self.chat.history_tokens + self.chat.generation.max_new_tokens + 256,
               "must hold chat.history_tokens + chat.generation.max_new_tokens + 256 (system prompt and facts)")
        return self


def load_config(path: str | os.PathLike | None = None, environ: dict[str, str] | None = None) -> Config:
    """Read a TOML file, check every value, resolve relative paths against the file's folder."""
    # Without --config: the checkout's own file (the quick start, an editable install); a shopbot installed with
    # `pip install .` has none beside its package, and reads config.toml in the folder it is started from.
    given = bool(path)
    path = Path(path) if given else DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else Path("config.toml")
    environ = os.environ if environ is None else environ
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("--config", f"no such file: {path}" if given else
                          f"no config.toml in {Path.cwd()}: pass --config PATH (start from the shipped "
                          "config.toml)") from None
    except IsADirectoryError:
        raise ConfigError("--config", f"{path} is a folder") from None
    except OSError as exc:  # permission denied, an I/O error: the reason is the operating system's
        raise ConfigError("--config", f"{path} cannot be read ({(exc.strerror or str(exc)).lower()})") from None
    except UnicodeDecodeError as exc:
        line = exc.object.count(b"\n", 0, exc.start) + 1
        byte = exc.object[exc.start]
        raise ConfigError("--config", f"{path} is not UTF-8 (line {line}: byte 0x{byte:02x})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("--config", f"{path} is not valid TOML: {exc}") from None
    if "token" in raw.get("telegram", {}):
        raise ConfigError("telegram.token", f"never put the bot token in the file; set {TOKEN_ENV} instead")
    if "api_key" in raw.get("model", {}):
        raise ConfigError("model.api_key", f"never put the API key in the file; set {MODEL_KEY_ENV} instead")
    if "secret" in raw.get("web", {}):
        raise ConfigError("web.secret", f"never put the cookie secret in the file; set {WEB_SECRET_ENV} instead")
    for name in SECRETS:
        if name in raw:
            raise ConfigError(name, "unknown key (secrets are read from the environment only)")
    try:
        # As JSON: strict mode takes a JSON object for a settings table and a JSON array for a list, where it
        # would take only instances from Python. TOML dates become strings (no key takes a date).
        cfg = TypeAdapter(Config).validate_json(json.dumps(_over_shipped_languages(raw), default=str))
    except ValidationError as exc:
        raise _config_error(_first_error(exc.errors())) from None
    base = path.resolve().parent
    model, sentiment, knowledge = cfg.model, cfg.sentiment, cfg.knowledge
    # model.source may also be a hub id ("org/name"): only a path that exists next to the file is taken as one.
    source = _under(base, Path(model.source))
    if model.source != "embedded" and source.exists():
        model = replace(model, source=str(source))
    if sentiment.head_path:
        sentiment = replace(sentiment, head_path=str(_under(base, Path(sentiment.head_path))))
    if knowledge.file is not None:
        knowledge = replace(knowledge, file=_under(base, knowledge.file))
    return replace(cfg, model=replace(model, cache_dir=_under(base, model.cache_dir)), sentiment=sentiment,
                   knowledge=knowledge, storage=replace(cfg.storage, path=_under(base, cfg.storage.path)),
                   telegram_token=environ.get(TOKEN_ENV, "").strip() or None,
                   model_api_key=environ.get(MODEL_KEY_ENV, "").strip() or None,
                   web_secret=environ.get(WEB_SECRET_ENV, "").strip() or None)


def _under(base: Path, p: Path) -> Path:
    p = p.expanduser()
    return p if p.is_absolute() else base / p


def _over_shipped_languages(raw: dict) -> dict:
    """Each [knowledge.languages.xx] table laid over shopbot's own texts for xx, so it may set a single key."""
    knowledge = raw.get("knowledge")
    tables = knowledge.get("languages") if isinstance(knowledge, dict) else None
    if not isinstance(tables, dict):
        return raw  # absent: the shipped languages; not a table: validation says so
    merged = {code: asdict(language) for code, language in LANGUAGES.items()}
    for code, table in tables.items():
        merged[code] = merged[code] | table if code in merged and isinstance(table, dict) else table
    return raw | {"knowledge": knowledge | {"languages": merged}}


TYPE_NAMES = {"int_type": "int", "float_type": "float", "string_type": "str", "bool_type": "bool"}


def _first_error(errors: list[dict]) -> dict:
    """Pydantic's first complaint; a word where a key takes a word or a table/number ("auto") is told the words."""
    first = errors[0]
    if isinstance(first.get("input"), str):
        word = next((e for e in errors if e["type"] == "literal_error" and _key(e["loc"]) == _key(first["loc"])), None)
        if word is not None and word is not first:  # a union of a word and a table / number
            words = " or ".join(f'"{w}"' for w in re.findall(r"'([^']*)'", word["ctx"]["expected"]))
            other = "a table" if first["type"] in ("dataclass_type", "dict_type") else "a number"
            return {**word, "type": "word_or_value", "msg": f"must be {words} or {other}"}
    return first


def _union_member(part: str | int) -> bool:
    """Whether a part of pydantic's error location names a union's member ("literal['auto']"), not a key."""
    return isinstance(part, str) and bool(re.search(r"[\[(]", part))


def _key(loc: tuple) -> str:
    """The dotted key (a list item as [i]); a union's member names ("literal['auto']") are no part of it."""
    parts = [part for part in loc if not _union_member(part)]
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in parts).lstrip(".")


def _config_error(error: dict) -> ConfigError:
    """Pydantic's complaint in shopbot's words: the dotted key and the reason."""
    kind, value, ctx = error["type"], error.get("input"), error.get("ctx", {})
    key = _key(error["loc"])
    if kind == "value_error":  # a rule above; a check across keys names one within its table
        exc = ctx["error"]
        if isinstance(exc, ConfigError):
            return ConfigError(".".join(part for part in (key, exc.key) if part), exc.reason)
        return ConfigError(key, str(exc))
    if kind in TYPE_NAMES:
        reason = f"must be {TYPE_NAMES[kind]}, got {type(value).__name__} {value!r}"
    elif kind == "literal_error":
        reason = "must be one of " + ", ".join(re.findall(r"'([^']*)'", ctx["expected"]))
    elif kind in ("dataclass_type", "dict_type"):
        reason = "must be a table"
    elif kind == "tuple_type":
        reason = f"must be a list, got {type(value).__name__} {value!r}"
    elif kind == "unexpected_keyword_argument":
        reason = f"unknown key (expected one of: {', '.join(_keys_of(error['loc'][:-1]))})"
    elif kind in ("missing", "missing_argument"):
        reason = "missing: it has no default (copy it from the shipped config.toml)"
    else:
        reason = error["msg"]
    return ConfigError(key, reason)


def _keys_of(loc: tuple) -> list[str]:
    """The keys the table at `loc` takes."""
    table: Any = Config
    for part in loc:
        if _union_member(part):
            continue  # the table is the member that has fields
        fields = getattr(table, "__pydantic_fields__", None)
        table = fields[part].annotation if fields else get_args(table)[1]  # a table of tables: its value type
        if get_origin(table) in (Union, UnionType):  # "auto" or a table, or an optional table ([hours]): the table
            table = next(t for t in get_args(table) if hasattr(t, "__pydantic_fields__"))
    return [name for name in table.__pydantic_fields__ if name not in SECRETS]


def listen_address(key: str, text: str) -> tuple[str, int]:
    """"host:port" (IPv6 as "[::1]:port") as (host, port); a ConfigError naming `key` otherwise."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(key, f"must be host:port, e.g. 127.0.0.1:9100, got {text!r}")
    return host.strip("[]"), int(port)


def web_secret(config: Config) -> str:
    """The visitor-cookie secret, checked when the web chat starts (not needed without it)."""
    secret = config.web_secret or ""
    if len(secret) < WEB_SECRET_MIN_CHARS:
        raise ConfigError(WEB_SECRET_ENV, f"{'too short' if secret else 'not set'}: the web chat signs visitor "
                          f"cookies with it; set at least {WEB_SECRET_MIN_CHARS} random characters, e.g. "
                          "`python3 -c 'import secrets; print(secrets.token_hex(32))'`")
    return secret
