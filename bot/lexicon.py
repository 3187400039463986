"""Words and characters of a text: its language, listed words it mentions, a TF-IDF match over English words and
Chinese n-grams."""

from __future__ import annotations

import enum
import functools
import logging
import math
import re
import unicodedata
from collections import Counter
from pathlib import Path
from typing import Iterable, Sequence

import opencc

CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
WORD = re.compile(r"[a-z0-9]+")
CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
# Where an English word starts and ends: next to no other Latin letter or digit. Not \b, which takes Chinese
# characters for letters: in 的shipping fee多少 no word would start.
WORD_START = r"(?<![a-z0-9_\u00c0-\u024f])"
WORD_END = r"(?![a-z0-9_\u00c0-\u024f])"
_TO_SIMPLIFIED = opencc.OpenCC("t2s")
# The characters OpenCC's s2tw character tables (STCharacters, TWVariants) change: simplified forms. Shipped as a
# list because the s2tw converter itself holds 42 MB of phrase tables that only Traditional-script replies need
# (`tests/test_knowledge.py` rebuilds the list from the installed OpenCC).
SIMPLIFIED_ONLY = frozenset((Path(__file__).parent / "simplified_only.txt").read_text(encoding="utf-8").strip())


@functools.cache
def _to_traditional() -> opencc.OpenCC:
    """Taiwan's standard characters (為, 裡), read in Hong Kong too; loaded for the first Traditional-script reply."""
    return opencc.OpenCC("s2tw")


def simplified(text: str) -> str:
    """Traditional Chinese characters as simplified ones (換顏色 -> 换颜色), so a customer in Taiwan or Hong Kong meets
    the same words and intents as one on the mainland, whichever script the shop wrote its entries in."""
    return _TO_SIMPLIFIED.convert(text) if CJK.search(text) else text


class Script(enum.Enum):
    """How a customer writes Chinese; the shop's texts and answers reach them in the same script."""

    SIMPLIFIED = "simplified"
    TRADITIONAL = "traditional"
    UNSHOWN = "unshown"  # no Chinese yet, or only characters both scripts share: texts go out as the shop wrote them

    def written(self, text: str) -> str:
        """`text` in this script, whichever the shop wrote it in."""
        if self is Script.UNSHOWN or not CJK.search(text):
            return text
        return (_to_traditional() if self is Script.TRADITIONAL else _TO_SIMPLIFIED).convert(text)


def script_of(texts: Iterable[str]) -> Script:
    """The script of the newest of `texts` (newest first) that shows one: the one more of its characters belong to
    alone (in 這個可以退嗎 five do; 好的 is the same in both and shows none)."""
    for text in texts:
        if not CJK.search(text):
            continue
        traditional_only = sum(a != b for a, b in zip(text, _TO_SIMPLIFIED.convert(text)))
        simplified_only = sum(c in SIMPLIFIED_ONLY for c in text)
        if traditional_only != simplified_only:
            return Script.TRADITIONAL if traditional_only > simplified_only else Script.SIMPLIFIED
    return Script.UNSHOWN


@functools.cache
def quiet_jieba():
    """jieba (Chinese word segmentation), imported on first use (its dictionary takes a second to load), without
    its start-up log lines."""
    import jieba

    jieba.setLogLevel(logging.WARNING)
    return jieba


_APOSTROPHES = str.maketrans("‘’ʼ", "'" * 3)  # a phone's curly apostrophe: "don’t want it" is "don't want it"


# Chat shorthand for the words phrases are written with: "when does it leave ur warehouse?", "where r u". Not "u" in
# "u.s." or a name ("U-lock"), nor "r" alone ("R&B").
_SHORTHAND = {"u": "you", "ur": "your", "r u": "are you", "u r": "you are"}
_SHORTHAND_WORD = re.compile(r"(?<![\w.&/-])(?:r u|u r|ur|u)(?![\w&/-]|\.\w)")


def folded(text: str) -> str:
    """Text as phrases and words are compared: casefolded, with straight apostrophes, chat shorthand spelt out, and
    simplified() (轉人工 and 转人工 alike)."""
    text = text.casefold().translate(_APOSTROPHES)
    return simplified(_SHORTHAND_WORD.sub(lambda m: _SHORTHAND[m.group()], text))


# English sentences are made with these: Latin words beside Chinese without one of them are names ("iPhone 15 Pro").
EN_GRAMMAR = frozenset(
    "a an and are as at be by can could do does for from have how i if in is it me my of on or our the this "
    "that to we what when where which will with would you your".split()
)
# Function words carry no topic; left in, "can I" would match every "can I" entry, and "arguing all morning" the
# warranty entry's "All electronics come with a 1-year warranty".
EN_STOP = EN_GRAMMAR | frozenset(
    "all any am been being both but did doing each few had has having he her here hers him his its itself just more "
    "mine most myself other ours she should so some such than them their theirs then there these they those too us "
    "very was were who whom why yours".split()
)
ZH_STOP = frozenset("的 了 吗 呢 吧 啊 我 你 您 们 是 有 在 和 就 都 也 要 能 可 以 么 什 怎 多 久".split())


# Endings a listed English word may take: "order" also finds orders and ordered, "ship" shipping, "deliver" delivery.
EN_ENDINGS = "(?:s|es|d|ed|ing|er|ers|y|ies|ment|ments)?"


def _word_pattern(word: str) -> str:
    word = word.strip()
    if CJK.search(word):
        # Chinese is written without spaces and has no endings: a listed word is found wherever it stands.
        return re.escape(word)
    stems = {word, word + word[-1]} | ({word[:-1]} if word.endswith("e") else set())  # shipping, arriving
    alternatives = "|".join(re.escape(s) for s in sorted(stems, key=len, reverse=True))
    return rf"{WORD_START}(?:{alternatives}){EN_ENDINGS}{WORD_END}"  # never inside another word: "you" not in "your"


def words_finder(words: Iterable[str]) -> re.Pattern | None:
    """A pattern that finds any of `words` in folded() text as words, not substrings; None for no words."""
    patterns = [_word_pattern(folded(w)) for w in words if w.strip()]
    return re.compile("|".join(patterns)) if patterns else None


LATIN = re.compile(r"[a-z]")


def language_of(text: str) -> str:
    """'zh' when Chinese characters make up at least a third of the letters, or when the Latin words beside them
    are no English sentence (not one English function word: "iPhone 15 Pro 有货吗", "ok收到了，good quality");
    else 'en' ("Do you ship to 北京?")."""
    cjk = len(CJK.findall(text))
    if not cjk:
        return "en"
    lowered = text.lower()
    latin = len(LATIN.findall(lowered))  # digits are no letters: 订单号 20261203001 is Chinese
    if cjk * 3 >= cjk + latin:
        return "zh"
    # Product and brand names are written in Latin letters in Chinese too; English grammar needs its own words.
    return "en" if any(word in EN_GRAMMAR for word in WORD.findall(lowered)) else "zh"


def blank(text: str) -> bool:
    """Nothing to read: only whitespace and invisible format characters (zero-width spaces and joiners, which
    str.strip() keeps)."""
    return all(char.isspace() or unicodedata.category(char) == "Cf" for char in text)


def spoken_language(text: str) -> str | None:
    """language_of the text, or None when it has no letter that tells (an order number, emoji, a blank message)."""
    return language_of(text) if CJK.search(text) or LATIN.search(text.lower()) else None


def terms(text: str) -> list[str]:
    """English words (and 5-letter stems of long ones, so refund/refunded meet) and Chinese 1-3-grams (simplified)."""
    text = folded(text)
    out: list[str] = []
    for word in WORD.findall(text):
        if word not in EN_STOP:
            out.append(word)
            if len(word) > 5:
                out.append(word[:5] + "~")
    for run in CJK_RUN.findall(text):
        out += [c for c in run if c not in ZH_STOP]
        grams = (run[i:i + n] for n in (2, 3) for i in range(len(run) - n + 1))
        out += [g for g in grams if not set(g) <= ZH_STOP]  # 你们, 可以 ... say nothing about the topic
    return out


class Lexicon:
    """TF-IDF vectors of a few documents; a query's cosine to each (sublinear tf, smoothed idf)."""

    def __init__(self, documents: Sequence[str]):
        self._texts = [folded(d) for d in documents]
        bags = [Counter(terms(d)) for d in documents]
        # Each document's terms as shares_a_term compares them (a Chinese character alone says too little).
        self._terms = [{_singular(t) for t in bag if not (len(t) == 1 and CJK.match(t))} for bag in bags]
        self._all_terms = frozenset().union(*self._terms)
        df = Counter(t for bag in bags for t in bag)
        n = len(documents)
        self._idf = {t: math.log((n + 1) / (c + 1)) + 1 for t, c in df.items()}
        self._docs = [self._vector(bag) for bag in bags]

    def _vector(self, bag: Counter) -> dict[str, float]:
        weights = {t: (1 + math.log(c)) * self._idf.get(t, 0.0) for t, c in bag.items()}
        norm = math.sqrt(sum(w * w for w in weights.values())) or 1.0
        return {t: w / norm for t, w in weights.items() if w}

    def scores(self, text: str) -> list[float]:
        query = self._vector(Counter(terms(text)))
        return [sum(w * doc.get(t, 0.0) for t, w in query.items()) for doc in self._docs]

    def share_named(self, words: Sequence[str], document: int) -> float:
        """The share of `words` (folded) the document names: a Chinese word anywhere in it, an English word as a
        word of it, its plural, or the start of a longer one ("contact" in "contact lenses", "groom" in "grooming")."""
        text, own = self._texts[document], self._terms[document]  # own: its words in the singular, Chinese n-grams

        def names(word: str) -> bool:
            if CJK.search(word):
                return word in text  # a word of four characters or more is no n-gram of the lexicon's
            stem = _singular(word)
            return stem in own or len(stem) > 3 and any(o.startswith(stem) for o in own)

        return sum(map(names, words)) / len(words)

    def shared_characters(self, text: str, document: int) -> int:
        """How many Chinese characters of the text (not function characters such as 的, 吗) the document has."""
        return len({c for c in CJK.findall(folded(text)) if c not in ZH_STOP and c in self._texts[document]})

    def shares_a_term(self, text: str, document: int | None = None) -> bool:
        """The text has a word, or a Chinese pair of characters, that the document (any, when None) has; a plural
        meets its singular ("dog", "dogs") and a five-letter word its longer forms ("groom", "grooming")."""
        pool = self._all_terms if document is None else self._terms[document]
        return any(_singular(t) in pool or f"{t}~" in pool for t in terms(text) if not (len(t) == 1 and CJK.match(t)))


def _singular(term: str) -> str:
    """An English plural's singular, roughly: dogs -> dog, prices -> price, dailies -> daily; glass and bus stay."""
    plural = term.isascii() and term.isalpha() and len(term) > 3 and term.endswith("s") and not term.endswith("ss")
    if plural and term.endswith("ies") and len(term) > 4:
        return term[:-3] + "y"
    return term[:-1] if plural else term


def storable(text: str) -> str:
    """Text as UTF-8 can hold it: a surrogate pair becomes its character, a lone surrogate U+FFFD.

    Telegram delivers UTF-8, so lone surrogates never arrive from it; a web page's script or a JSON file can
    hold them (half an emoji cut off), and SQLite, a UTF-8 file or the tokenizer would refuse the text."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
