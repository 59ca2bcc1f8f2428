"""SQL for workflow executions and their step journal.

Every write that drives an execution forward is fenced: it only applies while the row is still
`running` and owned by the writing node. A node that lost its lease (it paused too long, or was
presumed dead) finds its write refused and stops, instead of racing the node that took over.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from hearth.store.database import Database
from hearth.store.membership import one_of
from hearth.store.records import ExecutionRecord, StepRunRecord
from hearth.store.tables import step_runs, step_starts, workflow_executions, workflows

RUNNING = "running"
PAUSED = "paused"

ex = workflow_executions.c

#: The newest journal row of each execution: where a running execution really is.
_LATEST = (
    sa.select(
        step_runs.c.execution_id,
        step_runs.c.seq,
        step_runs.c.next_step_id,
        step_runs.c.next_visit_seq,
        step_runs.c.next_attempt,
    )
    .where(
        step_runs.c.seq
        == sa.select(sa.func.max(step_runs.c.seq))
        .where(step_runs.c.execution_id == sa.bindparam("latest_of"))
        .scalar_subquery()
    )
    .where(step_runs.c.execution_id == sa.bindparam("latest_of"))
)


@dataclass(frozen=True)
class PinnedSource:
    """The exact workflow source an execution starts from."""

    workflow_id: str
    content_hash: str
    source: str
    path: str


def _execution(row: sa.Row[Any]) -> ExecutionRecord:
    return ExecutionRecord(**row._mapping)


def _positioned(record: ExecutionRecord, latest: Any) -> ExecutionRecord:
    """The record with the position its journal moved it to since the row was last written.

    A step only appends its journal row (see `ExecutionRepository.advance`); every other
    transition writes the row, position included. So a journal row newer than the row's
    `step_count` that carries a next position is where the execution stands now.
    """
    if latest is None or latest.seq <= record.step_count or latest.next_visit_seq is None:
        return record
    return replace(
        record,
        current_step_id=latest.next_step_id,
        visit_seq=latest.next_visit_seq,
        attempt=latest.next_attempt or 1,
        step_count=latest.seq,
        wake_at=None,
        next_attempt_at=None,
    )


def _step(row: sa.Row[Any]) -> StepRunRecord:
    return StepRunRecord(**row._mapping)


def start_row(
    execution_id: str, seq: int, step_id: str, attempt: int, at: datetime
) -> dict[str, Any]:
    """The `step_starts` row that journals a step run's start (every backend writes it)."""
    return {
        "execution_id": execution_id,
        "seq": seq,
        "step_id": step_id,
        "attempt": attempt,
        "started_at": at,
    }


class ExecutionRepository:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._pinned: set[tuple[str, str]] = set()

    # -- definitions ------------------------------------------------------------------------

    async def pin_definition(
        self,
        conn: AsyncConnection,
        workflow_id: str,
        content_hash: str,
        source: str,
        path: str,
        now: datetime,
    ) -> None:
        """Store the exact source an execution starts from (once per content hash)."""
        key = (workflow_id, content_hash)
        # Rows are never deleted, so one found committed stays there. (One this call inserts is
        # not remembered: the caller's transaction may still roll back.)
        if key in self._pinned:
            return
        exists = (
            await conn.execute(
                sa.select(sa.literal(1)).where(
                    workflows.c.workflow_id == workflow_id, workflows.c.content_hash == content_hash
                )
            )
        ).first()
        if exists:
            self._pinned.add(key)
            return
        try:
            async with conn.begin_nested():
                await conn.execute(
                    workflows.insert().values(
                        workflow_id=workflow_id,
                        content_hash=content_hash,
                        source=source,
                        path=path,
                        created_at=now,
                    )
                )
        except IntegrityError:
            pass  # another node pinned the same content a moment ago

    async def definition_source(self, workflow_id: str, content_hash: str) -> str | None:
        async with self.db.connect() as conn:
            return (
                await conn.execute(
                    sa.select(workflows.c.source).where(
                        workflows.c.workflow_id == workflow_id,
                        workflows.c.content_hash == content_hash,
                    )
                )
            ).scalar()

    # -- reads ------------------------------------------------------------------------------

    async def get(
        self, execution_id: str, conn: AsyncConnection | None = None
    ) -> ExecutionRecord | None:
        query = workflow_executions.select().where(ex.id == execution_id)
        if conn is not None:
            return await self._get_in(conn, query)
        async with self.db.connect() as own:
            return await self._get_in(own, query)

    async def workflow_ids(self, execution_ids: Iterable[str]) -> dict[str, str]:
        """Each execution's workflow id, in one query (lists of approvals show them all)."""
        wanted = sorted(set(execution_ids))
        if not wanted:
            return {}
        async with self.db.connect() as conn:
            rows = await conn.execute(sa.select(ex.id, ex.workflow_id).where(one_of(ex.id, wanted)))
            return {row[0]: row[1] for row in rows}

    async def ids_starting_with(self, prefix: str, limit: int = 5) -> list[str]:
        """Execution ids that begin with `prefix` (at most `limit`), so a person can type the
        first characters of an id as shown in tables, the way schedule ids work."""
        query = (
            sa.select(ex.id).where(ex.id.startswith(prefix, autoescape=True)).order_by(ex.id)
        ).limit(limit)
        async with self.db.connect() as conn:
            return [row[0] for row in await conn.execute(query)]

    async def _get_in(self, conn: AsyncConnection, query: sa.Select[Any]) -> ExecutionRecord | None:
        row = (await conn.execute(query)).first()
        if row is None:
            return None
        record = _execution(row)
        if record.status != RUNNING:
            return record
        latest = (await conn.execute(_LATEST, {"latest_of": record.id})).first()
        return _positioned(record, latest)

    async def steps(self, execution_id: str) -> list[StepRunRecord]:
        async with self.db.connect() as conn:
            rows = await conn.execute(
                step_runs.select()
                .where(step_runs.c.execution_id == execution_id)
                .order_by(step_runs.c.seq)
            )
            return [_step(row) for row in rows]

    async def recent(
        self, *, workflow_id: str | None = None, status: str | None = None, limit: int = 50
    ) -> list[ExecutionRecord]:
        query = workflow_executions.select()
        if workflow_id:
            query = query.where(ex.workflow_id == workflow_id)
        if status:
            query = query.where(ex.status == status)
        query = query.order_by(ex.started_at.desc(), ex.id).limit(limit)
        async with self.db.connect() as conn:
            records = [_execution(row) for row in await conn.execute(query)]
            for index, record in enumerate(records):
                if record.status == RUNNING:
                    latest = (await conn.execute(_LATEST, {"latest_of": record.id})).first()
                    records[index] = _positioned(record, latest)
            return records

    async def ids_where(self, *conditions: sa.ColumnElement[bool]) -> list[str]:
        async with self.db.connect() as conn:
            rows = await conn.execute(sa.select(ex.id).where(*conditions).order_by(ex.started_at))
            return [row[0] for row in rows]

    # -- writes -----------------------------------------------------------------------------

    async def insert(self, conn: AsyncConnection, record: ExecutionRecord) -> None:
        await conn.execute(workflow_executions.insert().values(**record.__dict__))

    async def create(self, record: ExecutionRecord, pin: PinnedSource) -> None:
        """Pin the definition and insert the execution, in one transaction of its own."""
        async with self.db.begin() as conn:
            await self.pin_definition(
                conn, pin.workflow_id, pin.content_hash, pin.source, pin.path, record.started_at
            )
            await self.insert(conn, record)

    def create_sqlite(
        self, conn: sqlite3.Connection, record: ExecutionRecord, pin: PinnedSource
    ) -> None:
        """`create` inside a SQLite writer transaction; `remember_pinned` once it committed.

        Only the SQLite repository (`executions_sqlite`) has a writer to run this in; the
        scheduler calls it from inside its own SQLite writer batches.
        """
        raise NotImplementedError(f"create_sqlite on {self.db.backend}")

    def remember_pinned(self, pin: PinnedSource) -> None:
        self._pinned.add((pin.workflow_id, pin.content_hash))

    async def transition(
        self,
        execution_id: str,
        node: str,
        values: dict[str, Any],
        run: StepRunRecord | None = None,
    ) -> bool:
        """Fenced `update_owned` plus, when given, the step's journal row, in one transaction.

        False (and nothing written) when the execution is no longer running under `node`.
        """
        async with self.db.begin() as conn:
            if not await self.update_owned(conn, execution_id, node, values):
                return False
            if run is not None:
                await self.append_step(conn, run)
            return True

    async def advance(self, execution_id: str, node: str, run: StepRunRecord) -> bool:
        """Journal a step that moves a running execution on (to `run.next_*`), fenced.

        Here the row's position is updated with the journal row, so that the fence is a row
        lock other nodes' takeovers wait for (the SQLite path appends the journal row alone).
        """
        assert run.next_visit_seq is not None, "advance needs the position the step moves to"
        position = {
            "current_step_id": run.next_step_id,
            "visit_seq": run.next_visit_seq,
            "attempt": run.next_attempt or 1,
            "step_count": run.seq,
            "wake_at": None,
            "updated_at": run.finished_at,
        }
        return await self.transition(execution_id, node, position, run)

    async def mark_started(
        self, execution_id: str, node: str, seq: int, step_id: str, attempt: int, at: datetime
    ) -> bool:
        """Journal that step run `seq` starts, durably, before its tool runs; False (and
        nothing written) when `node` no longer owns the running execution.

        Fenced, and on PostgreSQL holding a share lock on the execution row until it commits:
        a node whose lease lapsed cannot journal a start (so it does not run the action), and
        a node taking the execution over waits for a start being journalled, then sees it and
        asks instead of running the action a second time.
        """
        async with self.db.begin() as conn:
            query = sa.select(ex.id).where(
                ex.id == execution_id, ex.owner_node == node, ex.status == RUNNING
            )
            if self.db.backend == "postgresql":
                query = query.with_for_update(read=True)
            if (await conn.execute(query)).first() is None:
                return False
            values = start_row(execution_id, seq, step_id, attempt, at)
            if self.db.backend == "postgresql":
                # The PostgreSQL dialect (~2 MB) is imported only by gateways that use it.
                from sqlalchemy.dialects.postgresql import insert as pg_insert

                await conn.execute(pg_insert(step_starts).values(**values).on_conflict_do_nothing())
            else:
                await conn.execute(
                    sqlite_insert(step_starts).values(**values).on_conflict_do_nothing()
                )
            return True

    async def was_started(self, execution_id: str, seq: int) -> bool:
        """Whether step run `seq` journalled its start (with no result yet: it is the current
        one, so nothing finished it — the gateway stopped while it ran)."""
        async with self.db.connect() as conn:
            found = await conn.execute(
                sa.select(sa.literal(1)).where(
                    step_starts.c.execution_id == execution_id, step_starts.c.seq == seq
                )
            )
            return found.first() is not None

    async def prune_starts(self) -> int:
        """Forget the start marks of finished executions; returns how many went.

        A mark tells "the step may have run" from "it never started" when a running execution
        is resumed; a finished one is never resumed, so its marks are only dead rows.
        """
        finished = sa.select(workflow_executions.c.id).where(
            workflow_executions.c.status.in_(("completed", "failed", "cancelled"))
        )
        async with self.db.begin() as conn:
            result = await conn.execute(
                step_starts.delete().where(step_starts.c.execution_id.in_(finished))
            )
        return int(result.rowcount or 0)

    async def forget_starts(self, conn: AsyncConnection, execution_id: str) -> None:
        """A person decided to run the interrupted step again: it starts afresh."""
        await conn.execute(step_starts.delete().where(step_starts.c.execution_id == execution_id))

    async def settle(self) -> None:
        """Wait until every transition queued so far is committed (nothing queues here).

        Needed before a read-modify-write through the async engine that must see them all.
        """

    async def update_owned(
        self, conn: AsyncConnection, execution_id: str, node: str, values: dict[str, Any]
    ) -> bool:
        """Apply `values` only while this node owns the running execution."""
        result = await conn.execute(
            workflow_executions.update()
            .where(ex.id == execution_id, ex.owner_node == node, ex.status == RUNNING)
            .values(**values)
        )
        return result.rowcount == 1

    async def append_step(self, conn: AsyncConnection, record: StepRunRecord) -> None:
        await conn.execute(step_runs.insert().values(**record.__dict__))

    async def claim_running(
        self, execution_id: str, node: str, now: datetime, lease_until: datetime
    ) -> bool:
        """Take over a running execution whose owner is gone (no owner or lease expired)."""
        async with self.db.begin() as conn:
            result = await conn.execute(
                workflow_executions.update()
                .where(
                    ex.id == execution_id,
                    ex.status == RUNNING,
                    sa.or_(
                        ex.owner_node.is_(None),
                        ex.owner_node == node,
                        ex.lease_expires_at < now,
                    ),
                )
                .values(owner_node=node, lease_expires_at=lease_until, updated_at=now)
            )
            return result.rowcount == 1

    async def claim_exclusive(self, execution_id: str, node: str, lease_until: datetime) -> bool:
        """Take a running execution whatever its owner: the one process of a SQLite gateway
        owns every execution a crash left running."""
        async with self.db.begin() as conn:
            result = await conn.execute(
                workflow_executions.update()
                .where(ex.id == execution_id, ex.status == RUNNING)
                .values(owner_node=node, lease_expires_at=lease_until)
            )
            return result.rowcount == 1

    async def resume_due_wait(
        self, execution_id: str, node: str, now: datetime, lease_until: datetime
    ) -> bool:
        """Paused on a timer that is due → running under `node`; False if another got it."""
        async with self.db.begin() as conn:
            return await self.resume_paused(
                conn, execution_id, node, "timer", now, lease_until, extra=[ex.wake_at <= now]
            )

    async def resume_paused(
        self,
        conn: AsyncConnection,
        execution_id: str,
        node: str,
        waiting_for: str,
        now: datetime,
        lease_until: datetime,
        extra: Sequence[sa.ColumnElement[bool]] = (),
    ) -> bool:
        """Paused → running, owned by `node`; False if it was not paused on `waiting_for`.

        Resuming from an approval also forgets any wake-up time: the gated step has not
        started yet, so a wait there counts its own time from now (rows paused by older
        versions may still carry an earlier wait's time).
        """
        cleared: dict[str, Any] = {"wake_at": None} if waiting_for == "approval" else {}
        result = await conn.execute(
            workflow_executions.update()
            .where(
                ex.id == execution_id, ex.status == PAUSED, ex.waiting_for == waiting_for, *extra
            )
            .values(
                status=RUNNING,
                waiting_for=None,
                owner_node=node,
                lease_expires_at=lease_until,
                updated_at=now,
                **cleared,
            )
        )
        return result.rowcount == 1

    async def finish_paused(
        self,
        conn: AsyncConnection,
        execution_id: str,
        status: str,
        error: str | None,
        now: datetime,
    ) -> bool:
        """Paused → a final status (cancel or denial)."""
        result = await conn.execute(
            workflow_executions.update()
            .where(ex.id == execution_id, ex.status == PAUSED)
            .values(
                status=status,
                error=error,
                waiting_for=None,
                owner_node=None,
                lease_expires_at=None,
                completed_at=now,
                updated_at=now,
            )
        )
        return result.rowcount == 1

    async def request_cancel(self, execution_id: str, now: datetime) -> bool:
        async with self.db.begin() as conn:
            result = await conn.execute(
                workflow_executions.update()
                .where(ex.id == execution_id, ex.status == RUNNING)
                .values(cancel_requested=True, updated_at=now)
            )
            return result.rowcount == 1

    async def renew_leases(
        self, node: str, ids: Sequence[str], lease_until: datetime
    ) -> dict[str, tuple[bool, bool]]:
        """Extend this node's leases on running executions.

        Returns {id: (still ours, cancel requested)} for the ones still running. Executions that
        finished or paused are left out: their runner is just wrapping up, not lost.
        """
        if not ids:
            return {}
        async with self.db.begin() as conn:
            await conn.execute(
                workflow_executions.update()
                .where(one_of(ex.id, ids), ex.owner_node == node, ex.status == RUNNING)
                .values(lease_expires_at=lease_until)
            )
            rows = await conn.execute(
                sa.select(ex.id, ex.owner_node, ex.cancel_requested).where(
                    one_of(ex.id, ids), ex.status == RUNNING
                )
            )
            return {row[0]: (row[1] in (node, None), bool(row[2])) for row in rows}
