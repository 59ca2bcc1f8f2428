"""Executions on a SQLite file: the hot writes as prepared statements in the group-committing
`SqliteWriter` (see `sqlite_writer`).

A step that moves on appends its journal row alone (the row is read for the fence, not
written): one page per step instead of two, which is most of what a step costs. Readers place
a running execution at its newest journal row (`executions._positioned`).
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from hearth.store.database import Database
from hearth.store.executions import (
    RUNNING,
    ExecutionRepository,
    PinnedSource,
    ex,
    start_row,
)
from hearth.store.records import ExecutionRecord, StepRunRecord
from hearth.store.sqlite_writer import Prepared, PreparedUpdates, SqliteWriter
from hearth.store.tables import step_runs, step_starts, workflow_executions, workflows

_INSERT_STEP = Prepared(step_runs.insert())
_INSERT_EXECUTION = Prepared(workflow_executions.insert())
_PIN = Prepared(workflows.insert().prefix_with("OR IGNORE"))
_OWNED = Prepared(
    sa.select(ex.id).where(
        ex.id == sa.bindparam("w_id"),
        ex.owner_node == sa.bindparam("w_node"),
        ex.status == RUNNING,
    )
)
#: A start is journalled once per step run; a re-run of an interrupted one keeps the first.
#: Fenced like every runner write: a node that lost the execution journals nothing (and so
#: does not run the step's action).
_MARK_STARTED = Prepared(
    step_starts.insert()
    .prefix_with("OR IGNORE")
    .from_select(
        [c.name for c in step_starts.c],
        sa.select(*[sa.bindparam(c.name, type_=c.type) for c in step_starts.c]).where(
            sa.exists().where(
                ex.id == sa.bindparam("w_id"),
                ex.owner_node == sa.bindparam("w_node"),
                ex.status == RUNNING,
            )
        ),
    )
)
_STEP_COLUMNS = list(step_runs.c)
#: Append a journal row only while the execution is running under the writing node.
_ADVANCE = Prepared(
    step_runs.insert().from_select(
        [c.name for c in _STEP_COLUMNS],
        sa.select(*[sa.bindparam(c.name, type_=c.type) for c in _STEP_COLUMNS]).where(
            sa.exists().where(
                ex.id == sa.bindparam("w_id"),
                ex.owner_node == sa.bindparam("w_node"),
                ex.status == RUNNING,
            )
        ),
    )
)


class SqliteExecutions(ExecutionRepository):
    """`ExecutionRepository` whose hot writes go through the SQLite writer's group commit."""

    def __init__(self, db: Database, writer: SqliteWriter) -> None:
        super().__init__(db)
        self._writer = writer
        #: `update_owned` for the writer, one statement per set of columns.
        self._fenced = PreparedUpdates(
            workflow_executions,
            ex.id == sa.bindparam("w_id"),
            ex.owner_node == sa.bindparam("w_node"),
            ex.status == RUNNING,
        )

    async def create(self, record: ExecutionRecord, pin: PinnedSource) -> None:
        await self._writer.run(lambda conn: self.create_sqlite(conn, record, pin))
        self.remember_pinned(pin)

    def create_sqlite(
        self, conn: sqlite3.Connection, record: ExecutionRecord, pin: PinnedSource
    ) -> None:
        if (pin.workflow_id, pin.content_hash) not in self._pinned:
            _PIN.execute(
                conn,
                {
                    "workflow_id": pin.workflow_id,
                    "content_hash": pin.content_hash,
                    "source": pin.source,
                    "path": pin.path,
                    "created_at": record.started_at,
                },
            )
        _INSERT_EXECUTION.execute(conn, record.__dict__)

    async def transition(
        self,
        execution_id: str,
        node: str,
        values: dict[str, Any],
        run: StepRunRecord | None = None,
    ) -> bool:
        update = self._fenced.setting(values)
        params = {**values, "w_id": execution_id, "w_node": node}

        def write(conn: sqlite3.Connection) -> bool:
            if update.execute(conn, params).rowcount != 1:
                return False
            if run is not None:
                _INSERT_STEP.execute(conn, run.__dict__)
            return True

        return await self._writer.run(write)

    async def advance(self, execution_id: str, node: str, run: StepRunRecord) -> bool:
        assert run.next_visit_seq is not None, "advance needs the position the step moves to"
        params = {**run.__dict__, "w_id": execution_id, "w_node": node}
        return await self._writer.run(lambda conn: _ADVANCE.execute(conn, params).rowcount == 1)

    async def mark_started(
        self, execution_id: str, node: str, seq: int, step_id: str, attempt: int, at: datetime
    ) -> bool:
        values = {
            **start_row(execution_id, seq, step_id, attempt, at),
            "w_id": execution_id,
            "w_node": node,
        }

        def write(conn: sqlite3.Connection) -> bool:
            if _MARK_STARTED.execute(conn, values).rowcount == 1:
                return True
            # Nothing inserted: not ours any more, or journalled already (idempotent).
            return _OWNED.execute(conn, values).fetchone() is not None

        return await self._writer.run(write)

    async def settle(self) -> None:
        await self._writer.run(_nothing)


def _nothing(_conn: sqlite3.Connection) -> None:
    return None
