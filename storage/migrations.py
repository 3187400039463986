"""The schema as an ordered list of named migrations; each runs once and is recorded in `_migrations`."""

from __future__ import annotations

import time

import aiosqlite


async def _run(db: aiosqlite.Connection, script: str) -> None:
    # executescript() would COMMIT the migration's open transaction, so run statements one by one.
    for statement in script.split(";"):
        if statement.strip():
            await db.execute(statement)


async def m001_initial(db: aiosqlite.Connection) -> None:
    await _run(
        db,
        """
        CREATE TABLE customers (
            id INTEGER PRIMARY KEY,
            channel TEXT NOT NULL,              -- 'console', 'telegram', ...
            external_id TEXT NOT NULL,          -- the channel's id for this person
            display_name TEXT,
            username TEXT,
            history_start_id INTEGER NOT NULL DEFAULT 0,  -- /reset: older messages are not used for replies
            created_at REAL NOT NULL,
            UNIQUE (channel, external_id)
        );
        CREATE TABLE messages (
            id INTEGER PRIMARY KEY,
            customer_id INTEGER NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
            role TEXT NOT NULL CHECK (role IN ('customer', 'bot', 'operator')),
            kind TEXT NOT NULL DEFAULT 'text',  -- 'text', or what a non-text event was ('photo', ...)
            text TEXT NOT NULL,
            sentiment TEXT,
            confidence REAL,
            external_id TEXT,                   -- the channel's message id, when it has one
            created_at REAL NOT NULL
        );
        CREATE INDEX messages_by_customer ON messages (customer_id, id);
        CREATE INDEX messages_by_time ON messages (created_at);
        CREATE TABLE alerts (
            id INTEGER PRIMARY KEY,
            customer_id INTEGER NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
            message_id INTEGER REFERENCES messages(id) ON DELETE CASCADE,
            reason TEXT NOT NULL,
            label TEXT,
            confidence REAL,
            created_at REAL NOT NULL,
            delivered_at REAL                   -- NULL until the operator chat has it
        );
        CREATE INDEX alerts_by_customer ON alerts (customer_id, created_at);
        """
    )


MIGRATIONS = [m001_initial]


async def migrate(db: aiosqlite.Connection) -> list[str]:
    """Apply the migrations not yet recorded, in order; returns the names applied now."""
    await db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)")
    async with db.execute("SELECT name FROM _migrations") as cur:
        done = {row[0] for row in await cur.fetchall()}
    applied = []
    for migration in MIGRATIONS:
        if migration.__name__ in done:
            continue
        await db.execute("BEGIN")
        try:
            await migration(db)
            await db.execute("INSERT INTO _migrations VALUES (?, ?)", (migration.__name__, time.time()))
            await db.execute("COMMIT")
        except BaseException:
            await db.execute("ROLLBACK")
            raise
        applied.append(migration.__name__)
    return applied
