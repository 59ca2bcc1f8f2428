"""`TickStore` on a SQLite file: the scheduler's writes as group commits of the SQLite writer.

A claiming pass is ONE writer transaction: the due rows (and, for overlap, the previous
execution's status) are read inside it, so nothing can move between reading and claiming, and
a thousand schedules due on the same second cost one commit, not a thousand. Results of
finished executions are recorded the same way, many to a commit. Statements are compiled once
(`Prepared`) and run on the writer's plain `sqlite3` connection; the column types' result
processors are applied by hand (`_reader`), so records read the same as through the engine.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite as sqlite_dialect

from hearth.store.database import Database
from hearth.store.executions import ExecutionRepository
from hearth.store.records import ScheduleRecord, ScheduleRunRecord
from hearth.store.schedule_ticks import ClaimedBatch, Decide, OneTick, Settle, TickWrite, W
from hearth.store.schedule_ticks_sql import BUMP, SqlTickStore, earliest_query, finished_values
from hearth.store.sqlite_writer import Prepared, PreparedUpdates, SqliteWriter
from hearth.store.tables import UtcDateTime, schedule_runs, schedules, workflow_executions

log = logging.getLogger("hearth.store.schedules")

sc = schedules.c
rc = schedule_runs.c
ex = workflow_executions.c

#: Prune this many schedules' history per writer transaction (each costs a few statements;
#: smaller transactions keep the loop free for the runners in between).
PRUNE_CHUNK = 200

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


_EARLIEST = Prepared(earliest_query())
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


class _Due:
    """A due row read inside the writer transaction; the previous execution's status is read
    only when the scheduler asks (only overlap `skip` needs it)."""

    __slots__ = ("conn", "record")

    def __init__(self, record: ScheduleRecord, conn: sqlite3.Connection) -> None:
        self.record = record
        self.conn = conn

    def previous_status(self) -> str | None:
        if self.record.last_execution_id is None:
            return None
        row = _EXECUTION_STATUS.execute(self.conn, {"e_id": self.record.last_execution_id})
        found = row.fetchone()
        return None if found is None else str(found[0])


class SqliteTickStore:
    #: A whole second's worth of due schedules in one writer transaction: every tick then
    #: starts after one commit instead of waiting behind the commits of the ticks before it.
    claim_limit = 2000

    def __init__(self, db: Database, writer: SqliteWriter, executions: ExecutionRepository) -> None:
        self.writer = writer
        self.executions = executions
        #: Single ticks started on an async connection, and plain reads, are the same as on
        #: any backend.
        self._sql = SqlTickStore(db, executions)
        self._updates = PreparedUpdates(schedules, sc.id == sa.bindparam("u_id"), always=BUMP)
        self._claims = PreparedUpdates(
            schedules,
            sc.id == sa.bindparam("c_id"),
            sc.next_run == sa.bindparam("c_next"),
            sc.version == sa.bindparam("c_version"),
            sc.enabled.is_(True),
            always=BUMP,
        )
        self._run_updates = PreparedUpdates(
            schedule_runs, rc.id == sa.bindparam("r_id"), rc.status == "running"
        )

    # -- claiming ---------------------------------------------------------------------------

    async def claim_due(self, until: datetime, limit: int, decide: Decide[W]) -> ClaimedBatch[W]:
        return await self.writer.run(functools.partial(self._claim_pass, until, limit, decide))

    def _claim_pass(
        self, until: datetime, limit: int, decide: Decide[W], conn: sqlite3.Connection
    ) -> ClaimedBatch[W]:
        """The writer transaction of `claim_due` (on the loop, or on the writer's thread while
        another connection holds the lock: `decide` only plans)."""
        due = [
            ScheduleRecord(*_read_schedule(row))
            for row in _DUE.execute(conn, {"now": until, "limit": limit}).fetchall()
        ]
        failed: list[ScheduleRecord] = []
        conn.execute("SAVEPOINT scheduler_pass")
        try:
            claimed = [w for r in due if (w := self._claim(conn, r, decide)) is not None]
            self._insert_runs(conn, [run for w in claimed for run in w.runs])
        except Exception:
            # Something about one schedule broke a write: redo the pass one schedule per
            # savepoint, so that only that schedule is left out.
            conn.execute("ROLLBACK TO scheduler_pass")
            claimed = []
            for record in due:
                conn.execute("SAVEPOINT scheduler_tick")
                try:
                    write = self._claim(conn, record, decide)
                    if write is not None:
                        self._insert_runs(conn, write.runs)
                        claimed.append(write)
                except Exception:
                    conn.execute("ROLLBACK TO scheduler_tick")
                    log.exception("schedule %s (%s) could not be claimed", record.id, record.name)
                    failed.append(record)
                conn.execute("RELEASE scheduler_tick")
        conn.execute("RELEASE scheduler_pass")
        return ClaimedBatch(len(due), claimed, self._earliest(conn), failed)

    def _claim(
        self, conn: sqlite3.Connection, record: ScheduleRecord, decide: Decide[W]
    ) -> W | None:
        write = decide(_Due(record, conn))
        if write is None:
            return None
        params = {
            **write.values,
            "c_id": write.schedule_id,
            "c_next": write.expected_next,
            "c_version": write.expected_version,
        }
        if self._claims.setting(write.values).execute(conn, params).rowcount != 1:
            return None
        if write.execution is not None:
            self.executions.create_sqlite(conn, write.execution.record, write.execution.pin)
        return write

    @staticmethod
    def _insert_runs(conn: sqlite3.Connection, runs: Sequence[ScheduleRunRecord]) -> None:
        if runs:
            _INSERT_RUN.execute_many(conn, [run.__dict__ for run in runs])

    @staticmethod
    def _earliest(conn: sqlite3.Connection) -> datetime | None:
        row = _EARLIEST.execute(conn, {}).fetchone()
        if row is None:
            return None
        value: datetime | None = _read_next_run(row)[0]
        return value

    async def claim_one(self, tick: OneTick, *, claim: bool = True) -> bool:
        return await self._sql.claim_one(tick, claim=claim)

    # -- results ----------------------------------------------------------------------------

    def finish_run(
        self, execution_id: str, status: str, reason: str | None, settle: Settle[Any]
    ) -> asyncio.Future[Any]:
        return self.writer.submit(
            functools.partial(self._finish, execution_id, status, reason, settle)
        )

    def _finish(
        self,
        execution_id: str,
        status: str,
        reason: str | None,
        settle: Settle[Any],
        conn: sqlite3.Connection,
    ) -> tuple[ScheduleRunRecord, Any] | None:
        row = _RUNNING_RUN.execute(conn, {"e_id": execution_id}).fetchone()
        if row is None:
            return None
        run = ScheduleRunRecord(*_read_run(row))
        values = finished_values(run, status, reason)
        updated = self._run_updates.setting(values).execute(conn, {**values, "r_id": run.id})
        if updated.rowcount != 1:
            return None
        found = _FAILURE_STATE.execute(conn, {"s_id": run.schedule_id}).fetchone()
        state = None if found is None else (int(found[0]), bool(found[1]), str(found[2]))
        more, result = settle(run, state)
        if more:
            self._updates.setting(more).execute(conn, {**more, "u_id": run.schedule_id})
        return run, result

    # -- housekeeping -----------------------------------------------------------------------

    async def close(self) -> None:
        await self._sql.close()

    async def earliest_next_run(self) -> datetime | None:
        return await self._sql.earliest_next_run()

    async def stale_running_runs(self, limit: int = 100) -> list[tuple[str, str]]:
        return await self._sql.stale_running_runs(limit)

    async def prune(self, schedule_ids: list[str], before: datetime, keep: int) -> None:
        ids = sorted(schedule_ids)
        for offset in range(0, len(ids), PRUNE_CHUNK):
            chunk = ids[offset : offset + PRUNE_CHUNK]
            await self.writer.run(functools.partial(self._prune, chunk, before, keep))

    @staticmethod
    def _prune(ids: list[str], before: datetime, keep: int, conn: sqlite3.Connection) -> None:
        for schedule_id in ids:
            _PRUNE_OLD.execute(conn, {"s_id": schedule_id, "before": before})
            row = _PRUNE_CUTOFF.execute(conn, {"s_id": schedule_id, "keep": keep}).fetchone()
            if row is not None:
                _PRUNE_BEYOND.execute(conn, {"s_id": schedule_id, "cutoff": _read_tick(row)[0]})


__all__ = ["SqliteTickStore", "TickWrite"]
