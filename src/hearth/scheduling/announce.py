"""Telling the rest of the gateway about runs: `schedule.run` events and tick metrics.

Only committed runs are announced (a client must never see a run that then rolls back).
"""

from __future__ import annotations

from datetime import UTC, datetime

from hearth.events import DomainEvent, EventBus
from hearth.metrics import Metrics
from hearth.store.records import ScheduleRunRecord


class RunAnnouncer:
    def __init__(self, bus: EventBus) -> None:
        self.bus = bus
        #: Where tick outcomes and lateness are recorded; the composition root sets it.
        self.metrics: Metrics | None = None

    def run(self, run: ScheduleRunRecord) -> None:
        if self.metrics is not None:
            if run.status == "running":
                if run.reason != "manual":
                    lateness = (datetime.now(UTC) - run.scheduled_for).total_seconds()
                    self.metrics.tick_started(lateness)
            else:
                self.metrics.tick(run.status)
        self.bus.publish(
            DomainEvent(
                "schedule.run",
                {
                    "scheduleId": run.schedule_id,
                    "runId": run.id,
                    "scheduledFor": run.scheduled_for.isoformat(),
                    "status": run.status,
                    "reason": run.reason,
                    "executionId": run.execution_id,
                    "missedCount": run.missed_count,
                },
            )
        )

    def event(self, event: DomainEvent | None) -> None:
        if event is not None:
            self.bus.publish(event)
