"""`TickStore` through SQLAlchemy: PostgreSQL, shared by several gateway nodes.

A claiming pass reads a batch of due rows with `SELECT ... FOR UPDATE SKIP LOCKED`: nodes
passing at the same moment take disjoint batches instead of racing row by row for the same
ones, and a row read here cannot change before this transaction writes it, so the claims,
run rows and executions of the whole batch go out as one multi-row statement each (asyncpg
pipelines an executemany) in one transaction: five round trips for a batch, not five a tick.
The claim stays conditional on the `next_run` and `version` that were read, as a second guard.

Results are group-committed too: `finish_run` queues the result and a single flusher writes
everything queued meanwhile in one transaction, the run rows locked in id order (two nodes
closing the same run cannot both close it, and cannot deadlock).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hearth.store.database import Database
from hearth.store.executions import ExecutionRepository
from hearth.store.membership import one_of
from hearth.store.records import ScheduleRecord, ScheduleRunRecord
from hearth.store.schedule_ticks import (
    ClaimedBatch,
    Decide,
    FailureState,
    OneTick,
    Settle,
    TickWrite,
    W,
)
from hearth.store.tables import schedule_runs, schedules, workflow_executions

log = logging.getLogger("hearth.store.schedules")

sc = schedules.c
rc = schedule_runs.c
ex = workflow_executions.c

#: Results written per transaction by the flusher.
FINISH_BATCH = 500
FINAL = ("completed", "failed", "cancelled")
#: Every write to a schedule row carries this, so a read-check-write can see it was overtaken.
BUMP = {"version": sc.version + 1}
_SCHEDULE_COLUMNS = len(schedules.c)


def earliest_query() -> sa.Select[Any]:
    """ORDER BY + LIMIT rather than MIN(): the next_run index is walked in order and the walk
    stops at the first enabled row, where MIN() with a WHERE on another column may scan."""
    return (
        sa.select(sc.next_run)
        .where(sc.enabled.is_(True), sc.next_run.is_not(None))
        .order_by(sc.next_run)
        .limit(1)
    )


def finished_values(run: ScheduleRunRecord, status: str, reason: str | None) -> dict[str, Any]:
    """The run row's new columns; a manual run keeps its "manual" mark in front of its error."""
    values: dict[str, Any] = {"status": status}
    if reason is not None:
        values["reason"] = f"manual: {reason}" if run.reason == "manual" else reason
    return values


def _due_query(until: datetime, limit: int) -> sa.Select[Any]:
    return (
        sa.select(schedules, ex.status)
        .select_from(schedules.outerjoin(workflow_executions, ex.id == sc.last_execution_id))
        .where(sc.enabled.is_(True), sc.next_run.is_not(None), sc.next_run <= until)
        .order_by(sc.next_run)
        .limit(limit)
        .with_for_update(of=schedules, skip_locked=True)
    )


@dataclass(frozen=True)
class _Due:
    record: ScheduleRecord
    status: str | None

    def previous_status(self) -> str | None:
        return self.status


def _claim_statement(keys: Sequence[str]) -> sa.Update:
    return (
        schedules.update()
        .where(
            sc.id == sa.bindparam("c_id"),
            sc.next_run == sa.bindparam("c_next"),
            sc.version == sa.bindparam("c_version"),
            sc.enabled.is_(True),
        )
        .values({key: sa.bindparam(f"v_{key}") for key in keys} | BUMP)
    )


def _update_statement(table: sa.Table, key: sa.Column[Any], keys: Sequence[str]) -> sa.Update:
    extra = BUMP if table is schedules else {}
    return (
        table.update()
        .where(key == sa.bindparam("u_id"))
        .values({k: sa.bindparam(f"v_{k}") for k in keys} | extra)
    )


def _grouped(
    rows: Iterable[tuple[dict[str, Any], dict[str, Any]]],
) -> dict[tuple[str, ...], list[dict[str, Any]]]:
    """(values, keys of the row) -> executemany parameter lists, one per set of columns."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for values, where in rows:
        keys = tuple(sorted(values))
        groups.setdefault(keys, []).append({**where, **{f"v_{k}": v for k, v in values.items()}})
    return groups


@dataclass
class _Finish:
    execution_id: str
    status: str
    reason: str | None
    settle: Settle[Any]
    future: asyncio.Future[Any]


class SqlTickStore:
    #: Small enough that nodes passing together each take a share of a second's ticks (the
    #: rows one pass locks are skipped by the others), large enough for one node to claim a
    #: thousand due ticks in a few transactions.
    claim_limit = 250

    def __init__(
        self,
        db: Database,
        executions: ExecutionRepository,
        engine: AsyncEngine | None = None,
    ) -> None:
        """`engine`: connections of the scheduler's own. At a thousand ticks a second the
        executions it starts keep the shared pool busy, and a claiming pass queued behind
        hundreds of their transitions would start the next second's ticks late."""
        self.db = db
        self.executions = executions
        self._engine = engine
        self._finishing: list[_Finish] = []
        self._flusher: asyncio.Task[None] | None = None

    def _begin(self) -> AbstractAsyncContextManager[AsyncConnection]:
        return self.db.begin() if self._engine is None else self._engine.begin()

    def _connect(self) -> AsyncConnection:
        return self.db.connect() if self._engine is None else self._engine.connect()

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()

    # -- claiming ---------------------------------------------------------------------------

    async def claim_due(self, until: datetime, limit: int, decide: Decide[W]) -> ClaimedBatch[W]:
        try:
            async with self._begin() as conn:
                due, claimed = await self._claim_in(conn, _due_query(until, limit), decide)
                earliest = (await conn.execute(earliest_query())).scalar()
            return ClaimedBatch(len(due), claimed, earliest)
        except Exception:
            log.warning("a claiming pass failed; claiming its rows one by one", exc_info=True)
        # Something about one schedule broke a write: redo the rows one transaction each, so
        # that only that schedule is left out (the scheduler logs it and retries later).
        async with self._connect() as conn:
            ids: list[str] = list(
                (
                    await conn.execute(
                        sa.select(sc.id)
                        .where(sc.enabled.is_(True), sc.next_run.is_not(None), sc.next_run <= until)
                        .order_by(sc.next_run)
                        .limit(limit)
                    )
                ).scalars()
            )
        batch: ClaimedBatch[W] = ClaimedBatch(len(ids), [], None)
        for schedule_id in ids:
            try:
                async with self._begin() as conn:
                    _, one = await self._claim_in(
                        conn, _due_query(until, 1).where(sc.id == schedule_id), decide
                    )
                batch.claimed.extend(one)
            except Exception:
                log.exception("schedule %s could not be claimed", schedule_id)
                async with self._connect() as conn:
                    row = (
                        await conn.execute(schedules.select().where(sc.id == schedule_id))
                    ).first()
                if row is not None:
                    batch.failed.append(ScheduleRecord(**row._mapping))
        batch.earliest = await self.earliest_next_run()
        return batch

    async def _claim_in(
        self, conn: AsyncConnection, query: sa.Select[Any], decide: Decide[W]
    ) -> tuple[list[_Due], list[W]]:
        rows = (await conn.execute(query)).all()
        due = [
            _Due(ScheduleRecord(*row[:_SCHEDULE_COLUMNS]), row[_SCHEDULE_COLUMNS]) for row in rows
        ]
        claimed = [write for item in due if (write := decide(item)) is not None]
        if claimed:
            await self._write(conn, claimed)
        return due, claimed

    async def _write(self, conn: AsyncConnection, writes: Sequence[TickWrite]) -> None:
        """The batch's claims, executions and runs: one (multi-row) statement each."""
        for keys, params in _grouped(
            (
                w.values,
                {"c_id": w.schedule_id, "c_next": w.expected_next, "c_version": w.expected_version},
            )
            for w in writes
        ).items():
            await conn.execute(_claim_statement(keys), params)
        new = [w.execution for w in writes if w.execution is not None]
        pins = {(n.pin.workflow_id, n.pin.content_hash): n for n in new}
        for n in pins.values():
            await self.executions.pin_definition(
                conn,
                n.pin.workflow_id,
                n.pin.content_hash,
                n.pin.source,
                n.pin.path,
                n.record.started_at,
            )
        if new:
            await conn.execute(workflow_executions.insert(), [n.record.__dict__ for n in new])
        runs = [run.__dict__ for w in writes for run in w.runs]
        if runs:
            await conn.execute(schedule_runs.insert(), runs)

    async def claim_one(self, tick: OneTick, *, claim: bool = True) -> bool:
        write = tick.write
        async with self._begin() as conn:
            if claim:
                result = await conn.execute(
                    _claim_statement(tuple(write.values)),
                    {
                        "c_id": write.schedule_id,
                        "c_next": write.expected_next,
                        "c_version": write.expected_version,
                        **{f"v_{k}": v for k, v in write.values.items()},
                    },
                )
                if result.rowcount != 1:
                    return False
            try:
                async with conn.begin_nested():
                    await tick.start(conn)
            except Exception as exc:
                tick.refused(exc)
            if write.more:
                await self.update_schedule(conn, write.schedule_id, write.more)
            try:
                async with conn.begin_nested():
                    if write.runs:
                        await conn.execute(schedule_runs.insert(), [r.__dict__ for r in write.runs])
            except IntegrityError:
                log.warning("a tick of schedule %s was already recorded", write.schedule_id)
                raise
        return True

    @staticmethod
    async def update_schedule(
        conn: AsyncConnection, schedule_id: str, values: dict[str, Any]
    ) -> None:
        await conn.execute(
            _update_statement(schedules, sc.id, tuple(values)),
            {"u_id": schedule_id, **{f"v_{k}": v for k, v in values.items()}},
        )

    # -- results ----------------------------------------------------------------------------

    def finish_run(
        self, execution_id: str, status: str, reason: str | None, settle: Settle[Any]
    ) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._finishing.append(_Finish(execution_id, status, reason, settle, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="schedule-results")
        return future

    async def _flush(self) -> None:
        """Everything queued while the previous transaction ran goes out in the next one."""
        while self._finishing:
            batch = self._finishing[:FINISH_BATCH]
            del self._finishing[:FINISH_BATCH]
            try:
                async with self._begin() as conn:
                    outcomes = await self._finish_in(conn, batch)
            except Exception as exc:
                if len(batch) == 1:
                    _deliver(batch[0].future, error=exc)
                    continue
                # One bad result must not lose the others: each again on its own.
                for item in batch:
                    try:
                        async with self._begin() as conn:
                            (outcome,) = await self._finish_in(conn, [item])
                    except Exception as error:
                        _deliver(item.future, error=error)
                    else:
                        _deliver(item.future, outcome)
                continue
            for item, outcome in zip(batch, outcomes, strict=True):
                _deliver(item.future, outcome)

    async def _finish_in(self, conn: AsyncConnection, batch: list[_Finish]) -> list[Any]:
        ids = sorted({item.execution_id for item in batch})
        rows = (
            await conn.execute(
                schedule_runs.select()
                .where(one_of(rc.execution_id, ids), rc.status == "running")
                .order_by(rc.id)
                .with_for_update()
            )
        ).all()
        runs = {row.execution_id: ScheduleRunRecord(**row._mapping) for row in rows}
        schedule_ids = sorted({run.schedule_id for run in runs.values()})
        states: dict[str, FailureState] = {}
        if schedule_ids:
            found = await conn.execute(
                sa.select(sc.id, sc.consecutive_failures, sc.enabled, sc.target).where(
                    one_of(sc.id, schedule_ids)
                )
            )
            states = {row[0]: (int(row[1]), bool(row[2]), str(row[3])) for row in found}
        run_updates: list[tuple[dict[str, Any], dict[str, Any]]] = []
        schedule_updates: list[tuple[dict[str, Any], dict[str, Any]]] = []
        outcomes: list[Any] = []
        for item in batch:
            run = runs.pop(item.execution_id, None)
            if run is None:
                outcomes.append(None)
                continue
            values = finished_values(run, item.status, item.reason)
            run_updates.append((values, {"u_id": run.id}))
            state = states.get(run.schedule_id)
            more, result = item.settle(run, state)
            if more:
                schedule_updates.append((more, {"u_id": run.schedule_id}))
                if state is not None and "consecutive_failures" in more:
                    # A second result of the same schedule in this batch counts from here.
                    states[run.schedule_id] = (int(more["consecutive_failures"]), *state[1:])
            outcomes.append((run, result))
        for keys, params in _grouped(run_updates).items():
            await conn.execute(_update_statement(schedule_runs, rc.id, keys), params)
        for keys, params in _grouped(schedule_updates).items():
            await conn.execute(_update_statement(schedules, sc.id, keys), params)
        return outcomes

    # -- housekeeping -----------------------------------------------------------------------

    async def earliest_next_run(self) -> datetime | None:
        async with self._connect() as conn:
            value: datetime | None = (await conn.execute(earliest_query())).scalar()
        return value

    async def stale_running_runs(self, limit: int = 100) -> list[tuple[str, str]]:
        async with self._connect() as conn:
            rows = await conn.execute(
                sa.select(rc.execution_id, ex.status)
                .join(workflow_executions, ex.id == rc.execution_id)
                .where(rc.status == "running", ex.status.in_(FINAL))
                .limit(limit)
            )
            return [(row[0], row[1]) for row in rows]

    async def prune(self, schedule_ids: list[str], before: datetime, keep: int) -> None:
        for schedule_id in schedule_ids:
            async with self._begin() as conn:
                await conn.execute(
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
                if cutoff is not None:
                    await conn.execute(
                        schedule_runs.delete().where(
                            rc.schedule_id == schedule_id, rc.scheduled_for <= cutoff
                        )
                    )


def _deliver(
    future: asyncio.Future[Any], result: Any = None, error: BaseException | None = None
) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
