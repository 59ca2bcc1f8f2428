"""Schedules and their run history as the service and the listings read and change them.

The scheduler's own writes (claiming ticks, recording results, pruning) go through a
`TickStore` (store/schedule_ticks.py), which has one implementation per backend.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from hearth.store import keyset
from hearth.store.database import Database
from hearth.store.membership import one_of
from hearth.store.records import ScheduleRecord, ScheduleRunRecord
from hearth.store.tables import schedule_runs, schedules

sc = schedules.c
rc = schedule_runs.c


#: Every write to a schedule row carries this, so a read-check-write can see it was overtaken.
_BUMP = {"version": sc.version + 1}


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

    async def page(
        self,
        limit: int,
        *,
        after: tuple[datetime, str] | None = None,
        match: str | None = None,
        failing: bool = False,
    ) -> tuple[list[ScheduleRecord], int]:
        """Up to `limit` schedules, oldest first, after the (created_at, id) position `after`;
        and how many match the filters in all (every page).

        `match` keeps the schedules with that id, name or id prefix (the CLI's references);
        `failing` those whose runs are failing or that failures disabled.
        """
        where: list[sa.ColumnElement[bool]] = []
        if match is not None:
            # A full id is its own prefix: one LIKE covers "that id" and "ids starting so".
            where.append(sa.or_(sc.name == match, sc.id.startswith(match, autoescape=True)))
        if failing:
            where.append(sa.or_(sc.consecutive_failures > 0, sc.state == "disabled"))
        query = schedules.select().where(*where)
        if after is not None:
            query = query.where(keyset.after(sc.created_at, sc.id, after))
        async with self.db.connect() as conn:
            rows = await conn.execute(query.order_by(sc.created_at, sc.id).limit(limit))
            records = [_schedule(row) for row in rows]
            total = await conn.scalar(
                sa.select(sa.func.count()).select_from(schedules).where(*where)
            )
        return records, int(total or 0)

    async def by_target(self, target: str) -> list[ScheduleRecord]:
        async with self.db.connect() as conn:
            rows = await conn.execute(
                schedules.select().where(sc.target == target).order_by(sc.created_at)
            )
            return [_schedule(row) for row in rows]

    async def change(self, schedule_id: str, version: int, values: dict[str, Any]) -> bool:
        """Write `values` (only the columns a request changes) if the row is still at
        `version`; False when anything wrote to it since it was read (or it is gone)."""
        async with self.db.begin() as conn:
            result = await conn.execute(
                schedules.update()
                .where(sc.id == schedule_id, sc.version == version)
                .values(**values, **_BUMP)
            )
            return result.rowcount == 1

    async def delete(self, schedule_id: str) -> bool:
        async with self.db.begin() as conn:
            await conn.execute(schedule_runs.delete().where(rc.schedule_id == schedule_id))
            result = await conn.execute(schedules.delete().where(sc.id == schedule_id))
            return result.rowcount == 1

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
            .where(one_of(rc.schedule_id, ids))
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
