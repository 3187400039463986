"""The conversation service every channel calls: store, read sentiment and intent, decide an alert, reply, store."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

from bot.brief import BRIEF_MESSAGES, Brief, build
from bot.concepts import asks_anything
from bot.config import Config
from bot.escalation import Handoff
from bot.hours import ALWAYS_OPEN, when_text
from bot.knowledge import Knowledge, Match, MatchKind
from bot.lexicon import Script, blank, language_of, script_of, spoken_language, storable
from bot.llm.backends import ModelBackend, ModelServerDown
from bot.llm.guard import clean_draft, clean_reply
from bot.llm.intents import Intent, Reading
from bot.llm.sentiment_scores import Sentiment
from bot.metrics import Metrics
from bot.ratelimit import RateLimiter, Verdict
from bot.reply_rules import SmallTalk, free_chat_allowed, small_talk
from storage.db import Customer, Database, OperatorChatPosts, StoredMessage

log = logging.getLogger(__name__)

HISTORY_FETCH_LIMIT = 60  # turns read back before trimming to the token budget
SCRIPT_LOOKBACK = 20  # messages of every kind read back for the customer's Chinese script
LANGUAGE_LOOKBACK = 20  # text messages read back for one with letters (an order number or emoji has none)
FOLLOW_UP_SECONDS = 600  # a shop question this recent is what a few words after it ("怎么办") follow up
HUMAN_COMMAND = "/human"  # stored as the customer's turn (kind 'command') when they ask for a person


@dataclass(frozen=True)
class Sender:
    """Who wrote, as the channel knows them."""

    channel: str
    external_id: str
    display_name: str | None = None
    username: str | None = None
    language: str = "en"  # to answer in before they write any text (on Telegram: their app's language)


@dataclass(frozen=True)
class Alert:
    id: int
    reason: str  # the escalation rule that fired
    label: str | None  # None for /human, which has no sentiment read
    confidence: float | None


@dataclass(frozen=True)
class Outcome:
    """What the service did with one customer message."""

    customer: Customer
    message_id: int
    reply: str | None  # None: an operator has the conversation and the customer was told so already
    sentiment: Sentiment | None = None
    alert: Alert | None = None
    fallback: bool = False  # the model failed and the customer got chat.fallback_reply
    reply_id: int | None = None  # the stored reply, to mark sent once the channel has it
    replayed: bool = False  # delivered before (a crash): nothing new stored; reply is empty if it was sent
    relayed: bool = False  # taken over: no model reply; the channel passes the message on to the operator
    model_error: str | None = None  # the model failed (so the reply is the fallback): why, for the operators
    intent: Intent | None = None  # what the customer wants (None: not a text message, or the model failed)
    pieces_sent: int = 0  # a replayed reply too long for one message: how many of its pieces the channel has already


class ModelFailed(RuntimeError):
    """A customer got chat.fallback_reply because the model failed; once the customer has their answer it reaches
    the Telegram error handler (raised by Telegram's handler, passed by the web chat), which tells operators
    (rate-limited)."""


class ConversationService:
    def __init__(self, db: Database, engine: ModelBackend, config: Config):
        self.db, self.engine, self.config = db, engine, config
        self.handoff = Handoff(db, config)
        self.limiter = RateLimiter(config.chat.rate_limit_per_minute)
        self.knowledge = Knowledge(db, engine, config.knowledge)
        self.metrics = Metrics()
        self.metrics.queue_depth.set_function(lambda: self.engine.open_turns)
        self.free_chat = free_chat_allowed(config.chat.free_chat, engine.parameters)
        self.hours = config.hours.schedule() if config.hours else ALWAYS_OPEN

    def waiting_for_model(self) -> int:
        """How many messages are being read or answered by the model, or queued for it, ahead of a new one."""
        return self.engine.open_turns

    async def customer(self, sender: Sender) -> Customer:
        return await self.db.customer(sender.channel, sender.external_id, sender.display_name, sender.username)

    async def handle_text(self, sender: Sender, text: str, external_id: str | None = None,
                          on_partial: Callable[[str], None] | None = None) -> Outcome:
        """One customer message in, the reply out; the message is stored before anything can fail.

        While the model writes a reply, `on_partial(reply so far)` is called as it grows (for channels that
        stream); the Outcome's reply is the final word.

        Over the rate limit the message is stored but not read: the first such gets chat.slow_down_reply,
        later ones no reply at all (Outcome.reply is empty); while an operator has the conversation it is relayed
        to them instead, unread, and the bot stays quiet."""
        customer = await self.customer(sender)
        text = storable(text)
        message_id, stored_reply = await self._store_once(customer, text, "text", external_id)
        if stored_reply is not None:
            return stored_reply
        verdict = self.limiter.check(customer.id)
        lang = spoken_language(text) or await self.language(customer.id, sender.language)
        if verdict is not Verdict.OK and await self.handoff.active(customer.id):
            # The person reads every message; only the model is spared the flood (no sentiment read).
            return await self._relay(customer, message_id, lang=lang)
        if verdict is Verdict.DROP:
            return Outcome(customer, message_id, "")
        chat = self.config.chat
        if verdict is Verdict.WARN:
            log.info("customer %s is over %s messages a minute", customer.id, chat.rate_limit_per_minute)
            return await self._answer(customer, message_id, chat.slow_down_reply.for_lang(lang))
        if blank(text):
            return await self._answer(customer, message_id, chat.empty_reply.for_lang(lang))
        async with self.engine.turn():
            model_text = self.engine.truncate(text, self.config.chat.max_message_tokens)
            reading = await self._read(message_id, model_text)
            if await self.handoff.active(customer.id):
                return await self._relay(customer, message_id, reading, lang=lang)
            human = self.handoff.asks_for_human(text)
            talk = small_talk(text, self._texts(lang))
            canned = self._canned(SmallTalk.THANKS if praises(reading, text) else talk)
            try:
                asks_knowledge = self.knowledge and not human and canned is None
                match = (await self._match(customer.id, message_id, model_text, reading, lang) if asks_knowledge
                         else None)
            except ModelServerDown as exc:  # no guess from half the signals: the fallback, and operators hear why
                log.error("no knowledge search for customer %s: %s; sending the fallback reply", customer.id, exc)
                return await self._answer(customer, message_id, chat.fallback_reply.for_lang(lang), reading,
                                          fallback=True, model_error=str(exc))
            waits = (match is not None and match.unanswered) or canned is SmallTalk.REQUEST
            # A hello or a goodbye says nothing of the customer's mood: the head read "bye" negative (0.74), 再见 (0.90).
            mood = reading if talk is SmallTalk.REQUEST else None
            alert = await self._maybe_alert(customer, message_id, mood, human, waits)
            off_topic = match is not None and not match.on_topic
            # No shop question, but it alerts the operators: read as asking for a person ("Is there somebody real I
            # could chat with?") or negative ("thanks for nothing, this is a joke"). Said so, not steered back.
            if human or (off_topic and self.handoff.calls_person(_sentiment(mood), _intent(mood))):
                return await self._answer(customer, message_id, self.config.handoff.human_reply.for_lang(lang), reading,
                                          alert)  # an honest answer beats the model improvising one
            if canned is not None:  # greetings and thanks, or (no knowledge, no free chat) a person follows up
                return await self._answer(customer, message_id, self._small_talk_reply(canned, lang), reading, alert)
            history = await self._history_before(customer.id, message_id)
            model_error = None
            try:
                shown = self._cleaned(on_partial, lang, await self.script(customer.id))
                reply = await self._reply(history, model_text, match, shown, customer.id)
            except ModelServerDown as exc:  # one line: the traceback says nothing more than the URL
                log.error("no reply for customer %s: %s; sending the fallback reply", customer.id, exc)
                reply, model_error = "", str(exc)
            except Exception as exc:
                log.exception("chat model failed for customer %s; sending the fallback reply", customer.id)
                reply, model_error = "", type(exc).__name__  # the type only: a message may quote the customer
        if await self.handoff.active(customer.id):  # taken over while the model wrote: the person speaks now
            return await self._relay(customer, message_id, reading, alert, lang=lang)
        reply = clean_reply(reply, self.engine.special_tokens, self.config.chat.system_prompt)
        fallback = not reply
        if fallback:
            reply = chat.fallback_reply.for_lang(lang)
        elif match is None and chat.same_language_only and spoken_language(reply) not in (None, lang):
            # never sent: a person answers in their language (a reply of no letters, "👍", is in none: it is sent)
            log.info("the model replied to customer %s in another language than %s; handing over", customer.id, lang)
            reply = self._texts(lang).follow_up_reply
            alert = alert or await self._maybe_alert(customer, message_id, mood, unanswered=True)
        return await self._answer(customer, message_id, reply, reading, alert, fallback, model_error)

    def _texts(self, lang: str):
        """The customer's language's texts ([knowledge.languages.<lang>]; en and zh always have them)."""
        return self.config.knowledge.languages[lang]

    async def language(self, customer_id: int, before_any_text: str = "en") -> str:
        """The customer's language: that of their newest text message with letters (`before_any_text` before they
        wrote one): an order number or an emoji after Chinese words is still a Chinese customer's."""
        texts = await self.db.latest_customer_texts(customer_id, LANGUAGE_LOOKBACK)
        return next(filter(None, map(spoken_language, texts)), before_any_text)

    async def script(self, customer_id: int) -> Script:
        """The script the customer writes Chinese in, shown by their newest text messages."""
        recent = await self.db.latest_messages(customer_id, SCRIPT_LOOKBACK)
        return script_of(m.text for m in reversed(recent) if m.role == "customer" and m.kind == "text")

    async def sender_wording(self, sender: Sender) -> tuple[str, Script]:
        """The language and Chinese script to write to `sender` in before reading their message: those of their
        stored texts, else sender.language and the shop's own script."""
        customer = await self.db.existing_customer(sender.channel, sender.external_id)
        if customer is None:
            return sender.language, Script.UNSHOWN
        return await self.wording(customer.id, sender.language)

    async def wording(self, customer_id: int, before_any_text: str = "en") -> tuple[str, Script]:
        """The language and Chinese script of a stored customer's texts (language: `before_any_text` before any)."""
        return await self.language(customer_id, before_any_text), await self.script(customer_id)

    async def away_note(self, customer_id: int, now: datetime | None = None) -> str | None:
        """Outside business hours: when a person is back, in the customer's language and the shop's time zone."""
        now = now or datetime.now(timezone.utc)
        if self.hours.is_open(now):
            return None
        at, lang = self.hours.next_opening(now), await self.language(customer_id)
        return self._texts(lang).away_note.format(when=when_text(at, now, lang), timezone=self.hours.tz.key)

    def _canned(self, talk: SmallTalk) -> SmallTalk | None:
        """Which texts answer the message when the model does not chat: greetings and thanks (praise too) get theirs,
        with knowledge too ("hi" is no question to steer back), and without knowledge a request gets a person's
        follow-up; None: the knowledge or the model answers it."""
        if self.free_chat and not self.knowledge:
            return None  # the model answers everything
        return None if talk is SmallTalk.REQUEST and self.knowledge else talk

    def _small_talk_reply(self, talk: SmallTalk, lang: str) -> str:
        texts = self._texts(lang)
        return {SmallTalk.GREETING: texts.greeting_reply, SmallTalk.THANKS: texts.thanks_reply,
                SmallTalk.REQUEST: texts.follow_up_reply}[talk]

    async def start(self) -> None:
        """Before the first message: sentiment and intent heads if the model has none (fitted once), the knowledge file
        imported if it changed, the knowledge loaded."""
        await asyncio.to_thread(self.engine.prepare_roles)  # nothing else uses the model yet
        await self.knowledge.sync()
        if not self.knowledge:
            log.warning("no shop knowledge ([knowledge] file): %s (README, \"Without knowledge\")",
                        "replies are the model's own words and may invent facts" if self.free_chat else
                        "the bot answers greetings and thanks; other messages get chat texts and a person follows up")

    async def _match(self, customer_id: int, message_id: int, text: str, reading: Reading | None,
                     lang: str) -> Match:
        """The knowledge's answer to a message, stored with it (`shopbot kb unanswered` lists the hand-overs). No
        shop talk alone, a message may follow up the customer's shop question just before it."""
        try:
            match = await self.knowledge.find(text, _intent(reading), lang)
            if match.kind is MatchKind.OFF_TOPIC:
                match = await self._follow_up(customer_id, message_id, text, lang) or match
        except ModelServerDown:
            raise
        except Exception:  # a person answering beats a guess
            log.exception("knowledge search failed; handing the question to a person")
            match = Match(lang, None, on_topic=True)
        await self.db.set_knowledge_match(message_id, match.kind.value, match.entry and match.entry.entry_id)
        return match

    async def _follow_up(self, customer_id: int, message_id: int, text: str, lang: str) -> Match | None:
        """The match of a few words that follow up the customer's shop question just before ("灯收到就不亮", then
        "怎么办"), if that came within FOLLOW_UP_SECONDS."""
        before = await self.db.text_before(customer_id, message_id)
        if (before is None or time.time() - before["created_at"] >= FOLLOW_UP_SECONDS
                or before["knowledge_match"] in (None, MatchKind.OFF_TOPIC.value)):
            return None
        question = self.engine.truncate(before["text"], self.config.chat.max_message_tokens)  # as it was read
        return await self.knowledge.find_follow_up(question, text, lang)

    def _cleaned(self, on_partial: Callable[[str], None] | None, lang: str,
                 script: Script) -> Callable[[str], None] | None:
        """on_partial that sees a growing reply as the customer will: through the same guard, in their script, never
        empty, never in another language than the customer's."""
        if on_partial is None:
            return None

        def relay(so_far: str) -> None:
            shown = clean_draft(so_far, self.engine.special_tokens, self.config.chat.system_prompt)
            if shown and language_of(shown) == lang:
                on_partial(script.written(shown))

        return relay

    async def _reply(self, history: list[tuple[str, str]], text: str, match: Match | None,
                     on_text: Callable[[str], None] | None, customer_id: int) -> str:
        """The model's own words without knowledge; with it, only what the knowledge says (or a steer, or a
        hand-over), in the customer's language."""
        if match is None:
            return await self._model_reply(history, text, on_text=on_text, conversation=customer_id)
        lang = self.config.knowledge.languages[match.lang]
        if not match.on_topic:
            return lang.off_topic_reply
        entry = match.entry
        if entry is None:
            return lang.unknown_reply
        if not match.sure:  # the closest entry may still help; a person follows up either way
            return lang.unsure_reply.format(answer=entry.answer, question=entry.question)
        if lang.answer_from == "model":
            # Not streamed: a reply in the wrong language is replaced by the entry, so it can't be shown early.
            try:
                reply = await self._model_reply(history, text, facts=[f"{entry.question} {entry.answer}"])
            except Exception as exc:  # e.g. a pasted policy longer than the model's context: the entry still answers
                log.warning("the model could not word knowledge entry %r (%s); sending the entry", entry.entry_id,
                            type(exc).__name__)
            else:
                if reply.strip() and language_of(reply) == match.lang:
                    return reply
                log.info("the model did not answer in %s; sending the knowledge entry %r instead", match.lang,
                         entry.entry_id)
        return lang.wrap.format(answer=entry.answer, question=entry.question)

    async def _model_reply(self, history: list[tuple[str, str]], text: str, **kwargs) -> str:
        """engine.reply, timed for the tokens-per-second metric."""
        started = time.monotonic()
        reply = await self.engine.reply(history, text, **kwargs)
        self.metrics.reply_written(self.engine.count_tokens(reply), time.monotonic() - started)
        return reply

    async def handle_non_text(self, sender: Sender, kind: str, external_id: str | None = None,
                              caption: str | None = None, answer: bool = True) -> Outcome:
        """A photo, sticker, voice note...: stored as an event (with its caption), answered politely, no model call.

        `answer` False: stored (and passed on while taken over) but not answered, e.g. the rest of an album."""
        customer = await self.customer(sender)
        text = storable(f"[{kind}] {caption}" if caption else f"[{kind}]")
        message_id, stored_reply = await self._store_once(customer, text, kind, external_id)
        if stored_reply is not None:
            return stored_reply
        # A caption is the customer's own words: it says their language better than their last text or their app.
        lang = spoken_language(caption or "") or await self.language(customer.id, sender.language)
        if await self.handoff.active(customer.id):
            return await self._relay(customer, message_id, lang=lang)
        if not answer:
            return Outcome(customer, message_id, "")
        return await self._answer(customer, message_id, self.config.telegram.non_text_reply.for_lang(lang))

    async def request_human(self, sender: Sender, external_id: str | None = None) -> Outcome:
        """/human: stored as the customer's turn; an alert, unless an operator has the conversation already."""
        customer = await self.customer(sender)
        message_id, stored_reply = await self._store_once(customer, HUMAN_COMMAND, "command", external_id)
        if stored_reply is not None:
            return stored_reply
        lang = await self.language(customer.id, sender.language)
        if await self.handoff.active(customer.id):
            return await self._relay(customer, message_id, lang=lang)
        alert = await self._maybe_alert(customer, message_id, None, human=True)
        return await self._answer(customer, message_id, self.config.handoff.human_reply.for_lang(lang), alert=alert)

    async def _store_once(self, customer: Customer, text: str, kind: str,
                          external_id: str | None) -> tuple[int, Outcome | None]:
        """Store the message unless the channel delivered it before (after a crash): (its id, its earlier reply)."""
        prior = await self.db.customer_message(customer.id, external_id) if external_id else None
        if prior is None:
            message_id = await self.db.add_message(customer.id, "customer", text, kind=kind, external_id=external_id)
            self.metrics.messages_in.labels(kind).inc()
            return message_id, None
        answer = await self.db.reply_to(prior.id)
        if answer is None:
            log.info("message %s of customer %s was delivered again before it was answered", external_id, customer.id)
            return prior.id, None
        # Sent already: nothing to do. Stored but not confirmed sent: the crash came before or during sending.
        reply = "" if answer["sent_at"] else answer["text"]
        log.info("message %s of customer %s was delivered again; %s", external_id, customer.id,
                 "its stored reply is sent now" if reply else "it was answered already")
        # A takeover notice answered it: the message was for the operator, and the crash may have come before it was
        # passed on. Passed on again: an operator reading it twice beats one never reading it.
        relayed = answer["kind"] == "notice"
        return prior.id, Outcome(customer, prior.id, reply, reply_id=answer["id"], replayed=True, relayed=relayed,
                                 pieces_sent=answer["pieces_sent"])

    async def mark_sent(self, outcome: Outcome) -> None:
        """The channel confirmed the reply: a redelivery of the same message will not send it again.

        SQLite failing here (locked, disk full) is logged, not raised: the customer has the reply, and a retry of the
        update would send it again; unmarked, it is repeated only if the channel delivers the message again."""
        if outcome.reply_id is not None:
            try:
                await self.db.mark_sent(outcome.reply_id)
            except sqlite3.Error as exc:
                log.error("reply %s was sent but could not be marked sent: %s", outcome.reply_id, exc)
            self.metrics.replies_out.inc()

    async def mark_pieces_sent(self, outcome: Outcome, pieces: int) -> None:
        """The channel has the first `pieces` pieces of a long reply: a retry after an outage sends only the rest.

        SQLite failing here is logged, not raised: failing the update would make its retry send those pieces again."""
        if outcome.reply_id is not None:
            try:
                await self.db.mark_pieces_sent(outcome.reply_id, pieces)
            except sqlite3.Error as exc:
                log.error("reply %s: %s piece(s) sent but not recorded: %s", outcome.reply_id, pieces, exc)

    async def reset(self, sender: Sender) -> None:
        await self.db.reset_history((await self.customer(sender)).id)

    async def forget(self, sender: Sender) -> tuple[dict[str, int], OperatorChatPosts]:
        """Delete everything stored about the customer: what was deleted, by kind, and where the bot posted about
        them in operator chats (for the operator channel to delete: the stored links to those posts are gone)."""
        customer = await self.customer(sender)
        posts = await self.db.operator_chat_posts(customer.id)
        await self.engine.forget(customer.id)  # the model's memory of them goes too
        return await self.db.forget(customer.id), posts

    async def brief(self, customer_id: int) -> Brief:
        """The handoff brief operators get with every alert and takeover note."""
        return build(await self.db.latest_messages(customer_id, BRIEF_MESSAGES))

    async def recent_turns(self, customer_id: int) -> list[StoredMessage]:
        """The last few turns, for an operator reading an alert."""
        return await self.db.history(customer_id, self.config.alerts.context_turns)

    async def _answer(self, customer: Customer, message_id: int, reply: str,
                      reading: Reading | None = None, alert: Alert | None = None, fallback: bool = False,
                      model_error: str | None = None) -> Outcome:
        note = await self.away_note(customer.id) if alert else None
        if note:  # a hand-over while nobody is there: the customer learns when someone is
            reply = f"{reply}\n\n{note}"
        reply = (await self.script(customer.id)).written(reply)
        reply_id = await self.db.add_message(customer.id, "bot", reply, reply_to=message_id)
        return Outcome(customer, message_id, reply, _sentiment(reading), alert, fallback, reply_id,
                       model_error=model_error, intent=_intent(reading))

    async def _relay(self, customer: Customer, message_id: int, reading: Reading | None = None,
                     alert: Alert | None = None, *, lang: str) -> Outcome:
        """Taken over: no model reply; the customer hears once, in `lang`, that a person is handling the chat."""
        notice, notice_id = await self.handoff.notice_once(customer.id, lang), None
        if notice:  # kind 'notice': stored for the record, never read by the model as its own words
            notice = (await self.script(customer.id)).written(notice)
            notice_id = await self.db.add_message(customer.id, "bot", notice, kind="notice", reply_to=message_id)
        return Outcome(customer, message_id, notice, _sentiment(reading), alert, reply_id=notice_id, relayed=True,
                       intent=_intent(reading))

    async def _read(self, message_id: int, text: str) -> Reading | None:
        """The message's sentiment and intent, stored with it; None when the model failed (the reply goes on)."""
        try:
            reading = await self.engine.read_message(text)
        except ModelServerDown as exc:
            log.error("no sentiment for message %s: %s", message_id, exc)
            return None
        except Exception:
            log.exception("sentiment model failed for message %s", message_id)
            return None
        sentiment, intent = reading.sentiment, reading.intent
        await self.db.set_sentiment(message_id, sentiment.label, sentiment.confidence, intent.label, intent.confidence)
        self.metrics.sentiment.labels(sentiment.label).inc()
        return reading

    async def _maybe_alert(self, customer: Customer, message_id: int, reading: Reading | None,
                           human: bool = False, unanswered: bool = False) -> Alert | None:
        """An alert when an escalation rule fires ([alerts]); within the cooldown only a more severe rule does."""
        sentiment = _sentiment(reading)
        reason = await self.handoff.escalation(customer.id, sentiment, human, unanswered, _intent(reading))
        if reason is None:
            return None
        label, confidence = (sentiment.label, sentiment.confidence) if sentiment else (None, None)
        alert_id = await self.db.add_alert(customer.id, message_id, reason, label, confidence)
        return Alert(alert_id, reason, label, confidence)

    async def _history_before(self, customer_id: int, message_id: int) -> list[tuple[str, str]]:
        """Past turns, newest kept, within chat.history_tokens (the new message's own tokens count too)."""
        turns = [t for t in await self.db.history(customer_id, HISTORY_FETCH_LIMIT) if t.id < message_id]
        budget = self.config.chat.history_tokens - self.config.chat.max_message_tokens
        kept: list[tuple[str, str]] = []
        for turn in reversed(turns):
            # Each turn capped like a new message: one very long old message must not push out all the rest.
            text = self.engine.truncate(turn.text, self.config.chat.max_message_tokens)
            budget -= self.engine.count_tokens(text)
            if budget < 0:
                break
            kept.append((turn.role, text))
        return kept[::-1]


def praises(reading: Reading | None, text: str) -> bool:
    """Praise or thanks that asks nothing ("收到了，很喜欢！谢谢老板", read as intent praise and positive): no question for
    the knowledge, whose entries it shares words with (收到 and the delivery time: 95 of 220 such messages answered)."""
    return (reading is not None and reading.intent.label == "praise" and reading.sentiment.label == "positive"
            and not asks_anything(text))


def _sentiment(reading: Reading | None) -> Sentiment | None:
    return reading.sentiment if reading else None


def _intent(reading: Reading | None) -> Intent | None:
    return reading.intent if reading else None
