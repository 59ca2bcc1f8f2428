"""Announcing an execution's committed state on the bus (`workflow.status`).

Every transition is committed before it is announced; the runner passes what it knows after
its own commit, so a step needs no read-back, and other changes read the row once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hearth.events import DomainEvent, EventBus
from hearth.store.executions import ExecutionRepository
from hearth.store.records import ExecutionRecord, StepRunRecord


class Announcer:
    def __init__(self, bus: EventBus, executions: ExecutionRepository) -> None:
        self.bus = bus
        self.executions = executions

    async def publish_fresh(self, execution_id: str) -> None:
        """Announce the committed state; awaited so events keep the order of transitions."""
        record = await self.executions.get(execution_id)
        if record is not None:
            self.publish(record, [])

    def publish(self, record: ExecutionRecord, runs: Sequence[StepRunRecord]) -> None:
        data: dict[str, Any] = {
            "executionId": record.id,
            "workflowId": record.workflow_id,
            "status": record.status,
            "currentStepId": record.current_step_id,
            "waitingFor": record.waiting_for,
            "error": record.error,
            "triggeredBy": record.triggered_by,
        }
        if runs:
            data["stepResults"] = [
                {
                    "seq": run.seq,
                    "stepId": run.step_id,
                    "attempt": run.attempt,
                    "status": run.status,
                    "output": run.output,
                    "error": run.error,
                }
                for run in runs
            ]
        self.bus.publish(DomainEvent("workflow.status", data))
