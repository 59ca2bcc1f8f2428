"""Stored notifications: what `notify` told the person, readable after the fact.

A notification used to live only as a bus event, so a person whose client was not connected at
that moment never saw it. The repository keeps each one (with the execution and step that sent
it) and keeps the table bounded: every insert also drops rows older than `keep` and everything
beyond the newest `keep_max`, so retention costs two indexed deletes per notification and
needs no background loop.

The notify path is not hot (one row per `notify` step), so it goes through the async engine on
both backends rather than the SQLite group-commit writer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from hearth.store.database import Database
from hearth.store.tables import notifications

nc = notifications.c

DEFAULT_KEEP = timedelta(days=30)
DEFAULT_KEEP_MAX = 10_000


@dataclass(frozen=True)
class NotificationRecord:
    id: int
    created_at: datetime
    level: str
    message: str
    source: str | None
    execution_id: str | None
    step_id: str | None


def _record(row: sa.Row[Any]) -> NotificationRecord:
    m = row._mapping
    return NotificationRecord(
        id=m["id"],
        created_at=m["created_at"],
        level=m["level"],
        message=m["message"],
        source=m["source"],
        execution_id=m["execution_id"],
        step_id=m["step_id"],
    )


class NotificationRepository:
    """One interface for both backends; callers never see SQL or the backend."""

    def __init__(
        self, db: Database, *, keep: timedelta = DEFAULT_KEEP, keep_max: int = DEFAULT_KEEP_MAX
    ) -> None:
        if keep_max < 1:
            raise ValueError("keep_max must be at least 1")
        self.db = db
        self.keep = keep
        self.keep_max = keep_max

    async def add(
        self,
        *,
        message: str,
        level: str,
        created_at: datetime,
        source: str | None = None,
        execution_id: str | None = None,
        step_id: str | None = None,
        dedupe_key: str | None = None,
    ) -> tuple[int, bool]:
        """Store one notification and prune; returns (its id, whether it is new).

        With a `dedupe_key` already stored (the same step run again after a crash) nothing is
        inserted and the earlier row's id comes back with False, so the caller can tell.
        """
        async with self.db.begin() as conn:
            if dedupe_key is not None:
                found = (
                    await conn.execute(sa.select(nc.id).where(nc.dedupe_key == dedupe_key))
                ).scalar()
                if found is not None:
                    return int(found), False
            result = await conn.execute(
                notifications.insert().values(
                    created_at=created_at,
                    level=level,
                    message=message,
                    source=source,
                    execution_id=execution_id,
                    step_id=step_id,
                    dedupe_key=dedupe_key,
                )
            )
            key = result.inserted_primary_key
            assert key is not None
            new_id = int(key[0])
            await self._prune(conn, created_at)
            return new_id, True

    async def _prune(self, conn: AsyncConnection, now: datetime) -> None:
        await conn.execute(notifications.delete().where(nc.created_at < now - self.keep))
        # The id of the newest row that no longer fits; everything up to it goes.
        boundary = (
            await conn.execute(
                sa.select(nc.id).order_by(nc.id.desc()).offset(self.keep_max).limit(1)
            )
        ).scalar()
        if boundary is not None:
            await conn.execute(notifications.delete().where(nc.id <= boundary))

    async def prune(self, now: datetime) -> None:
        """Apply the retention limits now (they are also applied on every insert)."""
        async with self.db.begin() as conn:
            await self._prune(conn, now)

    async def recent(
        self,
        *,
        limit: int = 50,
        since: datetime | None = None,
        execution_id: str | None = None,
    ) -> list[NotificationRecord]:
        """Newest first, at most `limit`; `since` keeps those created at or after it."""
        query = notifications.select()
        if since is not None:
            query = query.where(nc.created_at >= since)
        if execution_id is not None:
            query = query.where(nc.execution_id == execution_id)
        async with self.db.connect() as conn:
            rows = await conn.execute(query.order_by(nc.id.desc()).limit(limit))
            return [_record(row) for row in rows]
