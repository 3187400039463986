"""Load and validate config.toml into typed settings; a bad value fails at start naming its key."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "config.toml"
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
        self.key = key


@dataclass(frozen=True)
class GenerationSettings:
    max_new_tokens: int = 96
    temperature: float = 0.7  # 0 means greedy (deterministic)
    top_p: float = 0.9
    repetition_penalty: float = 1.2


@dataclass(frozen=True)
class ModelSettings:
    source: str = "embedded"  # "embedded", a .gguf file, a checkpoint directory, or a hub id
    cache_dir: Path = Path("data/models")
    weights: str = "int4"  # int4 | int8 | bf16 | fp32: the format the weights are held and multiplied in
    threads: int = 0  # 0: let torch decide
    context_tokens: int = 2048  # the longest conversation (prompt + reply) one KV slot holds
    kv_cache_mb: int = 512  # all KV slots together: active conversations' caches kept between turns (LRU)
    batch_size: int = 8  # customers whose sentiment or reply waits at the same time run as one batch (1 = one by one)
    timeout_seconds: float = 60.0
    backend: str = "local"  # "local": the model in this process; "openai": an OpenAI-compatible server at base_url
    base_url: str = ""  # backend = "openai": e.g. http://127.0.0.1:8080/v1
    model: str = ""  # backend = "openai": the model name the server knows; empty: the server's only model
    max_concurrency: int = 4  # backend = "openai": requests in flight at once (the server batches them)


@dataclass(frozen=True)
class SentimentSettings:
    method: str = "logits"
    instruction: str = ""
    head_path: str = ""  # empty: the head shipped with shopbot
    neutral_below: float = 0.6
    generation: GenerationSettings = GenerationSettings(max_new_tokens=10, temperature=0.0)


@dataclass(frozen=True)
class ChatSettings:
    system_prompt: str = ""
    history_tokens: int = 1024
    max_message_tokens: int = 256
    fallback_reply: str = ""
    empty_reply: str = ""
    rate_limit_per_minute: int = 20  # a customer's messages beyond this are stored, not answered; 0: no limit
    slow_down_reply: str = ""  # said once when a customer goes over the rate limit
    same_language_only: bool = True  # a model-written reply in another language is replaced by a hand-over
    free_chat: str = "auto"  # without knowledge: "on" the model writes replies, "off" small talk + a person; "auto"
    generation: GenerationSettings = GenerationSettings()


@dataclass(frozen=True)
class AlertSettings:
    threshold: float = 0.7
    cooldown_minutes: float = 30.0
    operator_chat_id: int | None = None
    context_turns: int = 6
    outbox_retry_seconds: float = 60.0  # undelivered alerts (operator chat unreachable) are retried this often
    # Escalation beyond one negative message (#5); each alert names the rule that fired.
    negatives_in_a_row: int = 3  # 0: off
    very_negative: float = 0.9  # a negative read at least this sure alerts even within the cooldown
    human_phrases: tuple[str, ...] = ()  # a message containing one (any case) asks for a person


@dataclass(frozen=True)
class HandoffSettings:
    idle_minutes: float = 30.0  # a takeover with no operator reply for this long goes back to the bot
    customer_notice: str = ""  # told to the customer once per takeover
    human_reply: str = ""  # the answer to /human or a request for a person


@dataclass(frozen=True)
class TelegramSettings:
    base_url: str = "https://api.telegram.org/bot"
    base_file_url: str = "https://api.telegram.org/file/bot"
    mode: str = "polling"  # "polling": the bot fetches updates; "webhook": Telegram posts them to webhook_url
    poll_timeout: int = 30
    webhook_listen: str = "127.0.0.1:8443"  # host:port the webhook server binds (behind a reverse proxy)
    webhook_url: str = ""  # the public https URL Telegram posts to; its path is the path served
    show_sentiment: bool = False
    stream_drafts: bool = True  # show a model-written reply growing (sendMessageDraft) before it is sent
    welcome: str = ""
    help: str = ""
    non_text_reply: str = ""
    reset_reply: str = ""
    forget_confirm: str = ""
    forget_yes: str = ""
    forget_no: str = ""
    forget_done: str = ""  # may use {messages} and {alerts}: the counts deleted
    forget_cancelled: str = ""
    edited_reply: str = ""  # empty: edits are ignored silently
    group_reply: str = ""  # empty: the bot stays silent in groups
    queue_notice_at: int = 3  # tell a customer their place in line when this many batches are ahead; 0: never
    queue_notice: str = ""  # may use {position}
    storage_error_reply: str = ""  # when SQLite fails (disk full, locked)


@dataclass(frozen=True)
class SignalWeights:
    """How much each retrieval signal counts for a language (README, "Shop knowledge": measured per language)."""

    lexical: float = 1.0  # shared words / Chinese character n-grams (TF-IDF)
    tokens: float = 0.0  # the model's token vectors, word against word
    likelihood: float = 1.0  # how much the entry makes the model expect the customer's words
    intents: float = 2.0  # shared shop intents (bot/concepts.py: "postage" and "shipping fee" are one intent)


@dataclass(frozen=True)
class LanguageSettings:
    answer_from: str = "entry"  # "entry": the knowledge entry's own text, wrapped; "model": the chat model writes
    wrap: str = "{answer}"  # how an entry's answer is framed; may use {answer} and {question}
    unknown_reply: str = ""  # a shop question with no entry in this language: a person follows up
    unsure_reply: str = ""  # no entry is a sure match: the closest one ({answer}, {question}), and a person follows up
    off_topic_reply: str = ""  # not about the shop: a polite steer back
    shop_words: tuple[str, ...] = ()  # a message with none of these (and no word of the knowledge) is off-topic
    # Without knowledge and free chat (chat.free_chat), the bot answers only small talk itself:
    greetings: tuple[str, ...] = ()  # a message of only these (and punctuation) gets greeting_reply
    thanks: tuple[str, ...] = ()  # ... of only these gets thanks_reply
    greeting_reply: str = ""
    thanks_reply: str = ""
    follow_up_reply: str = ""  # anything else, and a model reply in another language: a person follows up
    weights: SignalWeights = SignalWeights()


# Shop talk in general, beyond the words of a shop's own knowledge (which count too). A message with neither is
# steered back to the shop; when in doubt a message counts as a shop question (a person follows up).
EN_SHOP_WORDS = ("shop", "store", "order", "buy", "bought", "sell", "price", "cost", "pay", "ship", "deliver",
                 "parcel", "package", "arrive", "send", "return", "refund", "exchange", "swap", "size", "small",
                 "large", "discount", "product", "item", "stock", "warranty", "invoice", "receipt", "cancel",
                 "open", "broken", "damaged")  # not "you" or "can i": "Thank you!" is no shop question
ZH_SHOP_WORDS = ("店", "买", "卖", "订单", "下单", "价", "钱", "付", "发货", "寄", "快递", "物流", "到货", "几天",
                 "多久", "退", "换", "折扣", "优惠", "商品", "货", "保修", "发票", "取消", "尺码", "营业", "坏", "碎",
                 "开门", "客服")  # not 你们 ("you"): 谢谢你们 is no shop question


@dataclass(frozen=True)
class KnowledgeSettings:
    file: Path | None = None  # CSV id,lang,question,answer; None: no knowledge, the model answers freely
    candidates: int = 8  # entries the likelihood signal re-reads for each message (a forward pass each)
    sure_margin: float = 1.0  # the best entry leads the runner-up by this much (z-score units): answered plainly
    languages: dict = field(default_factory=lambda: {
        "en": LanguageSettings(
            answer_from="entry", wrap="{answer}",
            unknown_reply="I don't have that information, so I have asked a person from the shop to follow "
                          "up here.",
            unsure_reply="I am not sure our shop's information answers this, so I have asked a person from the "
                         "shop to follow up here. The closest I found: {answer}",
            off_topic_reply="I can only help with questions about our shop: orders, delivery, returns, payment "
                            "and our products. What can I do for you?",
            shop_words=EN_SHOP_WORDS, weights=SignalWeights(lexical=1.0, tokens=1.0, likelihood=1.0, intents=2.0),
            greetings=("hi", "hello", "hey", "good morning", "good afternoon", "good evening"),
            thanks=("thanks", "thank you", "thx", "cheers", "ok", "okay", "great", "bye", "goodbye"),
            greeting_reply="Hello! How can I help you?",
            thanks_reply="You're welcome! Write any time if there is anything else.",
            follow_up_reply="Thank you for your message. A person from the shop will read it and answer you here "
                            "as soon as they can."),
        "zh": LanguageSettings(
            answer_from="entry", wrap="{answer}",
            unknown_reply="这个问题我暂时没有相关信息，已请店里的工作人员在这里跟进回复您。",
            unsure_reply="我不确定本店的信息能回答这个问题，已请店里的工作人员在这里跟进回复您。最相关的信息是：{answer}",
            off_topic_reply="我只能解答与本店相关的问题，例如订单、配送、退换货、付款和商品。请问有什么可以帮您？",
            shop_words=ZH_SHOP_WORDS, weights=SignalWeights(lexical=1.0, tokens=1.0, likelihood=1.0, intents=2.0),
            greetings=("你好", "您好", "嗨", "哈喽", "在吗", "在不在", "早上好", "下午好", "晚上好"),
            thanks=("谢谢", "多谢", "感谢", "谢了", "好的", "好", "知道了", "收到", "再见", "拜拜"),
            greeting_reply="您好！请问有什么可以帮您？",
            thanks_reply="不客气！还有其他问题随时联系我们。",
            follow_up_reply="感谢您的留言。店里的工作人员会尽快在这里回复您。"),
    })


@dataclass(frozen=True)
class StorageSettings:
    path: Path = Path("data/shopbot.db")
    retention_days: int = 0  # conversations older than this are deleted daily; 0: kept forever


@dataclass(frozen=True)
class WebTexts:
    """What the web chat page says, in one language (the visitor's, from the browser or the widget's page)."""

    title: str = ""  # the chat's heading
    greeting: str = ""  # shown above an empty conversation (not stored)
    input_label: str = ""  # the message box's label, read by screen readers
    placeholder: str = ""
    send: str = ""
    new_chat: str = ""  # the /reset button
    reset_done: str = ""
    forget: str = ""  # the "forget me" button
    forget_confirm: str = ""
    forget_yes: str = ""
    forget_no: str = ""
    forget_done: str = ""  # may use {messages} and {alerts}: the counts deleted
    too_long: str = ""  # may use {limit}: a message over web.max_message_chars
    error: str = ""  # the shop's server could not be reached
    open_chat: str = ""  # the widget's corner button
    close_chat: str = ""
    you: str = ""  # who wrote each message, as screen readers announce it
    shop: str = ""
    operator: str = ""


@dataclass(frozen=True)
class WebSettings:
    listen: str = ""  # "host:port" of the web chat; empty: `shopbot run` serves none
    allowed_origins: tuple[str, ...] = ()  # other sites that may embed the widget and call the API
    show_sentiment: bool = False
    max_message_chars: int = 4096  # Telegram's limit, so both channels take the same messages
    requests_per_minute_per_address: int = 60  # every visitor behind one address together; 0: no limit
    history_messages: int = 200  # shown when the page is opened again
    texts: dict = field(default_factory=lambda: {"en": WebTexts()})  # language code -> texts; the first is the default


@dataclass(frozen=True)
class MonitoringSettings:
    listen: str = ""  # host:port of /healthz and /metrics; empty: no monitoring server


@dataclass(frozen=True)
class Config:
    model: ModelSettings = ModelSettings()
    sentiment: SentimentSettings = SentimentSettings()
    chat: ChatSettings = ChatSettings()
    alerts: AlertSettings = AlertSettings()
    telegram: TelegramSettings = TelegramSettings()
    handoff: HandoffSettings = HandoffSettings()
    storage: StorageSettings = StorageSettings()
    knowledge: KnowledgeSettings = KnowledgeSettings()
    monitoring: MonitoringSettings = MonitoringSettings()
    web: WebSettings = WebSettings()
    telegram_token: str | None = field(default=None, repr=False)  # from the environment only
    model_api_key: str | None = field(default=None, repr=False)  # from the environment only
    web_secret: str | None = field(default=None, repr=False)  # from the environment only


SENTIMENT_METHODS = ("generate", "logits", "head")
WEIGHT_FORMATS = ("int4", "int8", "bf16", "fp32")
BACKENDS = ("local", "openai")
TELEGRAM_MODES = ("polling", "webhook")
FREE_CHAT = ("auto", "on", "off")


def load_config(path: str | os.PathLike | None = None, environ: dict[str, str] | None = None) -> Config:
    """Read a TOML file, check every value, resolve relative paths against the file's folder."""
    path = Path(path) if path else DEFAULT_CONFIG
    environ = os.environ if environ is None else environ
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("--config", f"no such file: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("--config", f"{path} is not valid TOML: {exc}") from None
    if "token" in raw.get("telegram", {}):
        raise ConfigError("telegram.token", f"never put the bot token in the file; set {TOKEN_ENV} instead")
    if "api_key" in raw.get("model", {}):
        raise ConfigError("model.api_key", f"never put the API key in the file; set {MODEL_KEY_ENV} instead")
    if "secret" in raw.get("web", {}):
        raise ConfigError("web.secret", f"never put the cookie secret in the file; set {WEB_SECRET_ENV} instead")
    cfg = _build(Config, raw, "")
    base = path.resolve().parent
    cfg = _replace(cfg, "model", cache_dir=_under(base, cfg.model.cache_dir))
    # model.source may also be a hub id ("org/name"): only a path that exists next to the file is taken as one.
    source = _under(base, Path(cfg.model.source))
    if cfg.model.source != "embedded" and source.exists():
        cfg = _replace(cfg, "model", source=str(source))
    if cfg.sentiment.head_path:
        cfg = _replace(cfg, "sentiment", head_path=str(_under(base, Path(cfg.sentiment.head_path))))
    cfg = _replace(cfg, "storage", path=_under(base, cfg.storage.path))
    if cfg.knowledge.file is not None:
        cfg = _replace(cfg, "knowledge", file=_under(base, cfg.knowledge.file))
    _validate(cfg)
    token = environ.get(TOKEN_ENV, "").strip() or None
    return replace(cfg, telegram_token=token, model_api_key=environ.get(MODEL_KEY_ENV, "").strip() or None,
                   web_secret=environ.get(WEB_SECRET_ENV, "").strip() or None)


def _under(base: Path, p: Path) -> Path:
    p = p.expanduser()
    return p if p.is_absolute() else base / p


def _replace(cfg: Config, section: str, **changes: Any) -> Config:
    return replace(cfg, **{section: replace(getattr(cfg, section), **changes)})


def _build(cls: type, raw: Any, prefix: str):
    """Turn a TOML table into dataclass `cls`, checking types; unknown keys are errors (typos)."""
    if not isinstance(raw, dict):
        raise ConfigError(prefix.rstrip(".") or "<root>", "must be a table")
    known = {f.name: f for f in fields(cls) if f.name not in SECRETS}
    for key in raw:
        if key not in known:
            raise ConfigError(f"{prefix}{key}", f"unknown key (expected one of: {', '.join(known)})")
    values = {}
    defaults = cls()
    for name, f in known.items():
        if name not in raw:
            continue
        key, value, default = f"{prefix}{name}", raw[name], getattr(defaults, name)
        if hasattr(default, "__dataclass_fields__"):
            values[name] = _build(type(default), value, f"{key}.")
        elif isinstance(default, dict):  # knowledge.languages, web.texts: one table per language code
            values[name] = _languages(value, default, key)
        else:
            values[name] = _coerce(key, value, default, f.type)
    return cls(**values)


def _languages(raw: Any, defaults: dict, key: str) -> dict:
    """Per-language tables; a language shopbot knows starts from its defaults, so a table may set one key."""
    if not isinstance(raw, dict):
        raise ConfigError(key, "must be a table of languages, e.g. [knowledge.languages.en]")
    cls = type(next(iter(defaults.values())))
    merged = dict(defaults)
    for code, table in raw.items():
        built = _build(cls, table, f"{key}.{code}.")
        base = defaults.get(code, cls())
        given = {n: getattr(built, n) for n in (table if isinstance(table, dict) else {})}
        merged[code] = replace(base, **given)
    return merged


def _coerce(key: str, value: Any, default: Any, type_name: str) -> Any:
    if "Path | None" in str(type_name):
        if not isinstance(value, str):
            raise ConfigError(key, "must be a path string (empty = none)")
        return Path(value) if value.strip() else None
    if "Path" in str(type_name):
        if not isinstance(value, str) or not value:
            raise ConfigError(key, "must be a non-empty path string")
        return Path(value)
    if "int | None" in str(type_name):
        if value is None or value == 0:
            return None
        if not isinstance(value, int) or isinstance(value, bool):
            raise ConfigError(key, f"must be an integer chat id, got {value!r}")
        return value
    expected = type(default)
    if expected is tuple:
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise ConfigError(key, f"must be a list of non-empty strings, got {value!r}")
        return tuple(value)
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise ConfigError(key, f"must be {expected.__name__}, got {type(value).__name__} {value!r}")
    return value


def _validate(cfg: Config) -> None:
    def check(ok: bool, key: str, reason: str) -> None:
        if not ok:
            raise ConfigError(key, reason)

    m, s, c, a, t = cfg.model, cfg.sentiment, cfg.chat, cfg.alerts, cfg.telegram
    check(bool(m.source.strip()), "model.source", "must name a model")
    check(m.weights in WEIGHT_FORMATS, "model.weights", f"must be one of {', '.join(WEIGHT_FORMATS)}")
    check(m.threads >= 0, "model.threads", "must be >= 0")
    check(m.batch_size >= 1, "model.batch_size", "must be >= 1")
    check(m.context_tokens >= c.history_tokens + c.generation.max_new_tokens + 256, "model.context_tokens",
          "must hold chat.history_tokens + chat.generation.max_new_tokens + 256 (system prompt and facts)")
    check(m.kv_cache_mb >= 1, "model.kv_cache_mb", "must be >= 1")
    check(m.timeout_seconds > 0, "model.timeout_seconds", "must be > 0")
    check(m.backend in BACKENDS, "model.backend", f"must be one of {', '.join(BACKENDS)}")
    if m.backend == "openai":
        check(m.base_url.startswith(("http://", "https://")), "model.base_url",
              "must be the server's http(s) URL, e.g. http://127.0.0.1:8080/v1")
    check(m.max_concurrency >= 1, "model.max_concurrency", "must be >= 1")
    check(s.method in SENTIMENT_METHODS, "sentiment.method", f"must be one of {', '.join(SENTIMENT_METHODS)}")
    check(bool(s.instruction.strip()), "sentiment.instruction", "must not be empty")
    check(0.0 <= s.neutral_below <= 1.0, "sentiment.neutral_below", "must be between 0 and 1")
    check(bool(c.system_prompt.strip()), "chat.system_prompt", "must not be empty")
    check(bool(c.fallback_reply.strip()), "chat.fallback_reply", "must not be empty")
    check(bool(c.empty_reply.strip()), "chat.empty_reply", "must not be empty")
    check(c.history_tokens >= 64, "chat.history_tokens", "must be at least 64")
    check(1 <= c.max_message_tokens <= c.history_tokens, "chat.max_message_tokens",
          "must be between 1 and chat.history_tokens")
    for name, g in (("sentiment.generation", s.generation), ("chat.generation", c.generation)):
        check(1 <= g.max_new_tokens <= 4096, f"{name}.max_new_tokens", "must be between 1 and 4096")
        check(0.0 <= g.temperature <= 5.0, f"{name}.temperature", "must be between 0 and 5")
        check(0.0 < g.top_p <= 1.0, f"{name}.top_p", "must be in (0, 1]")
        check(g.repetition_penalty > 0, f"{name}.repetition_penalty", "must be > 0")
    check(0.0 <= a.threshold <= 1.0, "alerts.threshold", "must be between 0 and 1")
    check(a.cooldown_minutes >= 0, "alerts.cooldown_minutes", "must be >= 0")
    check(a.context_turns >= 0, "alerts.context_turns", "must be >= 0")
    check(a.outbox_retry_seconds > 0, "alerts.outbox_retry_seconds", "must be > 0")
    check(c.rate_limit_per_minute >= 0, "chat.rate_limit_per_minute", "must be >= 0 (0 turns the limit off)")
    check(bool(c.slow_down_reply.strip()), "chat.slow_down_reply", "must not be empty")
    check(c.free_chat in FREE_CHAT, "chat.free_chat", f"must be one of {', '.join(FREE_CHAT)}")
    check(t.queue_notice_at >= 0, "telegram.queue_notice_at", "must be >= 0 (0 turns the notice off)")
    check(cfg.storage.retention_days >= 0, "storage.retention_days", "must be >= 0 (0 keeps everything)")
    check(a.negatives_in_a_row >= 0, "alerts.negatives_in_a_row", "must be >= 0 (0 turns the rule off)")
    check(a.threshold <= a.very_negative <= 1.0, "alerts.very_negative", "must be between alerts.threshold and 1")
    h = cfg.handoff
    check(h.idle_minutes > 0, "handoff.idle_minutes", "must be > 0")
    for name in ("customer_notice", "human_reply"):
        check(bool(getattr(h, name).strip()), f"handoff.{name}", "must not be empty (Telegram refuses empty messages)")
    check(t.base_url.startswith(("http://", "https://")), "telegram.base_url", "must be an http(s) URL")
    check(t.base_file_url.startswith(("http://", "https://")), "telegram.base_file_url", "must be an http(s) URL")
    check(t.poll_timeout >= 0, "telegram.poll_timeout", "must be >= 0")
    check(t.mode in TELEGRAM_MODES, "telegram.mode", f"must be one of {', '.join(TELEGRAM_MODES)}")
    if t.mode == "webhook":
        listen_address("telegram.webhook_listen", t.webhook_listen)
        check(t.webhook_url.startswith(("https://", "http://")), "telegram.webhook_url",
              "must be the public URL Telegram posts updates to, e.g. https://shop.example.com/telegram")
    if cfg.monitoring.listen:
        listen_address("monitoring.listen", cfg.monitoring.listen)
    for name in ("welcome", "help", "non_text_reply", "reset_reply", "forget_confirm", "forget_yes", "forget_no",
                 "forget_done", "forget_cancelled", "queue_notice", "storage_error_reply"):
        check(bool(getattr(t, name).strip()), f"telegram.{name}", "must not be empty (Telegram refuses empty messages)")
    _validate_knowledge(cfg.knowledge)
    _validate_web(cfg.web)
    try:
        t.queue_notice.format(position=1)
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError("telegram.queue_notice", f"only {{position}} can be filled in ({exc!r})") from None
    try:
        t.forget_done.format(messages=0, alerts=0)
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError("telegram.forget_done", f"only {{messages}} and {{alerts}} can be filled in ({exc!r})") from None


def listen_address(key: str, text: str) -> tuple[str, int]:
    """"host:port" (IPv6 as "[::1]:port") as (host, port); a ConfigError naming `key` otherwise."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(key, f"must be host:port, e.g. 127.0.0.1:9100, got {text!r}")
    return host.strip("[]"), int(port)


ANSWER_SOURCES = ("entry", "model")


def _validate_knowledge(k: KnowledgeSettings) -> None:
    def check(ok: bool, key: str, reason: str) -> None:
        if not ok:
            raise ConfigError(key, reason)

    check(k.candidates >= 1, "knowledge.candidates", "must be >= 1")
    check(k.sure_margin >= 0, "knowledge.sure_margin", "must be >= 0")
    for code, lang in k.languages.items():
        key = f"knowledge.languages.{code}"
        check(lang.answer_from in ANSWER_SOURCES, f"{key}.answer_from", f"must be one of {', '.join(ANSWER_SOURCES)}")
        for name in ("unknown_reply", "off_topic_reply", "greeting_reply", "thanks_reply", "follow_up_reply"):
            check(bool(getattr(lang, name).strip()), f"{key}.{name}", "must not be empty")
        for name in ("wrap", "unsure_reply"):
            try:
                filled = getattr(lang, name).format(answer="\0", question="")
            except (KeyError, IndexError, ValueError) as exc:
                raise ConfigError(f"{key}.{name}", f"only {{answer}} and {{question}} can be filled in ({exc!r})") from None
            check("\0" in filled, f"{key}.{name}", "must contain {answer}")
        w = lang.weights
        check(min(w.lexical, w.tokens, w.likelihood, w.intents) >= 0, f"{key}.weights", "must all be >= 0")
        check(w.lexical + w.tokens + w.likelihood + w.intents > 0, f"{key}.weights", "at least one must be > 0")


def _validate_web(w: WebSettings) -> None:
    def check(ok: bool, key: str, reason: str) -> None:
        if not ok:
            raise ConfigError(key, reason)

    if w.listen:
        listen_address("web.listen", w.listen)
    for origin in w.allowed_origins:
        check(origin.startswith(("http://", "https://")) and origin.count("/") == 2, "web.allowed_origins",
              f"each must be a scheme and host like \"https://shop.example\" (no path), got {origin!r}")
    check(w.max_message_chars >= 1, "web.max_message_chars", "must be >= 1")
    check(w.requests_per_minute_per_address >= 0, "web.requests_per_minute_per_address", "must be >= 0 (0: no limit)")
    check(w.history_messages >= 0, "web.history_messages", "must be >= 0")
    for code, texts in w.texts.items():
        for f in fields(texts):
            check(bool(getattr(texts, f.name).strip()), f"web.texts.{code}.{f.name}", "must not be empty")
        for name, filled in (("forget_done", {"messages": 0, "alerts": 0}), ("too_long", {"limit": 1})):
            try:
                getattr(texts, name).format(**filled)
            except (KeyError, IndexError, ValueError) as exc:
                raise ConfigError(f"web.texts.{code}.{name}",
                                  f"only {{{'}} and {{'.join(filled)}}} can be filled in ({exc!r})") from None


def web_secret(config: Config) -> str:
    """The visitor-cookie secret, checked when the web chat starts (not needed without it)."""
    secret = config.web_secret or ""
    if len(secret) < WEB_SECRET_MIN_CHARS:
        raise ConfigError(WEB_SECRET_ENV, f"{'too short' if secret else 'not set'}: the web chat signs visitor "
                          f"cookies with it; set at least {WEB_SECRET_MIN_CHARS} random characters, e.g. "
                          "`python3 -c 'import secrets; print(secrets.token_hex(32))'`")
    return secret
