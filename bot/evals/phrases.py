"""A comment's language and key phrases: jieba's TF-IDF keywords for Chinese, content words for English."""

from __future__ import annotations

import functools
import re

from bot.lexicon import CJK, EN_STOP, language_of, quiet_jieba

PHRASES_PER_ROW = 5
EN_WORD = re.compile(r"(?<![@#\w])[a-z][a-z']+[a-z]")  # not @mentions, #tags or the middle of a URL
URL = re.compile(r"https?://\S+|www\.\S+")
# On top of the retrieval stop words: words that say nothing about what a comment is about.
EN_FILLER = frozenset(
    "about after again all also am any because been before being but did doing don't get got had has having "
    "he her here him his into its it's just more most much no now off one only other out over she so some "
    "such than their them then there these they those too up very was way were who why you're i'm i've "
    "really thanks thank still even ever".split()
)


def language(text: str) -> str:
    """'zh' or 'en' as the bot itself decides (bot.lexicon); 'none' for a text without any letters."""
    if not CJK.search(text) and not re.search(r"[^\W\d_]", text):
        return "none"
    return language_of(text)


def key_phrases(text: str, lang: str) -> list[str]:
    """Up to PHRASES_PER_ROW phrases that say what the comment is about, most telling first."""
    if lang == "zh":
        return _chinese_keywords(text)
    words = EN_WORD.findall(URL.sub(" ", text.lower()))
    picked: list[str] = []
    for word in words:
        if word not in EN_STOP and word not in EN_FILLER and word not in picked:
            picked.append(word)
    return picked[:PHRASES_PER_ROW]


def _chinese_keywords(text: str) -> list[str]:
    # TF-IDF against jieba's own corpus frequencies: a word common everywhere (我们, 这个) ranks low.
    return [w for w in _jieba_tags()(text, topK=PHRASES_PER_ROW) if not w.isdigit()]


@functools.cache
def _jieba_tags():
    """jieba's keyword extractor, imported on the first Chinese row (its dictionary takes a second to load)."""
    quiet_jieba()
    import jieba.analyse

    return jieba.analyse.extract_tags
