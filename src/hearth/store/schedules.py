"""SQL for schedules and their run history.

The `*_sqlite` methods run inside a `SqliteWriter` transaction (plain `sqlite3`, statements
compiled once): on a SQLite file the scheduler claims a whole second's worth of ticks, and
records the results of as many executions, in one group commit instead of one async
transaction each.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.ext.asyncio import AsyncConnection

from hearth.store.database import Database
from hearth.store.records import ScheduleRecord, ScheduleRunRecord
from hearth.store.sqlite_writer import Prepared, PreparedUpdates
from hearth.store.tables import UtcDateTime, schedule_runs, schedules, workflow_executions

sc = schedules.c
rc = schedule_runs.c
ex = workflow_executions.c

_DIALECT = sqlite_dialect.dialect()


#: Stored datetime text -> the aware datetime it reads as. A schedule's anchor, creation time
#: and ticks are read again on every pass (and schedules on one grid share their ticks), so
#: most of them are parsed once. Datetimes are immutable: sharing them is safe.
_DATETIMES: dict[str, datetime] = {}
_DATETIMES_MAX = 100_000


def _memoized(process: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def read(text: Any) -> Any:
        found = _DATETIMES.get(text)
        if found is None:
            found = process(text)
            if len(_DATETIMES) >= _DATETIMES_MAX:
                _DATETIMES.clear()
            _DATETIMES[text] = found
        return found

    return read


def _json_null_first(process: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """An unset JSON column holds the text `null` (a JSON null), on nearly every row."""

    def read(text: Any) -> Any:
        return None if text == "null" else process(text)

    return read


def _reader(columns: Sequence[sa.ColumnElement[Any]]) -> Callable[[Sequence[Any]], list[Any]]:
    """Raw `sqlite3` values to what the async engine would return for `columns`.

    `Prepared` reads skip SQLAlchemy's result handling, so the column types' own result
    processors are applied here: datetimes come back aware UTC, JSON parsed, booleans bool.
    """
    processors: list[Callable[[Any], Any] | None] = []
    for column in columns:
        process = column.type.dialect_impl(_DIALECT).result_processor(_DIALECT, None)
        if process is not None and isinstance(column.type, UtcDateTime):
            processors.append(_memoized(process))
        elif process is not None and isinstance(column.type, sa.JSON):
            processors.append(_json_null_first(process))
        else:
            processors.append(process)

    def read(row: Sequence[Any]) -> list[Any]:
        return [
            value if process is None or value is None else process(value)
            for value, process in zip(row, processors, strict=True)
        ]

    return read


_read_schedule = _reader(list(schedules.c))
_read_run = _reader(list(schedule_runs.c))
_read_next_run = _reader([sc.next_run])
_read_tick = _reader([rc.scheduled_for])

_DUE = Prepared(
    schedules.select()
    .where(sc.enabled.is_(True), sc.next_run.is_not(None), sc.next_run <= sa.bindparam("now"))
    .order_by(sc.next_run)
    .limit(sa.bindparam("limit"))
)


def _earliest_query() -> sa.Select[Any]:
    """ORDER BY + LIMIT rather than MIN(): the next_run index is walked in order and the walk
    stops at the first enabled row, where MIN() with a WHERE on another column may scan."""
    return (
        sa.select(sc.next_run)
        .where(sc.enabled.is_(True), sc.next_run.is_not(None))
        .order_by(sc.next_run)
        .limit(1)
    )


_EARLIEST = Prepared(_earliest_query())
_INSERT_RUN = Prepared(schedule_runs.insert())
_EXECUTION_STATUS = Prepared(sa.select(ex.status).where(ex.id == sa.bindparam("e_id")))
_RUNNING_RUN = Prepared(
    schedule_runs.select().where(rc.execution_id == sa.bindparam("e_id"), rc.status == "running")
)
_FAILURE_STATE = Prepared(
    sa.select(sc.consecutive_failures, sc.enabled, sc.target).where(sc.id == sa.bindparam("s_id"))
)
_PRUNE_OLD = Prepared(
    schedule_runs.delete().where(
        rc.schedule_id == sa.bindparam("s_id"), rc.scheduled_for < sa.bindparam("before")
    )
)
_PRUNE_CUTOFF = Prepared(
    sa.select(rc.scheduled_for)
    .where(rc.schedule_id == sa.bindparam("s_id"))
    .order_by(rc.scheduled_for.desc())
    .offset(sa.bindparam("keep"))
    .limit(1)
)
_PRUNE_BEYOND = Prepared(
    schedule_runs.delete().where(
        rc.schedule_id == sa.bindparam("s_id"), rc.scheduled_for <= sa.bindparam("cutoff")
    )
)


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
            value: datetime | None = (await conn.execute(_earliest_query())).scalar()
        return value

    async def claim(
        self,
        conn: AsyncConnection,
        schedule_id: str,
        expected_next: datetime,
        expected_version: int,
        values: dict[str, Any],
    ) -> bool:
        """Move `next_run` on from the tick we saw; False when another node got there first,
        or the schedule changed since it was read (`expected_version`): the tick is then
        planned again from the row as it is now."""
        result = await conn.execute(
            schedules.update()
            .where(
                sc.id == schedule_id,
                sc.next_run == expected_next,
                sc.version == expected_version,
                sc.enabled.is_(True),
            )
            .values(**values, **_BUMP)
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
        await conn.execute(schedules.update().where(sc.id == schedule_id).values(**values, **_BUMP))

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


def execution_status_sqlite(conn: sqlite3.Connection, execution_id: str) -> str | None:
    """The status of an execution, read inside a writer transaction (overlap checks)."""
    row = _EXECUTION_STATUS.execute(conn, {"e_id": execution_id}).fetchone()
    return None if row is None else str(row[0])


class SqliteSchedules:
    """The scheduler's hot statements on the SQLite writer's connection (see the module
    docstring); every method runs inside the caller's writer transaction and never commits."""

    def __init__(self) -> None:
        self._updates = PreparedUpdates(schedules, sc.id == sa.bindparam("u_id"), always=_BUMP)
        self._claims = PreparedUpdates(
            schedules,
            sc.id == sa.bindparam("c_id"),
            sc.next_run == sa.bindparam("c_next"),
            sc.version == sa.bindparam("c_version"),
            sc.enabled.is_(True),
            always=_BUMP,
        )
        self._run_updates = PreparedUpdates(
            schedule_runs, rc.id == sa.bindparam("r_id"), rc.status == "running"
        )

    def due(self, conn: sqlite3.Connection, now: datetime, limit: int) -> list[ScheduleRecord]:
        rows = _DUE.execute(conn, {"now": now, "limit": limit}).fetchall()
        return [ScheduleRecord(*_read_schedule(row)) for row in rows]

    def earliest_next_run(self, conn: sqlite3.Connection) -> datetime | None:
        row = _EARLIEST.execute(conn, {}).fetchone()
        if row is None:
            return None
        value: datetime | None = _read_next_run(row)[0]
        return value

    def claim(
        self,
        conn: sqlite3.Connection,
        schedule_id: str,
        expected_next: datetime,
        expected_version: int,
        values: dict[str, Any],
    ) -> bool:
        """`ScheduleRepository.claim` on the writer: move `next_run` on from the tick seen."""
        statement = self._claims.setting(values)
        params = {
            **values,
            "c_id": schedule_id,
            "c_next": expected_next,
            "c_version": expected_version,
        }
        return bool(statement.execute(conn, params).rowcount == 1)

    def update_schedule(
        self, conn: sqlite3.Connection, schedule_id: str, values: dict[str, Any]
    ) -> None:
        self._updates.setting(values).execute(conn, {**values, "u_id": schedule_id})

    def insert_runs(self, conn: sqlite3.Connection, runs: Sequence[ScheduleRunRecord]) -> None:
        if runs:
            _INSERT_RUN.execute_many(conn, [run.__dict__ for run in runs])

    def failure_state(
        self, conn: sqlite3.Connection, schedule_id: str
    ) -> tuple[int, bool, str] | None:
        """(consecutive failures, enabled, target) of a schedule, or None if it is gone."""
        row = _FAILURE_STATE.execute(conn, {"s_id": schedule_id}).fetchone()
        if row is None:
            return None
        return int(row[0]), bool(row[1]), str(row[2])

    def finish_run_for_execution(
        self, conn: sqlite3.Connection, execution_id: str, status: str, reason: str | None
    ) -> ScheduleRunRecord | None:
        """`ScheduleRepository.finish_run_for_execution` on the writer."""
        row = _RUNNING_RUN.execute(conn, {"e_id": execution_id}).fetchone()
        if row is None:
            return None
        run = ScheduleRunRecord(*_read_run(row))
        values: dict[str, Any] = {"status": status}
        if reason is not None:
            values["reason"] = f"manual: {reason}" if run.reason == "manual" else reason
        done = (
            self._run_updates.setting(values).execute(conn, {**values, "r_id": run.id}).rowcount
            == 1
        )
        return run if done else None

    def prune(self, conn: sqlite3.Connection, schedule_id: str, before: datetime, keep: int) -> int:
        """`ScheduleRepository.prune` on the writer."""
        removed = int(_PRUNE_OLD.execute(conn, {"s_id": schedule_id, "before": before}).rowcount)
        row = _PRUNE_CUTOFF.execute(conn, {"s_id": schedule_id, "keep": keep}).fetchone()
        if row is not None:
            removed += int(
                _PRUNE_BEYOND.execute(
                    conn, {"s_id": schedule_id, "cutoff": _read_tick(row)[0]}
                ).rowcount
            )
        return removed
