"""heartbeat.* requests."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from hearth.gateway.dispatch import HandlerContext, handles
from hearth.heartbeat.runner import Check, RunOutcome
from hearth.protocol.messages.heartbeat import (
    HeartbeatAlertInfo,
    HeartbeatAlertList,
    HeartbeatAlertListResult,
    HeartbeatCheck,
    HeartbeatConfigure,
    HeartbeatConfigured,
    HeartbeatLastRun,
    HeartbeatRun,
    HeartbeatRunResult,
    HeartbeatStatus,
    HeartbeatStatusResult,
)
from hearth.protocol.messages.schedules import ActiveHoursSpec
from hearth.store.records import HeartbeatRunRecord

DEFAULT_ALERT_LIMIT = 50


def _check(check: Check | dict[str, Any]) -> HeartbeatCheck:
    if isinstance(check, dict):
        check = Check.from_json(check)
    return HeartbeatCheck(
        description=check.description, action_needed=check.action_needed, details=check.details
    )


def run_result(message_id: str, outcome: RunOutcome) -> HeartbeatRunResult:
    return HeartbeatRunResult(
        id=message_id,
        status=outcome.status,
        reason=outcome.reason,
        alerted=outcome.alerted,
        checks=[_check(c) for c in outcome.checks],
        run_id=outcome.run_id,
        alert_id=outcome.alert_id,
        deferred=outcome.deferred,
    )


def _last_run(run: HeartbeatRunRecord, tz: ZoneInfo) -> HeartbeatLastRun:
    return HeartbeatLastRun(
        run_id=run.id,
        trigger=run.trigger,
        status=run.status,
        reason=run.reason,
        started_at=run.started_at.astimezone(tz),
        finished_at=run.finished_at.astimezone(tz) if run.finished_at else None,
        alerted=run.alerted,
    )


@handles(HeartbeatConfigure)
async def configure(message: HeartbeatConfigure, ctx: HandlerContext) -> HeartbeatConfigured:
    fields: dict[str, Any] = {}
    for name in message.model_fields_set - {"type", "id"}:
        value = getattr(message, name)
        fields[name] = value.to_wire() if isinstance(value, ActiveHoursSpec) else value
    record = await ctx.state.heartbeat.configure(fields)
    tz = ZoneInfo(record.timezone)
    return HeartbeatConfigured(
        id=message.id,
        schedule_id=record.id,
        next_run=record.next_run.astimezone(tz) if record.next_run else None,
    )


@handles(HeartbeatRun)
async def run(message: HeartbeatRun, ctx: HandlerContext) -> HeartbeatRunResult:
    return run_result(message.id, await ctx.state.heartbeat.run_now())


@handles(HeartbeatStatus)
async def status(message: HeartbeatStatus, ctx: HandlerContext) -> HeartbeatStatusResult:
    current = await ctx.state.heartbeat.status()
    tz = ZoneInfo(current.timezone)
    return HeartbeatStatusResult(
        id=message.id,
        enabled=current.enabled,
        heartbeat_path=str(current.path),
        interval=current.interval.total_seconds() / 60,
        timezone=current.timezone,
        active_hours=ActiveHoursSpec.model_validate(current.active_hours)
        if current.active_hours
        else None,
        next_run=current.next_run.astimezone(tz) if current.next_run else None,
        last_run=_last_run(current.last_run, tz) if current.last_run else None,
        configured=current.configured,
        schedule_id=current.schedule_id,
        consecutive_errors=current.consecutive_errors,
    )


@handles(HeartbeatAlertList)
async def alerts(message: HeartbeatAlertList, ctx: HandlerContext) -> HeartbeatAlertListResult:
    found = await ctx.state.heartbeat.alerts(message.limit or DEFAULT_ALERT_LIMIT)
    return HeartbeatAlertListResult(
        id=message.id,
        alerts=[
            HeartbeatAlertInfo(
                alert_id=a.id,
                timestamp=a.created_at,
                kind=a.kind,
                checks=[_check(c) for c in a.checks],
                message=a.message,
            )
            for a in found
        ],
    )
