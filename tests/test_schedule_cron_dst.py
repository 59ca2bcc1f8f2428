"""6-field cron (seconds first) agrees with the 5-field form in every daylight-saving week.

A 6-field expression `S M H d m w` fires at each tick of the 5-field `M H d m w` plus S
seconds of real time. Review found that adding the seconds to a local time in the repeated
autumn hour dropped its `fold`, so `"0 */30 * * * *"` in Europe/Berlin on 2025-10-26 lost
01:00 and 01:30 UTC and its tick sequence went backwards (which also miscounted misfires).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache
from itertools import islice, pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hearth.scheduling.planning import plan
from hearth.scheduling.triggers import CronTrigger

BERLIN = ZoneInfo("Europe/Berlin")
#: Zones with daylight saving of several shapes: northern and southern hemisphere, a
#: 30-minute shift (Lord Howe), a change at midnight (Santiago, Havana), and one at 00:00
#: local that skips midnight itself (Beirut, Asuncion).
DST_ZONES = [
    "Europe/Berlin",
    "Europe/London",
    "America/New_York",
    "America/Santiago",
    "America/Havana",
    "America/Asuncion",
    "Australia/Sydney",
    "Australia/Lord_Howe",
    "Pacific/Auckland",
    "Asia/Beirut",
]
FIVE_FIELD = [
    "*/30 * * * *",
    "*/15 * * * *",
    "0 * * * *",
    "30 2 * * *",
    "0,30 1-3 * * *",
    "45 0 * * *",
    "0 0 * * *",
    "15 23 * * 6",
]
SECONDS = ["0", "30", "59", "0,30", "*/20", "5-7"]
WEEK = timedelta(days=7)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@cache
def transitions(zone_name: str, year: int) -> tuple[datetime, ...]:
    """The UTC hours in `year` at whose start the zone's offset has just changed."""
    tz = ZoneInfo(zone_name)
    found: list[datetime] = []
    moment = utc(year, 1, 1)
    offset = moment.astimezone(tz).utcoffset()
    while moment.year == year:
        moment += timedelta(minutes=30)
        current = moment.astimezone(tz).utcoffset()
        if current != offset:
            found.append(moment)
            offset = current
    return tuple(found)


def window(trigger: CronTrigger, start: datetime, end: datetime) -> list[datetime]:
    """The ticks in (start, end) from one `ticks` iterator, as `plan` walks them."""
    found: list[datetime] = []
    for tick in trigger.ticks(start):
        if tick >= end:
            return found
        found.append(tick)
    return found


def chained(trigger: CronTrigger, start: datetime, end: datetime) -> list[datetime]:
    """The ticks in (start, end) by repeated `next_after`, as the scheduler loop finds them."""
    found: list[datetime] = []
    current = start
    while (tick := trigger.next_after(current)) is not None and tick < end:
        found.append(tick)
        current = tick
    return found


def expected_six(
    five: str, seconds: str, tz: ZoneInfo, start: datetime, end: datetime
) -> list[datetime]:
    """The 6-field expression's ticks as the 5-field form's ticks plus each second."""
    allowed = sorted(_seconds(seconds))
    base = window(CronTrigger(five, tz), start - timedelta(minutes=1), end)
    return [
        t + timedelta(seconds=s)
        for t in base
        for s in allowed
        if start < t + timedelta(seconds=s) < end
    ]


def _seconds(spec: str) -> set[int]:
    found: set[int] = set()
    for part in spec.split(","):
        if part.startswith("*/"):
            found.update(range(0, 60, int(part[2:])))
        elif "-" in part:
            low, high = part.split("-")
            found.update(range(int(low), int(high) + 1))
        else:
            found.add(int(part))
    return found


def strictly_increasing(ticks: list[datetime]) -> bool:
    return all(a < b for a, b in pairwise(ticks))


# -- the case review found ---------------------------------------------------------------------


def test_berlin_autumn_half_hourly_with_seconds_keeps_the_repeated_hour() -> None:
    six = CronTrigger("0 */30 * * * *", BERLIN)
    five = CronTrigger("*/30 * * * *", BERLIN)
    start = utc(2025, 10, 25, 23, 45)
    expected = [
        utc(2025, 10, 26, 0, 0),  # 02:00 CEST
        utc(2025, 10, 26, 0, 30),  # 02:30 CEST
        utc(2025, 10, 26, 1, 0),  # 02:00 CET, the repeated hour
        utc(2025, 10, 26, 1, 30),  # 02:30 CET
        utc(2025, 10, 26, 2, 0),  # 03:00 CET
    ]
    assert list(islice(six.ticks(start), 5)) == expected
    assert list(islice(five.ticks(start), 5)) == expected
    assert chained(six, start, utc(2025, 10, 26, 2, 1)) == expected


def test_berlin_autumn_ticks_from_inside_the_repeated_hour_never_go_back() -> None:
    six = CronTrigger("0 */30 * * * *", BERLIN)
    # 02:40 CEST, the first pass through 02:xx: the next ticks are 02:00 CET and 02:30 CET.
    start = utc(2025, 10, 26, 0, 40)
    assert list(islice(six.ticks(start), 3)) == [
        utc(2025, 10, 26, 1, 0),
        utc(2025, 10, 26, 1, 30),
        utc(2025, 10, 26, 2, 0),
    ]
    # 02:10 CET, the second pass: nothing of the first pass comes back.
    start = utc(2025, 10, 26, 1, 10)
    assert list(islice(six.ticks(start), 2)) == [utc(2025, 10, 26, 1, 30), utc(2025, 10, 26, 2, 0)]


def test_misfires_across_the_repeated_hour_count_each_real_tick_once() -> None:
    """Downtime over the Berlin autumn change: every half hour of real time is one tick."""
    six = CronTrigger("0 */30 * * * *", BERLIN)
    due = utc(2025, 10, 25, 23, 0)  # 01:00 CEST
    now = utc(2025, 10, 26, 3, 0)  # 04:00 CET: four real hours, nine half-hour ticks
    tick = plan(six, due, now, misfire="run_once", grace=timedelta(hours=1))
    assert tick.fire_at == now
    assert tick.missed_count == 8  # 23:00 … 02:30 UTC, half-hourly
    assert tick.next_run == utc(2025, 10, 26, 3, 30)


@pytest.mark.parametrize("zone_name", DST_ZONES)
@pytest.mark.parametrize(
    ("six", "five"),
    [
        ("0 */30 * * * *", "*/30 * * * *"),
        ("30 0 2 * * *", "0 2 * * *"),
        ("7 15 * * * *", "15 * * * *"),
    ],
)
def test_six_fields_agree_with_five_around_every_dst_change_of_2025_and_2026(
    zone_name: str, six: str, five: str
) -> None:
    tz = ZoneInfo(zone_name)
    seconds = six.split()[0]
    for year in (2025, 2026):
        for change in transitions(zone_name, year):
            start, end = change - timedelta(days=1), change + timedelta(days=1)
            found = window(CronTrigger(six, tz), start, end)
            assert found == expected_six(five, seconds, tz, start, end), (zone_name, change)
            assert strictly_increasing(found), (zone_name, change)


# -- property: any zone, any DST week, any expression ------------------------------------------


@st.composite
def dst_weeks(draw: st.DrawFn) -> tuple[ZoneInfo, datetime]:
    """A zone and a moment within half a week of one of its DST changes (2000-2037)."""
    zone_name = draw(st.sampled_from(DST_ZONES))
    year = draw(st.integers(min_value=2000, max_value=2037))
    changes = transitions(zone_name, year)
    if not changes:
        return ZoneInfo(zone_name), utc(year, 6, 1)
    change = draw(st.sampled_from(changes))
    offset = draw(st.timedeltas(min_value=-WEEK / 2, max_value=WEEK / 2))
    return ZoneInfo(zone_name), change + offset


@settings(deadline=None, max_examples=80)  # no wall-clock limits in this suite
@given(week=dst_weeks(), five=st.sampled_from(FIVE_FIELD), seconds=st.sampled_from(SECONDS))
def test_six_field_ticks_are_the_five_field_ticks_plus_seconds_in_any_dst_week(
    week: tuple[ZoneInfo, datetime], five: str, seconds: str
) -> None:
    tz, start = week
    end = start + timedelta(days=1)
    six = CronTrigger(f"{seconds} {five}", tz)
    found = window(six, start, end)
    assert strictly_increasing(found)
    assert all(tick > start for tick in found)
    assert found == expected_six(five, seconds, tz, start, end)


@settings(deadline=None, max_examples=30)  # no wall-clock limits in this suite
@given(week=dst_weeks(), five=st.sampled_from(FIVE_FIELD), seconds=st.sampled_from(SECONDS))
def test_next_after_walks_the_same_ticks_as_the_iterator(
    week: tuple[ZoneInfo, datetime], five: str, seconds: str
) -> None:
    tz, start = week
    end = start + timedelta(hours=6)
    six = CronTrigger(f"{seconds} {five}", tz)
    assert chained(six, start, end) == window(six, start, end)


@settings(deadline=None, max_examples=40)  # no wall-clock limits in this suite
@given(week=dst_weeks(), five=st.sampled_from(FIVE_FIELD))
def test_five_field_ticks_strictly_increase_in_any_dst_week(
    week: tuple[ZoneInfo, datetime], five: str
) -> None:
    tz, start = week
    found = window(CronTrigger(five, tz), start, start + timedelta(days=1))
    assert strictly_increasing(found)
    assert all(tick > start for tick in found)
