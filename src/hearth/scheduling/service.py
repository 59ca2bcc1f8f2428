"""Creating, changing and reading schedules. Everything is validated before anything is saved."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from hearth.events import DomainEvent, EventBus
from hearth.pages import decode_cursor, split_page
from hearth.scheduling.active_hours import ActiveHours
from hearth.scheduling.errors import (
    InvalidScheduleError,
    ScheduleConflictError,
    ScheduleNotFoundError,
    ScheduleTargetError,
)
from hearth.scheduling.preview import MAX_COUNT, PreviewTick, preview_ticks
from hearth.scheduling.targets import ScheduleTarget
from hearth.scheduling.triggers import (
    AtTrigger,
    CronTrigger,
    EveryTrigger,
    Trigger,
    check_cron,
    zone,
)
from hearth.store.records import ScheduleRecord, ScheduleRunRecord
from hearth.store.schedules import ScheduleRepository
from hearth.workflows.durations import parse_duration, parse_until
from hearth.workflows.errors import WorkflowServiceError

MIN_EVERY = timedelta(seconds=1)
#: How often `update` re-reads and re-applies a change overtaken by another write (a tick
#: claimed meanwhile) before it gives up and says so.
UPDATE_ATTEMPTS = 10
RETRY_PAUSE_S = 0.01
FIELDS = {
    "name",
    "cron_expression",
    "every",
    "at",
    "timezone",
    "workflow_id",
    "input",
    "active_hours",
    "max_runs",
    "overlap",
    "misfire",
    "misfire_grace_s",
    "enabled",
}
CHANGED_TOPIC = "schedule.changed"


def _now() -> datetime:
    return datetime.now(UTC)


def trigger_of(record: ScheduleRecord) -> Trigger:
    if record.cron_expression:
        return CronTrigger(record.cron_expression, zone(record.timezone))
    if record.every_s is not None:
        return EveryTrigger(timedelta(seconds=record.every_s), record.anchor_at)
    assert record.at is not None
    return AtTrigger(record.at)


def _parse_every(text: Any) -> tuple[str, float]:
    if not isinstance(text, str):
        raise InvalidScheduleError("every", 'expected a duration such as "15m"')
    try:
        interval = parse_duration(text)
    except ValueError as exc:
        raise InvalidScheduleError("every", str(exc)) from None
    if interval < MIN_EVERY:
        raise InvalidScheduleError("every", "must be at least 1s")
    return text, interval.total_seconds()


def _parse_at(text: Any, tz_name: str, now: datetime) -> datetime:
    if not isinstance(text, str):
        raise InvalidScheduleError("at", "expected an ISO time such as 2026-12-01T09:00")
    try:
        at = parse_until(text, zone(tz_name))
    except ValueError as exc:
        raise InvalidScheduleError("at", str(exc)) from None
    if at <= now:
        raise InvalidScheduleError(
            "at", f"{text} ({at.astimezone(zone(tz_name)).isoformat()}) is in the past"
        )
    return at


@dataclass(frozen=True)
class SchedulePage:
    items: list[tuple[ScheduleRecord, ScheduleRunRecord | None]]
    #: Where the next page starts; None on the last page.
    next_cursor: str | None
    #: Schedules matching the filters on every page.
    total: int


class ScheduleService:
    def __init__(
        self,
        repo: ScheduleRepository,
        bus: EventBus,
        targets: Mapping[str, ScheduleTarget],
        default_timezone: str,
    ) -> None:
        self.repo = repo
        self.bus = bus
        self.targets = dict(targets)
        self.default_timezone = default_timezone
        self._update_lock = asyncio.Lock()

    def _changed(self, schedule_id: str) -> None:
        """Wake the scheduler here and, through the bus, on other nodes."""
        self.bus.publish(DomainEvent(CHANGED_TOPIC, {"scheduleId": schedule_id}))

    def _validate(self, record: ScheduleRecord, now: datetime) -> ScheduleRecord:
        """Check every field and compute next_run; raises InvalidScheduleError."""
        if not record.name.strip():
            raise InvalidScheduleError("name", "must not be empty")
        kinds = [
            k
            for k, v in (
                ("cronExpression", record.cron_expression),
                ("every", record.every),
                ("at", record.at),
            )
            if v is not None
        ]
        if len(kinds) != 1:
            raise InvalidScheduleError(
                "cronExpression",
                "give exactly one of cronExpression, every or at"
                + (f" (got {', '.join(kinds)})" if kinds else ""),
            )
        zone(record.timezone)
        if record.active_hours is not None:
            ActiveHours.parse(record.active_hours)
        if record.max_runs is not None and record.max_runs < 1:
            raise InvalidScheduleError("maxRuns", "must be at least 1")
        if record.overlap not in ("skip", "allow"):
            raise InvalidScheduleError("overlap", "must be 'skip' or 'allow'")
        if record.misfire not in ("run_once", "skip"):
            raise InvalidScheduleError("misfire", "must be 'run_once' or 'skip'")
        if record.misfire_grace_s < 0:
            raise InvalidScheduleError("misfireGraceS", "must not be negative")
        target = self.targets.get(record.target)
        if target is None:
            raise InvalidScheduleError("target", f"unknown target {record.target!r}")
        if record.target == "workflow" and not record.workflow_id:
            raise InvalidScheduleError("workflowId", "which workflow should run?")
        try:
            target.check(record.workflow_id, record.input)
        except WorkflowServiceError as exc:
            raise ScheduleTargetError(exc) from None
        next_run = trigger_of(record).next_after(now) if record.enabled else None
        return replace(record, next_run=next_run)

    async def create(
        self, fields: Mapping[str, Any], *, target: str = "workflow"
    ) -> ScheduleRecord:
        unknown = set(fields) - FIELDS
        if unknown:
            raise InvalidScheduleError(sorted(unknown)[0], "unknown field")
        now = _now()
        tz_name = fields.get("timezone") or self.default_timezone
        zone(tz_name)
        cron = fields.get("cron_expression")
        every_text, every_s = (None, None)
        if fields.get("every") is not None:
            every_text, every_s = _parse_every(fields["every"])
        at = _parse_at(fields["at"], tz_name, now) if fields.get("at") is not None else None
        max_runs = fields.get("max_runs")
        if at is not None:
            max_runs = 1
        record = ScheduleRecord(
            id=str(uuid.uuid4()),
            name=str(fields.get("name") or ""),
            target=target,
            workflow_id=fields.get("workflow_id"),
            input=fields.get("input"),
            cron_expression=check_cron(cron) if cron is not None else None,
            every=every_text,
            every_s=every_s,
            at=at,
            anchor_at=now,
            timezone=tz_name,
            active_hours=fields.get("active_hours"),
            max_runs=max_runs,
            run_count=0,
            overlap=fields.get("overlap") or "skip",
            misfire=fields.get("misfire") or "run_once",
            misfire_grace_s=float(
                3600 if fields.get("misfire_grace_s") is None else fields["misfire_grace_s"]
            ),
            enabled=fields.get("enabled", True) is not False,
            state="active" if fields.get("enabled", True) is not False else "paused",
            state_reason=None,
            consecutive_failures=0,
            next_run=None,
            last_execution_id=None,
            created_at=now,
            updated_at=now,
        )
        record = self._validate(record, now)
        await self.repo.insert(record)
        self._changed(record.id)
        return record

    async def get(self, schedule_id: str) -> ScheduleRecord:
        record = await self.repo.get(schedule_id)
        if record is None:
            raise ScheduleNotFoundError(f"no schedule {schedule_id!r}")
        return record

    async def update(self, schedule_id: str, fields: Mapping[str, Any]) -> ScheduleRecord:
        """Apply the given fields (a None value clears activeHours / maxRuns).

        Only the columns whose value changes are written, and only if the row is still the
        version that was read: the scheduler claims ticks concurrently (run count, last
        execution, failures, state), and writing back a stale copy would undo a claim (a
        `maxRuns` schedule would then run again). When overtaken, the change is checked and
        applied again on the row as it is now.
        """
        unknown = set(fields) - FIELDS
        if unknown:
            raise InvalidScheduleError(sorted(unknown)[0], "unknown field")
        # Updates on this node take turns, so they overtake each other only across nodes.
        async with self._update_lock:
            return await self._update(schedule_id, fields)

    async def _update(self, schedule_id: str, fields: Mapping[str, Any]) -> ScheduleRecord:
        for attempt in range(UPDATE_ATTEMPTS):
            if attempt:
                # Overtaken by another node's write: let it finish (jittered, so two nodes
                # updating the same schedule do not collide again in step).
                await asyncio.sleep(random.uniform(0, RETRY_PAUSE_S * attempt))
            current = await self.get(schedule_id)
            now = _now()
            updated = self._updated(current, fields, now)
            changes = {
                key: value
                for key, value in updated.__dict__.items()
                if key not in ("updated_at", "version") and getattr(current, key) != value
            }
            if not changes:
                return current
            changes["updated_at"] = now
            if await self.repo.change(schedule_id, current.version, changes):
                self._changed(schedule_id)
                return replace(updated, updated_at=now, version=current.version + 1)
            # Overtaken (or deleted: the next `get` says so): check it again on the new row.
        raise ScheduleConflictError(
            f"schedule {schedule_id!r} kept changing while this update was applied (ticks "
            f"claimed or updates from other gateway nodes); nothing was changed after "
            f"{UPDATE_ATTEMPTS} attempts, try again"
        )

    def _updated(
        self, current: ScheduleRecord, fields: Mapping[str, Any], now: datetime
    ) -> ScheduleRecord:
        """`current` with `fields` applied, validated, with its state and next run.

        `next_run` is planned again only when the trigger, the zone or the enabled state
        changes: renaming a schedule (or sending values it already has) must neither move nor
        drop a tick that is due.
        """
        changes: dict[str, Any] = {}
        tz_name = fields.get("timezone") or current.timezone
        if fields.get("timezone") is not None:
            zone(tz_name)
            changes["timezone"] = tz_name
        changes.update(self._trigger_changes(current, fields, tz_name, now))
        for key in ("name", "workflow_id", "overlap", "misfire"):
            if fields.get(key) is not None:
                changes[key] = fields[key]
        if fields.get("misfire_grace_s") is not None:
            changes["misfire_grace_s"] = float(fields["misfire_grace_s"])
        for key in ("active_hours", "max_runs", "input"):
            if key in fields:
                changes[key] = fields[key]
        if fields.get("enabled") is not None:
            changes["enabled"] = bool(fields["enabled"])
        updated = replace(current, **changes)
        resumed = updated.enabled and not current.enabled
        if updated.enabled:
            if updated.max_runs is not None and updated.run_count >= updated.max_runs:
                raise InvalidScheduleError(
                    "enabled",
                    f"this schedule already ran {updated.run_count} of maxRuns "
                    f"{updated.max_runs} times; raise maxRuns to enable it again",
                )
            updated = replace(
                updated,
                state="active",
                state_reason=None,
                consecutive_failures=0 if resumed else updated.consecutive_failures,
            )
        else:
            updated = replace(
                updated,
                state="paused" if current.state in ("active", "paused") else current.state,
            )
        planned = self._validate(updated, now)
        replanned = resumed or any(
            getattr(updated, key) != getattr(current, key)
            for key in ("cron_expression", "every_s", "at", "anchor_at", "timezone")
        )
        if not updated.enabled:
            return replace(updated, next_run=None)
        if not replanned:
            return updated
        if planned.next_run is None:
            raise InvalidScheduleError(
                "at", "its time has passed, so it would never fire; give a new `at`"
            )
        return planned

    @staticmethod
    def _trigger_changes(
        current: ScheduleRecord, fields: Mapping[str, Any], tz_name: str, now: datetime
    ) -> dict[str, Any]:
        """The columns a new cron/every/at sets (none when it is the trigger already set)."""
        given = {"cron_expression", "every", "at"} & {
            key for key, value in fields.items() if value is not None
        }
        if not given:
            return {}
        if len(given) > 1:
            raise InvalidScheduleError(
                "cronExpression", "give exactly one of cronExpression, every or at"
            )
        changes: dict[str, Any] = dict(cron_expression=None, every=None, every_s=None, at=None)
        if "cron_expression" in given:
            changes["cron_expression"] = check_cron(fields["cron_expression"])
        elif "every" in given:
            changes["every"], changes["every_s"] = _parse_every(fields["every"])
        else:
            changes["at"] = _parse_at(fields["at"], tz_name, now)
        same = all(
            changes[key] == getattr(current, key) for key in ("cron_expression", "every_s", "at")
        )
        if same:
            # The trigger it already has (heartbeat.configure restates its interval): keep
            # the anchor, so the ticks stay where they are; only the spelling may change.
            return {"every": changes["every"]} if changes["every"] is not None else {}
        changes["anchor_at"] = now
        if changes["at"] is not None:
            changes["max_runs"] = 1
            changes["run_count"] = 0
        return changes

    def preview(
        self,
        *,
        cron_expression: str | None = None,
        every: str | None = None,
        at: str | None = None,
        timezone: str | None = None,
        active_hours: Mapping[str, Any] | None = None,
        start: str | None = None,
        count: int = 10,
    ) -> tuple[str, list[PreviewTick]]:
        """The zone and the first `count` ticks of a schedule with these fields, created at
        `start` (default now), as the scheduler would plan them. Nothing is saved."""
        if not 1 <= count <= MAX_COUNT:
            raise InvalidScheduleError("count", f"must be 1 to {MAX_COUNT} (got {count})")
        tz_name = timezone or self.default_timezone
        tz = zone(tz_name)
        moment = _now()
        if start is not None:
            try:
                moment = parse_until(start, tz)
            except ValueError as exc:
                raise InvalidScheduleError("from", str(exc)) from None
        given = [
            name
            for name, value in (("cronExpression", cron_expression), ("every", every), ("at", at))
            if value is not None
        ]
        if len(given) != 1:
            raise InvalidScheduleError(
                "cronExpression",
                "give exactly one of cronExpression, every or at"
                + (f" (got {', '.join(given)})" if given else ""),
            )
        trigger: Trigger
        if cron_expression is not None:
            trigger = CronTrigger(check_cron(cron_expression), tz)
        elif every is not None:
            # A new schedule is anchored at its creation: here, at `start`.
            trigger = EveryTrigger(timedelta(seconds=_parse_every(every)[1]), moment)
        else:
            assert at is not None
            try:
                trigger = AtTrigger(parse_until(at, tz))
            except ValueError as exc:
                raise InvalidScheduleError("at", str(exc)) from None
        hours = ActiveHours.parse(dict(active_hours)) if active_hours is not None else None
        return tz_name, preview_ticks(trigger, tz, hours, moment, count)

    async def delete(self, schedule_id: str) -> None:
        if not await self.repo.delete(schedule_id):
            raise ScheduleNotFoundError(f"no schedule {schedule_id!r}")
        self._changed(schedule_id)

    async def overview(
        self,
        limit: int,
        cursor: str | None = None,
        *,
        match: str | None = None,
        failing: bool = False,
    ) -> SchedulePage:
        """One page of schedules with their last runs, oldest first.

        Pages, not everything at once: a listing of every schedule grew with the table (one
        reply of 100 000 schedules is tens of megabytes to build, and every reply's peak stayed
        in the process's memory; issue 18).
        """
        rows, total = await self.repo.page(
            limit + 1, after=decode_cursor(cursor), match=match, failing=failing
        )
        records, next_cursor = split_page(rows, limit, lambda r: (r.created_at, r.id))
        last = await self.repo.last_runs([r.id for r in records])
        return SchedulePage([(r, last.get(r.id)) for r in records], next_cursor, total)

    async def runs(self, schedule_id: str, limit: int) -> list[ScheduleRunRecord]:
        await self.get(schedule_id)
        return await self.repo.runs(schedule_id, limit)
