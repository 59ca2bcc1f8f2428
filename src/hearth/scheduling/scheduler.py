"""The scheduler loop: one task, no timer per schedule.

It sleeps until the earliest `next_run` (never longer than `max_sleep_s`, so a clock jump is
noticed) or until a schedule changes, then claims each due schedule with a conditional UPDATE
of `next_run`. Only the node whose UPDATE matched fires that tick, and the run row (unique per
schedule and tick) plus the execution it starts commit in the same transaction: each tick fires
exactly once across any number of gateway processes, and survives a crash at any point.

On a SQLite file (one gateway process) the same claims are made for every due schedule at
once, in ONE transaction of the group-committing writer: a thousand schedules due on the same
second cost one commit, not a thousand, and each tick's execution starts after that commit
rather than behind the commits of all the ticks before it. Results of finished executions are
recorded the same way, many to a commit. PostgreSQL keeps one transaction per tick, because
there several nodes race for the same ticks.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError

from hearth.events import DomainEvent, EventBus
from hearth.ids import time_ordered_id
from hearth.metrics import Metrics
from hearth.scheduling.active_hours import ActiveHours
from hearth.scheduling.planning import TickPlan, plan
from hearth.scheduling.service import CHANGED_TOPIC, trigger_of
from hearth.scheduling.targets import BatchScheduleTarget, ScheduleTarget, Started
from hearth.scheduling.triggers import zone
from hearth.store import Database
from hearth.store.records import ScheduleRecord, ScheduleRunRecord
from hearth.store.schedules import ScheduleRepository, SqliteSchedules
from hearth.workflows.errors import WorkflowServiceError

log = logging.getLogger("hearth.scheduling")

BATCH = 200
#: Ticks claimed per SQLite writer transaction. One transaction for a whole second's worth of
#: due schedules: every tick then starts after one commit instead of waiting behind the
#: commits of the ticks before it.
SQLITE_BATCH = 2000
#: Prune this many schedules' history per writer transaction (each costs a few statements;
#: smaller transactions keep the loop free for the runners in between).
PRUNE_CHUNK = 200
RECONCILE_EVERY_S = 10.0
STUCK_RETRY_S = 1.0
FINAL = frozenset({"completed", "failed", "cancelled"})
#: Executions' status events are queued for the results task. At a thousand ticks a second
#: a burst holds several thousand (start and end of each); dropped ones would only be caught
#: by the slower reconciliation pass.
RESULTS_QUEUE = 100_000


@dataclass(frozen=True)
class SchedulerConfig:
    max_consecutive_failures: int = 10
    history: timedelta = timedelta(days=30)
    history_max: int = 1000
    max_sleep_s: float = 30.0
    misfire_threshold: timedelta = timedelta(seconds=5)
    #: On SQLite, ticks whose outcome is already decided are claimed (run recorded, execution
    #: committed) this long before they are due, and started at their time: the tick then
    #: costs no database work, so it fires on time even when a thousand share one second.
    lookahead: timedelta = timedelta(milliseconds=500)


def _now() -> datetime:
    return datetime.now(UTC)


def _scheduled_result(event: DomainEvent) -> bool:
    """A `workflow.status` event that closes a scheduled run. Only executions a schedule
    started have a run to close, and only their end does (events from older nodes carry no
    triggeredBy: those are checked). Asked at publish time, so the results task is not woken
    for the start and every step of every execution."""
    data = event.data
    return data.get("status") in FINAL and data.get("triggeredBy", "cron") == "cron"


def _run(
    record: ScheduleRecord,
    at: datetime,
    now: datetime,
    status: str,
    reason: str | None,
    execution_id: str | None,
) -> ScheduleRunRecord:
    return ScheduleRunRecord(
        time_ordered_id(), record.id, at, now, status, reason, execution_id, None
    )


@dataclass
class _Tick:
    """What one due schedule does at `now`: the rows to record and the claim to make."""

    fire_at: datetime | None
    runs: list[ScheduleRunRecord]  # a `missed` record, if any (the fired/skipped run is apart)
    #: The tick itself: `skipped` from the start, or `running` / `failed` once it was begun.
    fire_run: ScheduleRunRecord | None
    fire: bool
    values: dict[str, Any]  # the claim's column values
    run_count: int
    finished: bool

    @property
    def all_runs(self) -> list[ScheduleRunRecord]:
        return [*self.runs, *([self.fire_run] if self.fire_run is not None else [])]


@dataclass
class _Claimed:
    """A tick claimed by the SQLite pass, to launch and announce once committed."""

    record: ScheduleRecord
    target: ScheduleTarget
    tick: _Tick
    started: Started | None
    disabled: DomainEvent | None


@dataclass
class _Pass:
    """What one SQLite writer transaction of the scheduler did."""

    due: int
    claimed: list[_Claimed] = field(default_factory=list)
    #: Due schedules whose target cannot be fired inside the writer transaction.
    others: list[ScheduleRecord] = field(default_factory=list)
    earliest: datetime | None = None


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
        self.sql = SqliteSchedules()
        self.bus = bus
        self.targets = dict(targets)
        self._batch_targets: dict[str, BatchScheduleTarget] = {
            kind: target
            for kind, target in self.targets.items()
            if isinstance(target, BatchScheduleTarget)
        }
        self.config = config
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        #: Announcements of ticks claimed ahead, due at their tick.
        self._timers: set[asyncio.TimerHandle] = set()
        self._fired_since_prune: set[str] = set()
        #: A due schedule failed to be handled in this pass. It stays due, so without a pause
        #: the loop would retry it (and log) as fast as it can.
        self._stuck = False
        #: Where tick outcomes and lateness are recorded; the composition root sets it.
        self.metrics: Metrics | None = None
        #: Monotonic time of the last pass that completed (`/readyz` checks it is recent).
        self.last_pass: float | None = None

    async def start(self) -> None:
        changes = self.bus.subscribe(CHANGED_TOPIC)
        finished = self.bus.subscribe(
            "workflow.status", maxsize=RESULTS_QUEUE, accept=_scheduled_result
        )
        self._tasks = [
            asyncio.create_task(self._loop(), name="scheduler"),
            asyncio.create_task(self._watch_changes(changes), name="scheduler-changes"),
            asyncio.create_task(self._watch_executions(finished), name="scheduler-results"),
            asyncio.create_task(self._housekeeping(), name="scheduler-housekeeping"),
        ]

    async def stop(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- the loop ---------------------------------------------------------------------------

    async def _loop(self) -> None:
        while True:
            self._wake.clear()
            self._stuck = False
            ahead = timedelta(0)
            started = _now()
            try:
                if self.db.writer is not None:
                    ahead = self.config.lookahead
                    _, earliest = await self._run_due_sqlite(None, ahead)
                else:
                    await self.run_due()
                    earliest = await self.repo.earliest_next_run()
            except Exception:
                log.exception("scheduler pass failed; retrying in 1 s")
                earliest = _now() + timedelta(seconds=1)
            else:
                self.last_pass = time.monotonic()
            delay = self.config.max_sleep_s
            if earliest is not None:
                # Wake `ahead` of the next tick to claim it early; a tick that was already
                # within reach and is still unclaimed was held back (its overlap is decided
                # at its time), so wake at its time for it.
                wake = earliest - ahead if earliest > started + ahead else earliest
                delay = min(delay, max(0.0, (wake - _now()).total_seconds()))
            if self._stuck:
                delay = max(delay, STUCK_RETRY_S)
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=delay)

    def _could_not_handle(self, record: ScheduleRecord) -> None:
        log.exception("schedule %s (%s) could not be handled", record.id, record.name)
        self._stuck = True

    async def _watch_changes(self, subscription: Any) -> None:
        async for _event in subscription:
            self._wake.set()

    async def run_due(self, now: datetime | None = None) -> int:
        """Handle every schedule due at `now`; returns how many ticks this node claimed."""
        if self.db.writer is not None:
            claimed, _ = await self._run_due_sqlite(now)
            return claimed
        claimed = 0
        while True:
            moment = now or _now()
            due = await self.repo.due(moment, BATCH)
            if not due:
                return claimed
            fired, progress = await self._handle_each(due, now)
            claimed += fired
            if len(due) < BATCH or progress == 0 or now is not None:
                return claimed

    async def _handle_each(
        self, records: list[ScheduleRecord], now: datetime | None
    ) -> tuple[int, int]:
        """`_handle` one by one: (ticks claimed, schedules handled without an error)."""
        claimed = handled = 0
        for record in records:
            try:
                # The real clock per schedule: a long pass must neither plan nor stamp later
                # ticks with the time it started.
                if await self._handle(record, now or _now()):
                    claimed += 1
                handled += 1
            except Exception:
                self._could_not_handle(record)
        return claimed, handled

    def _plan(self, record: ScheduleRecord, now: datetime) -> TickPlan:
        assert record.next_run is not None
        return plan(
            trigger_of(record),
            record.next_run,
            now,
            misfire=record.misfire,
            grace=timedelta(seconds=record.misfire_grace_s),
            on_time=self.config.misfire_threshold,
        )

    @staticmethod
    def _outside_hours(record: ScheduleRecord, at: datetime) -> bool:
        return bool(
            record.active_hours
            and not ActiveHours.parse(record.active_hours).contains(at, zone(record.timezone))
        )

    @staticmethod
    def _tick(
        record: ScheduleRecord, tick: TickPlan, now: datetime, skip_reason: str | None
    ) -> _Tick:
        """The rows and the claim for a planned tick (`skip_reason`: why it does not fire)."""
        runs: list[ScheduleRunRecord] = []
        if tick.missed_count and tick.missed_first is not None:
            runs.append(
                ScheduleRunRecord(
                    id=time_ordered_id(),
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
        fire = tick.fire_at is not None and skip_reason is None
        values: dict[str, Any] = {"next_run": tick.next_run, "updated_at": now}
        run_count = record.run_count + (1 if fire else 0)
        if fire:
            values["run_count"] = run_count
        finished = (record.max_runs is not None and run_count >= record.max_runs) or (
            tick.next_run is None
        )
        if finished:
            values.update(enabled=False, state="completed", next_run=None)
        fire_run: ScheduleRunRecord | None = None
        if tick.fire_at is not None and not fire:
            fire_run = _run(record, tick.fire_at, now, "skipped", skip_reason, None)
        return _Tick(tick.fire_at, runs, fire_run, fire, values, run_count, finished)

    async def _handle(self, record: ScheduleRecord, now: datetime) -> bool:
        assert record.next_run is not None
        target = self.targets[record.target]
        tick = self._plan(record, now)
        skip_reason: str | None = None
        if tick.fire_at is not None:
            if self._outside_hours(record, tick.fire_at):
                skip_reason = "outside_active_hours"
            elif record.overlap == "skip" and await target.busy(record):
                skip_reason = "overlap"
        planned = self._tick(record, tick, now, skip_reason)
        started: Started | None = None
        disabled: DomainEvent | None = None
        async with self.db.begin() as conn:
            if not await self.repo.claim(
                conn, record.id, record.next_run, record.version, planned.values
            ):
                return False
            if planned.fire and planned.fire_at is not None:
                try:
                    async with conn.begin_nested():
                        started = await target.begin(conn, record, planned.fire_at)
                except (WorkflowServiceError, ValueError) as exc:
                    planned.fire_run = _run(record, planned.fire_at, now, "failed", str(exc), None)
                    disabled = await self._count_failure(conn, record, str(exc))
                else:
                    planned.fire_run = _run(
                        record, planned.fire_at, now, "running", None, started.execution_id
                    )
                    if started.execution_id:
                        await self.repo.update_schedule(
                            conn, record.id, {"last_execution_id": started.execution_id}
                        )
            try:
                async with conn.begin_nested():
                    for run in planned.all_runs:
                        await self.repo.insert_run(conn, run)
            except IntegrityError:
                log.warning("tick %s of %s was already recorded", tick.fire_at, record.id)
                raise
        if started is not None:
            target.launch(started)
        self._announce(record, planned, disabled)
        return True

    def _announce(
        self, record: ScheduleRecord, planned: _Tick, disabled: DomainEvent | None
    ) -> None:
        """Publish a committed tick's runs (and a disablement)."""
        self._fired_since_prune.add(record.id)
        for run in planned.all_runs:
            self._publish_run(run)
        if disabled is not None:
            self.bus.publish(disabled)
        if planned.finished:
            log.info(
                "schedule %s (%s) completed after %d runs",
                record.id,
                record.name,
                planned.run_count,
            )

    # -- the SQLite pass --------------------------------------------------------------------

    async def _run_due_sqlite(
        self, now: datetime | None, ahead: timedelta = timedelta(0)
    ) -> tuple[int, datetime | None]:
        """`run_due` on a SQLite file: every due tick claimed, recorded and its execution
        created in ONE writer transaction, then launched and announced after its commit.

        The claim stays a conditional UPDATE, but the due rows (and the previous execution's
        status, for overlap) are read inside that same write transaction, so nothing can move
        between reading and claiming. Returns the ticks claimed and the earliest `next_run`
        left, read in the same transaction when nothing else was written since.
        """
        writer = self.db.writer
        assert writer is not None
        claimed = 0
        while True:
            moment = now or _now()
            done = await writer.run(
                functools.partial(self._pass_sqlite, moment=moment, now=now, ahead=ahead)
            )
            claimed += len(done.claimed)
            loop = asyncio.get_running_loop()
            current: list[_Claimed] = []
            later: dict[datetime, list[_Claimed]] = {}
            for item in done.claimed:
                at = item.tick.fire_at
                # Claimed ahead of the pass's own moment (only the live loop looks ahead).
                if at is not None and at > moment:
                    later.setdefault(at, []).append(item)
                    continue
                current.append(item)
                if item.started is not None:
                    try:
                        item.target.launch(item.started)
                    except Exception:
                        log.exception("could not launch the run of schedule %s", item.record.id)
            if current:
                # After the launched executions had their first turn on the loop: a thousand
                # events are not worth delaying a thousand first steps for.
                loop.call_soon(self._announce_all, current)
            for at, items in later.items():
                self._launch_later(at, items)
            fired, handled = await self._handle_each(done.others, now)
            claimed += fired
            progress = len(done.claimed) + handled
            if done.due < SQLITE_BATCH or progress == 0 or now is not None:
                earliest = done.earliest
                if done.others:
                    earliest = await self.repo.earliest_next_run()
                return claimed, earliest

    def _launch_later(self, at: datetime, items: list[_Claimed]) -> None:
        """Start ticks claimed ahead at their time, then announce them (announcements queue
        behind the runners' first steps, as for ticks claimed on time)."""
        by_target: dict[str, list[_Claimed]] = {}
        for item in items:
            if item.started is not None:
                by_target.setdefault(item.record.target, []).append(item)
        announce = functools.partial(self._announce_all, items)
        if not by_target:
            loop = asyncio.get_running_loop()
            timer = loop.call_at(loop.time() + max(0.0, (at - _now()).total_seconds()), announce)
            self._timers = {t for t in self._timers if t.when() > loop.time()} | {timer}
            return
        for number, (kind, group) in enumerate(by_target.items()):
            try:
                self._batch_targets[kind].launch_at(
                    [item.started for item in group if item.started is not None],
                    at,
                    announce if number == 0 else _nothing,
                )
            except Exception:
                log.exception("could not launch the runs due at %s", at.isoformat())

    def _announce_all(self, claimed: list[_Claimed]) -> None:
        for item in claimed:
            self._announce(item.record, item.tick, item.disabled)

    def _pass_sqlite(
        self,
        conn: sqlite3.Connection,
        *,
        moment: datetime,
        now: datetime | None,
        ahead: timedelta = timedelta(0),
    ) -> _Pass:
        """The writer transaction of `_run_due_sqlite` (runs on the loop, or on the writer's
        thread while another connection holds the lock: it only plans and writes).

        With `ahead`, ticks due up to that much later are claimed too (see
        `SchedulerConfig.lookahead` and `_claim_sqlite`)."""
        due = self.sql.due(conn, moment + ahead, SQLITE_BATCH)
        done = _Pass(len(due))
        batch: list[tuple[ScheduleRecord, BatchScheduleTarget]] = []
        for record in due:
            target = self._batch_targets.get(record.target)
            if target is None:
                assert record.next_run is not None
                if record.next_run <= moment:  # other targets are only fired on time
                    done.others.append(record)
            else:
                batch.append((record, target))
        conn.execute("SAVEPOINT scheduler_pass")
        try:
            claims = [self._claim_sqlite(conn, r, t, now or _now(), False) for r, t in batch]
            self.sql.insert_runs(conn, [run for c in claims if c for run in c.tick.all_runs])
        except Exception:
            # Something about one schedule broke a write: redo the pass one schedule per
            # savepoint, so that only that schedule is left out (and logged).
            conn.execute("ROLLBACK TO scheduler_pass")
            claims = [self._claim_isolated(conn, r, t, now or _now()) for r, t in batch]
        conn.execute("RELEASE scheduler_pass")
        done.claimed = [claim for claim in claims if claim is not None]
        if not done.others:
            done.earliest = self.sql.earliest_next_run(conn)
        return done

    def _claim_isolated(
        self,
        conn: sqlite3.Connection,
        record: ScheduleRecord,
        target: BatchScheduleTarget,
        now: datetime,
    ) -> _Claimed | None:
        conn.execute("SAVEPOINT scheduler_tick")
        try:
            claim = self._claim_sqlite(conn, record, target, now, True)
        except Exception:
            conn.execute("ROLLBACK TO scheduler_tick")
            self._could_not_handle(record)
            claim = None
        conn.execute("RELEASE scheduler_tick")
        return claim

    def _claim_sqlite(
        self,
        conn: sqlite3.Connection,
        record: ScheduleRecord,
        target: BatchScheduleTarget,
        now: datetime,
        insert_runs: bool,
    ) -> _Claimed | None:
        """`_handle` for one schedule inside the pass's transaction (runs are inserted by the
        caller, all at once, unless `insert_runs`).

        A tick not yet due (within the lookahead) is claimed now only if nothing can change
        its outcome by its time: trigger, active hours, misfire and maxRuns depend on the tick
        alone, and overlap is settled when the previous execution has already finished (a
        finished execution never runs again). One whose previous execution still runs is left
        for its time. A tick claimed early is planned and recorded as of its own time.
        """
        assert record.next_run is not None
        if record.next_run > now:
            if record.overlap == "skip" and target.busy_sqlite(conn, record):
                return None
            now = record.next_run
        tick = self._plan(record, now)
        skip_reason: str | None = None
        if tick.fire_at is not None:
            if self._outside_hours(record, tick.fire_at):
                skip_reason = "outside_active_hours"
            elif record.overlap == "skip" and target.busy_sqlite(conn, record):
                skip_reason = "overlap"
        planned = self._tick(record, tick, now, skip_reason)
        started: Started | None = None
        disabled: DomainEvent | None = None
        if planned.fire and planned.fire_at is not None:
            try:
                started = target.prepare(record, planned.fire_at)
            except (WorkflowServiceError, ValueError) as exc:
                planned.fire_run = _run(record, planned.fire_at, now, "failed", str(exc), None)
                disabled = self._failure_values(
                    record.id,
                    record.consecutive_failures,
                    planned.values.get("enabled", record.enabled),
                    record.target,
                    str(exc),
                    planned.values,
                )
            else:
                planned.fire_run = _run(
                    record, planned.fire_at, now, "running", None, started.execution_id
                )
                if started.execution_id:
                    planned.values["last_execution_id"] = started.execution_id
        if not self.sql.claim(conn, record.id, record.next_run, record.version, planned.values):
            return None
        if started is not None:
            target.write_sqlite(conn, started)
        if insert_runs:
            self.sql.insert_runs(conn, planned.all_runs)
        return _Claimed(record, target, planned, started, disabled)

    @staticmethod
    def _failed_start(run: ScheduleRunRecord, reason: str) -> ScheduleRunRecord:
        return replace(run, status="failed", reason=reason)

    def _failure_values(
        self,
        schedule_id: str,
        failures_before: int,
        enabled: bool,
        target: str,
        reason: str,
        values: dict[str, Any],
    ) -> DomainEvent | None:
        """Add one failed run to `values` (the schedule's update); returns the
        `schedule.disabled` event to publish once that update has committed."""
        failures = failures_before + 1
        values["consecutive_failures"] = failures
        # Only workflows are disabled: a failing heartbeat keeps trying (and says so itself
        # with one alert), because a person relies on it noticing when things recover.
        if failures >= self.config.max_consecutive_failures and enabled and target == "workflow":
            why = f"disabled after {failures} consecutive failed runs; last: {reason}"
            values.update(enabled=False, state="disabled", state_reason=why, next_run=None)
            return DomainEvent("schedule.disabled", {"scheduleId": schedule_id, "reason": why})
        return None

    async def _count_failure(
        self, conn: Any, record: ScheduleRecord, reason: str
    ) -> DomainEvent | None:
        """Count a failed run; returns the `schedule.disabled` event to publish once the
        caller's transaction has committed (never announce what might still roll back)."""
        current = await self.repo.get_in(conn, record.id)
        if current is None:
            return None
        values: dict[str, Any] = {}
        event = self._failure_values(
            record.id,
            current.consecutive_failures,
            current.enabled,
            current.target,
            reason,
            values,
        )
        await self.repo.update_schedule(conn, record.id, values)
        return event

    def _publish_run(self, run: ScheduleRunRecord) -> None:
        if self.metrics is not None:
            if run.status == "running":
                if run.reason != "manual":
                    lateness = (_now() - run.scheduled_for).total_seconds()
                    self.metrics.tick_started(lateness)
            else:
                self.metrics.tick(run.status)
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
            id=time_ordered_id(),
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
                run = replace(run, execution_id=started.execution_id)
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
            if not _scheduled_result(event):
                continue
            status = event.data["status"]
            execution_id = event.data["executionId"]
            if self.db.writer is not None:
                # Not awaited: the results of every execution that ended meanwhile join one
                # group commit, and each is announced when its commit is done.
                self._finish_soon(execution_id, *self._outcome(status, event.data))
                continue
            try:
                await self.finish_execution(execution_id, status, event.data)
            except Exception:
                log.exception("could not record the result of a scheduled run")

    @staticmethod
    def _outcome(status: str, data: Mapping[str, Any] | None) -> tuple[str, str | None]:
        """A workflow status as a run status and reason."""
        if status == "completed":
            return "ok", None
        return "failed", (data or {}).get("error") or status

    async def finish_execution(
        self, execution_id: str, status: str, data: Mapping[str, Any] | None = None
    ) -> None:
        """Record a scheduled execution's outcome once and keep the failure count."""
        await self.finish_run(execution_id, *self._outcome(status, data))

    async def finish_run(self, execution_id: str, status: str, reason: str | None = None) -> None:
        """Record the outcome of the run that started `execution_id`, once.

        Workflow results arrive as `workflow.status` events; a target whose work is not a
        workflow execution (the heartbeat) reports here itself: `ok`, `skipped` (the run found
        nothing to do) or `failed`. `ok` resets the consecutive-failure count, `failed` adds
        to it, `skipped` leaves it alone.
        """
        if self.db.writer is not None:
            self._announce_finish(
                await self.db.writer.run(
                    functools.partial(self._finish_sqlite, execution_id, status, reason)
                )
            )
            return
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
        self._announce_finish(
            (
                replace(run, status=status, reason=reason if reason is not None else run.reason),
                disabled,
            )
        )

    def _finish_soon(self, execution_id: str, status: str, reason: str | None) -> None:
        writer = self.db.writer
        assert writer is not None
        future = writer.submit(functools.partial(self._finish_sqlite, execution_id, status, reason))
        future.add_done_callback(self._finished)

    def _finished(
        self, future: asyncio.Future[tuple[ScheduleRunRecord, DomainEvent | None] | None]
    ) -> None:
        if future.cancelled():
            return
        error = future.exception()
        if error is not None:
            log.error("could not record the result of a scheduled run", exc_info=error)
            return
        self._announce_finish(future.result())

    def _finish_sqlite(
        self, execution_id: str, status: str, reason: str | None, conn: sqlite3.Connection
    ) -> tuple[ScheduleRunRecord, DomainEvent | None] | None:
        """`finish_run`'s transaction on the SQLite writer."""
        run = self.sql.finish_run_for_execution(conn, execution_id, status, reason)
        if run is None:
            return None
        disabled: DomainEvent | None = None
        state = self.sql.failure_state(conn, run.schedule_id)
        if state is not None:
            failures, enabled, target = state
            if status == "ok":
                if failures:
                    self.sql.update_schedule(conn, run.schedule_id, {"consecutive_failures": 0})
            elif status == "failed":
                values: dict[str, Any] = {}
                disabled = self._failure_values(
                    run.schedule_id, failures, enabled, target, str(reason), values
                )
                self.sql.update_schedule(conn, run.schedule_id, values)
        return (
            replace(run, status=status, reason=reason if reason is not None else run.reason),
            disabled,
        )

    def _announce_finish(
        self, outcome: tuple[ScheduleRunRecord, DomainEvent | None] | None
    ) -> None:
        """Publish a committed result (and a disablement)."""
        if outcome is None:
            return
        run, disabled = outcome
        self._publish_run(run)
        if disabled is not None:
            self.bus.publish(disabled)

    async def _housekeeping(self) -> None:
        """Catch results whose event was missed (a node was down) and prune old history."""
        while True:
            await asyncio.sleep(RECONCILE_EVERY_S)
            try:
                await self.housekeep()
            except Exception:
                log.exception("scheduler housekeeping failed")

    async def housekeep(self) -> None:
        """One reconciliation and pruning pass (see `_housekeeping`)."""
        stale = await self.repo.stale_running_runs()
        if self.db.writer is not None:
            # Concurrent on SQLite: the writes share group commits.
            await asyncio.gather(*(self.finish_execution(e, s) for e, s in stale))
        else:
            for execution_id, status in stale:
                await self.finish_execution(execution_id, status)
        pending, self._fired_since_prune = self._fired_since_prune, set()
        cutoff = _now() - self.config.history
        keep = self.config.history_max
        writer = self.db.writer
        if writer is None:
            for schedule_id in pending:
                await self.repo.prune(schedule_id, cutoff, keep)
            return
        ids = sorted(pending)
        for offset in range(0, len(ids), PRUNE_CHUNK):
            chunk = ids[offset : offset + PRUNE_CHUNK]

            def prune(conn: sqlite3.Connection, chunk: list[str] = chunk) -> None:
                for schedule_id in chunk:
                    self.sql.prune(conn, schedule_id, cutoff, keep)

            await writer.run(prune)


def _nothing() -> None:
    return None
