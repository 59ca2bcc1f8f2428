"""SQL for heartbeat runs and alerts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from hearth.store.database import Database
from hearth.store.records import HeartbeatAlertRecord, HeartbeatRunRecord
from hearth.store.tables import heartbeat_alerts, heartbeat_runs

hr = heartbeat_runs.c
ha = heartbeat_alerts.c


def _run(row: sa.Row[Any]) -> HeartbeatRunRecord:
    return HeartbeatRunRecord(**row._mapping)


def _alert(row: sa.Row[Any]) -> HeartbeatAlertRecord:
    return HeartbeatAlertRecord(**row._mapping)


class HeartbeatRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- runs -------------------------------------------------------------------------------

    async def insert_run(self, conn: AsyncConnection, record: HeartbeatRunRecord) -> None:
        """Inside the caller's transaction (the scheduler's claim, for scheduled runs)."""
        await conn.execute(heartbeat_runs.insert().values(**record.__dict__))

    async def add_run(self, record: HeartbeatRunRecord) -> None:
        async with self.db.begin() as conn:
            await self.insert_run(conn, record)

    async def finish_run(self, conn: AsyncConnection, run_id: str, values: dict[str, Any]) -> bool:
        """Finish a running run once; False if it was already finished (say, as interrupted)."""
        result = await conn.execute(
            heartbeat_runs.update().where(hr.id == run_id, hr.status == "running").values(**values)
        )
        return result.rowcount == 1

    async def get_run(self, run_id: str) -> HeartbeatRunRecord | None:
        async with self.db.connect() as conn:
            row = (await conn.execute(heartbeat_runs.select().where(hr.id == run_id))).first()
            return _run(row) if row else None

    async def last_run(self) -> HeartbeatRunRecord | None:
        async with self.db.connect() as conn:
            row = (
                await conn.execute(
                    heartbeat_runs.select().order_by(hr.started_at.desc(), hr.id).limit(1)
                )
            ).first()
            return _run(row) if row else None

    async def running_since(self, cutoff: datetime) -> bool:
        """Is a run in progress that started after `cutoff` (older ones are presumed dead)?"""
        async with self.db.connect() as conn:
            found = (
                await conn.execute(
                    sa.select(hr.id).where(hr.status == "running", hr.started_at >= cutoff).limit(1)
                )
            ).first()
            return found is not None

    async def stale_runs(self, cutoff: datetime) -> list[HeartbeatRunRecord]:
        """Runs still `running` that started before `cutoff`: their process died mid-run."""
        async with self.db.connect() as conn:
            rows = await conn.execute(
                heartbeat_runs.select().where(hr.status == "running", hr.started_at < cutoff)
            )
            return [_run(row) for row in rows]

    async def latest_outcomes(self, conn: AsyncConnection, limit: int) -> list[str]:
        """Statuses of the newest finished runs that count for the failing streak, newest
        first. Skipped runs neither break nor extend a streak, so they are left out."""
        rows = await conn.execute(
            sa.select(hr.status)
            .where(hr.status.in_(["ok", "error"]))
            .order_by(hr.finished_at.desc(), hr.started_at.desc())
            .limit(limit)
        )
        return [row[0] for row in rows]

    async def last_ok_at(self, conn: AsyncConnection) -> datetime | None:
        value: datetime | None = (
            await conn.execute(sa.select(sa.func.max(hr.finished_at)).where(hr.status == "ok"))
        ).scalar()
        return value

    async def consecutive_errors(self) -> int:
        async with self.db.connect() as conn:
            count = 0
            for status in await self.latest_outcomes(conn, 1000):
                if status != "error":
                    break
                count += 1
            return count

    # -- alerts -----------------------------------------------------------------------------

    async def insert_alert(self, conn: AsyncConnection, alert: HeartbeatAlertRecord) -> None:
        await conn.execute(heartbeat_alerts.insert().values(**alert.__dict__))

    async def sent_since(
        self, conn: AsyncConnection, signature: str, since: datetime
    ) -> HeartbeatAlertRecord | None:
        """The newest alert with this signature sent at or after `since`, if any."""
        row = (
            await conn.execute(
                heartbeat_alerts.select()
                .where(ha.signature == signature, ha.status == "sent", ha.created_at >= since)
                .order_by(ha.created_at.desc())
                .limit(1)
            )
        ).first()
        return _alert(row) if row else None

    async def failing_alert_after(self, conn: AsyncConnection, moment: datetime | None) -> bool:
        query = sa.select(ha.id).where(ha.kind == "failing", ha.status == "sent")
        if moment is not None:
            query = query.where(ha.created_at > moment)
        return (await conn.execute(query.limit(1))).first() is not None

    async def alerts(
        self, limit: int, *, include_suppressed: bool = False
    ) -> list[HeartbeatAlertRecord]:
        """Newest first."""
        query = heartbeat_alerts.select()
        if not include_suppressed:
            query = query.where(ha.status == "sent")
        async with self.db.connect() as conn:
            rows = await conn.execute(query.order_by(ha.created_at.desc(), ha.id).limit(limit))
            return [_alert(row) for row in rows]
