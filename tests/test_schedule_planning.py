"""Misfire planning as a pure function, then the real scheduler on a controlled clock.

The first half calls `planning.plan` directly. The second half runs the real `ScheduleService`
and `Scheduler.run_due` against a SQLite file, with `time-machine` standing in for the wall
clock, and a small second implementation of the `ScheduleTarget` protocol that records what it
was asked to start.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncConnection

from hearth.events import LocalEventBus
from hearth.scheduling import planning
from hearth.scheduling.planning import plan
from hearth.scheduling.scheduler import Scheduler, SchedulerConfig
from hearth.scheduling.service import ScheduleService
from hearth.scheduling.targets import Started
from hearth.scheduling.triggers import AtTrigger, CronTrigger, EveryTrigger, Trigger
from hearth.store import Database
from hearth.store.records import ScheduleRecord, ScheduleRunRecord
from hearth.store.schedules import ScheduleRepository

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
GRACE = timedelta(seconds=3600)  # the default misfireGraceS
#: Comfortably later than "on time" whatever the configured threshold.
LATE = timedelta(minutes=30)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


ANCHOR = utc(2026, 6, 1, 9, 0)
HOURLY = EveryTrigger(HOUR, ANCHOR)


# == planning.plan ==============================================================================


TRIGGERS_AND_DUE = [
    pytest.param(HOURLY, ANCHOR + HOUR, ANCHOR + 2 * HOUR, id="every"),
    pytest.param(
        CronTrigger("0 * * * *", BERLIN), utc(2026, 6, 1, 10), utc(2026, 6, 1, 11), id="cron"
    ),
    pytest.param(AtTrigger(utc(2026, 6, 1, 10)), utc(2026, 6, 1, 10), None, id="at"),
]


@pytest.mark.parametrize("misfire", ["run_once", "skip"])
@pytest.mark.parametrize(("trigger", "due", "following"), TRIGGERS_AND_DUE)
def test_a_tick_on_time_fires_with_nothing_missed(
    trigger: Trigger, due: datetime, following: datetime | None, misfire: str
) -> None:
    tick = plan(trigger, due, due, misfire=misfire, grace=GRACE)
    assert tick == planning.TickPlan(
        fire_at=due, missed_first=None, missed_count=0, next_run=following
    )


@pytest.mark.parametrize("misfire", ["run_once", "skip"])
@pytest.mark.parametrize(("trigger", "due", "following"), TRIGGERS_AND_DUE)
def test_a_slightly_late_tick_fires_whatever_the_policy(
    trigger: Trigger, due: datetime, following: datetime | None, misfire: str
) -> None:
    for late in (planning.ON_TIME / 2, planning.ON_TIME - timedelta(microseconds=1)):
        tick = plan(trigger, due, due + late, misfire=misfire, grace=timedelta(0))
        assert tick.fire_at == due
        assert tick.missed_count == 0
        assert tick.next_run == following


@pytest.mark.parametrize(("trigger", "due", "following"), TRIGGERS_AND_DUE)
def test_a_late_tick_is_skipped_by_the_skip_policy(
    trigger: Trigger, due: datetime, following: datetime | None
) -> None:
    tick = plan(trigger, due, due + planning.ON_TIME + LATE / 10, misfire="skip", grace=GRACE)
    assert tick.fire_at is None
    assert tick.missed_count == 1
    assert tick.missed_first == due


def test_downtime_run_once_within_grace_fires_only_the_latest_tick() -> None:
    now = ANCHOR + 5 * HOUR + LATE  # ticks at +1h … +5h were all missed
    tick = plan(HOURLY, ANCHOR + HOUR, now, misfire="run_once", grace=GRACE)
    assert tick == planning.TickPlan(
        fire_at=ANCHOR + 5 * HOUR,
        missed_first=ANCHOR + HOUR,
        missed_count=4,
        next_run=ANCHOR + 6 * HOUR,
    )


def test_downtime_run_once_beyond_grace_fires_nothing_and_counts_every_tick() -> None:
    now = ANCHOR + 5 * HOUR + LATE
    tick = plan(HOURLY, ANCHOR + HOUR, now, misfire="run_once", grace=timedelta(seconds=600))
    assert tick == planning.TickPlan(
        fire_at=None, missed_first=ANCHOR + HOUR, missed_count=5, next_run=ANCHOR + 6 * HOUR
    )


def test_downtime_skip_fires_nothing_when_the_latest_tick_is_late() -> None:
    now = ANCHOR + 5 * HOUR + LATE
    tick = plan(HOURLY, ANCHOR + HOUR, now, misfire="skip", grace=GRACE)
    assert tick == planning.TickPlan(
        fire_at=None, missed_first=ANCHOR + HOUR, missed_count=5, next_run=ANCHOR + 6 * HOUR
    )


def test_downtime_skip_still_fires_a_latest_tick_that_is_on_time() -> None:
    now = ANCHOR + 5 * HOUR + planning.ON_TIME / 2
    tick = plan(HOURLY, ANCHOR + HOUR, now, misfire="skip", grace=GRACE)
    assert tick.fire_at == ANCHOR + 5 * HOUR
    assert tick.missed_count == 4
    assert tick.next_run == ANCHOR + 6 * HOUR


def test_the_grace_period_includes_its_end() -> None:
    now = ANCHOR + 5 * HOUR + LATE
    exactly = plan(HOURLY, ANCHOR + HOUR, now, misfire="run_once", grace=LATE)
    assert exactly.fire_at == ANCHOR + 5 * HOUR
    just_past = plan(
        HOURLY, ANCHOR + HOUR, now, misfire="run_once", grace=LATE - timedelta(microseconds=1)
    )
    assert just_past.fire_at is None
    assert just_past.missed_count == 5


def test_downtime_exactly_on_a_tick_fires_that_tick() -> None:
    tick = plan(HOURLY, ANCHOR + HOUR, ANCHOR + 5 * HOUR, misfire="skip", grace=GRACE)
    assert tick.fire_at == ANCHOR + 5 * HOUR
    assert tick.missed_count == 4
    assert tick.next_run == ANCHOR + 6 * HOUR


# Daily 02:30 in Berlin, down from before 2026-03-27 until after the spring change: the ticks
# missed are 03-27 02:30 CET, 03-28 02:30 CET, 03-29 03:00 CEST (after the gap), 03-30 02:30 CEST.
DAILY_BERLIN = CronTrigger("30 2 * * *", BERLIN)
SPRING_TICKS = [
    utc(2026, 3, 27, 1, 30),
    utc(2026, 3, 28, 1, 30),
    utc(2026, 3, 29, 1, 0),
    utc(2026, 3, 30, 0, 30),
]


@pytest.mark.parametrize(
    ("misfire", "late", "fire_at", "missed"),
    [
        ("run_once", LATE, SPRING_TICKS[-1], 3),
        ("run_once", GRACE + LATE, None, 4),
        ("skip", LATE, None, 4),
    ],
)
def test_cron_downtime_across_spring_forward(
    misfire: str, late: timedelta, fire_at: datetime | None, missed: int
) -> None:
    now = SPRING_TICKS[-1] + late
    tick = plan(DAILY_BERLIN, SPRING_TICKS[0], now, misfire=misfire, grace=GRACE)
    assert tick == planning.TickPlan(
        fire_at=fire_at,
        missed_first=SPRING_TICKS[0],
        missed_count=missed,
        next_run=utc(2026, 3, 31, 0, 30),
    )


def test_cron_downtime_across_fall_back_counts_each_real_hour_once() -> None:
    # Hourly in Berlin, down from 00:00 CEST on 2026-10-25 (22:00Z) until 06:10 CET (05:10Z):
    # 00, 01, 02 CEST, then 02, 03, 04, 05, 06 CET = 8 ticks, one per real hour.
    hourly = CronTrigger("0 * * * *", BERLIN)
    tick = plan(
        hourly, utc(2026, 10, 24, 22), utc(2026, 10, 25, 5, 10), misfire="run_once", grace=GRACE
    )
    assert tick.fire_at == utc(2026, 10, 25, 5)
    assert tick.missed_count == 7
    assert tick.missed_first == utc(2026, 10, 24, 22)
    assert tick.next_run == utc(2026, 10, 25, 6)


@pytest.mark.parametrize(
    ("misfire", "late", "fires"),
    [("run_once", LATE, True), ("run_once", GRACE + LATE, False), ("skip", LATE, False)],
)
def test_a_missed_at_fires_once_or_not_at_all(misfire: str, late: timedelta, fires: bool) -> None:
    at = utc(2026, 6, 1, 10)
    tick = plan(AtTrigger(at), at, at + late, misfire=misfire, grace=GRACE)
    assert tick.next_run is None
    assert tick.fire_at == (at if fires else None)
    assert tick.missed_count == (0 if fires else 1)
    assert tick.missed_first == (None if fires else at)


def test_a_frequent_cron_after_long_downtime_still_fires_the_tick_due_now() -> None:
    every_second = CronTrigger("* * * * * *", BERLIN)
    due = utc(2026, 6, 1)
    now = due + 2 * DAY  # 172 801 ticks in [due, now], more than MAX_COUNTED
    tick = plan(every_second, due, now, misfire="run_once", grace=GRACE)
    assert tick.next_run == now + timedelta(seconds=1)
    assert tick.fire_at == now


def test_a_fractional_every_exactly_on_a_tick_accounts_for_every_tick() -> None:
    interval = timedelta(milliseconds=1100)  # every: "1100ms" or "1.1s"
    trigger = EveryTrigger(interval, ANCHOR)
    tick = plan(trigger, ANCHOR + interval, ANCHOR + 4 * interval, misfire="skip", grace=GRACE)
    assert tick == planning.TickPlan(
        fire_at=ANCHOR + 4 * interval,
        missed_first=ANCHOR + interval,
        missed_count=3,
        next_run=ANCHOR + 5 * interval,
    )


# -- properties --------------------------------------------------------------------------------

CRONS = ["0 * * * *", "30 2 * * *", "*/15 * * * *", "30 1 * * *", "0 9 * * 1-5"]
ZONES = [BERLIN, NEW_YORK, ZoneInfo("UTC")]
DST_CHANGES = [utc(2026, 3, 29, 1), utc(2026, 10, 25, 1), utc(2026, 3, 8, 7), utc(2026, 11, 1, 6)]


@st.composite
def scheduled(draw: st.DrawFn) -> tuple[Trigger, datetime, list[datetime], datetime]:
    """A trigger, its due tick, every tick in [due, now], and now."""
    start = draw(st.sampled_from(DST_CHANGES)) + draw(
        st.timedeltas(min_value=-3 * DAY, max_value=3 * DAY)
    )
    kind = draw(st.sampled_from(["every", "cron", "at"]))
    trigger: Trigger
    if kind == "every":
        interval = timedelta(seconds=draw(st.integers(min_value=1, max_value=2 * 86_400)))
        trigger = EveryTrigger(interval, start)
        due = start + interval * draw(st.integers(min_value=1, max_value=5))
        now = due + draw(st.timedeltas(min_value=timedelta(0), max_value=2 * DAY))
        window = [due + interval * k for k in range((now - due) // interval + 1)]
        return trigger, due, window, now
    if kind == "at":
        trigger = AtTrigger(start)
        now = start + draw(st.timedeltas(min_value=timedelta(0), max_value=2 * DAY))
        return trigger, start, [start], now
    trigger = CronTrigger(draw(st.sampled_from(CRONS)), draw(st.sampled_from(ZONES)))
    due = trigger.next_after(start)
    assert due is not None
    now = due + draw(st.timedeltas(min_value=timedelta(0), max_value=2 * DAY))
    window = [due]
    while (following := trigger.next_after(window[-1])) is not None and following <= now:
        window.append(following)
    return trigger, due, window, now


@settings(deadline=None)  # no wall-clock limits in this suite
@given(
    case=scheduled(),
    misfire=st.sampled_from(["run_once", "skip"]),
    grace=st.timedeltas(min_value=timedelta(0), max_value=2 * HOUR),
)
def test_plan_fires_at_most_the_latest_tick_and_accounts_for_every_other(
    case: tuple[Trigger, datetime, list[datetime], datetime], misfire: str, grace: timedelta
) -> None:
    trigger, due, window, now = case
    tick = plan(trigger, due, now, misfire=misfire, grace=grace)

    if isinstance(trigger, AtTrigger):
        assert tick.next_run is None
    else:
        assert tick.next_run is not None
        assert tick.next_run > now
        assert tick.next_run == trigger.next_after(now)
    fired = 0 if tick.fire_at is None else 1
    assert fired + tick.missed_count == len(window)  # never replayed, never lost
    assert tick.missed_first == (window[0] if tick.missed_count else None)
    late = now - window[-1]
    should_fire = late < planning.ON_TIME or (misfire == "run_once" and late <= grace)
    if should_fire:
        assert tick.fire_at == window[-1]
    elif late > planning.ON_TIME:
        assert tick.fire_at is None


# == the scheduler on a controlled clock ========================================================


@dataclass
class ProbeTarget:
    """A second implementation of `ScheduleTarget`: starts nothing, remembers every call."""

    kind: str = "probe"
    begun: list[tuple[str, datetime]] = field(default_factory=list)
    launched: list[Started] = field(default_factory=list)

    def check(self, workflow_id: str | None, raw_input: Mapping[str, Any] | None) -> None:
        return None

    async def begin(
        self, conn: AsyncConnection, schedule: ScheduleRecord, scheduled_for: datetime
    ) -> Started:
        assert conn.in_transaction()  # inside the transaction that claims the tick
        self.begun.append((schedule.id, scheduled_for))
        return Started(None, scheduled_for)

    def launch(self, started: Started) -> None:
        self.launched.append(started)

    async def busy(self, schedule: ScheduleRecord) -> bool:
        return False

    def fired(self, schedule_id: str) -> list[datetime]:
        return [at for sid, at in self.begun if sid == schedule_id]


@dataclass
class Harness:
    db: Database
    repo: ScheduleRepository
    service: ScheduleService
    scheduler: Scheduler
    target: ProbeTarget

    async def create(self, when: datetime, **fields: Any) -> ScheduleRecord:
        """Create a schedule as if it were `when` (the clock keeps ticking from there)."""
        with time_machine.travel(when, tick=True):
            return await self.service.create({"name": "probe", **fields}, target="probe")

    async def drive(self, start: datetime, end: datetime, step: timedelta) -> int:
        """Let the scheduler look at the clock every `step` from `start` through `end`."""
        claimed = 0
        with time_machine.travel(start, tick=False) as traveller:
            moment = start
            while moment <= end:
                traveller.move_to(moment)
                claimed += await self.scheduler.run_due()
                moment += step
        return claimed

    async def history(self, schedule_id: str) -> list[ScheduleRunRecord]:
        """Oldest first."""
        return sorted(await self.repo.runs(schedule_id, 10_000), key=lambda r: r.scheduled_for)


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    db = Database.from_url(f"sqlite+aiosqlite:///{tmp_path / 'h.db'}")
    bus = LocalEventBus()
    try:
        await db.upgrade()
        target = ProbeTarget()
        repo = ScheduleRepository(db)
        service = ScheduleService(repo, bus, {"probe": target}, default_timezone="UTC")
        scheduler = Scheduler(db, bus, {"probe": target}, SchedulerConfig())
        yield Harness(db, repo, service, scheduler, target)
    finally:
        await bus.aclose()
        await db.dispose()


def expected_daily(day: date, tz: ZoneInfo, spring_day: date | None) -> datetime:
    """02:30 local, or 03:00 on the day whose 02:00-02:59 does not exist."""
    at = time(3, 0) if day == spring_day else time(2, 30)
    return datetime.combine(day, at, tzinfo=tz).astimezone(UTC)


@pytest.mark.parametrize(
    ("tz", "change_day", "spring"),
    [
        pytest.param(BERLIN, date(2026, 3, 29), True, id="berlin-spring"),
        pytest.param(BERLIN, date(2026, 10, 25), False, id="berlin-autumn"),
        pytest.param(NEW_YORK, date(2026, 3, 8), True, id="new-york-spring"),
        pytest.param(NEW_YORK, date(2026, 11, 1), False, id="new-york-autumn"),
    ],
)
async def test_daily_0230_runs_once_a_day_through_a_dst_week(
    harness: Harness, tz: ZoneInfo, change_day: date, spring: bool
) -> None:
    days = [change_day + d * DAY for d in range(-3, 4)]
    created = local_midnight(days[0], tz)
    record = await harness.create(created, cron_expression="30 2 * * *", timezone=tz.key)
    assert record.next_run == expected_daily(days[0], tz, None)

    # The scheduler wakes every 15 minutes of real time for the whole week.
    end = local_midnight(days[-1] + DAY, tz)
    claimed = await harness.drive(created + timedelta(minutes=15), end, timedelta(minutes=15))

    expected = [expected_daily(day, tz, change_day if spring else None) for day in days]
    history = await harness.history(record.id)
    assert claimed == 7
    assert [r.scheduled_for for r in history] == expected
    assert [r.scheduled_for.astimezone(tz).date() for r in history] == days
    assert {r.status for r in history} == {"running"}
    assert [r.fired_at for r in history] == expected  # each on time, none a catch-up
    assert harness.target.fired(record.id) == expected
    stored = await harness.service.get(record.id)
    assert stored.run_count == 7
    assert stored.next_run == expected_daily(days[-1] + DAY, tz, None)
    assert stored.next_run > end


@pytest.mark.parametrize(
    ("tz", "change_day", "hours_that_day"),
    [
        pytest.param(BERLIN, date(2026, 3, 29), 23, id="berlin-spring"),
        pytest.param(BERLIN, date(2026, 10, 25), 25, id="berlin-autumn"),
        pytest.param(NEW_YORK, date(2026, 3, 8), 23, id="new-york-spring"),
        pytest.param(NEW_YORK, date(2026, 11, 1), 25, id="new-york-autumn"),
    ],
)
async def test_hourly_runs_once_per_real_hour_through_a_dst_change(
    harness: Harness, tz: ZoneInfo, change_day: date, hours_that_day: int
) -> None:
    start = local_midnight(change_day - DAY, tz)
    end = local_midnight(change_day + 2 * DAY, tz)
    record = await harness.create(
        start - timedelta(minutes=30), cron_expression="0 * * * *", timezone=tz.key
    )
    await harness.drive(start, end - timedelta(minutes=15), timedelta(minutes=15))

    history = await harness.history(record.id)
    times = [r.scheduled_for for r in history]
    assert times == [start + k * HOUR for k in range(24 + hours_that_day + 24)]
    assert all(b - a == HOUR for a, b in pairwise(times))
    assert Counter(t.astimezone(tz).date() for t in times) == {
        change_day - DAY: 24,
        change_day: hours_that_day,
        change_day + DAY: 24,
    }
    assert {r.status for r in history} == {"running"}
    assert [r.fired_at for r in history] == times


async def test_downtime_with_run_once_fires_one_catch_up_and_records_the_rest(
    harness: Harness,
) -> None:
    record = await harness.create(utc(2026, 6, 1, 9), every="1h")
    anchor = record.anchor_at
    assert record.misfire == "run_once"
    assert record.misfire_grace_s == 3600
    assert record.next_run == anchor + HOUR

    # No gateway ran for five and a half hours; then one scheduler pass.
    back = anchor + 5 * HOUR + LATE
    with time_machine.travel(back, tick=False):
        assert await harness.scheduler.run_due() == 1

    missed, fired = await harness.history(record.id)
    assert (missed.status, missed.scheduled_for, missed.missed_count) == (
        "missed",
        anchor + HOUR,
        4,
    )
    assert missed.fired_at == back
    assert (fired.status, fired.scheduled_for, fired.fired_at) == (
        "running",
        anchor + 5 * HOUR,
        back,
    )
    assert fired.missed_count is None
    assert harness.target.fired(record.id) == [anchor + 5 * HOUR]
    stored = await harness.service.get(record.id)
    assert stored.next_run == anchor + 6 * HOUR
    assert stored.run_count == 1

    # Nothing is replayed afterwards, and the next tick fires normally.
    assert await harness.scheduler.run_due(now=back) == 0
    assert await harness.scheduler.run_due(now=anchor + 6 * HOUR) == 1
    assert harness.target.fired(record.id) == [anchor + 5 * HOUR, anchor + 6 * HOUR]
    assert len(await harness.history(record.id)) == 3


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"misfire": "skip"}, id="skip"),
        pytest.param({"misfire": "run_once", "misfire_grace_s": 600}, id="beyond-grace"),
    ],
)
async def test_downtime_without_catch_up_records_every_tick_missed(
    harness: Harness, fields: dict[str, Any]
) -> None:
    record = await harness.create(utc(2026, 6, 1, 9), every="1h", **fields)
    anchor = record.anchor_at
    back = anchor + 5 * HOUR + LATE

    assert await harness.scheduler.run_due(now=back) == 1  # claimed, but nothing started

    (missed,) = await harness.history(record.id)
    assert (missed.status, missed.scheduled_for, missed.missed_count) == (
        "missed",
        anchor + HOUR,
        5,
    )
    assert harness.target.begun == []
    stored = await harness.service.get(record.id)
    assert stored.next_run == anchor + 6 * HOUR
    assert stored.run_count == 0
    assert stored.enabled
    assert await harness.scheduler.run_due(now=anchor + 6 * HOUR) == 1
    assert harness.target.fired(record.id) == [anchor + 6 * HOUR]


@pytest.mark.parametrize(
    ("misfire", "fired", "missed"), [("run_once", [SPRING_TICKS[-1]], 3), ("skip", [], 4)]
)
async def test_scheduler_catches_up_a_daily_cron_once_after_spring_forward_downtime(
    harness: Harness, misfire: str, fired: list[datetime], missed: int
) -> None:
    record = await harness.create(
        utc(2026, 3, 26, 12),
        cron_expression="30 2 * * *",
        timezone="Europe/Berlin",
        misfire=misfire,
    )
    assert record.next_run == SPRING_TICKS[0]

    back = SPRING_TICKS[-1] + timedelta(minutes=15)  # 02:45 CEST on 2026-03-30
    await harness.drive(back, back, timedelta(minutes=15))

    history = await harness.history(record.id)
    assert [(r.status, r.scheduled_for, r.missed_count) for r in history] == [
        ("missed", SPRING_TICKS[0], missed),
        *[("running", at, None) for at in fired],
    ]
    assert harness.target.fired(record.id) == fired
    assert (await harness.service.get(record.id)).next_run == utc(2026, 3, 31, 0, 30)


async def test_max_runs_completes_the_schedule(harness: Harness) -> None:
    record = await harness.create(utc(2026, 6, 1, 9), every="1h", max_runs=3)
    anchor = record.anchor_at
    for k in (1, 2):
        assert await harness.scheduler.run_due(now=anchor + k * HOUR) == 1
        assert (await harness.service.get(record.id)).state == "active"
    assert await harness.scheduler.run_due(now=anchor + 3 * HOUR) == 1

    stored = await harness.service.get(record.id)
    assert (stored.state, stored.enabled, stored.next_run, stored.run_count) == (
        "completed",
        False,
        None,
        3,
    )
    assert await harness.scheduler.run_due(now=anchor + 10 * HOUR) == 0
    assert harness.target.fired(record.id) == [anchor + k * HOUR for k in (1, 2, 3)]
    assert [r.status for r in await harness.history(record.id)] == ["running"] * 3


async def test_at_fires_once_then_completes(harness: Harness) -> None:
    record = await harness.create(
        utc(2026, 6, 1, 9), at="2026-06-01T14:00", timezone="Europe/Berlin"
    )
    at = utc(2026, 6, 1, 12)  # 14:00 CEST
    assert (record.at, record.next_run, record.max_runs) == (at, at, 1)

    claimed = await harness.drive(utc(2026, 6, 1, 9, 15), utc(2026, 6, 1, 16), HOUR / 4)

    assert claimed == 1
    assert harness.target.fired(record.id) == [at]
    (run,) = await harness.history(record.id)
    assert (run.status, run.scheduled_for, run.fired_at) == ("running", at, at)
    stored = await harness.service.get(record.id)
    assert (stored.state, stored.enabled, stored.next_run, stored.run_count) == (
        "completed",
        False,
        None,
        1,
    )


def in_overnight_window(moment: datetime, tz: ZoneInfo, start_day: int) -> bool:
    """22:00-06:00 starting on ISO weekday `start_day`, computed independently of src."""
    local = moment.astimezone(tz)
    next_day = start_day % 7 + 1
    return (local.isoweekday() == start_day and local.hour >= 22) or (
        local.isoweekday() == next_day and local.hour < 6
    )


@pytest.mark.parametrize(
    ("tz", "friday_or_saturday", "first_day", "fired_count"),
    [
        # A June Friday night in New York: 22, 23, 00 … 05 = 8 runs.
        pytest.param(NEW_YORK, 5, date(2026, 6, 4), 8, id="new-york-friday"),
        # Saturday night into the spring change in Berlin: 02:00 does not exist, 7 runs.
        pytest.param(BERLIN, 6, date(2026, 3, 27), 7, id="berlin-spring-saturday"),
        # Saturday night into the autumn change in Berlin: 02:00 happens twice, 9 runs.
        pytest.param(BERLIN, 6, date(2026, 10, 23), 9, id="berlin-autumn-saturday"),
    ],
)
async def test_overnight_active_hours_in_the_schedules_zone(
    harness: Harness, tz: ZoneInfo, friday_or_saturday: int, first_day: date, fired_count: int
) -> None:
    start = local_midnight(first_day, tz)
    end = local_midnight(first_day + 3 * DAY, tz)
    record = await harness.create(
        start - timedelta(minutes=30),
        cron_expression="0 * * * *",
        timezone=tz.key,
        active_hours={"start": "22:00", "end": "06:00", "daysOfWeek": [friday_or_saturday]},
    )
    await harness.drive(start, end - timedelta(minutes=15), timedelta(minutes=15))

    history = await harness.history(record.id)
    assert len(history) == int((end - start) / HOUR)
    for run in history:
        inside = in_overnight_window(run.scheduled_for, tz, friday_or_saturday)
        assert (run.status, run.reason) == (
            ("running", None) if inside else ("skipped", "outside_active_hours")
        ), run.scheduled_for.astimezone(tz)
    fired = [r.scheduled_for for r in history if r.status == "running"]
    assert len(fired) == fired_count
    assert harness.target.fired(record.id) == fired
    assert all(b - a == HOUR for a, b in pairwise(fired))  # one unbroken night
    assert (await harness.service.get(record.id)).run_count == fired_count
