"""SQL for schedules and their run history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from hearth.store.database import Database
from hearth.store.records import ScheduleRecord, ScheduleRunRecord
from hearth.store.tables import schedule_runs, schedules, workflow_executions

sc = schedules.c
rc = schedule_runs.c


def _schedule(row: sa.Row[Any]) -> ScheduleRecord:
    return ScheduleRecord(**row._mapping)


def _run(row: sa.Row[Any]) -> ScheduleRunRecord:
    return ScheduleRunRecord(**row._mapping)


class ScheduleRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def insert(self, record: ScheduleRecord) -> None:
        async with self.db.begin() as conn:
            await conn.execute(schedules.insert().values(**record.__dict__))

    async def get(self, schedule_id: str) -> ScheduleRecord | None:
        async with self.db.connect() as conn:
            row = (await conn.execute(schedules.select().where(sc.id == schedule_id))).first()
            return _schedule(row) if row else None

    async def all(self) -> list[ScheduleRecord]:
        async with self.db.connect() as conn:
            rows = await conn.execute(schedules.select().order_by(sc.created_at, sc.id))
            return [_schedule(row) for row in rows]

    async def by_target(self, target: str) -> list[ScheduleRecord]:
        async with self.db.connect() as conn:
            rows = await conn.execute(
                schedules.select().where(sc.target == target).order_by(sc.created_at)
            )
            return [_schedule(row) for row in rows]

    async def replace(self, record: ScheduleRecord) -> bool:
        async with self.db.begin() as conn:
            values = {k: v for k, v in record.__dict__.items() if k != "id"}
            result = await conn.execute(
                schedules.update().where(sc.id == record.id).values(**values)
            )
            return result.rowcount == 1

    async def delete(self, schedule_id: str) -> bool:
        async with self.db.begin() as conn:
            await conn.execute(schedule_runs.delete().where(rc.schedule_id == schedule_id))
            result = await conn.execute(schedules.delete().where(sc.id == schedule_id))
            return result.rowcount == 1

    async def due(self, now: datetime, limit: int) -> list[ScheduleRecord]:
        async with self.db.connect() as conn:
            rows = await conn.execute(
                schedules.select()
                .where(sc.enabled.is_(True), sc.next_run.is_not(None), sc.next_run <= now)
                .order_by(sc.next_run)
                .limit(limit)
            )
            return [_schedule(row) for row in rows]

    async def earliest_next_run(self) -> datetime | None:
        async with self.db.connect() as conn:
            value: datetime | None = (
                await conn.execute(sa.select(sa.func.min(sc.next_run)).where(sc.enabled.is_(True)))
            ).scalar()
        return value

    async def claim(
        self,
        conn: AsyncConnection,
        schedule_id: str,
        expected_next: datetime,
        values: dict[str, Any],
    ) -> bool:
        """Move `next_run` on from the tick we saw; False when another node got there first."""
        result = await conn.execute(
            schedules.update()
            .where(sc.id == schedule_id, sc.next_run == expected_next, sc.enabled.is_(True))
            .values(**values)
        )
        return result.rowcount == 1

    async def insert_run(self, conn: AsyncConnection, run: ScheduleRunRecord) -> None:
        await conn.execute(schedule_runs.insert().values(**run.__dict__))

    async def finish_run_for_execution(
        self, conn: AsyncConnection, execution_id: str, status: str, reason: str | None
    ) -> ScheduleRunRecord | None:
        """Mark the run that started `execution_id` finished, once (None if already done)."""
        row = (
            await conn.execute(
                schedule_runs.select().where(
                    rc.execution_id == execution_id, rc.status == "running"
                )
            )
        ).first()
        if row is None:
            return None
        values: dict[str, Any] = {"status": status}
        if reason is not None:
            # Keep the "manual" mark of a manual run in front of its error.
            values["reason"] = f"manual: {reason}" if row.reason == "manual" else reason
        result = await conn.execute(
            schedule_runs.update().where(rc.id == row.id, rc.status == "running").values(**values)
        )
        return _run(row) if result.rowcount == 1 else None

    async def update_schedule(
        self, conn: AsyncConnection, schedule_id: str, values: dict[str, Any]
    ) -> None:
        await conn.execute(schedules.update().where(sc.id == schedule_id).values(**values))

    async def get_in(self, conn: AsyncConnection, schedule_id: str) -> ScheduleRecord | None:
        row = (await conn.execute(schedules.select().where(sc.id == schedule_id))).first()
        return _schedule(row) if row else None

    async def runs(self, schedule_id: str, limit: int) -> list[ScheduleRunRecord]:
        async with self.db.connect() as conn:
            rows = await conn.execute(
                schedule_runs.select()
                .where(rc.schedule_id == schedule_id)
                .order_by(rc.scheduled_for.desc())
                .limit(limit)
            )
            return [_run(row) for row in rows]

    async def last_runs(self, ids: list[str]) -> dict[str, ScheduleRunRecord]:
        """The latest run of each schedule (for listings)."""
        if not ids:
            return {}
        latest = (
            sa.select(rc.schedule_id, sa.func.max(rc.scheduled_for).label("at"))
            .where(rc.schedule_id.in_(ids))
            .group_by(rc.schedule_id)
            .subquery()
        )
        async with self.db.connect() as conn:
            rows = await conn.execute(
                schedule_runs.select().join(
                    latest,
                    sa.and_(
                        rc.schedule_id == latest.c.schedule_id, rc.scheduled_for == latest.c.at
                    ),
                )
            )
            return {row.schedule_id: _run(row) for row in rows}

    async def stale_running_runs(self, limit: int = 100) -> list[tuple[str, str]]:
        """(execution id, execution status) for runs still 'running' whose execution ended."""
        we = workflow_executions.c
        async with self.db.connect() as conn:
            rows = await conn.execute(
                sa.select(rc.execution_id, we.status)
                .join(workflow_executions, we.id == rc.execution_id)
                .where(rc.status == "running", we.status.in_(["completed", "failed", "cancelled"]))
                .limit(limit)
            )
            return [(row[0], row[1]) for row in rows]

    async def prune(self, schedule_id: str, before: datetime, keep: int) -> int:
        """Drop runs older than `before` and beyond the newest `keep`."""
        async with self.db.begin() as conn:
            old = await conn.execute(
                schedule_runs.delete().where(
                    rc.schedule_id == schedule_id, rc.scheduled_for < before
                )
            )
            cutoff = (
                await conn.execute(
                    sa.select(rc.scheduled_for)
                    .where(rc.schedule_id == schedule_id)
                    .order_by(rc.scheduled_for.desc())
                    .offset(keep)
                    .limit(1)
                )
            ).scalar()
            extra = 0
            if cutoff is not None:
                result = await conn.execute(
                    schedule_runs.delete().where(
                        rc.schedule_id == schedule_id, rc.scheduled_for <= cutoff
                    )
                )
                extra = result.rowcount
            return old.rowcount + extra
