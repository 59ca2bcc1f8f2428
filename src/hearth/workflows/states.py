"""What an execution's state is made of, and the pure functions that move it.

Shared by the runner, the recovery pass and the request API: statuses, the engine's settings,
and the records and column values each transition writes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from hearth.store.records import ExecutionRecord, StepRunRecord

_R = TypeVar("_R", ExecutionRecord, StepRunRecord)

COMPLETED, FAILED, CANCELLED = "completed", "failed", "cancelled"
TERMINAL = frozenset({COMPLETED, FAILED, CANCELLED})
SUCCESS, FAILURE, SKIPPED = "success", "failure", "skipped"
END = "end"
#: No wait between attempts (retry or crash backoff) is longer than this.
MAX_BACKOFF = timedelta(minutes=5)
INTERRUPTED = "interrupted"


@dataclass(frozen=True)
class EngineConfig:
    node_id: str
    max_step_runs: int = 1000
    lease: timedelta = timedelta(seconds=30)
    recovery_interval_s: float = 5.0
    #: Consecutive crashes of the runner at one step run before the execution fails.
    crash_limit: int = 3
    #: The wait after the first crash; doubled after each further one (at most `MAX_BACKOFF`).
    crash_backoff: timedelta = timedelta(seconds=1)
    #: SQLite means one gateway process: running executions left by a crash are ours at once.
    exclusive: bool = False
    #: The zone a wait's `until` without an offset is read in (the configured `timezone`).
    timezone: str = "UTC"

    def lease_until(self, now: datetime) -> datetime:
        return now + self.lease


class LostOwnership(Exception):
    """A fenced write found the execution no longer ours (cancelled, or taken over)."""


def now_utc() -> datetime:
    return datetime.now(UTC)


def json_safe(value: Any) -> Any:
    """Tool and model outputs go into a JSON column and onto the wire."""
    if value is None or type(value) in (str, int, bool):
        return value
    return json.loads(json.dumps(value, default=str))


def final_values(
    status: str, error: str | None, now: datetime, step_count: int | None = None
) -> dict[str, Any]:
    """The columns an execution ends with."""
    values: dict[str, Any] = {
        "status": status,
        "error": error,
        "owner_node": None,
        "lease_expires_at": None,
        "completed_at": now,
        "updated_at": now,
        "waiting_for": None,
    }
    if step_count is not None:
        values["step_count"] = step_count
    return values


def with_changes(record: _R, **changes: Any) -> _R:
    """`dataclasses.replace` for the runner's hot path, at a fraction of its cost.

    The records are plain frozen dataclasses (no `__post_init__`, no slots), so a copy of the
    instance dict with the changes applied is exactly what `replace` would build.
    """
    copy = object.__new__(type(record))
    copy.__dict__.update(record.__dict__)
    copy.__dict__.update(changes)
    return copy


def position(record: ExecutionRecord) -> dict[str, Any]:
    """The row's position columns, written with every row update so that the journal only
    overrides them for steps taken since (see `ExecutionRepository.advance`).

    The wake-up time belongs to the position: on SQLite a step only appends its journal row,
    so the row may still hold an earlier wait's `wake_at`; writing the runner's own value
    (None once it moved on) keeps that stale time from being read back as the next wait's.
    """
    return {
        "current_step_id": record.current_step_id,
        "visit_seq": record.visit_seq,
        "attempt": record.attempt,
        "step_count": record.step_count,
        "wake_at": record.wake_at,
        "next_attempt_at": record.next_attempt_at,
    }


def finished(
    record: ExecutionRecord, status: str, error: str | None, now: datetime, step_count: int
) -> ExecutionRecord:
    """The record as `StepRunner.finalise` leaves it, for announcing without reading it back."""
    return with_changes(
        record,
        status=status,
        error=error,
        owner_node=None,
        lease_expires_at=None,
        completed_at=now,
        updated_at=now,
        waiting_for=None,
        step_count=step_count,
    )
