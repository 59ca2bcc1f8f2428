"""The scheduler's store: claiming due ticks and recording their results, on any backend.

The scheduler plans ticks (pure: trigger, active hours, misfire, overlap, maxRuns) and hands the
plan to a `TickStore`; the store decides nothing, it only reads the due rows and writes what was
planned, in as few transactions as its backend allows:

- `SqliteTickStore` (store/schedule_ticks_sqlite.py): on a SQLite file, every due tick of a pass
  is claimed, recorded and its execution created in ONE group commit of the SQLite writer.
- `SqlTickStore` (store/schedule_ticks_sql.py): PostgreSQL (and SQLite without a writer)
  through SQLAlchemy. A pass locks a batch of due rows with `FOR UPDATE SKIP LOCKED`, so nodes
  that pass at the same moment take disjoint batches, and claims, runs and executions of the
  batch are written with one multi-row statement each in one transaction.

On both, a claim is still the conditional UPDATE of `next_run` from the tick that was read, and
the run row is unique per (schedule, tick): each tick fires exactly once across any number of
gateway processes, and a crash at any point leaves either the whole claim or nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

from hearth.store.executions import PinnedSource
from hearth.store.records import ExecutionRecord, ScheduleRecord, ScheduleRunRecord


@dataclass(frozen=True)
class NewExecution:
    """An execution a tick starts, built but not written (the store writes it with the claim)."""

    record: ExecutionRecord
    pin: PinnedSource


class DueSchedule(Protocol):
    """A due schedule as read inside the claiming transaction."""

    @property
    def record(self) -> ScheduleRecord: ...

    def previous_status(self) -> str | None:
        """The status of the schedule's last execution, read in the same transaction (None
        when it has none): whether the previous run still goes decides an overlap."""


@dataclass
class TickWrite:
    """What claiming one tick writes: the claim (`values` on the schedule row, conditional on
    `expected_next` and `expected_version`), the run rows, and the execution it starts."""

    schedule_id: str
    expected_next: datetime
    expected_version: int
    values: dict[str, Any]
    runs: list[ScheduleRunRecord] = field(default_factory=list)
    execution: NewExecution | None = None
    #: Written after the claim (a single tick, where the target starts inside the transaction).
    more: dict[str, Any] = field(default_factory=dict)


W = TypeVar("W", bound=TickWrite)
#: Called for each due row inside the claiming transaction: the ticks to write, or None to
#: leave the row as it is (not ours to fire in this pass).
Decide = Callable[[DueSchedule], W | None]


@dataclass
class ClaimedBatch(Generic[W]):
    """What one claiming pass read and committed."""

    due: int  # rows read (the pass is full when this reaches its limit)
    claimed: list[W]
    #: The earliest `next_run` left, read after the claims in the same transaction.
    earliest: datetime | None
    #: Schedules whose write failed alone (the rest of the pass committed without them).
    failed: list[ScheduleRecord] = field(default_factory=list)


class OneTick(Protocol):
    """A tick whose target starts inside the claiming transaction (`begin` on an async
    connection), as manual runs and targets that cannot be batched do."""

    @property
    def write(self) -> TickWrite: ...

    async def start(self, conn: AsyncConnection) -> None:
        """Create what the tick starts; raise to have it rolled back (`refused` is told)."""

    def refused(self, error: Exception) -> None:
        """`start` raised: re-raise what is not a refusal, else fill in the failed run."""


#: (consecutive failures, enabled, target) of a schedule, read with a finished run.
FailureState = tuple[int, bool, str]
R = TypeVar("R")
#: Given the finished run (as it was) and its schedule's failure state (None when the schedule
#: is gone): the values to write on the schedule, and what to hand back once committed.
Settle = Callable[[ScheduleRunRecord, FailureState | None], tuple[dict[str, Any], R]]


class TickStore(Protocol):
    """The schedules aggregate as the scheduler uses it; see the module docstring."""

    #: Rows one claiming pass reads at most.
    claim_limit: int

    async def claim_due(self, until: datetime, limit: int, decide: Decide[W]) -> ClaimedBatch[W]:
        """Claim due ticks (next_run <= until), at most `limit` rows, in one transaction."""

    async def claim_one(self, tick: OneTick, *, claim: bool = True) -> bool:
        """Claim one tick (or, without `claim`, record a manual run) and start it, in one
        transaction; False when another node or writer got to the row first."""

    def finish_run(
        self, execution_id: str, status: str, reason: str | None, settle: Settle[R]
    ) -> Awaitable[tuple[ScheduleRunRecord, R] | None]:
        """Close the `running` run that started `execution_id`, once; None if already closed.

        Not a coroutine: the write is queued at once and joins others in one commit, so a
        caller that does not need to wait can attach a callback instead of awaiting."""

    async def earliest_next_run(self) -> datetime | None: ...

    async def stale_running_runs(self, limit: int = 100) -> list[tuple[str, str]]:
        """(execution id, execution status) of runs still `running` whose execution ended."""

    async def prune(self, schedule_ids: list[str], before: datetime, keep: int) -> None:
        """Drop each schedule's runs older than `before` and beyond its newest `keep`."""

    async def close(self) -> None:
        """Release connections of its own (the database itself is closed by its owner)."""


__all__ = [
    "ClaimedBatch",
    "Decide",
    "DueSchedule",
    "FailureState",
    "NewExecution",
    "OneTick",
    "Settle",
    "TickStore",
    "TickWrite",
]
