"""The shop's knowledge: import the owner's CSV into SQLite, and find the entry that answers a message."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import logging
import re
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path

import numpy as np

from bot.concepts import intents
from bot.config import KnowledgeSettings, SignalWeights
from bot.lexicon import CJK, WORD, folded, language_of, quiet_jieba, words_finder
from bot.llm.intents import Intent
from bot.ranking import Language, candidates, first_scores, verdict
from bot.retrieval_choice import RetrievalChoice, choose
from storage.db import Database, KnowledgeEntry

log = logging.getLogger(__name__)

HEADER = ["id", "lang", "question", "answer"]
# An optional fifth column: other ways customers ask the question, separated by "|" or line breaks. Retrieval reads
# them with the question; customers never see them. A shop's own customers' words are what no shipped vocabulary has.
ALSO_ASKED = "also_asked"
# The part of an entry the model reads (question and answer); customers still get the whole answer. A pasted policy
# can be longer than the model's context: its beginning says what it is about, as a long message's does.
ENTRY_TOKENS = 256
# A follow-up is a few words that lean on the question before them ("can you check?", "what about Shanghai?", 怎么办,
# 能帮我查一下吗); a longer message says what it is about itself.
FOLLOW_UP_WORDS, FOLLOW_UP_CHARACTERS = 4, 8


class KnowledgeFileError(ValueError):
    """The knowledge CSV cannot be imported; the message names the file, the line and the reason."""


def read_file(path: Path, languages: dict) -> tuple[list[KnowledgeEntry], str]:
    """The entries of a knowledge CSV and the file's sha256; every problem is reported with its line."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise KnowledgeFileError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    try:
        text = raw.decode("utf-8-sig")  # spreadsheet programs save UTF-8 with a byte-order mark
    except UnicodeDecodeError:
        raise KnowledgeFileError(f"{path}: not UTF-8 text; save it as CSV UTF-8") from None
    # newline="": a quoted answer may span lines (csv keeps its line breaks), and line_num counts real lines.
    rows = csv.reader(io.StringIO(text, newline=""), strict=True)  # strict: a quote never closed is an error
    try:
        header = [h.strip().lower() for h in next(rows, [])]
    except csv.Error as exc:
        raise KnowledgeFileError(f"{path} line 1: {exc}") from None
    if header not in (HEADER, [*HEADER, ALSO_ASKED]):
        raise KnowledgeFileError(f"{path}: the first line must be {','.join(HEADER)} (optionally ,{ALSO_ASKED}; "
                                 f"found {','.join(header)})")
    entries, seen, start = [], {}, rows.line_num + 1
    while True:
        line = start  # the row's first line: a quoted answer may go on over several
        try:
            row = next(rows, None)
        except csv.Error as exc:  # e.g. a quote never closed: the rest of the file would be one answer
            raise KnowledgeFileError(f"{path} line {line}: {exc} (a double quote not closed?)") from None
        if row is None:
            break
        start = rows.line_num + 1
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise KnowledgeFileError(f"{path} line {line}: {len(row)} fields, expected {len(header)} "
                                     "(put text with commas in double quotes)")
        entry_id, lang, question, answer = (cell.strip().replace("\r\n", "\n") for cell in row[:len(HEADER)])
        also_asked = tuple(filter(None, (a.strip() for a in re.split(r"[|\n\r]", "".join(row[len(HEADER):])))))
        for name, value in zip(HEADER, (entry_id, lang, question, answer)):
            if not value:
                raise KnowledgeFileError(f"{path} line {line}: {name} is empty")
        if lang not in languages:
            raise KnowledgeFileError(f"{path} line {line}: language {lang!r} has no [knowledge.languages.{lang}] "
                                     f"settings (configured: {', '.join(languages)})")
        if (entry_id, lang) in seen:
            raise KnowledgeFileError(f"{path} line {line}: {entry_id!r} in {lang!r} is also on line "
                                     f"{seen[entry_id, lang]}")
        seen[entry_id, lang] = line
        entries.append(KnowledgeEntry(entry_id, lang, question, answer, also_asked))
    if not entries:
        raise KnowledgeFileError(f"{path}: no entries")
    return entries, hashlib.sha256(raw).hexdigest()


class MatchKind(Enum):
    """What the knowledge did with a message (stored with it: `shopbot kb unanswered` lists the hand-overs)."""

    ANSWERED = "answered"  # an entry answers it surely: the customer got the entry
    UNSURE = "unsure"  # a shop question no entry surely answers: a person follows up (the closest entry is shown)
    NO_ENTRY = "no_entry"  # a shop question with no entry to show (none in its language): a person follows up
    OFF_TOPIC = "off_topic"  # not about the shop: a steer back


HANDED_OVER = (MatchKind.UNSURE, MatchKind.NO_ENTRY)  # a person follows up


@dataclass(frozen=True)
class Match:
    """What the knowledge says about a message."""

    lang: str  # the message's language
    entry: KnowledgeEntry | None  # the best entry; None: off-topic, or no entries in this language
    on_topic: bool  # about the shop (a shop word, a shop intent, or a word the knowledge uses)
    sure: bool = False  # the entry answers it: see Knowledge.find

    @property
    def unanswered(self) -> bool:
        """A shop question the knowledge may not answer: a person follows up."""
        return self.kind in HANDED_OVER

    @property
    def kind(self) -> MatchKind:
        if not self.on_topic:
            return MatchKind.OFF_TOPIC
        if self.entry is None:
            return MatchKind.NO_ENTRY
        return MatchKind.ANSWERED if self.sure else MatchKind.UNSURE


class Knowledge:
    """The imported entries in memory (exact search: a shop's FAQ is small), scored with the engine's model."""

    def __init__(self, db: Database, engine, settings: KnowledgeSettings):
        self.db, self.engine, self.settings = db, engine, settings
        self._languages: dict[str, Language] = {}
        self._finders: dict[tuple[str, str], re.Pattern | None] = {}  # (language, words setting): compiled on first use
        self._choice = RetrievalChoice(None, {})  # this model's measured layer and weights (set by load)

    def __bool__(self) -> bool:
        return bool(self._languages)

    async def import_file(self, path: Path) -> int:
        """Replace the knowledge with the file's entries (one transaction), embed the new ones; how many."""
        entries, sha256 = read_file(path, self.settings.languages)
        await self.db.replace_knowledge(entries, str(path), sha256)
        await self.load()
        return len(entries)

    async def sync(self) -> None:
        """At start: import knowledge.file if it changed since the last import, then load what is stored."""
        path = self.settings.file
        if path is not None:
            try:
                entries, sha256 = read_file(path, self.settings.languages)
            except KnowledgeFileError as exc:
                raise KnowledgeFileError(f"[knowledge] file: {exc}") from None
            last = await self.db.last_knowledge_import()
            if last is None or last["sha256"] != sha256:
                await self.db.replace_knowledge(entries, str(path), sha256)
                log.info("imported %d knowledge entries from %s", len(entries), path)
        await self.load()

    async def load(self) -> None:
        """Read the stored entries; entries without vectors from this model (at its chosen layer) are embedded (and
        stored) now. The first time a model meets knowledge, its retrieval layer and weights are measured."""
        rows = await self.db.knowledge()
        if rows:
            self._choice = await choose(self.engine, self.settings)
        # Vectors from another layer of the same model are another model's: they are computed again.
        model = self.engine.name if self._choice.layer is None else f"{self.engine.name} layer {self._choice.layer}"
        by_lang: dict[str, tuple[list, list]] = {}
        for row in rows:
            entry = KnowledgeEntry(row["entry_id"], row["lang"], row["question"], row["answer"],
                                   tuple(filter(None, row["also_asked"].split("\n"))))
            if "tokens" not in self.engine.retrieval_signals:
                vectors = np.zeros((0, 0), dtype=np.float32)  # this backend's model gives no vectors
            elif row["vectors"] is not None and row["embedded_with"] == model:
                shape = tuple(int(n) for n in row["vectors_shape"].split(","))
                vectors = np.frombuffer(row["vectors"], dtype=np.float16).reshape(shape).astype(np.float32)
            else:
                vectors = await self.engine.token_vectors(" ".join(self._as_read(entry)))
                await self.db.set_knowledge_vectors(entry.entry_id, entry.lang, vectors.astype(np.float16).tobytes(),
                                                    ",".join(map(str, vectors.shape)), model)
            entries, all_vectors = by_lang.setdefault(entry.lang, ([], []))
            entries.append(entry)
            all_vectors.append(vectors)
        self._languages = {lang: Language(*parts) for lang, parts in by_lang.items()}
        if "zh" in self._languages:  # jieba's dictionary takes a second: read now, not at a customer's 有没有X question
            await asyncio.to_thread(quiet_jieba().initialize)
        if self._languages:
            log.info("shop knowledge: %s", ", ".join(f"{len(k.entries)} entries in {lang}"
                                                      for lang, k in self._languages.items()))

    async def find(self, text: str, intent: Intent | None = None, lang: str | None = None) -> Match:
        """The entry that best answers `text` in its language, and how sure that is. `intent`: the model's reading of
        the message, when there is one. Read as not shop talk ("other"), or naming talk of something else
        (not_shop_words: the weather, a joke), a message that only shares a word with the knowledge is off-topic
        ("What's the weather in Hangzhou tomorrow?" shares Hangzhou with the address entry)."""
        lang = lang or language_of(text)  # the service's: a message with no letters is in the customer's last
        shop_word = self._says_one_of(lang, "shop_words", text)
        asks = intents(text)
        known = self._languages.get(lang)
        if known is None:  # no entries in the customer's language: a person answers, or a steer back
            return Match(lang, None, shop_word or bool(asks))
        read_as_no_shop_talk = intent is not None and intent.label == "other" and not intent.from_keywords
        no_shop_talk = read_as_no_shop_talk or self._says_one_of(lang, "not_shop_words", text)
        if not (shop_word or asks) and (no_shop_talk or not known.lexicon.shares_a_term(text)):
            return Match(lang, None, False)
        w = self._weights(lang)
        query = await self.engine.token_vectors(text) if w.tokens else None  # (q, hidden)
        first = first_scores(known, text, asks, query, w)
        best_first = candidates(first, self.settings.candidates)
        likelihood = None
        if w.likelihood and len(best_first) > 1:
            pairs = [self._as_read(known.entries[i]) for i in best_first]
            likelihood = await self.engine.knowledge_likelihood(pairs, text)
        best, sure = verdict(known, text, asks, first, best_first, w.likelihood, likelihood, self.settings.sure_margin)
        return Match(lang, known.entries[best], True, sure)

    async def find_follow_up(self, before: str, text: str, lang: str) -> Match | None:
        """`text`, no shop talk alone, read with the customer's shop question just before it: "怎么办" after
        "灯收到就不亮", "can you check?" after an order number. The match of both together, or None when `text` is
        no follow-up: more than a few words, or talk of something else (not_shop_words: "and the weather?")."""
        short = len(WORD.findall(folded(text))) <= FOLLOW_UP_WORDS and len(CJK.findall(text)) <= FOLLOW_UP_CHARACTERS
        if not short or self._says_one_of(lang, "not_shop_words", text):
            return None
        match = await self.find(f"{before}\n{text}", lang=lang)
        return match if match.on_topic else None

    def _says_one_of(self, lang: str, setting: str, text: str) -> bool:
        """Whether `text` has one of the language's `setting` words (shop_words or not_shop_words)."""
        finder = self._finders.get((lang, setting), False)
        if finder is False:  # en and zh always have settings (their defaults)
            finder = self._finders[lang, setting] = words_finder(getattr(self.settings.languages[lang], setting))
        return finder is not None and finder.search(folded(text)) is not None

    def _as_read(self, entry: KnowledgeEntry) -> tuple[str, str]:
        """The entry's question (with the shop's other wordings) and answer as the model reads them: at most
        ENTRY_TOKENS together."""
        question = self.engine.truncate(entry.asked_as, ENTRY_TOKENS // 2)
        return question, self.engine.truncate(entry.answer, ENTRY_TOKENS - self.engine.count_tokens(question))

    def _weights(self, lang: str) -> SignalWeights:
        """The language's weights (configured, or measured for this model) for the signals the backend's model
        gives; with none of them and no weight on shared words, shared words count fully (intents, which need no
        model, stay as configured)."""
        weights = self.settings.languages[lang].weights
        if weights == "auto":
            weights = self._choice.weights.get(lang, SignalWeights())
        signals = self.engine.retrieval_signals
        usable = replace(weights, tokens=weights.tokens if "tokens" in signals else 0.0,
                         likelihood=weights.likelihood if "likelihood" in signals else 0.0)
        return usable if usable.lexical + usable.tokens + usable.likelihood > 0 else replace(usable, lexical=1.0)
