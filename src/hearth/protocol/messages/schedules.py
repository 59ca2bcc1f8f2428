"""Schedule messages. The original `schedule.create` shape is kept; new fields are optional.

Field formats (cron syntax, zone names, HH:MM) are checked by the gateway and reported as
INVALID_SCHEDULE naming the field, so the schema here stays permissive about their content.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import Field

from hearth.protocol.base import (
    ClientMessage,
    Event,
    NextCursor,
    PageCursor,
    Reply,
    WireModel,
)

RunStatus = Literal["running", "ok", "failed", "skipped", "missed"]
ScheduleState = Literal["active", "paused", "completed", "disabled"]


class ActiveHoursSpec(WireModel):
    start: str = Field(description='"HH:MM" in the schedule\'s zone')
    end: str = Field(description='"HH:MM"; before start means an overnight window')
    days_of_week: list[int] | None = Field(default=None, description="1 = Monday … 7 = Sunday")


class ScheduleCreate(ClientMessage):
    type: Literal["schedule.create"] = "schedule.create"
    name: str = Field(min_length=1, max_length=200)
    cron_expression: str | None = Field(default=None, max_length=200)
    every: str | None = Field(default=None, max_length=50)
    at: str | None = Field(default=None, max_length=50)
    timezone: str | None = Field(default=None, max_length=64)
    workflow_id: str | None = Field(default=None, max_length=128)
    input: dict[str, Any] | None = None
    active_hours: ActiveHoursSpec | None = None
    max_runs: int | None = None
    overlap: Literal["skip", "allow"] | None = None
    misfire: Literal["run_once", "skip"] | None = None
    misfire_grace_s: float | None = None
    enabled: bool | None = None


class ScheduleUpdate(ClientMessage):
    """Only the fields present change; `activeHours: null` and `maxRuns: null` clear them."""

    type: Literal["schedule.update"] = "schedule.update"
    schedule_id: str = Field(min_length=1, max_length=64)
    name: str | None = Field(default=None, min_length=1, max_length=200)
    enabled: bool | None = None
    cron_expression: str | None = Field(default=None, max_length=200)
    every: str | None = Field(default=None, max_length=50)
    at: str | None = Field(default=None, max_length=50)
    timezone: str | None = Field(default=None, max_length=64)
    workflow_id: str | None = Field(default=None, max_length=128)
    active_hours: ActiveHoursSpec | None = None
    max_runs: int | None = None
    input: dict[str, Any] | None = None
    overlap: Literal["skip", "allow"] | None = None
    misfire: Literal["run_once", "skip"] | None = None
    misfire_grace_s: float | None = None


class ScheduleDelete(ClientMessage):
    type: Literal["schedule.delete"] = "schedule.delete"
    schedule_id: str = Field(min_length=1, max_length=64)


class ScheduleList(ClientMessage):
    """One page of schedules, oldest first; follow `nextCursor` for the rest."""

    type: Literal["schedule.list"] = "schedule.list"
    limit: int = Field(default=200, ge=1, le=1000, description="Schedules per page.")
    cursor: PageCursor = None
    match: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="Only schedules with this id, this name, or an id starting with it.",
    )
    failing: bool | None = Field(
        default=None,
        description="Only schedules whose runs are failing or that failures disabled.",
    )


class ScheduleRuns(ClientMessage):
    type: Literal["schedule.runs"] = "schedule.runs"
    schedule_id: str = Field(min_length=1, max_length=64)
    limit: int = Field(default=50, ge=1, le=1000)


class ScheduleTrigger(ClientMessage):
    type: Literal["schedule.trigger"] = "schedule.trigger"
    schedule_id: str = Field(min_length=1, max_length=64)


class SchedulePreview(ClientMessage):
    """The ticks a schedule with these fields would fire; nothing is saved."""

    type: Literal["schedule.preview"] = "schedule.preview"
    cron_expression: str | None = Field(default=None, max_length=200)
    every: str | None = Field(default=None, max_length=50)
    at: str | None = Field(default=None, max_length=50)
    timezone: str | None = Field(default=None, max_length=64)
    active_hours: ActiveHoursSpec | None = None
    from_: str | None = Field(
        default=None,
        alias="from",
        max_length=50,
        description="ISO date-time to start after (naive: in the zone); default now",
    )
    count: int = Field(default=10, description="how many ticks, 1 to 100")


class PreviewTick(WireModel):
    at: datetime = Field(description="the tick in UTC")
    local: datetime = Field(description="the same moment in the schedule's zone")
    skipped: Literal["active_hours"] | None = Field(
        default=None, description="present when the active hours would skip this tick"
    )


class LastRun(WireModel):
    scheduled_for: datetime
    status: RunStatus


class ScheduleInfo(WireModel):
    id: str
    name: str
    target: Literal["workflow", "heartbeat"] = "workflow"
    cron_expression: str | None = None
    every: str | None = None
    at: datetime | None = None
    timezone: str
    enabled: bool
    state: ScheduleState
    state_reason: str | None = None
    next_run: datetime | None = None
    #: With active hours: the first tick that will fire (ticks before it are skipped).
    next_active_run: datetime | None = None
    last_run: LastRun | None = None
    run_count: int
    max_runs: int | None = None
    workflow_id: str | None = None
    input: dict[str, Any] | None = None
    active_hours: ActiveHoursSpec | None = None
    overlap: Literal["skip", "allow"]
    misfire: Literal["run_once", "skip"]
    misfire_grace_s: float
    consecutive_failures: int = 0


class ScheduleRunInfo(WireModel):
    run_id: str
    scheduled_for: datetime
    fired_at: datetime
    status: RunStatus
    reason: str | None = None
    execution_id: str | None = None
    missed_count: int | None = None


class ScheduleCreated(Reply):
    type: Literal["schedule.created"] = "schedule.created"
    schedule_id: str
    next_run: datetime | None = None


class ScheduleUpdated(Reply):
    type: Literal["schedule.updated"] = "schedule.updated"
    schedule_id: str
    next_run: datetime | None = None


class ScheduleDeleted(Reply):
    type: Literal["schedule.deleted"] = "schedule.deleted"
    schedule_id: str


class ScheduleListResult(Reply):
    type: Literal["schedule.list.result"] = "schedule.list.result"
    schedules: list[ScheduleInfo]
    next_cursor: NextCursor = None
    total: int = Field(description="Schedules matching the filters, on every page.")


class ScheduleRunsResult(Reply):
    type: Literal["schedule.runs.result"] = "schedule.runs.result"
    schedule_id: str
    runs: list[ScheduleRunInfo]


class ScheduleTriggered(Reply):
    type: Literal["schedule.triggered"] = "schedule.triggered"
    schedule_id: str
    run_id: str
    execution_id: str | None = None


class SchedulePreviewResult(Reply):
    type: Literal["schedule.preview.result"] = "schedule.preview.result"
    timezone: str
    ticks: list[PreviewTick]


class ScheduleRun(Event):
    """A tick's outcome: fired (running, then ok/failed), skipped (and why) or missed."""

    topic: ClassVar[str | None] = "schedule.run"
    type: Literal["schedule.run"] = "schedule.run"
    schedule_id: str
    run_id: str
    scheduled_for: datetime
    status: RunStatus
    reason: str | None = None
    execution_id: str | None = None
    missed_count: int | None = None


class ScheduleDisabled(Event):
    topic: ClassVar[str | None] = "schedule.disabled"
    type: Literal["schedule.disabled"] = "schedule.disabled"
    schedule_id: str
    reason: str


CLIENT_MESSAGES = (
    ScheduleCreate,
    ScheduleUpdate,
    ScheduleDelete,
    ScheduleList,
    ScheduleRuns,
    ScheduleTrigger,
    SchedulePreview,
)
SERVER_MESSAGES = (
    ScheduleCreated,
    ScheduleUpdated,
    ScheduleDeleted,
    ScheduleListResult,
    ScheduleRunsResult,
    ScheduleTriggered,
    SchedulePreviewResult,
    ScheduleRun,
    ScheduleDisabled,
)
