"""Plain records read from the workflow tables (frozen: a snapshot, never a live row)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class ExecutionRecord:
    id: str
    workflow_id: str
    content_hash: str
    status: str
    triggered_by: str
    input: dict[str, Any]
    current_step_id: str | None
    visit_seq: int
    attempt: int
    step_count: int
    waiting_for: str | None
    wake_at: datetime | None
    error: str | None
    cancel_requested: bool
    scheduled_for: datetime | None
    owner_node: str | None
    lease_expires_at: datetime | None
    started_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    #: The earliest time the current step may run (again): retry or crash backoff.
    next_attempt_at: datetime | None = None
    #: Consecutive crashes of the runner at step run `crash_seq`.
    crash_count: int = 0
    crash_seq: int | None = None


@dataclass(frozen=True)
class StepRunRecord:
    execution_id: str
    seq: int
    step_id: str
    attempt: int
    status: str
    output: Any
    error: str | None
    started_at: datetime
    finished_at: datetime
    #: The position the execution moves to after this row (see `tables.step_runs`).
    next_step_id: str | None = None
    next_visit_seq: int | None = None
    next_attempt: int | None = None


@dataclass(frozen=True)
class ApprovalRecord:
    id: str
    kind: str
    status: str
    execution_id: str | None
    step_id: str | None
    visit_seq: int | None
    session_id: str | None
    tool_call_id: str | None
    tool_name: str | None
    title: str
    args: Any
    risk: str | None
    requested_at: datetime
    expires_at: datetime | None
    resolved_at: datetime | None
    resolved_by: str | None
    comment: str | None
    answered_client: str | None = None
    answered_channel: str | None = None
    answered_user: str | None = None
    answered_address: str | None = None


@dataclass(frozen=True)
class ScheduleRecord:
    id: str
    name: str
    target: str
    workflow_id: str | None
    input: dict[str, Any] | None
    cron_expression: str | None
    every: str | None
    every_s: float | None
    at: datetime | None
    anchor_at: datetime
    timezone: str
    active_hours: dict[str, Any] | None
    max_runs: int | None
    run_count: int
    overlap: str
    misfire: str
    misfire_grace_s: float
    enabled: bool
    state: str
    state_reason: str | None
    consecutive_failures: int
    next_run: datetime | None
    last_execution_id: str | None
    created_at: datetime
    updated_at: datetime
    version: int = 0  # bumped by every write (see store/tables.py)


@dataclass(frozen=True)
class ScheduleRunRecord:
    id: str
    schedule_id: str
    scheduled_for: datetime
    fired_at: datetime
    status: str
    reason: str | None
    execution_id: str | None
    missed_count: int | None


@dataclass(frozen=True)
class SessionRecord:
    id: str
    session_key: str
    title: str | None
    model: str
    agent_id: str | None
    approved_tools: list[str]
    message_count: int
    active_request_id: str | None
    active_since: datetime | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class HeartbeatRunRecord:
    id: str
    schedule_id: str | None
    trigger: str
    status: str
    reason: str | None
    heartbeat_path: str
    model: str | None
    open_items: int
    deferred: int
    checks: list[dict[str, Any]]
    alerted: bool
    alert_id: str | None
    input_tokens: int
    output_tokens: int
    scheduled_for: datetime | None
    started_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True)
class HeartbeatAlertRecord:
    id: str
    run_id: str
    kind: str
    status: str
    signature: str
    checks: list[dict[str, Any]]
    message: str | None
    created_at: datetime
