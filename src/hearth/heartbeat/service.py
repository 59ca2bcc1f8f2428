"""What the gateway calls: configure the one heartbeat, run it now, report, list alerts.

There is exactly one heartbeat, stored as the one schedule whose target is `heartbeat`.
Configuring again updates that schedule (same id) instead of adding another. Each
`configure` states the whole configuration: a value it leaves out comes from the file's front
matter, then from the defaults; the keys it gives are remembered as *pinned*, and the others
keep following the front matter, which every run re-reads (so editing the file is enough).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hearth.errors import FieldError
from hearth.heartbeat.checklist import Checklist, ChecklistError, parse_interval, read_checklist
from hearth.heartbeat.runner import INTERRUPTED, HeartbeatConfig, HeartbeatRunner, RunOutcome
from hearth.heartbeat.target import (
    KIND,
    PATH_KEY,
    PINNED_KEY,
    check_confined,
    path_of,
    pinned_of,
    resolve_path,
)
from hearth.scheduling.errors import InvalidScheduleError
from hearth.scheduling.scheduler import Scheduler
from hearth.scheduling.service import ScheduleService
from hearth.store.heartbeat import HeartbeatRepository
from hearth.store.records import HeartbeatAlertRecord, HeartbeatRunRecord, ScheduleRecord
from hearth.supervised import SupervisedLoop

log = logging.getLogger("hearth.heartbeat")

DEFAULT_INTERVAL = timedelta(minutes=30)
SCHEDULE_NAME = "heartbeat"
RECOVER_EVERY_S = 60.0
#: Scheduled run outcome as the schedule's history records it.
SCHEDULE_STATUS = {"ok": "ok", "skipped": "skipped", "error": "failed"}


class InvalidHeartbeatError(FieldError):
    """A configure request that cannot be honoured; `field` is the wire name at fault."""

    code = "INVALID_HEARTBEAT"


@dataclass(frozen=True)
class HeartbeatStatus:
    configured: bool
    schedule_id: str | None
    enabled: bool
    path: Path
    interval: timedelta
    timezone: str
    active_hours: dict[str, Any] | None
    next_run: datetime | None
    last_run: HeartbeatRunRecord | None
    consecutive_errors: int
    state: str | None = None


def every_text(interval: timedelta) -> str:
    """The schedule's `every` for an interval: "30m" when whole minutes, else seconds."""
    seconds = interval.total_seconds()
    if seconds % 60 == 0:
        return f"{int(seconds // 60)}m"
    return f"{seconds:g}s"


def _now() -> datetime:
    return datetime.now(UTC)


class HeartbeatService:
    def __init__(
        self,
        *,
        runner: HeartbeatRunner,
        repo: HeartbeatRepository,
        schedules: ScheduleService,
        scheduler: Scheduler,
        data_dir: Path,
        default_timezone: str,
        config: HeartbeatConfig,
        exclusive: bool,
    ) -> None:
        """`exclusive`: this process is the only one using the database (SQLite), so a run
        still marked `running` at start-up was cut off by a crash and can be closed at once."""
        self.runner = runner
        self.repo = repo
        self.schedules = schedules
        self.scheduler = scheduler
        self.data_dir = data_dir
        self.default_timezone = default_timezone
        self.config = config
        self.exclusive = exclusive
        self._configure_lock = asyncio.Lock()
        self._runs: dict[str, asyncio.Task[RunOutcome]] = {}
        self._recovery = SupervisedLoop(
            "heartbeat-recovery",
            functools.partial(self._recover, at_start=False),
            interval_s=RECOVER_EVERY_S,
            initial_delay_s=RECOVER_EVERY_S,
            log=log,
        )

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        await self._recover(at_start=True)
        self._recovery.start()

    async def stop(self) -> None:
        await self._recovery.stop()
        tasks = list(self._runs.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _recover(self, *, at_start: bool) -> None:
        """Close runs whose process died mid-run, so they neither block the next tick (as an
        overlap) nor stay `running` in the history forever."""
        cutoff = _now() if at_start and self.exclusive else _now() - self.config.longest_run
        for run in await self.repo.stale_runs(cutoff):
            if run.id in self._runs:
                continue
            async with self.repo.db.begin() as conn:
                closed = await self.repo.finish_run(
                    conn,
                    run.id,
                    {"status": "error", "reason": INTERRUPTED, "finished_at": _now()},
                )
            if closed and run.schedule_id is not None:
                await self.scheduler.finish_run(run.id, "failed", INTERRUPTED)

    # -- configuration ----------------------------------------------------------------------

    async def schedule(self) -> ScheduleRecord | None:
        """The heartbeat's schedule (the oldest, should a race ever have made two)."""
        found = await self.schedules.repo.by_target(KIND)
        return found[0] if found else None

    async def configure(self, fields: dict[str, Any]) -> ScheduleRecord:
        """Create or update the one heartbeat schedule.

        `fields` holds only what the request gave (snake_case: heartbeat_path, interval,
        timezone, active_hours, enabled); an explicit `active_hours: None` means "no window".
        """
        path = resolve_path(self.data_dir, fields.get("heartbeat_path"))
        try:
            check_confined(self.data_dir, path, self.config.allow_outside)
            checklist = await asyncio.to_thread(read_checklist, path)
        except (ChecklistError, ValueError) as exc:
            raise InvalidHeartbeatError("heartbeatPath", str(exc)) from None
        pinned: list[str] = []
        if fields.get("interval") is not None:
            try:
                interval = parse_interval(fields["interval"])
            except ValueError as exc:
                raise InvalidHeartbeatError("interval", str(exc)) from None
            pinned.append("interval")
        else:
            interval = checklist.interval or DEFAULT_INTERVAL
        if fields.get("timezone") is not None:
            pinned.append("timezone")
        if "active_hours" in fields:
            pinned.append("activeHours")
        if fields.get("enabled") is not None:
            pinned.append("enabled")
        values = self._schedule_values(checklist, fields, interval)
        values["input"] = {PATH_KEY: str(path), PINNED_KEY: pinned}
        async with self._configure_lock:
            try:
                return await self._save(values)
            except InvalidScheduleError as exc:
                raise InvalidHeartbeatError(_wire_field(exc.field), exc.reason) from None

    def _schedule_values(
        self, checklist: Checklist, explicit: dict[str, Any], interval: timedelta
    ) -> dict[str, Any]:
        """Schedule fields: explicit values first, then the front matter, then defaults."""
        enabled = explicit.get("enabled")
        if enabled is None:
            enabled = checklist.enabled if checklist.enabled is not None else True
        return {
            "name": SCHEDULE_NAME,
            "every": every_text(interval),
            "timezone": explicit.get("timezone") or checklist.timezone or self.default_timezone,
            "active_hours": explicit.get("active_hours", checklist.active_hours),
            "enabled": enabled,
        }

    async def _save(self, values: dict[str, Any]) -> ScheduleRecord:
        existing = await self.schedule()
        if existing is not None:
            return await self.schedules.update(existing.id, values)
        created = await self.schedules.create(values, target=KIND)
        # Two nodes configuring at the same moment could each create one; keep the oldest.
        found = await self.schedules.repo.by_target(KIND)
        if len(found) > 1:
            for extra in found[1:]:
                with contextlib.suppress(Exception):
                    await self.schedules.delete(extra.id)
            if found[0].id != created.id:
                return await self.schedules.update(found[0].id, values)
        return created

    async def _follow_front_matter(self, schedule_id: str, checklist: Checklist) -> None:
        """Apply front-matter edits to the schedule for the settings configure did not pin."""
        record = await self.schedules.repo.get(schedule_id)
        if record is None:
            return
        pinned = pinned_of(record)
        wanted = self._schedule_values(checklist, {}, checklist.interval or DEFAULT_INTERVAL)
        changes: dict[str, Any] = {}
        interval = (checklist.interval or DEFAULT_INTERVAL).total_seconds()
        if "interval" not in pinned and record.every_s != interval:
            changes["every"] = wanted["every"]
        if "timezone" not in pinned and record.timezone != wanted["timezone"]:
            changes["timezone"] = wanted["timezone"]
        if "activeHours" not in pinned and record.active_hours != wanted["active_hours"]:
            changes["active_hours"] = wanted["active_hours"]
        if "enabled" not in pinned and record.enabled != wanted["enabled"]:
            changes["enabled"] = wanted["enabled"]
        if changes:
            log.info("HEARTBEAT.md front matter changed: updating the schedule (%s)", changes)
            await self.schedules.update(schedule_id, changes)

    # -- runs -------------------------------------------------------------------------------

    def launch(self, run_id: str, schedule: ScheduleRecord) -> None:
        """Run a tick the scheduler claimed (its row was inserted in the claim transaction)."""
        self._spawn(run_id, self._scheduled(run_id, schedule))

    async def _scheduled(self, run_id: str, schedule: ScheduleRecord) -> RunOutcome:
        outcome = await self.runner.run(run_id, path_of(self.data_dir, schedule), schedule.timezone)
        await self._after(schedule.id, outcome)
        await self.scheduler.finish_run(
            run_id,
            SCHEDULE_STATUS[outcome.status],
            outcome.reason if outcome.status != "ok" else None,
        )
        return outcome

    async def run_now(self) -> RunOutcome:
        """Run at once, whatever the active hours say, and wait for the outcome.

        The run continues if the asking client goes away; its outcome is recorded either way.
        """
        schedule = await self.schedule()
        path = path_of(self.data_dir, schedule) if schedule else resolve_path(self.data_dir, None)
        timezone = schedule.timezone if schedule else self.default_timezone
        run = self.runner.new_run(
            path, trigger="manual", schedule_id=schedule.id if schedule else None
        )
        await self.repo.add_run(run)

        async def manual() -> RunOutcome:
            outcome = await self.runner.run(run.id, path, timezone)
            if schedule is not None:
                await self._after(schedule.id, outcome)
            return outcome

        return await asyncio.shield(self._spawn(run.id, manual()))

    async def _after(self, schedule_id: str, outcome: RunOutcome) -> None:
        if outcome.checklist is None:
            return
        try:
            await self._follow_front_matter(schedule_id, outcome.checklist)
        except Exception as exc:
            log.warning("HEARTBEAT.md front matter could not be applied to the schedule: %s", exc)

    def _spawn(self, run_id: str, work: Any) -> asyncio.Task[RunOutcome]:
        task: asyncio.Task[RunOutcome] = asyncio.create_task(work, name=f"heartbeat-{run_id}")
        self._runs[run_id] = task

        def done(finished: asyncio.Task[RunOutcome]) -> None:
            self._runs.pop(run_id, None)
            if not finished.cancelled() and finished.exception() is not None:
                log.error("heartbeat run %s failed", run_id, exc_info=finished.exception())

        task.add_done_callback(done)
        return task

    # -- reading ----------------------------------------------------------------------------

    async def status(self) -> HeartbeatStatus:
        schedule = await self.schedule()
        last = await self.repo.last_run()
        errors = await self.repo.consecutive_errors()
        if schedule is not None:
            return HeartbeatStatus(
                configured=True,
                schedule_id=schedule.id,
                enabled=schedule.enabled,
                path=path_of(self.data_dir, schedule),
                interval=timedelta(seconds=schedule.every_s or 0),
                timezone=schedule.timezone,
                active_hours=schedule.active_hours,
                next_run=schedule.next_run,
                last_run=last,
                consecutive_errors=errors,
                state=schedule.state,
            )
        path = resolve_path(self.data_dir, None)
        try:
            checklist: Checklist | None = await asyncio.to_thread(read_checklist, path)
        except ChecklistError:
            checklist = None
        return HeartbeatStatus(
            configured=False,
            schedule_id=None,
            enabled=False,
            path=path,
            interval=(checklist.interval if checklist else None) or DEFAULT_INTERVAL,
            timezone=(checklist.timezone if checklist else None) or self.default_timezone,
            active_hours=checklist.active_hours if checklist else None,
            next_run=None,
            last_run=last,
            consecutive_errors=errors,
        )

    async def alerts(self, limit: int) -> list[HeartbeatAlertRecord]:
        """Sent alerts, newest first (suppressed repeats are kept but not listed)."""
        return await self.repo.alerts(limit)


_WIRE_FIELDS = {"every": "interval", "active_hours": "activeHours", "input.heartbeatPath": PATH_KEY}


def _wire_field(field: str) -> str:
    return _WIRE_FIELDS.get(field, field)
