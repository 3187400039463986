"""The SQLite layer: one connection used by one coroutine at a time (one writer), WAL mode, every query shopbot runs."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import AsyncIterator, Sequence

import aiosqlite

from storage.migrations import NewerSchema, migrate

# The Database whose connection the running coroutine holds: its statements inside a transaction don't wait for it.
_HOLDING: ContextVar["Database | None"] = ContextVar("holding_database", default=None)


@dataclass(frozen=True)
class Customer:
    id: int
    channel: str
    external_id: str
    display_name: str | None
    username: str | None


@dataclass(frozen=True)
class KnowledgeEntry:
    entry_id: str
    lang: str
    question: str
    answer: str
    also_asked: tuple[str, ...] = ()  # other ways customers ask it, written by the shop: matched, never shown

    @property
    def asked_as(self) -> str:
        """The question and the shop's other wordings of it, as retrieval reads them."""
        return " | ".join((self.question, *self.also_asked))


@dataclass(frozen=True)
class StoredMessage:
    id: int
    role: str  # 'customer' | 'bot' | 'operator'
    kind: str
    text: str
    sentiment: str | None
    confidence: float | None
    created_at: float
    external_id: str | None = None  # the channel's message id; read only where a caller needs it
    intent: str | None = None  # a customer text's intent (bot.llm.intents); read only where a caller needs it


@dataclass(frozen=True)
class OperatorChatPosts:
    """Where the bot posted about one customer in operator chats."""

    topics: list[tuple[int, int]]  # (chat_id, message_thread_id) of the customer's forum topics
    messages: list[tuple[int, int]]  # (chat_id, message_id) of alerts, relays and notes linked to the customer

    def __bool__(self) -> bool:
        return bool(self.topics or self.messages)


class DatabaseOpenError(RuntimeError):
    """The SQLite file cannot be opened or brought up to date; the message names it and the reason. `busy`: another
    program held it past busy_timeout, which passes (a restart may succeed); any other reason needs the owner."""

    def __init__(self, path: Path, reason: str, busy: bool = False):
        super().__init__(f"cannot open {path}: {reason}")
        self.path, self.reason, self.busy = path, reason, busy


class Rated(Enum):
    """What a tap on a CSAT button did."""

    RECORDED = "recorded"
    ALREADY = "already"  # the survey has a rating: a second tap is not counted
    UNKNOWN = "unknown"  # no such survey for this customer (deleted by /forget, or forged)


# A Telegram customer's updates that failed every try (inbox.failed_at) keep their payload for the owner: /forget
# blanks those too. Every update kind (message, edited_message, callback_query...) names its sender in "from".
# Pending updates are left alone: each is blanked when handled, and one sent after the /forget must not be lost.
_BLANK_GIVEN_UP_UPDATES = """
    UPDATE inbox SET payload = '' WHERE failed_at IS NOT NULL AND EXISTS (
        SELECT 1 FROM customers c, json_each(NULLIF(inbox.payload, '')) u
        WHERE c.id = ? AND c.channel = 'telegram' AND json_extract(u.value, '$.from.id') = CAST(c.external_id AS INTEGER))
"""


class Database:
    """Owns the SQLite file through one connection, which one coroutine uses at a time.

    aiosqlite runs statements on one thread, but a coroutine awaits between the statements of a transaction:
    without the turn, another customer's write would join that transaction (and go with its ROLLBACK), and a
    second BEGIN would fail. Every statement, and every transaction as a whole, takes the connection's turn."""

    def __init__(self, conn: aiosqlite.Connection, path: Path):
        self._db = conn
        self.path = path
        self._turn_lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: str | os.PathLike) -> "Database":
        """Open (or create) the file and bring its schema up to date; DatabaseOpenError names the file and why not."""
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                # Customers' messages are personal data: the file is readable by the owner only.
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
            conn = await aiosqlite.connect(path, isolation_level=None)  # autocommit; BEGIN where needed
        except (OSError, sqlite3.Error) as exc:
            raise DatabaseOpenError(path, getattr(exc, "strerror", None) or str(exc)) from None
        conn.row_factory = aiosqlite.Row
        try:
            # The first statement reads the file: one that is no SQLite database fails here, and the connection
            # must be closed then too.
            await conn.execute("PRAGMA journal_mode=WAL")
            await conn.execute("PRAGMA synchronous=NORMAL")
            await conn.execute("PRAGMA foreign_keys=ON")
            await conn.execute("PRAGMA busy_timeout=5000")
            # Deleted rows are overwritten, not just unlinked: /forget and retention leave no text in free pages.
            await conn.execute("PRAGMA secure_delete=ON")
            await migrate(conn)
            await conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # a deletion the last run did not scrub
        except BaseException as exc:
            await conn.close()  # its thread would otherwise keep the process alive after the error
            if isinstance(exc, (sqlite3.Error, NewerSchema)):
                busy = getattr(exc, "sqlite_errorcode", None) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
                raise DatabaseOpenError(path, str(exc), busy) from None
            raise
        return cls(conn, path)

    async def close(self) -> None:
        async with self._turn():  # never in the middle of someone's transaction
            await self._db.close()

    @asynccontextmanager
    async def _turn(self) -> AsyncIterator[None]:
        """The connection for this coroutine alone; re-entered freely inside its own transaction."""
        if _HOLDING.get() is self:
            yield
            return
        async with self._turn_lock:  # first come, first served
            holding = _HOLDING.set(self)
            try:
                yield
            finally:
                _HOLDING.reset(holding)

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[None]:
        """Statements inside commit together or not at all, and no other coroutine's statement runs in between."""
        async with self._turn():
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                await self._db.execute("ROLLBACK")
                raise
            await self._db.execute("COMMIT")

    async def _execute(self, sql: str, params: tuple = ()) -> aiosqlite.Cursor:
        async with self._turn():
            return await self._db.execute(sql, params)

    async def check_writable(self) -> None:
        """Raise sqlite3.Error unless a write can be made now (file writable, not locked by another process)."""
        # Matches no row, yet it is a write: refused on a read-only file, waits out (busy_timeout) another
        # process's lock. Not in a transaction of its own: it may run inside one of ours and must not end it.
        await self._db.execute("DELETE FROM inbox WHERE update_id IS NULL")

    async def _one(self, sql: str, params: tuple = ()) -> aiosqlite.Row | None:
        async with self._turn(), self._db.execute(sql, params) as cur:
            return await cur.fetchone()

    async def _all(self, sql: str, params: tuple = ()) -> list[aiosqlite.Row]:
        async with self._turn(), self._db.execute(sql, params) as cur:
            return list(await cur.fetchall())

    # --- customers -------------------------------------------------------------------------------

    async def customer(
        self, channel: str, external_id: str, display_name: str | None = None, username: str | None = None
    ) -> Customer:
        """The customer with this channel id, created on first contact; name and username kept current."""
        async with self._turn():  # the row read is the row written
            await self._execute(
                """INSERT INTO customers (channel, external_id, display_name, username, created_at)
                   VALUES (?, ?, ?, ?, ?)
                   ON CONFLICT (channel, external_id) DO UPDATE SET
                     display_name = COALESCE(excluded.display_name, display_name),
                     username = COALESCE(excluded.username, username)""",
                (channel, str(external_id), display_name, username, time.time()),
            )
            row = await self._one(
                "SELECT id, channel, external_id, display_name, username FROM customers"
                " WHERE channel = ? AND external_id = ?",
                (channel, str(external_id)),
            )
        return Customer(**dict(row))

    async def customer_by_id(self, customer_id: int) -> Customer | None:
        row = await self._one(
            "SELECT id, channel, external_id, display_name, username FROM customers WHERE id = ?", (customer_id,)
        )
        return Customer(**dict(row)) if row else None

    async def existing_customer(self, channel: str, external_id: str) -> Customer | None:
        """The customer with this channel id, if they ever wrote (a web page view alone stores nobody)."""
        row = await self._one(
            "SELECT id, channel, external_id, display_name, username FROM customers"
            " WHERE channel = ? AND external_id = ?",
            (channel, str(external_id)),
        )
        return Customer(**dict(row)) if row else None

    # --- messages --------------------------------------------------------------------------------

    async def add_message(
        self,
        customer_id: int,
        role: str,
        text: str,
        *,
        kind: str = "text",
        external_id: str | None = None,
        reply_to: int | None = None,
    ) -> int:
        cur = await self._execute(
            "INSERT INTO messages (customer_id, role, kind, text, external_id, reply_to, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (customer_id, role, kind, text, external_id, reply_to, time.time()),
        )
        return cur.lastrowid

    async def customer_message(self, customer_id: int, external_id: str) -> StoredMessage | None:
        """The customer's message with this channel id, if it was stored already (a redelivery)."""
        row = await self._one(
            "SELECT id, role, kind, text, sentiment, confidence, created_at FROM messages"
            " WHERE customer_id = ? AND external_id = ? AND role = 'customer'",
            (customer_id, external_id),
        )
        return StoredMessage(**dict(row)) if row else None

    async def reply_to(self, message_id: int) -> dict | None:
        """The bot's stored answer to a customer message (id, text, kind, sent_at, pieces_sent), if there is one."""
        row = await self._one(
            "SELECT id, text, kind, sent_at, pieces_sent FROM messages WHERE reply_to = ? AND role = 'bot'"
            " ORDER BY id LIMIT 1",
            (message_id,),
        )
        return dict(row) if row else None

    async def mark_sent(self, message_id: int) -> None:
        await self._execute("UPDATE messages SET sent_at = ? WHERE id = ?", (time.time(), message_id))

    async def mark_pieces_sent(self, message_id: int, pieces: int) -> None:
        """The channel has the first `pieces` pieces of a bot message too long for one (the rest may follow)."""
        await self._execute("UPDATE messages SET pieces_sent = ? WHERE id = ?", (pieces, message_id))

    async def set_sentiment(self, message_id: int, label: str, confidence: float, intent: str | None = None,
                            intent_confidence: float | None = None) -> None:
        """What the model read in a customer message: its sentiment, and its intent (read with it)."""
        await self._execute(
            "UPDATE messages SET sentiment = ?, confidence = ?, intent = ?, intent_confidence = ? WHERE id = ?",
            (label, confidence, intent, intent_confidence, message_id),
        )

    async def set_knowledge_match(self, message_id: int, kind: str, entry_id: str | None) -> None:
        """What the knowledge did with a customer message (a MatchKind's value) and the entry it answered with or
        showed as the closest."""
        await self._execute("UPDATE messages SET knowledge_match = ?, knowledge_entry = ? WHERE id = ?",
                            (kind, entry_id, message_id))

    async def text_before(self, customer_id: int, message_id: int) -> dict | None:
        """The customer's text message just before `message_id` since their last /reset (text, knowledge_match,
        created_at), if any."""
        row = await self._one(
            """SELECT text, knowledge_match, created_at FROM messages
               WHERE customer_id = ? AND role = 'customer' AND kind = 'text' AND id < ?
                 AND id > (SELECT history_start_id FROM customers WHERE id = ?)
               ORDER BY id DESC LIMIT 1""",
            (customer_id, message_id, customer_id),
        )
        return None if row is None else dict(row)

    async def knowledge_matches(self, since: float) -> list[dict]:
        """Customer texts from `since` on that the knowledge was asked about, oldest first (text, knowledge_match,
        knowledge_entry, created_at)."""
        return [dict(r) for r in await self._all(
            """SELECT text, knowledge_match, knowledge_entry, created_at FROM messages
               WHERE role = 'customer' AND knowledge_match IS NOT NULL AND created_at >= ? ORDER BY id""",
            (since,),
        )]

    async def history(self, customer_id: int, limit: int) -> list[StoredMessage]:
        """The newest `limit` text turns since the last /reset, oldest first."""
        rows = await self._all(
            """SELECT id, role, kind, text, sentiment, confidence, created_at FROM messages
               WHERE customer_id = ? AND kind = 'text'
                 AND id > (SELECT history_start_id FROM customers WHERE id = ?)
               ORDER BY id DESC LIMIT ?""",
            (customer_id, customer_id, limit),
        )
        return [StoredMessage(**dict(r)) for r in reversed(rows)]

    async def latest_customer_texts(self, customer_id: int, limit: int) -> list[str]:
        """The customer's newest `limit` text messages, newest first (to tell their language)."""
        rows = await self._all("SELECT text FROM messages WHERE customer_id = ? AND role = 'customer' AND kind = 'text'"
                               " ORDER BY id DESC LIMIT ?", (customer_id, limit))
        return [row[0] for row in rows]

    async def latest_messages(self, customer_id: int, limit: int) -> list[StoredMessage]:
        """The newest `limit` messages of every kind, resets included, oldest first: what the customer saw."""
        rows = await self._all(
            "SELECT id, role, kind, text, sentiment, confidence, created_at, intent FROM messages"
            " WHERE customer_id = ? ORDER BY id DESC LIMIT ?",
            (customer_id, limit),
        )
        return [StoredMessage(**dict(r)) for r in reversed(rows)]

    async def messages(self, customer_id: int) -> list[StoredMessage]:
        """Everything stored for a customer, oldest first (resets included)."""
        rows = await self._all(
            "SELECT id, role, kind, text, sentiment, confidence, created_at FROM messages"
            " WHERE customer_id = ? ORDER BY id",
            (customer_id,),
        )
        return [StoredMessage(**dict(r)) for r in rows]

    async def reset_history(self, customer_id: int) -> None:
        """Start a fresh conversation: replies stop using what came before (nothing is deleted)."""
        await self._execute(
            "UPDATE customers SET history_start_id = (SELECT COALESCE(MAX(id), 0) FROM messages) WHERE id = ?",
            (customer_id,),
        )

    async def forget(self, customer_id: int) -> dict[str, int]:
        """Delete the customer and everything stored about them; returns what was deleted, by kind."""
        counts = {}
        async with self._transaction():
            for table in ("messages", "alerts"):
                row = await self._one(f"SELECT COUNT(*) FROM {table} WHERE customer_id = ?", (customer_id,))
                counts[table] = row[0]
            await self._execute(_BLANK_GIVEN_UP_UPDATES, (customer_id,))
            cur = await self._execute("DELETE FROM customers WHERE id = ?", (customer_id,))
            counts["customers"] = cur.rowcount
        await self._scrub_wal()
        return counts

    async def _scrub_wal(self) -> None:
        """Copy the WAL into the file and empty it: the deleted text's old page images in it are gone."""
        await self._execute("PRAGMA wal_checkpoint(TRUNCATE)")

    async def delete_older_than(self, cutoff: float) -> dict[str, int]:
        """Retention: messages and alerts created before `cutoff` (unix time), then customers left with nothing.

        An alert the operator chat has yet to get (the chat unreachable, or held for the opening digest over a long
        weekend) stays, with the message it is about, until it is delivered: the next run deletes them."""
        waiting = "delivered_at IS NULL AND not_sent IS NULL"
        counts = {}
        async with self._transaction():
            cur = await self._execute(f"DELETE FROM alerts WHERE created_at < ? AND NOT ({waiting})", (cutoff,))
            counts["alerts"] = cur.rowcount
            cur = await self._execute(
                "DELETE FROM messages WHERE created_at < ? AND id NOT IN"
                f" (SELECT message_id FROM alerts WHERE message_id IS NOT NULL AND {waiting})", (cutoff,))
            counts["messages"] = cur.rowcount
            cur = await self._execute(
                "DELETE FROM customers WHERE created_at < ?"
                " AND NOT EXISTS (SELECT 1 FROM messages WHERE messages.customer_id = customers.id)"
                " AND NOT EXISTS (SELECT 1 FROM alerts WHERE alerts.customer_id = customers.id)",
                (cutoff,),
            )
            counts["customers"] = cur.rowcount
        await self._scrub_wal()
        return counts

    # --- inbox: Telegram updates stored before they are confirmed ------------------------------------

    async def inbox_add(self, update_id: int, payload: str) -> bool:
        """Keep an update until it is handled; False if it is known already (a redelivery)."""
        cur = await self._execute(
            "INSERT OR IGNORE INTO inbox (update_id, payload, received_at) VALUES (?, ?, ?)",
            (update_id, payload, time.time()),
        )
        return cur.rowcount == 1

    async def inbox_pending(self) -> list[str]:
        """Payloads of updates received but not handled to the end, oldest first: the process died, or every try of
        the last run failed (given up for that run, tried again at start; not when /forget blanked it)."""
        return [r[0] for r in await self._all(
            "SELECT payload FROM inbox WHERE done_at IS NULL AND payload != '' ORDER BY update_id")]

    async def inbox_give_up(self, update_id: int) -> None:
        """Handling failed on every retry: kept with its payload for the owner, tried again at the next start."""
        await self._execute("UPDATE inbox SET failed_at = ? WHERE update_id = ?", (time.time(), update_id))

    async def inbox_failed(self) -> list[str]:
        """Payloads of updates given up on, oldest first (but those /forget blanked)."""
        return [r[0] for r in await self._all(
            "SELECT payload FROM inbox WHERE failed_at IS NOT NULL AND payload != '' ORDER BY update_id")]

    async def inbox_done(self, update_id: int) -> None:
        # Only the id is needed from now on (to spot a redelivery): the customer's text is not kept twice.
        await self._execute(
            "UPDATE inbox SET done_at = ?, payload = '' WHERE update_id = ?", (time.time(), update_id)
        )

    async def inbox_prune(self, before: float) -> int:
        """Forget handled updates older than `before`: Telegram redelivers nothing older than a day."""
        cur = await self._execute("DELETE FROM inbox WHERE done_at IS NOT NULL AND received_at < ?", (before,))
        return cur.rowcount

    # --- shop knowledge --------------------------------------------------------------------------

    async def replace_knowledge(self, entries: list[KnowledgeEntry], source: str, sha256: str) -> None:
        """The imported file becomes the whole knowledge, in one transaction: a failed import changes nothing.

        Vectors of entries whose text did not change are kept, so a re-import embeds only what is new."""
        async with self._transaction():
            kept = {(r["entry_id"], r["lang"], r["question"], r["answer"], r["also_asked"]): r for r in await self._all(
                "SELECT entry_id, lang, question, answer, also_asked, vectors, vectors_shape, embedded_with"
                " FROM knowledge")}
            await self._execute("DELETE FROM knowledge")
            for position, e in enumerate(entries):
                also_asked = "\n".join(e.also_asked)
                old = kept.get((e.entry_id, e.lang, e.question, e.answer, also_asked))
                await self._execute(
                    "INSERT INTO knowledge (entry_id, lang, question, answer, also_asked, position, vectors,"
                    " vectors_shape, embedded_with) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (e.entry_id, e.lang, e.question, e.answer, also_asked, position,
                     *((old["vectors"], old["vectors_shape"], old["embedded_with"]) if old else (None, None, None))),
                )
            await self._execute(
                "INSERT INTO knowledge_imports (source, sha256, entries, imported_at) VALUES (?, ?, ?, ?)",
                (source, sha256, len(entries), time.time()),
            )

    async def last_knowledge_import(self) -> dict | None:
        row = await self._one("SELECT * FROM knowledge_imports ORDER BY id DESC LIMIT 1")
        return dict(row) if row else None

    async def knowledge(self) -> list[dict]:
        """Every entry with its stored vectors, in file order."""
        return [dict(r) for r in await self._all(
            "SELECT entry_id, lang, question, answer, also_asked, vectors, vectors_shape, embedded_with"
            " FROM knowledge ORDER BY position")]

    async def set_knowledge_vectors(self, entry_id: str, lang: str, vectors: bytes, shape: str, model: str) -> None:
        await self._execute(
            "UPDATE knowledge SET vectors = ?, vectors_shape = ?, embedded_with = ? WHERE entry_id = ? AND lang = ?",
            (vectors, shape, model, entry_id, lang),
        )

    # --- alerts ----------------------------------------------------------------------------------

    async def add_alert(
        self, customer_id: int, message_id: int | None, reason: str, label: str | None, confidence: float | None
    ) -> int:
        cur = await self._execute(
            "INSERT INTO alerts (customer_id, message_id, reason, label, confidence, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (customer_id, message_id, reason, label, confidence, time.time()),
        )
        return cur.lastrowid

    async def last_alert_at(self, customer_id: int) -> float | None:
        row = await self._one("SELECT MAX(created_at) FROM alerts WHERE customer_id = ?", (customer_id,))
        return row[0]

    async def undelivered_alerts(self) -> list[dict]:
        """The outbox: alerts the operator chat has not received yet (and not held for a digest), oldest first."""
        return [dict(r) for r in await self._all(
            "SELECT * FROM alerts WHERE delivered_at IS NULL AND not_sent IS NULL AND held_at IS NULL ORDER BY id")]

    async def hold_undelivered_alerts(self) -> int:
        """Outside business hours ("digest"): the outbox's alerts wait for the opening; how many were held now."""
        cur = await self._execute(
            "UPDATE alerts SET held_at = ? WHERE delivered_at IS NULL AND not_sent IS NULL AND held_at IS NULL",
            (time.time(),))
        return cur.rowcount

    async def held_alerts(self) -> list[dict]:
        """Alerts waiting for the opening digest, oldest first, with their customer's message."""
        return [dict(r) for r in await self._all(
            "SELECT a.*, m.text FROM alerts a LEFT JOIN messages m ON m.id = a.message_id"
            " WHERE a.held_at IS NOT NULL AND a.delivered_at IS NULL ORDER BY a.id")]

    async def release_held_alerts(self, alert_ids: list[int]) -> None:
        """The digest listed them: back in the outbox, to be sent one by one."""
        await self._execute(f"UPDATE alerts SET held_at = NULL WHERE id IN ({','.join('?' * len(alert_ids))})",
                            tuple(alert_ids))

    async def mark_alert_not_sent(self, alert_id: int, reason: str) -> None:
        """The alert stays on record but leaves the outbox."""
        await self._execute("UPDATE alerts SET not_sent = ? WHERE id = ?", (reason, alert_id))

    async def message_text(self, message_id: int) -> str | None:
        row = await self._one("SELECT text FROM messages WHERE id = ?", (message_id,))
        return row[0] if row else None

    async def mark_alert_delivered(self, alert_id: int) -> None:
        await self._execute("UPDATE alerts SET delivered_at = ? WHERE id = ?", (time.time(), alert_id))

    async def alerts(self, customer_id: int | None = None) -> list[dict]:
        where, params = ("WHERE customer_id = ?", (customer_id,)) if customer_id is not None else ("", ())
        return [dict(r) for r in await self._all(f"SELECT * FROM alerts {where} ORDER BY id", params)]

    async def alert(self, alert_id: int) -> dict | None:
        row = await self._one("SELECT * FROM alerts WHERE id = ?", (alert_id,))
        return dict(row) if row else None

    async def recent_labels(self, customer_id: int, limit: int) -> list[str | None]:
        """The sentiment read for the customer's last `limit` text messages, newest first."""
        rows = await self._all(
            "SELECT sentiment FROM messages WHERE customer_id = ? AND role = 'customer' AND kind = 'text'"
            " ORDER BY id DESC LIMIT ?",
            (customer_id, limit),
        )
        return [r[0] for r in rows]

    # --- handoff: takeovers, operator-chat messages, label corrections -----------------------------

    async def open_takeover(self, customer_id: int) -> dict | None:
        row = await self._one("SELECT * FROM takeovers WHERE customer_id = ? AND ended_at IS NULL", (customer_id,))
        return dict(row) if row else None

    async def start_takeover(self, customer_id: int, operator_id: str, operator_name: str | None) -> tuple[dict, bool]:
        """The customer's open takeover, started now by this operator if there was none; (takeover, started)."""
        now = time.time()
        async with self._turn():
            cur = await self._execute(
                "INSERT OR IGNORE INTO takeovers (customer_id, operator_id, operator_name, started_at, last_activity_at)"
                " VALUES (?, ?, ?, ?, ?)",  # the partial unique index keeps one open takeover per customer
                (customer_id, operator_id, operator_name, now, now),
            )
            return await self.open_takeover(customer_id), cur.rowcount == 1

    async def touch_takeover(self, customer_id: int) -> None:
        await self._execute(
            "UPDATE takeovers SET last_activity_at = ? WHERE customer_id = ? AND ended_at IS NULL",
            (time.time(), customer_id),
        )

    async def mark_customer_told(self, customer_id: int) -> bool:
        """Record that the customer was told a person is handling the chat; False if they already were."""
        cur = await self._execute(
            "UPDATE takeovers SET customer_told = 1 WHERE customer_id = ? AND ended_at IS NULL AND customer_told = 0",
            (customer_id,),
        )
        return cur.rowcount == 1

    async def end_takeover(self, customer_id: int, reason: str) -> dict | None:
        """Close the customer's open takeover; returns it as it was, or None when there was none."""
        async with self._turn():
            takeover = await self.open_takeover(customer_id)
            if takeover is not None:
                await self._execute(
                    "UPDATE takeovers SET ended_at = ?, end_reason = ? WHERE id = ? AND ended_at IS NULL",
                    (time.time(), reason, takeover["id"]),
                )
        return takeover

    async def idle_takeovers(self, before: float) -> list[dict]:
        """Open takeovers with no operator activity since `before` (unix time)."""
        rows = await self._all(
            "SELECT * FROM takeovers WHERE ended_at IS NULL AND last_activity_at < ? ORDER BY id", (before,)
        )
        return [dict(r) for r in rows]

    async def last_ended_takeover(self, customer_id: int) -> dict | None:
        """The customer's most recently ended takeover: the hand-back that just happened."""
        row = await self._one("SELECT * FROM takeovers WHERE customer_id = ? AND ended_at IS NOT NULL"
                              " ORDER BY ended_at DESC, id DESC LIMIT 1", (customer_id,))
        return dict(row) if row else None

    # --- CSAT: ratings after a hand-back ----------------------------------------------------------

    async def add_csat_survey(self, customer_id: int, takeover_id: int) -> int | None:
        """A rating asked for about this takeover; None when it was asked for already (once per hand-back)."""
        cur = await self._execute(
            "INSERT OR IGNORE INTO csat_surveys (customer_id, takeover_id, asked_at) VALUES (?, ?, ?)",
            (customer_id, takeover_id, time.time()))
        return cur.lastrowid if cur.rowcount == 1 else None

    async def rate_csat(self, survey_id: int, customer_id: int, rating: int) -> Rated:
        """The customer's tap: stored once; a survey that is not theirs is UNKNOWN."""
        async with self._turn():
            cur = await self._execute(
                "UPDATE csat_surveys SET rating = ?, rated_at = ? WHERE id = ? AND customer_id = ? AND rating IS NULL",
                (rating, time.time(), survey_id, customer_id))
            if cur.rowcount == 1:
                return Rated.RECORDED
            row = await self._one("SELECT 1 FROM csat_surveys WHERE id = ? AND customer_id = ?", (survey_id, customer_id))
        return Rated.ALREADY if row else Rated.UNKNOWN

    async def csat_ratings(self, since: float) -> list[int]:
        """Every rating given since `since` (unix time)."""
        return [r[0] for r in await self._all(
            "SELECT rating FROM csat_surveys WHERE rated_at >= ? ORDER BY rated_at", (since,))]

    async def remember_operator_message(self, chat_id: int, message_id: int, customer_id: int, kind: str) -> None:
        await self._execute(
            "INSERT OR REPLACE INTO operator_chat_messages (chat_id, message_id, customer_id, kind, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (chat_id, message_id, customer_id, kind, time.time()),
        )

    async def operator_chat_posts(self, customer_id: int) -> OperatorChatPosts:
        """What the bot posted about the customer in operator chats: their topics and the messages linked to them."""
        topics = await self._all("SELECT chat_id, thread_id FROM customer_topics WHERE customer_id = ?", (customer_id,))
        messages = await self._all("SELECT chat_id, message_id FROM operator_chat_messages WHERE customer_id = ?"
                                   " ORDER BY chat_id, message_id", (customer_id,))
        return OperatorChatPosts([tuple(r) for r in topics], [tuple(r) for r in messages])

    async def customer_for_operator_message(self, chat_id: int, message_id: int) -> int | None:
        row = await self._one(
            "SELECT customer_id FROM operator_chat_messages WHERE chat_id = ? AND message_id = ?", (chat_id, message_id)
        )
        return row[0] if row else None

    async def latest_alert_message(self, chat_id: int, customer_id: int) -> int | None:
        """The operator-chat message of the customer's newest alert: the thread their messages are relayed under."""
        row = await self._one(
            "SELECT message_id FROM operator_chat_messages WHERE chat_id = ? AND customer_id = ? AND kind = 'alert'"
            " ORDER BY created_at DESC, message_id DESC LIMIT 1",
            (chat_id, customer_id),
        )
        return row[0] if row else None

    async def mark_alerts_answered(self, customer_id: int) -> None:
        """An operator just wrote to the customer or took them over: their unanswered alerts are answered now."""
        await self._execute(
            "UPDATE alerts SET answered_at = ? WHERE customer_id = ? AND answered_at IS NULL",
            (time.time(), customer_id),
        )

    async def add_label_correction(self, alert_id: int, corrected_label: str, operator_id: str) -> bool:
        """The operator says the alert's message was `corrected_label`; False if unknown or corrected already."""
        cur = await self._execute(
            """INSERT OR IGNORE INTO label_corrections
                 (alert_id, message_id, model_label, corrected_label, operator_id, created_at)
               SELECT id, message_id, label, ?, ?, ? FROM alerts WHERE id = ?""",
            (corrected_label, operator_id, time.time(), alert_id),
        )
        return cur.rowcount == 1

    async def label_corrections(self) -> list[dict]:
        """Every correction with the message text it is about: the input #4's evaluation loop reads."""
        rows = await self._all(
            """SELECT c.*, m.text FROM label_corrections c LEFT JOIN messages m ON m.id = c.message_id
               ORDER BY c.id"""
        )
        return [dict(r) for r in rows]

    # --- chats that moved ---------------------------------------------------------------------------

    async def add_chat_migration(self, from_id: int, to_id: int) -> None:
        await self._execute("INSERT OR REPLACE INTO chat_migrations (from_id, to_id, migrated_at) VALUES (?, ?, ?)",
                            (from_id, to_id, time.time()))

    async def chat_moved_to(self, chat_id: int | None) -> int | None:
        """The supergroup a group became, if it did."""
        row = await self._one("SELECT to_id FROM chat_migrations WHERE from_id = ?", (chat_id,))
        return row[0] if row else None

    # --- customers' forum topics in the operator chat --------------------------------------------------

    async def topic(self, chat_id: int, customer_id: int) -> dict | None:
        """The customer's topic in the operator chat: thread_id, closed, shown_through."""
        row = await self._one("SELECT * FROM customer_topics WHERE chat_id = ? AND customer_id = ?", (chat_id, customer_id))
        return dict(row) if row else None

    async def set_topic(self, chat_id: int, customer_id: int, thread_id: int, shown_through: int) -> None:
        """A new topic for the customer, open; one that replaces a deleted topic keeps what was shown already."""
        await self._execute(
            """INSERT INTO customer_topics (chat_id, customer_id, thread_id, shown_through, created_at)
               VALUES (?, ?, ?, ?, ?)
               ON CONFLICT (chat_id, customer_id) DO UPDATE SET thread_id = excluded.thread_id, closed = 0""",
            (chat_id, customer_id, thread_id, shown_through, time.time()),
        )

    async def set_topic_closed(self, chat_id: int, customer_id: int, closed: bool) -> None:
        await self._execute("UPDATE customer_topics SET closed = ? WHERE chat_id = ? AND customer_id = ?",
                            (int(closed), chat_id, customer_id))

    async def set_topic_shown(self, chat_id: int, customer_id: int, message_id: int) -> None:
        """The customer's messages up to `message_id` are in their topic."""
        await self._execute(
            "UPDATE customer_topics SET shown_through = MAX(shown_through, ?) WHERE chat_id = ? AND customer_id = ?",
            (message_id, chat_id, customer_id),
        )

    async def customer_for_topic(self, chat_id: int, thread_id: int) -> int | None:
        row = await self._one("SELECT customer_id FROM customer_topics WHERE chat_id = ? AND thread_id = ?",
                              (chat_id, thread_id))
        return row[0] if row else None

    async def topics_behind(self, chat_id: int) -> list[int]:
        """Customers whose topic lacks some of their or the bot's messages (a post failed): to be caught up."""
        rows = await self._all(
            """SELECT t.customer_id FROM customer_topics t WHERE t.chat_id = ? AND EXISTS (
                   SELECT 1 FROM messages m WHERE m.customer_id = t.customer_id AND m.id > t.shown_through
                     AND m.role != 'operator')
               ORDER BY t.customer_id""",
            (chat_id,),
        )
        return [r[0] for r in rows]

    async def messages_after(self, customer_id: int, after_id: int, limit: int) -> list[StoredMessage]:
        """The customer's oldest `limit` messages of every kind newer than `after_id`, with their channel ids."""
        rows = await self._all(
            "SELECT id, role, kind, text, sentiment, confidence, created_at, external_id FROM messages"
            " WHERE customer_id = ? AND id > ? ORDER BY id LIMIT ?",
            (customer_id, after_id, limit),
        )
        return [StoredMessage(**dict(r)) for r in rows]

    # --- reporting -------------------------------------------------------------------------------

    async def stats_since(self, since: float) -> dict[str, float | int]:
        """Customers and messages since `since` (unix time), the share of them read negative, alerts sent."""
        row = await self._one(
            """SELECT COUNT(DISTINCT customer_id), COUNT(*),
                      SUM(sentiment = 'negative'), SUM(sentiment IS NOT NULL)
               FROM messages WHERE role = 'customer' AND created_at >= ?""",
            (since,),
        )
        customers, messages, negative, classified = row[0], row[1], row[2] or 0, row[3] or 0
        alerts = await self._one(
            "SELECT COUNT(*), SUM(delivered_at IS NOT NULL) FROM alerts WHERE created_at >= ?", (since,)
        )
        return {
            "customers": customers,
            "messages": messages,
            "negative_share": negative / classified if classified else 0.0,
            "alerts": alerts[0],
            "alerts_delivered": alerts[1] or 0,
        }

    async def intent_counts(self, since: float) -> dict[str, int]:
        """Customer messages since `since` (unix time) by the intent read, most frequent first."""
        rows = await self._all(
            "SELECT intent, COUNT(*) FROM messages WHERE role = 'customer' AND intent IS NOT NULL AND created_at >= ?"
            " GROUP BY intent ORDER BY 2 DESC, 1",
            (since,),
        )
        return {r[0]: r[1] for r in rows}

    async def knowledge_match_counts(self, since: float) -> dict[str, int]:
        """Customer messages since `since` (unix time) by what the knowledge did with them (a MatchKind's value)."""
        rows = await self._all(
            "SELECT knowledge_match, COUNT(*) FROM messages WHERE role = 'customer' AND knowledge_match IS NOT NULL"
            " AND created_at >= ? GROUP BY knowledge_match",
            (since,),
        )
        return {r[0]: r[1] for r in rows}

    async def alert_counts(self) -> tuple[int, int]:
        """(alerts the operator chat has, alerts still waiting for it), all time."""
        row = await self._one("SELECT SUM(delivered_at IS NOT NULL), SUM(delivered_at IS NULL) FROM alerts")
        return row[0] or 0, row[1] or 0

    async def handoff_stats(self, since: float) -> dict:
        """Open takeovers now; seconds from each alert to its first operator answer (a reply or Take over) and label
        corrections since `since`."""
        open_now = await self._one("SELECT COUNT(*) FROM takeovers WHERE ended_at IS NULL")
        waits = await self._all(
            "SELECT answered_at - created_at FROM alerts WHERE created_at >= ? AND answered_at IS NOT NULL"
            " ORDER BY 1",
            (since,),
        )
        corrections = await self._one("SELECT COUNT(*) FROM label_corrections WHERE created_at >= ?", (since,))
        return {"open_takeovers": open_now[0], "answer_waits": [r[0] for r in waits], "corrections": corrections[0]}

    async def customer_texts(self, since: float, after_id: int, limit: int) -> list[dict]:
        """A page of customers' text messages created at or after `since` with id > `after_id`, oldest first
        (id, text, created_at, channel): `shopbot analyze --from-db` walks them page by page."""
        return [dict(r) for r in await self._all(
            """SELECT m.id, m.text, m.created_at, c.channel FROM messages m JOIN customers c ON c.id = m.customer_id
               WHERE m.role = 'customer' AND m.kind = 'text' AND m.id > ? AND m.created_at >= ?
               ORDER BY m.id LIMIT ?""",
            (after_id, since, limit),
        )]

    async def daily_counts(self, day_starts: Sequence[float]) -> list[tuple[int, int]]:
        """(customer messages, of them read negative) per day, oldest first: day i runs from day_starts[i] to
        day_starts[i + 1] (unix times of local midnights: a day across a DST change has 23 or 25 hours)."""
        day, params = _day_of("created_at", day_starts)
        rows = await self._all(
            f"""SELECT {day} AS day, COUNT(*), SUM(sentiment = 'negative') FROM messages
                WHERE role = 'customer' AND created_at >= ? AND created_at < ? GROUP BY day""",
            (*params, day_starts[0], day_starts[-1]),
        )
        counts = {r[0]: (r[1], r[2] or 0) for r in rows}
        return [counts.get(i, (0, 0)) for i in range(len(day_starts) - 1)]

    async def daily_ratings(self, day_starts: Sequence[float]) -> list[list[int]]:
        """The CSAT ratings given per day, one list per day, oldest first (days as in daily_counts)."""
        day, params = _day_of("rated_at", day_starts)
        rows = await self._all(f"SELECT {day}, rating FROM csat_surveys WHERE rated_at >= ? AND rated_at < ?",
                               (*params, day_starts[0], day_starts[-1]))
        ratings: list[list[int]] = [[] for _ in range(len(day_starts) - 1)]
        for i, rating in rows:
            ratings[i].append(rating)
        return ratings


def _day_of(column: str, day_starts: Sequence[float]) -> tuple[str, list[float]]:
    """A CASE expression numbering the day a time `column` falls in (0 from day_starts[0]; rows before day_starts[0] or
    from day_starts[-1] on are for the query to leave out), and its parameters."""
    ends = day_starts[1:]
    return (f"CASE {' '.join(f'WHEN {column} < ? THEN {i}' for i in range(len(ends)))} END", list(ends))
