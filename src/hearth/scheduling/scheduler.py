"""The scheduler loop: one supervised loop, no timer per schedule.

It sleeps until the earliest `next_run` (never longer than `max_sleep_s`, so a clock jump is
noticed) or until a schedule changes, then hands the store a pass: the store reads a batch of
due rows inside one transaction and, for each, the scheduler plans the tick (`ticks.py`) and
the store writes the claim (a conditional UPDATE of `next_run`), the run rows and the
execution the tick starts, all in that transaction. Each tick therefore fires exactly once
across any number of gateway processes and survives a crash at any point; which backend does
the writing, and how it batches, is the store's business (store/schedule_ticks.py).

Ticks whose outcome is already decided are claimed up to `lookahead` before they are due and
started at their time: the tick itself then costs no database work. Targets that cannot be
batched (the heartbeat, which writes through its own repository) are claimed one by one.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from hearth.events import EventBus
from hearth.ids import time_ordered_id
from hearth.metrics import Metrics
from hearth.scheduling.announce import RunAnnouncer
from hearth.scheduling.config import SchedulerConfig
from hearth.scheduling.results import RESULTS_QUEUE, RunResults, scheduled_result
from hearth.scheduling.service import CHANGED_TOPIC
from hearth.scheduling.targets import BatchScheduleTarget, ScheduleTarget
from hearth.scheduling.ticks import (
    Tick,
    failure_values,
    make_tick,
    outside_hours,
    plan_of,
    run_record,
)
from hearth.store import Database
from hearth.store.execution_backends import execution_repository
from hearth.store.records import ScheduleRecord, ScheduleRunRecord
from hearth.store.schedule_ticks import DueSchedule, NewExecution, TickStore
from hearth.store.tick_stores import tick_store
from hearth.supervised import SupervisedLoop
from hearth.workflows.errors import WorkflowServiceError

log = logging.getLogger("hearth.scheduling")

RECONCILE_EVERY_S = 10.0
STUCK_RETRY_S = 1.0
#: Due rows are all locked by another node's pass: look again this much later, not at once.
LOCKED_RETRY_S = 0.01
#: A target refusing to start a tick (unknown workflow, input that no longer fits): the run
#: is recorded `failed`; anything else is a bug or an outage and rolls the claim back.
REFUSALS = (WorkflowServiceError, ValueError)

__all__ = ["Scheduler", "SchedulerConfig"]


def _now() -> datetime:
    return datetime.now(UTC)


def _nothing() -> None:
    return None


class _StartInTransaction:
    """A tick whose target `begin`s inside the claiming transaction (see `OneTick`)."""

    def __init__(self, tick: Tick, max_failures: int) -> None:
        self.write = tick
        self.max_failures = max_failures

    async def start(self, conn: AsyncConnection) -> None:
        tick = self.write
        if not tick.fire or tick.fire_at is None:
            return
        started = await tick.target.begin(conn, tick.record, tick.fire_at)
        tick.started = started
        now = tick.values["updated_at"]
        tick.set_fire_run(
            run_record(tick.record, tick.fire_at, now, "running", None, started.execution_id)
        )
        if started.execution_id:
            tick.more["last_execution_id"] = started.execution_id

    def refused(self, error: Exception) -> None:
        if not isinstance(error, REFUSALS):
            raise error
        tick = self.write
        assert tick.fire_at is not None
        record = tick.record
        now = tick.values["updated_at"]
        tick.set_fire_run(run_record(record, tick.fire_at, now, "failed", str(error), None))
        tick.disabled = failure_values(
            record.id,
            record.consecutive_failures,
            tick.values.get("enabled", record.enabled),
            record.target,
            str(error),
            tick.more,
            self.max_failures,
        )


class _ManualStart:
    """`trigger_now`: no claim; a refusal is recorded, not counted as a failure."""

    def __init__(self, tick: Tick) -> None:
        self.write = tick

    async def start(self, conn: AsyncConnection) -> None:
        tick = self.write
        assert tick.fire_at is not None
        assert tick.fire_run is not None
        started = await tick.target.begin(conn, tick.record, tick.fire_at)
        tick.started = started
        tick.set_fire_run(replace(tick.fire_run, execution_id=started.execution_id))
        if started.execution_id:
            tick.more["last_execution_id"] = started.execution_id

    def refused(self, error: Exception) -> None:
        if not isinstance(error, REFUSALS):
            raise error
        tick = self.write
        assert tick.fire_run is not None
        tick.set_fire_run(replace(tick.fire_run, status="failed", reason=f"manual: {error}"))


class Scheduler:
    def __init__(
        self,
        db: Database,
        bus: EventBus,
        targets: Mapping[str, ScheduleTarget],
        config: SchedulerConfig,
        store: TickStore | None = None,
    ) -> None:
        self.store = store or tick_store(db, execution_repository(db))
        self.bus = bus
        self.targets = dict(targets)
        self._batch_targets: dict[str, BatchScheduleTarget] = {
            kind: target
            for kind, target in self.targets.items()
            if isinstance(target, BatchScheduleTarget)
        }
        self.config = config
        self.announcer = RunAnnouncer(bus)
        self.results = RunResults(self.store, self.announcer, lambda: self.config)
        self._loop = SupervisedLoop(
            "scheduler", self._pass, interval_s=STUCK_RETRY_S, backoff_max_s=30.0, log=log
        )
        self._housekeeping = SupervisedLoop(
            "scheduler-housekeeping",
            self._housekeep,
            interval_s=RECONCILE_EVERY_S,
            initial_delay_s=RECONCILE_EVERY_S,
            log=log,
        )
        self._tasks: list[asyncio.Task[None]] = []
        #: Announcements of ticks claimed ahead, due at their tick.
        self._timers: set[asyncio.TimerHandle] = set()
        #: A due schedule failed to be handled in this pass. It stays due, so without a pause
        #: the loop would retry it (and log) as fast as it can.
        self._stuck = False

    @property
    def metrics(self) -> Metrics | None:
        return self.announcer.metrics

    @metrics.setter
    def metrics(self, metrics: Metrics | None) -> None:
        self.announcer.metrics = metrics

    @property
    def last_pass(self) -> float | None:
        """Monotonic time of the last pass that completed (`/readyz` checks it is recent)."""
        return self._loop.last_ok

    async def start(self) -> None:
        changes = self.bus.subscribe(CHANGED_TOPIC)
        finished = self.bus.subscribe(
            "workflow.status", maxsize=RESULTS_QUEUE, accept=scheduled_result
        )
        self._tasks = [
            asyncio.create_task(self._watch_changes(changes), name="scheduler-changes"),
            asyncio.create_task(self.results.watch(finished), name="scheduler-results"),
        ]
        self._loop.start()
        self._housekeeping.start()

    async def stop(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        await self._loop.stop()
        await self._housekeeping.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.store.close()

    # -- the loop ---------------------------------------------------------------------------

    async def _pass(self) -> float:
        """One pass of the loop; returns how long to sleep before the next."""
        self._stuck = False
        ahead = self.config.lookahead
        started = _now()
        claimed, earliest = await self._run_due(None, ahead)
        delay = self.config.max_sleep_s
        if earliest is not None:
            # Wake `ahead` of the next tick to claim it early; a tick that was already
            # within reach and is still unclaimed was held back (its overlap is decided
            # at its time), so wake at its time for it.
            wake = earliest - ahead if earliest > started + ahead else earliest
            delay = min(delay, max(0.0, (wake - _now()).total_seconds()))
            if claimed == 0 and earliest <= started:
                delay = max(delay, LOCKED_RETRY_S)
        if self._stuck:
            delay = max(delay, STUCK_RETRY_S)
        return delay

    async def _housekeep(self) -> None:
        await self.results.housekeep()

    async def housekeep(self) -> None:
        """One reconciliation and pruning pass (results whose event was missed, old runs)."""
        await self.results.housekeep()

    def _could_not_handle(self, record: ScheduleRecord) -> None:
        log.error("schedule %s (%s) could not be handled", record.id, record.name)
        self._stuck = True

    async def _watch_changes(self, subscription: Any) -> None:
        async for _event in subscription:
            self._loop.wake()

    async def run_due(self, now: datetime | None = None) -> int:
        """Handle every schedule due at `now`; returns how many ticks this node claimed."""
        claimed, _ = await self._run_due(now, timedelta(0))
        return claimed

    async def _run_due(self, now: datetime | None, ahead: timedelta) -> tuple[int, datetime | None]:
        """Claim passes until nothing due is left; returns the ticks claimed and the earliest
        `next_run` left. With `ahead`, ticks due up to that much later are claimed too."""
        claimed = 0
        limit = self.store.claim_limit
        while True:
            moment = now or _now()
            others: dict[str, ScheduleRecord] = {}
            decide = functools.partial(self._decide, now=now, moment=moment, others=others)
            batch = await self.store.claim_due(moment + ahead, limit, decide)
            for record in batch.failed:
                self._could_not_handle(record)
            claimed += len(batch.claimed)
            self._launch(batch.claimed, moment)
            fired, handled = await self._handle_each(list(others.values()), now)
            claimed += fired
            progress = len(batch.claimed) + handled
            if batch.due < limit or progress == 0:
                earliest = batch.earliest
                if others:
                    earliest = await self.store.earliest_next_run()
                return claimed, earliest

    def _decide(
        self,
        due: DueSchedule,
        *,
        now: datetime | None,
        moment: datetime,
        others: dict[str, ScheduleRecord],
    ) -> Tick | None:
        """Plan a due row inside the claiming transaction (see `TickStore.claim_due`).

        A tick not yet due (within the lookahead) is claimed now only if nothing can change
        its outcome by its time: trigger, active hours, misfire and maxRuns depend on the tick
        alone, and overlap is settled when the previous execution has already finished (a
        finished execution never runs again). One whose previous execution still runs is left
        for its time. A tick claimed early is planned and recorded as of its own time.
        """
        record = due.record
        assert record.next_run is not None
        target = self._batch_targets.get(record.target)
        if target is None:
            if record.next_run <= moment:  # other targets are only fired on time
                others[record.id] = record
            return None
        at = now or _now()
        if record.next_run > at:
            if record.overlap == "skip" and target.busy_given(due.previous_status()):
                return None
            at = record.next_run
        plan = plan_of(record, at, self.config.misfire_threshold)
        skip: str | None = None
        if plan.fire_at is not None:
            if outside_hours(record, plan.fire_at):
                skip = "outside_active_hours"
            elif record.overlap == "skip" and target.busy_given(due.previous_status()):
                skip = "overlap"
        tick = make_tick(record, target, plan, at, skip)
        if tick.fire and tick.fire_at is not None:
            try:
                started = target.prepare(record, tick.fire_at)
            except REFUSALS as exc:
                tick.set_fire_run(run_record(record, tick.fire_at, at, "failed", str(exc), None))
                tick.disabled = failure_values(
                    record.id,
                    record.consecutive_failures,
                    tick.values.get("enabled", record.enabled),
                    record.target,
                    str(exc),
                    tick.values,
                    self.config.max_consecutive_failures,
                )
            else:
                tick.started = started
                tick.set_fire_run(
                    run_record(record, tick.fire_at, at, "running", None, started.execution_id)
                )
                if started.execution_id:
                    tick.values["last_execution_id"] = started.execution_id
                if isinstance(started.handle, NewExecution):
                    tick.execution = started.handle
        return tick

    # -- one by one (targets that start inside the transaction) -----------------------------

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
                log.exception("schedule %s (%s) could not be handled", record.id, record.name)
                self._stuck = True
        return claimed, handled

    async def _handle(self, record: ScheduleRecord, now: datetime) -> bool:
        target = self.targets[record.target]
        plan = plan_of(record, now, self.config.misfire_threshold)
        skip: str | None = None
        if plan.fire_at is not None:
            if outside_hours(record, plan.fire_at):
                skip = "outside_active_hours"
            elif record.overlap == "skip" and await target.busy(record):
                skip = "overlap"
        tick = make_tick(record, target, plan, now, skip)
        one = _StartInTransaction(tick, self.config.max_consecutive_failures)
        if not await self.store.claim_one(one):
            return False
        if tick.started is not None:
            target.launch(tick.started)
        self._announce(tick)
        return True

    # -- launching and announcing -----------------------------------------------------------

    def _launch(self, claimed: list[Tick], moment: datetime) -> None:
        """Start what a pass committed: due ticks now, ticks claimed ahead at their time."""
        loop = asyncio.get_running_loop()
        current: list[Tick] = []
        later: dict[datetime, list[Tick]] = {}
        for tick in claimed:
            at = tick.fire_at
            # Claimed ahead of the pass's own moment (only the live loop looks ahead).
            if at is not None and at > moment:
                later.setdefault(at, []).append(tick)
                continue
            current.append(tick)
            if tick.started is not None:
                try:
                    tick.target.launch(tick.started)
                except Exception:
                    log.exception("could not launch the run of schedule %s", tick.record.id)
        if current:
            # After the launched executions had their first turn on the loop: a thousand
            # events are not worth delaying a thousand first steps for.
            loop.call_soon(self._announce_all, current)
        for at, ticks in later.items():
            self._launch_later(at, ticks)

    def _launch_later(self, at: datetime, ticks: list[Tick]) -> None:
        """Start ticks claimed ahead at their time, then announce them (announcements queue
        behind the runners' first steps, as for ticks claimed on time)."""
        by_target: dict[str, list[Tick]] = {}
        for tick in ticks:
            if tick.started is not None:
                by_target.setdefault(tick.record.target, []).append(tick)
        announce = functools.partial(self._announce_all, ticks)
        if not by_target:
            loop = asyncio.get_running_loop()
            timer = loop.call_at(loop.time() + max(0.0, (at - _now()).total_seconds()), announce)
            self._timers = {t for t in self._timers if t.when() > loop.time()} | {timer}
            return
        for number, (kind, group) in enumerate(by_target.items()):
            try:
                self._batch_targets[kind].launch_at(
                    [tick.started for tick in group if tick.started is not None],
                    at,
                    announce if number == 0 else _nothing,
                )
            except Exception:
                log.exception("could not launch the runs due at %s", at.isoformat())

    def _announce_all(self, ticks: list[Tick]) -> None:
        for tick in ticks:
            self._announce(tick)

    def _announce(self, tick: Tick) -> None:
        """Publish a committed tick's runs (and a disablement)."""
        record = tick.record
        self.results.fired.add(record.id)
        for run in tick.runs:
            self.announcer.run(run)
        self.announcer.event(tick.disabled)
        if tick.finished:
            log.info(
                "schedule %s (%s) completed after %d runs", record.id, record.name, tick.run_count
            )

    # -- manual runs and results ------------------------------------------------------------

    async def trigger_now(self, record: ScheduleRecord) -> ScheduleRunRecord:
        """Fire a schedule now, outside its trigger: active hours, overlap and maxRuns do not
        apply; the run is recorded with reason `manual`."""
        target = self.targets[record.target]
        now = _now()
        tick = Tick(
            schedule_id=record.id,
            expected_next=now,
            expected_version=record.version,
            values={},
            record=record,
            target=target,
            fire_at=now,
            fire=True,
        )
        tick.set_fire_run(
            ScheduleRunRecord(
                time_ordered_id(), record.id, now, now, "running", "manual", None, None
            )
        )
        await self.store.claim_one(_ManualStart(tick), claim=False)
        if tick.started is not None:
            target.launch(tick.started)
        assert tick.fire_run is not None
        self.announcer.run(tick.fire_run)
        return tick.fire_run

    async def finish_run(self, execution_id: str, status: str, reason: str | None = None) -> None:
        """Record the outcome of the run that started `execution_id`, once (see
        `RunResults.finish_run`); a target whose work is not a workflow reports here."""
        await self.results.finish_run(execution_id, status, reason)

    async def finish_execution(
        self, execution_id: str, status: str, data: Mapping[str, Any] | None = None
    ) -> None:
        await self.results.finish_execution(execution_id, status, data)
