"""What one due tick of a schedule does: pure planning, no database.

Given the schedule as read and the time, a `Tick` says which runs to record (missed, skipped,
fired), how the schedule row moves on (the claim), and whether the target fires. The store
writes it; the scheduler starts and announces it. Keeping this apart from both is what lets
every backend claim ticks the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from hearth.events import DomainEvent
from hearth.ids import time_ordered_id
from hearth.scheduling.active_hours import ActiveHours
from hearth.scheduling.planning import TickPlan, plan
from hearth.scheduling.service import trigger_of
from hearth.scheduling.targets import ScheduleTarget, Started
from hearth.scheduling.triggers import zone
from hearth.store.records import ScheduleRecord, ScheduleRunRecord
from hearth.store.schedule_ticks import TickWrite


def run_record(
    record: ScheduleRecord,
    at: datetime,
    now: datetime,
    status: str,
    reason: str | None,
    execution_id: str | None,
) -> ScheduleRunRecord:
    return ScheduleRunRecord(
        time_ordered_id(), record.id, at, now, status, reason, execution_id, None
    )


@dataclass(kw_only=True)
class Tick(TickWrite):
    """One claimed (or to be claimed) tick: what the store writes plus what the scheduler
    does once it committed (launch `started`, announce the runs and `disabled`)."""

    record: ScheduleRecord
    target: ScheduleTarget
    fire_at: datetime | None
    #: The `missed` record, if any (the fired or skipped run is `fire_run`).
    missed: list[ScheduleRunRecord] = field(default_factory=list)
    fire_run: ScheduleRunRecord | None = None
    fire: bool = False
    run_count: int = 0
    finished: bool = False
    started: Started | None = None
    disabled: DomainEvent | None = None

    def set_fire_run(self, run: ScheduleRunRecord | None) -> None:
        self.fire_run = run
        self.runs = [*self.missed, *([run] if run is not None else [])]


def outside_hours(record: ScheduleRecord, at: datetime) -> bool:
    return bool(
        record.active_hours
        and not ActiveHours.parse(record.active_hours).contains(at, zone(record.timezone))
    )


def plan_of(record: ScheduleRecord, now: datetime, on_time: timedelta) -> TickPlan:
    assert record.next_run is not None
    return plan(
        trigger_of(record),
        record.next_run,
        now,
        misfire=record.misfire,
        grace=timedelta(seconds=record.misfire_grace_s),
        on_time=on_time,
    )


def make_tick(
    record: ScheduleRecord,
    target: ScheduleTarget,
    tick: TickPlan,
    now: datetime,
    skip: str | None,
) -> Tick:
    """The rows and the claim for a planned tick (`skip`: why it does not fire)."""
    assert record.next_run is not None
    missed: list[ScheduleRunRecord] = []
    if tick.missed_count and tick.missed_first is not None:
        missed.append(
            ScheduleRunRecord(
                id=time_ordered_id(),
                schedule_id=record.id,
                scheduled_for=tick.missed_first,
                fired_at=now,
                status="missed",
                reason=f"{tick.missed_count} tick(s) missed while no gateway was running"
                if tick.missed_count > 1 or tick.fire_at is None
                else "missed while no gateway was running",
                execution_id=None,
                missed_count=tick.missed_count,
            )
        )
    fire = tick.fire_at is not None and skip is None
    values: dict[str, Any] = {"next_run": tick.next_run, "updated_at": now}
    run_count = record.run_count + (1 if fire else 0)
    if fire:
        values["run_count"] = run_count
    finished = (record.max_runs is not None and run_count >= record.max_runs) or (
        tick.next_run is None
    )
    if finished:
        values.update(enabled=False, state="completed", next_run=None)
    result = Tick(
        schedule_id=record.id,
        expected_next=record.next_run,
        expected_version=record.version,
        values=values,
        record=record,
        target=target,
        fire_at=tick.fire_at,
        missed=missed,
        fire=fire,
        run_count=run_count,
        finished=finished,
    )
    skipped = None
    if tick.fire_at is not None and not fire:
        skipped = run_record(record, tick.fire_at, now, "skipped", skip, None)
    result.set_fire_run(skipped)
    return result


def failure_values(
    schedule_id: str,
    failures_before: int,
    enabled: bool,
    target: str,
    reason: str,
    values: dict[str, Any],
    max_failures: int,
) -> DomainEvent | None:
    """Add one failed run to `values` (the schedule's update); returns the `schedule.disabled`
    event to publish once that update has committed (never announce what might roll back)."""
    failures = failures_before + 1
    values["consecutive_failures"] = failures
    # Only workflows are disabled: a failing heartbeat keeps trying (and says so itself with
    # one alert), because a person relies on it noticing when things recover.
    if failures >= max_failures and enabled and target == "workflow":
        why = f"disabled after {failures} consecutive failed runs; last: {reason}"
        values.update(enabled=False, state="disabled", state_reason=why, next_run=None)
        return DomainEvent("schedule.disabled", {"scheduleId": schedule_id, "reason": why})
    return None
