"""What a schedule fires. The scheduler only knows this interface.

`begin` runs inside the transaction that claims the tick, so the run record and whatever the
target creates (an execution) commit together; `launch` starts it after the commit.

A target that is also a `BatchScheduleTarget` can be fired by the SQLite pass, which claims
every due schedule in one writer transaction: there the work is split into `prepare` (validate
and build, nothing written, so a refusal needs no savepoint) and `write_sqlite` (the rows, on
the writer's plain `sqlite3` connection). Targets without it are fired one by one through
`begin`, on either backend.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from sqlalchemy.ext.asyncio import AsyncConnection

from hearth.store.executions import ExecutionRepository, PinnedSource
from hearth.store.records import ExecutionRecord, ScheduleRecord
from hearth.store.schedules import execution_status_sqlite
from hearth.workflows.engine import WorkflowEngine

#: Execution statuses in which a previous run still counts as going (overlap: skip).
GOING = ("running", "paused")


@dataclass(frozen=True)
class Started:
    execution_id: str | None
    handle: Any = None


class ScheduleTarget(Protocol):
    kind: str

    def check(self, workflow_id: str | None, raw_input: Mapping[str, Any] | None) -> None:
        """Raise if a schedule with these fields could never fire (before anything is saved)."""

    async def begin(
        self, conn: AsyncConnection, schedule: ScheduleRecord, scheduled_for: datetime
    ) -> Started: ...

    def launch(self, started: Started) -> None: ...

    async def busy(self, schedule: ScheduleRecord) -> bool:
        """True while the previous run is still running or paused (for overlap: skip)."""


@runtime_checkable
class BatchScheduleTarget(ScheduleTarget, Protocol):
    def prepare(self, schedule: ScheduleRecord, scheduled_for: datetime) -> Started:
        """What `begin` would create, built but not written; raises like `begin` when the
        target refuses (unknown workflow, input that no longer fits)."""

    def write_sqlite(self, conn: sqlite3.Connection, started: Started) -> None:
        """Write what `prepare` built, inside the scheduler's writer transaction."""

    def busy_sqlite(self, conn: sqlite3.Connection, schedule: ScheduleRecord) -> bool:
        """`busy`, read inside the writer transaction that claims the tick."""

    def launch_at(self, started: Sequence[Started], at: datetime, then: Callable[[], None]) -> None:
        """`launch` them all at `at` (ticks claimed just ahead of their time), then `then`."""


@dataclass(frozen=True)
class _NewExecution:
    """An execution prepared by the SQLite pass; its pin is remembered once committed."""

    record: ExecutionRecord
    pin: PinnedSource


class WorkflowTarget:
    kind = "workflow"

    def __init__(self, engine: WorkflowEngine) -> None:
        self.engine = engine
        self.executions: ExecutionRepository = engine.executions

    def check(self, workflow_id: str | None, raw_input: Mapping[str, Any] | None) -> None:
        if workflow_id is None:
            raise ValueError("workflowId is required")
        self.engine.check_trigger(workflow_id, raw_input)

    async def begin(
        self, conn: AsyncConnection, schedule: ScheduleRecord, scheduled_for: datetime
    ) -> Started:
        assert schedule.workflow_id is not None
        record = await self.engine.create_execution(
            conn,
            schedule.workflow_id,
            schedule.input,
            triggered_by="cron",
            scheduled_for=scheduled_for,
        )
        return Started(record.id, record)

    def prepare(self, schedule: ScheduleRecord, scheduled_for: datetime) -> Started:
        if schedule.workflow_id is None:
            raise ValueError("workflowId is required")
        record, pin = self.engine.prepare_execution(
            schedule.workflow_id,
            schedule.input,
            triggered_by="cron",
            scheduled_for=scheduled_for,
        )
        return Started(record.id, _NewExecution(record, pin))

    def write_sqlite(self, conn: sqlite3.Connection, started: Started) -> None:
        new = started.handle
        assert isinstance(new, _NewExecution)
        self.executions.create_sqlite(conn, new.record, new.pin)

    def launch(self, started: Started) -> None:
        self.engine.launch(self._committed(started))

    def launch_at(self, started: Sequence[Started], at: datetime, then: Callable[[], None]) -> None:
        self.engine.launch_at([self._committed(s) for s in started], at, then)

    def _committed(self, started: Started) -> ExecutionRecord:
        handle = started.handle
        if isinstance(handle, _NewExecution):
            self.executions.remember_pinned(handle.pin)
            handle = handle.record
        assert isinstance(handle, ExecutionRecord)
        return handle

    async def busy(self, schedule: ScheduleRecord) -> bool:
        if schedule.last_execution_id is None:
            return False
        record = await self.executions.get(schedule.last_execution_id)
        return record is not None and record.status in GOING

    def busy_sqlite(self, conn: sqlite3.Connection, schedule: ScheduleRecord) -> bool:
        if schedule.last_execution_id is None:
            return False
        return execution_status_sqlite(conn, schedule.last_execution_id) in GOING
