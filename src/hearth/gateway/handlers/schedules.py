"""schedule.* requests."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from hearth.gateway.dispatch import HandlerContext, handles
from hearth.protocol.messages.schedules import (
    ActiveHoursSpec,
    LastRun,
    PreviewTick,
    ScheduleCreate,
    ScheduleCreated,
    ScheduleDelete,
    ScheduleDeleted,
    ScheduleInfo,
    ScheduleList,
    ScheduleListResult,
    SchedulePreview,
    SchedulePreviewResult,
    ScheduleRunInfo,
    ScheduleRuns,
    ScheduleRunsResult,
    ScheduleTrigger,
    ScheduleTriggered,
    ScheduleUpdate,
    ScheduleUpdated,
)
from hearth.scheduling.active_hours import ActiveHours
from hearth.scheduling.service import trigger_of
from hearth.store.records import ScheduleRecord, ScheduleRunRecord

_FIELD_NAMES = {
    "cron_expression": "cronExpression",
    "workflow_id": "workflowId",
    "active_hours": "activeHours",
    "max_runs": "maxRuns",
    "misfire_grace_s": "misfireGraceS",
}


def _fields(message: ScheduleCreate | ScheduleUpdate, skip: set[str]) -> dict[str, Any]:
    """The fields the client actually sent (so an explicit null can clear a value)."""
    fields: dict[str, Any] = {}
    for name in message.model_fields_set - skip - {"type", "id"}:
        value = getattr(message, name)
        if isinstance(value, ActiveHoursSpec):
            value = value.to_wire()
        fields[name] = value
    return fields


def _next_active_run(record: ScheduleRecord, tz: ZoneInfo) -> datetime | None:
    """The first tick inside the active hours, when they would skip the next one."""
    if record.next_run is None or not record.active_hours:
        return None
    hours = ActiveHours.parse(record.active_hours)
    found = hours.next_inside(record.next_run, trigger_of(record).next_after, tz)
    return found.astimezone(tz) if found is not None else None


def schedule_info(record: ScheduleRecord, last: ScheduleRunRecord | None) -> ScheduleInfo:
    tz = ZoneInfo(record.timezone)
    return ScheduleInfo(
        id=record.id,
        name=record.name,
        target=record.target,
        cron_expression=record.cron_expression,
        every=record.every,
        at=record.at.astimezone(tz) if record.at else None,
        timezone=record.timezone,
        enabled=record.enabled,
        state=record.state,
        state_reason=record.state_reason,
        next_run=record.next_run.astimezone(tz) if record.next_run else None,
        next_active_run=_next_active_run(record, tz),
        last_run=LastRun(
            scheduled_for=last.scheduled_for.astimezone(tz),
            status=last.status,
        )
        if last
        else None,
        run_count=record.run_count,
        max_runs=record.max_runs,
        workflow_id=record.workflow_id,
        input=record.input,
        active_hours=ActiveHoursSpec.model_validate(record.active_hours)
        if record.active_hours
        else None,
        overlap=record.overlap,
        misfire=record.misfire,
        misfire_grace_s=record.misfire_grace_s,
        consecutive_failures=record.consecutive_failures,
    )


def run_info(run: ScheduleRunRecord, tz: ZoneInfo) -> ScheduleRunInfo:
    return ScheduleRunInfo(
        run_id=run.id,
        scheduled_for=run.scheduled_for.astimezone(tz),
        fired_at=run.fired_at.astimezone(tz),
        status=run.status,
        reason=run.reason,
        execution_id=run.execution_id,
        missed_count=run.missed_count,
    )


@handles(ScheduleCreate)
async def create(message: ScheduleCreate, ctx: HandlerContext) -> ScheduleCreated:
    record = await ctx.state.schedules.create(_fields(message, set()))
    tz = ZoneInfo(record.timezone)
    return ScheduleCreated(
        id=message.id,
        schedule_id=record.id,
        next_run=record.next_run.astimezone(tz) if record.next_run else None,
    )


@handles(ScheduleUpdate)
async def update(message: ScheduleUpdate, ctx: HandlerContext) -> ScheduleUpdated:
    record = await ctx.state.schedules.update(
        message.schedule_id, _fields(message, {"schedule_id"})
    )
    tz = ZoneInfo(record.timezone)
    return ScheduleUpdated(
        id=message.id,
        schedule_id=record.id,
        next_run=record.next_run.astimezone(tz) if record.next_run else None,
    )


@handles(ScheduleDelete)
async def delete(message: ScheduleDelete, ctx: HandlerContext) -> ScheduleDeleted:
    await ctx.state.schedules.delete(message.schedule_id)
    return ScheduleDeleted(id=message.id, schedule_id=message.schedule_id)


@handles(ScheduleList)
async def list_schedules(message: ScheduleList, ctx: HandlerContext) -> ScheduleListResult:
    page = await ctx.state.schedules.overview(
        message.limit, message.cursor, match=message.match, failing=bool(message.failing)
    )
    return ScheduleListResult(
        id=message.id,
        schedules=[schedule_info(record, last) for record, last in page.items],
        next_cursor=page.next_cursor,
        total=page.total,
    )


@handles(ScheduleRuns)
async def runs(message: ScheduleRuns, ctx: HandlerContext) -> ScheduleRunsResult:
    record = await ctx.state.schedules.get(message.schedule_id)
    history = await ctx.state.schedules.runs(message.schedule_id, message.limit)
    tz = ZoneInfo(record.timezone)
    return ScheduleRunsResult(
        id=message.id, schedule_id=record.id, runs=[run_info(r, tz) for r in history]
    )


@handles(ScheduleTrigger)
async def trigger(message: ScheduleTrigger, ctx: HandlerContext) -> ScheduleTriggered:
    record = await ctx.state.schedules.get(message.schedule_id)
    run = await ctx.state.scheduler.trigger_now(record)
    return ScheduleTriggered(
        id=message.id, schedule_id=record.id, run_id=run.id, execution_id=run.execution_id
    )


@handles(SchedulePreview)
async def preview(message: SchedulePreview, ctx: HandlerContext) -> SchedulePreviewResult:
    tz_name, ticks = ctx.state.schedules.preview(
        cron_expression=message.cron_expression,
        every=message.every,
        at=message.at,
        timezone=message.timezone,
        active_hours=message.active_hours.to_wire() if message.active_hours else None,
        start=message.from_,
        count=message.count,
    )
    return SchedulePreviewResult(
        id=message.id,
        timezone=tz_name,
        ticks=[PreviewTick(at=t.at, local=t.local, skipped=t.skipped) for t in ticks],
    )
