"""The schema as an ordered list of named migrations; each runs once and is recorded in `_migrations`."""

from __future__ import annotations

import time

import aiosqlite


async def _run(db: aiosqlite.Connection, script: str) -> None:
    # executescript() would COMMIT the migration's open transaction, so run statements one by one
    # (split at semicolons: none may appear inside a statement, its comments included).
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


async def m002_handoff(db: aiosqlite.Connection) -> None:
    """Operator handoff (#5): takeovers, operator-chat messages mapped to customers, Dismiss corrections."""
    await _run(
        db,
        """
        CREATE TABLE takeovers (
            id INTEGER PRIMARY KEY,
            customer_id INTEGER NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
            operator_id TEXT NOT NULL,          -- the channel's id of the operator who took over
            operator_name TEXT,
            started_at REAL NOT NULL,
            last_activity_at REAL NOT NULL,     -- the idle timeout counts from here
            customer_told INTEGER NOT NULL DEFAULT 0,  -- the customer was told a person is handling the chat
            ended_at REAL,                      -- NULL while the operator has the conversation
            end_reason TEXT                     -- 'released', 'idle'
        );
        CREATE UNIQUE INDEX takeovers_open ON takeovers (customer_id) WHERE ended_at IS NULL;
        CREATE TABLE operator_chat_messages (
            chat_id INTEGER NOT NULL,           -- the operator chat
            message_id INTEGER NOT NULL,        -- a message the bot posted there
            customer_id INTEGER NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
            kind TEXT NOT NULL,                 -- 'alert', 'relay', 'note': replies to any of them reach the customer
            created_at REAL NOT NULL,
            PRIMARY KEY (chat_id, message_id)
        );
        CREATE INDEX operator_chat_messages_by_customer ON operator_chat_messages (customer_id, kind, created_at);
        CREATE TABLE label_corrections (
            id INTEGER PRIMARY KEY,
            alert_id INTEGER NOT NULL UNIQUE REFERENCES alerts(id) ON DELETE CASCADE,
            message_id INTEGER REFERENCES messages(id) ON DELETE CASCADE,
            model_label TEXT,                   -- what the model read
            corrected_label TEXT NOT NULL,      -- what the operator says it is
            operator_id TEXT NOT NULL,
            created_at REAL NOT NULL
        );
        """
    )
    # No comment on the column: SQLite splices the clause into the table's stored CREATE statement, where a
    # trailing "--" comment would swallow the closing parenthesis. answered_at: the first operator reply (or Take
    # over) after it.
    await db.execute("ALTER TABLE alerts ADD COLUMN answered_at REAL")


async def m003_reliability(db: aiosqlite.Connection) -> None:
    """Reliability (#6): Telegram updates kept until handled, one stored copy per customer message, replies linked."""
    # A message stored twice before this index existed keeps its first copy's channel id only.
    await _run(
        db,
        """
        UPDATE messages SET external_id = NULL
        WHERE role = 'customer' AND external_id IS NOT NULL AND id NOT IN (
            SELECT MIN(id) FROM messages WHERE role = 'customer' AND external_id IS NOT NULL
            GROUP BY customer_id, external_id);
        CREATE UNIQUE INDEX messages_once ON messages (customer_id, external_id)
            WHERE role = 'customer' AND external_id IS NOT NULL;
        ALTER TABLE messages ADD COLUMN reply_to INTEGER;  -- a bot message: the customer message it answers
        ALTER TABLE messages ADD COLUMN sent_at REAL;      -- a bot message: when the channel confirmed delivery
        CREATE INDEX messages_by_reply ON messages (reply_to) WHERE reply_to IS NOT NULL;
        CREATE TABLE inbox (
            update_id INTEGER PRIMARY KEY,      -- Telegram's update id
            payload TEXT NOT NULL,              -- the update as Telegram sent it (JSON)
            received_at REAL NOT NULL,
            done_at REAL                        -- NULL until every handler has finished with it
        );
        CREATE INDEX inbox_pending ON inbox (update_id) WHERE done_at IS NULL
        """,
    )


async def m004_knowledge(db: aiosqlite.Connection) -> None:
    """Shop knowledge (#8): FAQ entries per language, with the model's token vectors for retrieval."""
    await _run(
        db,
        """
        CREATE TABLE knowledge (
            entry_id TEXT NOT NULL,             -- the owner's id: the same id in two languages is one fact
            lang TEXT NOT NULL,
            question TEXT NOT NULL,
            answer TEXT NOT NULL,
            position INTEGER NOT NULL,          -- row order in the imported file
            vectors BLOB,                       -- float16 (tokens x hidden), L2-normalised, NULL until embedded
            vectors_shape TEXT,                 -- "tokens,hidden"
            embedded_with TEXT,                 -- the model that made `vectors` (another model re-embeds)
            PRIMARY KEY (entry_id, lang)
        );
        CREATE TABLE knowledge_imports (
            id INTEGER PRIMARY KEY,
            source TEXT NOT NULL,               -- the file imported
            sha256 TEXT NOT NULL,               -- its content hash: an unchanged file is not re-imported at start
            entries INTEGER NOT NULL,
            imported_at REAL NOT NULL
        )
        """,
    )


async def m005_reliability(db: aiosqlite.Connection) -> None:
    """Reliability, round two (#14): updates whose handling kept failing, alerts never meant for a chat, group moves."""
    await _run(
        db,
        """
        ALTER TABLE inbox ADD COLUMN failed_at REAL;         -- handling failed every retry: kept, not replayed
        ALTER TABLE alerts ADD COLUMN not_sent TEXT;         -- why the outbox will never send it (no operator chat)
        CREATE TABLE chat_migrations (
            from_id INTEGER PRIMARY KEY,        -- a Telegram group's id before it became a supergroup
            to_id INTEGER NOT NULL,             -- the supergroup's id
            migrated_at REAL NOT NULL
        )
        """,
    )


async def m006_csat_and_hours(db: aiosqlite.Connection) -> None:
    """Issue #18: the customers' ratings after a hand-back, and alerts held for the opening digest."""
    await _run(
        db,
        """
        CREATE TABLE csat_surveys (
            id INTEGER PRIMARY KEY,
            customer_id INTEGER NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
            takeover_id INTEGER UNIQUE REFERENCES takeovers(id) ON DELETE CASCADE,  -- the hand-back asked about
            asked_at REAL NOT NULL,
            rating INTEGER CHECK (rating BETWEEN 1 AND 5),  -- NULL until the customer taps a button
            rated_at REAL
        );
        CREATE INDEX csat_surveys_by_rating_time ON csat_surveys (rated_at)
        """,
    )
    # held_at: outside business hours with [hours] alerts_outside_hours = "digest": waits for the opening.
    await db.execute("ALTER TABLE alerts ADD COLUMN held_at REAL")


async def m007_intents(db: aiosqlite.Connection) -> None:
    """Intents (#18): what each customer text message wants, read with its sentiment (NULL: not read, or older)."""
    await _run(
        db,
        """
        ALTER TABLE messages ADD COLUMN intent TEXT;
        ALTER TABLE messages ADD COLUMN intent_confidence REAL
        """,
    )


async def m008_topics(db: aiosqlite.Connection) -> None:
    """A topic per customer (#18) when the operator chat is a forum: where each customer's topic is, and what of
    their conversation it shows already."""
    await _run(
        db,
        """
        CREATE TABLE customer_topics (
            chat_id INTEGER NOT NULL,           -- the operator chat (a forum supergroup)
            customer_id INTEGER NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
            thread_id INTEGER NOT NULL,         -- Telegram's message_thread_id of the customer's topic
            closed INTEGER NOT NULL DEFAULT 0,  -- closed at hand-back, reopened by new activity
            shown_through INTEGER NOT NULL DEFAULT 0,  -- the newest of their messages posted in the topic
            created_at REAL NOT NULL,
            PRIMARY KEY (chat_id, customer_id)
        );
        CREATE UNIQUE INDEX customer_topics_by_thread ON customer_topics (chat_id, thread_id)
        """,
    )


async def m009_reply_pieces(db: aiosqlite.Connection) -> None:
    """A bot message longer than Telegram's limit goes out in pieces: how many the channel has, so a retry after an
    outage partway sends only the rest."""
    # No comment on the column (see m002): SQLite splices the clause into the table's stored CREATE statement.
    await db.execute("ALTER TABLE messages ADD COLUMN pieces_sent INTEGER NOT NULL DEFAULT 0")


async def m010_knowledge_also_asked(db: aiosqlite.Connection) -> None:
    """Other ways customers ask a knowledge entry's question, written by the shop (#16), one per line."""
    await db.execute("ALTER TABLE knowledge ADD COLUMN also_asked TEXT NOT NULL DEFAULT ''")


async def m011_knowledge_match(db: aiosqlite.Connection) -> None:
    """What the knowledge did with a customer message (answered, unsure, no_entry, off_topic) and the entry it
    answered with or showed as the closest: `shopbot kb unanswered` lists the questions a person had to answer."""
    await _run(
        db,
        """
        ALTER TABLE messages ADD COLUMN knowledge_match TEXT;
        ALTER TABLE messages ADD COLUMN knowledge_entry TEXT
        """,
    )


MIGRATIONS = [m001_initial, m002_handoff, m003_reliability, m004_knowledge, m005_reliability, m006_csat_and_hours,
              m007_intents, m008_topics, m009_reply_pieces, m010_knowledge_also_asked, m011_knowledge_match]


class NewerSchema(Exception):
    """The database has migrations this shopbot does not know: a newer version wrote it."""


async def migrate(db: aiosqlite.Connection) -> list[str]:
    """Apply the migrations not yet recorded, in order; returns the names applied now."""
    await db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)")
    async with db.execute("SELECT name FROM _migrations") as cur:
        done = {row[0] for row in await cur.fetchall()}
    # After going back to an older shopbot, its writes would fail (or half-fill) the newer tables at run time.
    unknown = sorted(done - {migration.__name__ for migration in MIGRATIONS})
    if unknown:
        raise NewerSchema(f"it was written by a newer shopbot (migrations {', '.join(unknown)} are unknown to this "
                          "one): run that version again, or restore a backup from before it")
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
