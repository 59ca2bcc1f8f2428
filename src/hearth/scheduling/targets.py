"""What a schedule fires. The scheduler only knows this interface.

`begin` runs inside the transaction that claims the tick, so the run record and whatever the
target creates (an execution) commit together; `launch` starts it after the commit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from hearth.store.executions import ExecutionRepository
from hearth.store.records import ExecutionRecord, ScheduleRecord
from hearth.workflows.engine import WorkflowEngine


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

    def launch(self, started: Started) -> None:
        record = started.handle
        assert isinstance(record, ExecutionRecord)
        self.engine.launch(record)

    async def busy(self, schedule: ScheduleRecord) -> bool:
        if schedule.last_execution_id is None:
            return False
        record = await self.executions.get(schedule.last_execution_id)
        return record is not None and record.status in ("running", "paused")
