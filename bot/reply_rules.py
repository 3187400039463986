"""Which replies the model may write: the free-chat rule for a shop without knowledge, and small talk."""

from __future__ import annotations

import enum
import re

from bot.config import LanguageSettings
from bot.lexicon import folded

# Below this size a model is not trusted to chat without the shop's knowledge: the embedded 135M model answered
# 8 of 34 sample questions in the wrong language and invented shops and policies (README, "Without knowledge").
FREE_CHAT_MIN_PARAMETERS = 1_000_000_000
# Words that may surround a greeting or thanks without making it a request ("thanks a lot", "hi there", "Hello, is
# anyone there?", "我想咨询一下"), the ways Chinese customers address a shop among them ("亲，在吗", "客服在吗", "谢谢老板").
# "no" declines politely beside thanks or a closing phrase ("no thanks", "no, that's all"); alone it says too little.
FILLERS = frozenset("a again all and everyone guys i is lot much no nope so there team very you your 了 啊 呀 哦 哈 啦 呢 "
                    "哟 么 嘛 吧 亲 亲亲 老板 客服 掌柜 店家 我 我想 想 那 那我 请问".split())
NOT_WORDS = re.compile(r"[\W_]+")


class SmallTalk(enum.Enum):
    """What a message is, for a bot that does not free-chat."""

    GREETING = "greeting"
    THANKS = "thanks"  # thanks, a bare "ok", "no thanks", "that's all": closing words that need no person
    REQUEST = "request"  # anything else: a person follows up


def free_chat_allowed(setting: str, parameters: int | None) -> bool:
    """chat.free_chat: "on", "off", or "auto": on for models of at least FREE_CHAT_MIN_PARAMETERS, and for a model on a
    server that does not say its size (vLLM, Ollama: a shop that runs a model server chose a model to chat with)."""
    if setting == "auto":
        return parameters is None or parameters >= FREE_CHAT_MIN_PARAMETERS
    return setting == "on"


def small_talk(text: str, lang: LanguageSettings) -> SmallTalk:
    """GREETING or THANKS when the message is only those words (and fillers, punctuation, emoji), else REQUEST."""
    rest = f" {folded(text)} "
    phrases = [(folded(p), SmallTalk.THANKS) for p in lang.thanks]
    phrases += [(folded(p), SmallTalk.GREETING) for p in lang.greetings]
    found = set()
    for phrase, kind in sorted(phrases, key=lambda pk: len(pk[0]), reverse=True):  # "你好" before "好"
        if phrase in rest:
            rest = rest.replace(phrase, " ")
            found.add(kind)
    leftover = [w for w in NOT_WORDS.split(rest) if w and w not in FILLERS]
    if not found or leftover:
        return SmallTalk.REQUEST
    return SmallTalk.THANKS if SmallTalk.THANKS in found else SmallTalk.GREETING  # "hi, thanks!" is thanks
