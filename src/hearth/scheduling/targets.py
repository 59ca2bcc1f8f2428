"""What a schedule fires. The scheduler only knows this interface.

`begin` runs inside the transaction that claims the tick, so the run record and whatever the
target creates (an execution) commit together; `launch` starts it after the commit.

A target that is also a `BatchScheduleTarget` can be fired by a claiming pass, which claims a
whole batch of due schedules in one transaction on any backend: there the target only
`prepare`s what it starts (validated and built, nothing written, so a refusal needs no
savepoint), and the store writes it with the claims. Targets without it are fired one by one
through `begin`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from sqlalchemy.ext.asyncio import AsyncConnection

from hearth.store.executions import ExecutionRepository
from hearth.store.records import ExecutionRecord, ScheduleRecord
from hearth.store.schedule_ticks import NewExecution
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
        """What `begin` would create, built but not written (its handle a `NewExecution`,
        which the store writes with the claim); raises like `begin` when the target refuses
        (unknown workflow, input that no longer fits)."""

    def busy_given(self, previous_status: str | None) -> bool:
        """`busy`, from the status of the schedule's last execution as the claiming
        transaction read it."""

    def launch_at(self, started: Sequence[Started], at: datetime, then: Callable[[], None]) -> None:
        """`launch` them all at `at` (ticks claimed just ahead of their time), then `then`."""


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
        return Started(record.id, NewExecution(record, pin))

    def launch(self, started: Started) -> None:
        self.engine.launch(self._committed(started))

    def launch_at(self, started: Sequence[Started], at: datetime, then: Callable[[], None]) -> None:
        self.engine.launch_at([self._committed(s) for s in started], at, then)

    def _committed(self, started: Started) -> ExecutionRecord:
        handle = started.handle
        if isinstance(handle, NewExecution):
            self.executions.remember_pinned(handle.pin)
            handle = handle.record
        assert isinstance(handle, ExecutionRecord)
        return handle

    async def busy(self, schedule: ScheduleRecord) -> bool:
        if schedule.last_execution_id is None:
            return False
        record = await self.executions.get(schedule.last_execution_id)
        return record is not None and record.status in GOING

    def busy_given(self, previous_status: str | None) -> bool:
        return previous_status in GOING
