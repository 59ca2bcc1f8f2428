"""The scheduler loop: one task, no timer per schedule.

It sleeps until the earliest `next_run` (never longer than `max_sleep_s`, so a clock jump is
noticed) or until a schedule changes, then claims each due schedule with a conditional UPDATE
of `next_run`. Only the node whose UPDATE matched fires that tick, and the run row (unique per
schedule and tick) plus the execution it starts commit in the same transaction: each tick fires
exactly once across any number of gateway processes, and survives a crash at any point.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError

from hearth.events import DomainEvent, EventBus
from hearth.scheduling.active_hours import ActiveHours
from hearth.scheduling.planning import plan
from hearth.scheduling.service import CHANGED_TOPIC, trigger_of
from hearth.scheduling.targets import ScheduleTarget, Started
from hearth.scheduling.triggers import zone
from hearth.store import Database
from hearth.store.records import ScheduleRecord, ScheduleRunRecord
from hearth.store.schedules import ScheduleRepository
from hearth.workflows.errors import WorkflowServiceError

log = logging.getLogger("hearth.scheduling")

BATCH = 200
RECONCILE_EVERY_S = 10.0


@dataclass(frozen=True)
class SchedulerConfig:
    max_consecutive_failures: int = 10
    history: timedelta = timedelta(days=30)
    history_max: int = 1000
    max_sleep_s: float = 30.0
    misfire_threshold: timedelta = timedelta(seconds=5)


def _now() -> datetime:
    return datetime.now(UTC)


class Scheduler:
    def __init__(
        self,
        db: Database,
        bus: EventBus,
        targets: Mapping[str, ScheduleTarget],
        config: SchedulerConfig,
    ) -> None:
        self.db = db
        self.repo = ScheduleRepository(db)
        self.bus = bus
        self.targets = dict(targets)
        self.config = config
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._fired_since_prune: set[str] = set()

    async def start(self) -> None:
        changes = self.bus.subscribe(CHANGED_TOPIC)
        finished = self.bus.subscribe("workflow.status")
        self._tasks = [
            asyncio.create_task(self._loop(), name="scheduler"),
            asyncio.create_task(self._watch_changes(changes), name="scheduler-changes"),
            asyncio.create_task(self._watch_executions(finished), name="scheduler-results"),
            asyncio.create_task(self._housekeeping(), name="scheduler-housekeeping"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- the loop ---------------------------------------------------------------------------

    async def _loop(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.run_due()
                earliest = await self.repo.earliest_next_run()
            except Exception:
                log.exception("scheduler pass failed; retrying in 1 s")
                earliest = _now() + timedelta(seconds=1)
            delay = self.config.max_sleep_s
            if earliest is not None:
                delay = min(delay, max(0.0, (earliest - _now()).total_seconds()))
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=delay)

    async def _watch_changes(self, subscription: Any) -> None:
        async for _event in subscription:
            self._wake.set()

    async def run_due(self, now: datetime | None = None) -> int:
        """Handle every schedule due at `now`; returns how many ticks this node claimed."""
        claimed = 0
        while True:
            moment = now or _now()
            due = await self.repo.due(moment, BATCH)
            if not due:
                return claimed
            progress = 0
            for record in due:
                try:
                    # The real clock per schedule: a long pass must neither plan nor stamp
                    # later ticks with the time it started.
                    if await self._handle(record, now or _now()):
                        claimed += 1
                    progress += 1
                except Exception:
                    log.exception("schedule %s (%s) could not be handled", record.id, record.name)
            if len(due) < BATCH or progress == 0 or now is not None:
                return claimed

    async def _handle(self, record: ScheduleRecord, now: datetime) -> bool:
        assert record.next_run is not None
        target = self.targets[record.target]
        tick = plan(
            trigger_of(record),
            record.next_run,
            now,
            misfire=record.misfire,
            grace=timedelta(seconds=record.misfire_grace_s),
            on_time=self.config.misfire_threshold,
        )
        runs: list[ScheduleRunRecord] = []
        if tick.missed_count and tick.missed_first is not None:
            runs.append(
                ScheduleRunRecord(
                    id=str(uuid.uuid4()),
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
        fire = False
        skip_reason: str | None = None
        if tick.fire_at is not None:
            if record.active_hours and not ActiveHours.parse(record.active_hours).contains(
                tick.fire_at, zone(record.timezone)
            ):
                skip_reason = "outside_active_hours"
            elif record.overlap == "skip" and await target.busy(record):
                skip_reason = "overlap"
            else:
                fire = True
        values: dict[str, Any] = {"next_run": tick.next_run, "updated_at": now}
        run_count = record.run_count + (1 if fire else 0)
        if fire:
            values["run_count"] = run_count
        finished = (record.max_runs is not None and run_count >= record.max_runs) or (
            tick.next_run is None
        )
        if finished:
            values.update(enabled=False, state="completed", next_run=None)
        started: Started | None = None
        disabled: DomainEvent | None = None
        fire_run: ScheduleRunRecord | None = None
        async with self.db.begin() as conn:
            if not await self.repo.claim(conn, record.id, record.next_run, values):
                return False
            if tick.fire_at is not None:
                fire_run = ScheduleRunRecord(
                    id=str(uuid.uuid4()),
                    schedule_id=record.id,
                    scheduled_for=tick.fire_at,
                    fired_at=now,
                    status="running" if fire else "skipped",
                    reason=skip_reason,
                    execution_id=None,
                    missed_count=None,
                )
            if fire and fire_run is not None:
                try:
                    async with conn.begin_nested():
                        started = await target.begin(conn, record, tick.fire_at)  # type: ignore[arg-type]
                except (WorkflowServiceError, ValueError) as exc:
                    fire_run = self._failed_start(fire_run, str(exc))
                    disabled = await self._count_failure(conn, record, str(exc))
                else:
                    fire_run = ScheduleRunRecord(
                        **{**fire_run.__dict__, "execution_id": started.execution_id}
                    )
                    if started.execution_id:
                        await self.repo.update_schedule(
                            conn, record.id, {"last_execution_id": started.execution_id}
                        )
            try:
                async with conn.begin_nested():
                    for run in [*runs, *([fire_run] if fire_run else [])]:
                        await self.repo.insert_run(conn, run)
            except IntegrityError:
                log.warning("tick %s of %s was already recorded", tick.fire_at, record.id)
                raise
        if started is not None:
            target.launch(started)
        self._fired_since_prune.add(record.id)
        for run in [*runs, *([fire_run] if fire_run else [])]:
            self._publish_run(run)
        if disabled is not None:
            self.bus.publish(disabled)
        if finished:
            log.info("schedule %s (%s) completed after %d runs", record.id, record.name, run_count)
        return True

    @staticmethod
    def _failed_start(run: ScheduleRunRecord, reason: str) -> ScheduleRunRecord:
        return ScheduleRunRecord(**{**run.__dict__, "status": "failed", "reason": reason})

    async def _count_failure(
        self, conn: Any, record: ScheduleRecord, reason: str
    ) -> DomainEvent | None:
        """Count a failed run; returns the `schedule.disabled` event to publish once the
        caller's transaction has committed (never announce what might still roll back)."""
        current = await self.repo.get_in(conn, record.id)
        if current is None:
            return None
        event: DomainEvent | None = None
        failures = current.consecutive_failures + 1
        values: dict[str, Any] = {"consecutive_failures": failures}
        # Only workflows are disabled: a failing heartbeat keeps trying (and says so itself
        # with one alert), because a person relies on it noticing when things recover.
        if (
            failures >= self.config.max_consecutive_failures
            and current.enabled
            and current.target == "workflow"
        ):
            why = f"disabled after {failures} consecutive failed runs; last: {reason}"
            values.update(enabled=False, state="disabled", state_reason=why, next_run=None)
            event = DomainEvent("schedule.disabled", {"scheduleId": record.id, "reason": why})
        await self.repo.update_schedule(conn, record.id, values)
        return event

    def _publish_run(self, run: ScheduleRunRecord) -> None:
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

    # -- manual runs ------------------------------------------------------------------------

    async def trigger_now(self, record: ScheduleRecord) -> ScheduleRunRecord:
        """Fire a schedule now, outside its trigger: active hours, overlap and maxRuns do not
        apply; the run is recorded with reason `manual`."""
        target = self.targets[record.target]
        now = _now()
        run = ScheduleRunRecord(
            id=str(uuid.uuid4()),
            schedule_id=record.id,
            scheduled_for=now,
            fired_at=now,
            status="running",
            reason="manual",
            execution_id=None,
            missed_count=None,
        )
        started: Started | None = None
        async with self.db.begin() as conn:
            try:
                async with conn.begin_nested():
                    started = await target.begin(conn, record, now)
            except (WorkflowServiceError, ValueError) as exc:
                run = self._failed_start(run, f"manual: {exc}")
            else:
                run = ScheduleRunRecord(**{**run.__dict__, "execution_id": started.execution_id})
                if started.execution_id:
                    await self.repo.update_schedule(
                        conn, record.id, {"last_execution_id": started.execution_id}
                    )
            await self.repo.insert_run(conn, run)
        if started is not None:
            target.launch(started)
        self._publish_run(run)
        return run

    # -- results ----------------------------------------------------------------------------

    async def _watch_executions(self, subscription: Any) -> None:
        async for event in subscription:
            status = event.data.get("status")
            # Only executions a schedule started have a run to close; skip the others'
            # write transaction (events from older nodes carry no triggeredBy: check those).
            if event.data.get("triggeredBy", "cron") != "cron":
                continue
            if status in ("completed", "failed", "cancelled"):
                try:
                    await self.finish_execution(event.data["executionId"], status, event.data)
                except Exception:
                    log.exception("could not record the result of a scheduled run")

    async def finish_execution(
        self, execution_id: str, status: str, data: Mapping[str, Any] | None = None
    ) -> None:
        """Record a scheduled execution's outcome once and keep the failure count."""
        ok = status == "completed"
        reason = None if ok else (data or {}).get("error") or status
        await self.finish_run(execution_id, "ok" if ok else "failed", reason)

    async def finish_run(self, execution_id: str, status: str, reason: str | None = None) -> None:
        """Record the outcome of the run that started `execution_id`, once.

        Workflow results arrive as `workflow.status` events; a target whose work is not a
        workflow execution (the heartbeat) reports here itself: `ok`, `skipped` (the run found
        nothing to do) or `failed`. `ok` resets the consecutive-failure count, `failed` adds
        to it, `skipped` leaves it alone.
        """
        disabled: DomainEvent | None = None
        async with self.db.begin() as conn:
            run = await self.repo.finish_run_for_execution(conn, execution_id, status, reason)
            if run is None:
                return
            record = await self.repo.get_in(conn, run.schedule_id)
            if record is not None:
                if status == "ok":
                    if record.consecutive_failures:
                        await self.repo.update_schedule(
                            conn, record.id, {"consecutive_failures": 0}
                        )
                elif status == "failed":
                    disabled = await self._count_failure(conn, record, str(reason))
        self._publish_run(
            ScheduleRunRecord(
                **{
                    **run.__dict__,
                    "status": status,
                    "reason": reason if reason is not None else run.reason,
                }
            )
        )
        if disabled is not None:
            self.bus.publish(disabled)

    async def _housekeeping(self) -> None:
        """Catch results whose event was missed (a node was down) and prune old history."""
        while True:
            await asyncio.sleep(RECONCILE_EVERY_S)
            try:
                for execution_id, status in await self.repo.stale_running_runs():
                    await self.finish_execution(execution_id, status)
                pending, self._fired_since_prune = self._fired_since_prune, set()
                cutoff = _now() - self.config.history
                for schedule_id in pending:
                    await self.repo.prune(schedule_id, cutoff, self.config.history_max)
            except Exception:
                log.exception("scheduler housekeeping failed")
