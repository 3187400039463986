"""The SQLite layer: one connection (one writer), WAL mode, every query shopbot runs."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import aiosqlite

from storage.migrations import migrate


@dataclass(frozen=True)
class Customer:
    id: int
    channel: str
    external_id: str
    display_name: str | None
    username: str | None


@dataclass(frozen=True)
class StoredMessage:
    id: int
    role: str  # 'customer' | 'bot' | 'operator'
    kind: str
    text: str
    sentiment: str | None
    confidence: float | None
    created_at: float


class Database:
    """Owns the SQLite file. aiosqlite runs every statement on one thread, so writes never race."""

    def __init__(self, conn: aiosqlite.Connection, path: Path):
        self._db = conn
        self.path = path

    @classmethod
    async def open(cls, path: str | os.PathLike) -> "Database":
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            # Customers' messages are personal data: the file is readable by the owner only.
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        conn = await aiosqlite.connect(path, isolation_level=None)  # autocommit; BEGIN where needed
        conn.row_factory = aiosqlite.Row
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute("PRAGMA synchronous=NORMAL")
        await conn.execute("PRAGMA foreign_keys=ON")
        await conn.execute("PRAGMA busy_timeout=5000")
        await migrate(conn)
        return cls(conn, path)

    async def close(self) -> None:
        await self._db.close()

    async def _one(self, sql: str, params: tuple = ()) -> aiosqlite.Row | None:
        async with self._db.execute(sql, params) as cur:
            return await cur.fetchone()

    async def _all(self, sql: str, params: tuple = ()) -> list[aiosqlite.Row]:
        async with self._db.execute(sql, params) as cur:
            return list(await cur.fetchall())

    # --- customers -------------------------------------------------------------------------------

    async def customer(
        self, channel: str, external_id: str, display_name: str | None = None, username: str | None = None
    ) -> Customer:
        """The customer with this channel id, created on first contact; name and username kept current."""
        await self._db.execute(
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

    # --- messages --------------------------------------------------------------------------------

    async def add_message(
        self,
        customer_id: int,
        role: str,
        text: str,
        *,
        kind: str = "text",
        external_id: str | None = None,
    ) -> int:
        cur = await self._db.execute(
            "INSERT INTO messages (customer_id, role, kind, text, external_id, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            (customer_id, role, kind, text, external_id, time.time()),
        )
        return cur.lastrowid

    async def set_sentiment(self, message_id: int, label: str, confidence: float) -> None:
        await self._db.execute(
            "UPDATE messages SET sentiment = ?, confidence = ? WHERE id = ?", (label, confidence, message_id)
        )

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
        await self._db.execute(
            "UPDATE customers SET history_start_id = (SELECT COALESCE(MAX(id), 0) FROM messages) WHERE id = ?",
            (customer_id,),
        )

    async def forget(self, customer_id: int) -> dict[str, int]:
        """Delete the customer and everything stored about them; returns what was deleted, by kind."""
        counts = {}
        await self._db.execute("BEGIN IMMEDIATE")
        try:
            for table in ("messages", "alerts"):
                row = await self._one(f"SELECT COUNT(*) FROM {table} WHERE customer_id = ?", (customer_id,))
                counts[table] = row[0]
            cur = await self._db.execute("DELETE FROM customers WHERE id = ?", (customer_id,))
            counts["customers"] = cur.rowcount
            await self._db.execute("COMMIT")
        except BaseException:
            await self._db.execute("ROLLBACK")
            raise
        return counts

    # --- alerts ----------------------------------------------------------------------------------

    async def add_alert(
        self, customer_id: int, message_id: int | None, reason: str, label: str | None, confidence: float | None
    ) -> int:
        cur = await self._db.execute(
            "INSERT INTO alerts (customer_id, message_id, reason, label, confidence, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (customer_id, message_id, reason, label, confidence, time.time()),
        )
        return cur.lastrowid

    async def last_alert_at(self, customer_id: int) -> float | None:
        row = await self._one("SELECT MAX(created_at) FROM alerts WHERE customer_id = ?", (customer_id,))
        return row[0]

    async def mark_alert_delivered(self, alert_id: int) -> None:
        await self._db.execute("UPDATE alerts SET delivered_at = ? WHERE id = ?", (time.time(), alert_id))

    async def alerts(self, customer_id: int | None = None) -> list[dict]:
        where, params = ("WHERE customer_id = ?", (customer_id,)) if customer_id is not None else ("", ())
        return [dict(r) for r in await self._all(f"SELECT * FROM alerts {where} ORDER BY id", params)]

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
