"""Data retention: what the daily job (bot/telegram/app.py) deletes: conversations older than [storage] retention_days."""

from __future__ import annotations

import asyncio
import logging
import time

from storage.db import Database

log = logging.getLogger(__name__)

DAY_SECONDS = 86400.0


async def purge(db: Database, retention_days: int, now: float | None = None) -> dict[str, int]:
    """One run: handled Telegram updates older than a day always, conversations past retention if it is set."""
    now = time.time() if now is None else now
    counts = {"updates": await db.inbox_prune(now - DAY_SECONDS)}
    if retention_days:
        counts |= await db.delete_older_than(now - retention_days * DAY_SECONDS)
        log.info("retention (%s days): deleted %s messages, %s alerts, %s customers", retention_days,
                 counts["messages"], counts["alerts"], counts["customers"])
    return counts


async def daily(db: Database, retention_days: int) -> None:
    """purge() now and then once a day, until cancelled: the web chat alone has no Telegram job queue to run it."""
    while True:
        try:
            await purge(db, retention_days)
        except Exception:  # a locked or full database today: tomorrow's run tries again, as the Telegram job does
            log.exception("retention run failed")
        await asyncio.sleep(DAY_SECONDS)
