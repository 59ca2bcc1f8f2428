"""Heartbeat messages. The original `heartbeat.configure` shape is kept; new fields are optional.

`interval` is minutes as a number (the original form) or a duration string such as "30m".
Settings a `heartbeat.configure` leaves out come from the checklist's front matter, then from
the defaults, so the published schema shows no defaults for them.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from pydantic import Field

from hearth.protocol.base import ClientMessage, Event, Reply, WireModel
from hearth.protocol.messages.schedules import ActiveHoursSpec

RunStatus = Literal["ok", "skipped", "error"]


class HeartbeatCheck(WireModel):
    description: str
    action_needed: bool
    details: str | None = None


class HeartbeatConfigure(ClientMessage):
    type: Literal["heartbeat.configure"] = "heartbeat.configure"
    heartbeat_path: str | None = Field(
        default=None,
        max_length=4096,
        description="The checklist; relative to the data directory. Default HEARTBEAT.md there.",
    )
    interval: float | str | None = Field(
        default=None,
        description='Minutes (30) or a duration ("30m"). Default: the file\'s, else 30.',
    )
    timezone: str | None = Field(default=None, max_length=64)
    active_hours: ActiveHoursSpec | None = Field(
        default=None, description="Explicit null: no window, whatever the file says."
    )
    enabled: bool | None = Field(default=None, description="Default: the file's, else true.")


class HeartbeatRun(ClientMessage):
    """Run now, inside or outside active hours; the reply comes when the run has finished."""

    type: Literal["heartbeat.run"] = "heartbeat.run"


class HeartbeatStatus(ClientMessage):
    type: Literal["heartbeat.status"] = "heartbeat.status"


class HeartbeatAlertList(ClientMessage):
    type: Literal["heartbeat.alert.list"] = "heartbeat.alert.list"
    limit: int | None = Field(default=None, ge=1, le=1000, description="Default 50.")


# -- replies --------------------------------------------------------------------------------


class HeartbeatConfigured(Reply):
    type: Literal["heartbeat.configured"] = "heartbeat.configured"
    schedule_id: str
    next_run: datetime | None = None


class HeartbeatRunResult(Reply):
    type: Literal["heartbeat.run.result"] = "heartbeat.run.result"
    status: RunStatus
    reason: str | None = None
    alerted: bool
    checks: list[HeartbeatCheck]
    run_id: str | None = None
    alert_id: str | None = None
    deferred: int | None = Field(default=None, description="Times the run waited for a chat.")


class HeartbeatLastRun(WireModel):
    run_id: str
    trigger: Literal["schedule", "manual"]
    status: Literal["running", "ok", "skipped", "error"]
    reason: str | None = None
    started_at: datetime
    finished_at: datetime | None = None
    alerted: bool = False


class HeartbeatStatusResult(Reply):
    type: Literal["heartbeat.status.result"] = "heartbeat.status.result"
    enabled: bool
    heartbeat_path: str
    interval: float = Field(description="Minutes.")
    timezone: str
    active_hours: ActiveHoursSpec | None = None
    next_run: datetime | None = None
    last_run: HeartbeatLastRun | None = None
    configured: bool = True
    schedule_id: str | None = None
    consecutive_errors: int = 0


class HeartbeatAlertInfo(WireModel):
    alert_id: str
    timestamp: datetime
    kind: Literal["checks", "failing"]
    checks: list[HeartbeatCheck]
    message: str | None = None


class HeartbeatAlertListResult(Reply):
    type: Literal["heartbeat.alert.list.result"] = "heartbeat.alert.list.result"
    alerts: list[HeartbeatAlertInfo]


# -- events ---------------------------------------------------------------------------------


class HeartbeatAlert(Event):
    """Something on the checklist needs the user (`kind: checks`), or the heartbeat itself
    keeps failing (`kind: failing`, with `message`). Sent to every connection. `checks` may
    be empty when the alert was too large to relay between nodes: `heartbeat.alert.list` has
    it whole."""

    topic: ClassVar[str | None] = "heartbeat.alert"
    type: Literal["heartbeat.alert"] = "heartbeat.alert"
    checks: list[HeartbeatCheck] = Field(default_factory=list)
    timestamp: datetime
    alert_id: str | None = None
    kind: Literal["checks", "failing"] | None = None
    message: str | None = None


CLIENT_MESSAGES = (HeartbeatConfigure, HeartbeatRun, HeartbeatStatus, HeartbeatAlertList)
SERVER_MESSAGES = (
    HeartbeatConfigured,
    HeartbeatRunResult,
    HeartbeatStatusResult,
    HeartbeatAlertListResult,
    HeartbeatAlert,
)
