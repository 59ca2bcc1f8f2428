"""Triggers and active hours as pure functions: cron across DST, every-N, at, activeHours.

The 2026 transitions used throughout:

- Europe/Berlin springs forward on 2026-03-29 at 01:00 UTC (02:00 CET -> 03:00 CEST) and falls
  back on 2026-10-25 at 01:00 UTC (03:00 CEST -> 02:00 CET, so 02:00-02:59 happens twice).
- America/New_York springs forward on 2026-03-08 at 02:00 local (-> 03:00 EDT) and falls back on
  2026-11-01 at 02:00 local (-> 01:00 EST, so 01:00-01:59 happens twice).

Cron follows Debian cron (as cronsim implements it): a job at a fixed time inside the skipped
spring hour runs once, right after the gap (03:00); a job at a fixed time inside the repeated
autumn hour runs once (the first time); a job with a wildcard hour runs once per real hour.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hearth.scheduling.active_hours import ActiveHours
from hearth.scheduling.errors import InvalidScheduleError
from hearth.scheduling.triggers import AtTrigger, CronTrigger, EveryTrigger, check_cron, zone

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
_DAY = timedelta(days=1)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """The start of `day` in `tz`, as UTC (so differences are real elapsed time)."""
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def ticks(trigger: CronTrigger | EveryTrigger, start: datetime, end: datetime) -> list[datetime]:
    """Every tick in (start, end), found by iterating `next_after` as the scheduler does."""
    found: list[datetime] = []
    current = start
    while True:
        tick = trigger.next_after(current)
        assert tick is not None
        if tick >= end:
            return found
        found.append(tick)
        current = tick


# (zone, local date of the change, the daily 02:30 job's tick on that date in UTC)
TRANSITIONS = [
    pytest.param(BERLIN, date(2026, 3, 29), utc(2026, 3, 29, 1, 0), id="berlin-spring"),
    pytest.param(BERLIN, date(2026, 10, 25), utc(2026, 10, 25, 0, 30), id="berlin-autumn"),
    pytest.param(NEW_YORK, date(2026, 3, 8), utc(2026, 3, 8, 7, 0), id="new-york-spring"),
    pytest.param(NEW_YORK, date(2026, 11, 1), utc(2026, 11, 1, 7, 30), id="new-york-autumn"),
]
#: The instants of the four changes, for property tests that probe around them.
CHANGES = [
    utc(2026, 3, 29, 1, 0),
    utc(2026, 10, 25, 1, 0),
    utc(2026, 3, 8, 7, 0),
    utc(2026, 11, 1, 6, 0),
]


# -- cron: a daily job at 02:30 ----------------------------------------------------------------


@pytest.mark.parametrize(("tz", "change_day", "change_tick"), TRANSITIONS)
def test_daily_0230_runs_once_on_every_local_day_around_a_dst_change(
    tz: ZoneInfo, change_day: date, change_tick: datetime
) -> None:
    trigger = CronTrigger("30 2 * * *", tz)
    days = [change_day + timedelta(days=d) for d in range(-3, 4)]
    found = ticks(trigger, local_midnight(days[0], tz), local_midnight(days[-1], tz) + _DAY)

    assert [t.astimezone(tz).date() for t in found] == days  # one per day: none lost, none twice
    expected = [
        change_tick if day == change_day else datetime.combine(day, time(2, 30), tz) for day in days
    ]
    assert found == [t.astimezone(UTC) for t in expected]
    assert all(t.tzinfo is UTC for t in found)


def test_daily_0230_in_the_skipped_hour_runs_at_0300_right_after_the_gap() -> None:
    berlin = CronTrigger("30 2 * * *", BERLIN).next_after(utc(2026, 3, 28, 12))
    assert berlin == utc(2026, 3, 29, 1, 0)
    assert berlin.astimezone(BERLIN).isoformat() == "2026-03-29T03:00:00+02:00"
    new_york = CronTrigger("30 2 * * *", NEW_YORK).next_after(utc(2026, 3, 7, 12))
    assert new_york is not None
    assert new_york.astimezone(NEW_YORK).isoformat() == "2026-03-08T03:00:00-04:00"


@pytest.mark.parametrize(
    ("tz", "expression", "day", "first", "second"),
    [
        # Berlin repeats 02:00-02:59 on 2026-10-25: 02:30 CEST (00:30Z), then 02:30 CET (01:30Z)
        (
            BERLIN,
            "30 2 * * *",
            date(2026, 10, 25),
            utc(2026, 10, 25, 0, 30),
            utc(2026, 10, 25, 1, 30),
        ),
        # New York repeats 01:00-01:59 on 2026-11-01: 01:30 EDT (05:30Z), then 01:30 EST (06:30Z)
        (
            NEW_YORK,
            "30 1 * * *",
            date(2026, 11, 1),
            utc(2026, 11, 1, 5, 30),
            utc(2026, 11, 1, 6, 30),
        ),
    ],
)
def test_daily_job_in_the_repeated_hour_runs_once_the_first_time(
    tz: ZoneInfo, expression: str, day: date, first: datetime, second: datetime
) -> None:
    trigger = CronTrigger(expression, tz)
    assert trigger.next_after(local_midnight(day, tz)) == first
    # However the scheduler's clock falls inside the repeated hour, the second 02:30 (01:30)
    # is never the next tick: the next run is the following day's.
    following = datetime.combine(day + _DAY, first.astimezone(tz).time(), tz).astimezone(UTC)
    for probe in (first, first + timedelta(minutes=10), second - timedelta(seconds=1), second):
        assert trigger.next_after(probe) == following


# -- cron: an hourly job -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tz", "change_day", "hours_that_day"),
    [
        pytest.param(BERLIN, date(2026, 3, 29), 23, id="berlin-spring"),
        pytest.param(BERLIN, date(2026, 10, 25), 25, id="berlin-autumn"),
        pytest.param(NEW_YORK, date(2026, 3, 8), 23, id="new-york-spring"),
        pytest.param(NEW_YORK, date(2026, 11, 1), 25, id="new-york-autumn"),
    ],
)
def test_hourly_job_runs_once_per_real_hour_across_a_dst_change(
    tz: ZoneInfo, change_day: date, hours_that_day: int
) -> None:
    start = local_midnight(change_day - _DAY, tz)
    end = local_midnight(change_day + 2 * _DAY, tz)
    found = ticks(CronTrigger("0 * * * *", tz), start - timedelta(seconds=1), end)

    real_hours = int((end - start) / timedelta(hours=1))
    assert found == [start + timedelta(hours=h) for h in range(real_hours)]
    per_utc_hour = Counter(t.replace(minute=0, second=0, microsecond=0) for t in found)
    assert set(per_utc_hour.values()) == {1}
    assert all(b - a == timedelta(hours=1) for a, b in pairwise(found))
    per_local_day = Counter(t.astimezone(tz).date() for t in found)
    assert per_local_day == {
        change_day - _DAY: 24,
        change_day: hours_that_day,
        change_day + _DAY: 24,
    }
    day_start, day_end = local_midnight(change_day, tz), local_midnight(change_day + _DAY, tz)
    assert (day_end - day_start) == timedelta(hours=hours_that_day)


def test_hourly_job_in_the_repeated_hour_runs_on_both_real_hours() -> None:
    trigger = CronTrigger("0 * * * *", BERLIN)
    found = ticks(trigger, utc(2026, 10, 24, 22, 30), utc(2026, 10, 25, 2, 30))
    assert [t.astimezone(BERLIN).isoformat() for t in found] == [
        "2026-10-25T01:00:00+02:00",
        "2026-10-25T02:00:00+02:00",
        "2026-10-25T02:00:00+01:00",
        "2026-10-25T03:00:00+01:00",
    ]


# -- cron: seconds, validation -----------------------------------------------------------------


def test_six_field_expression_has_a_seconds_field_first() -> None:
    trigger = CronTrigger(check_cron("*/20 * * * * *"), BERLIN)
    found = ticks(trigger, utc(2026, 6, 1, 12, 0, 0), utc(2026, 6, 1, 12, 1, 1))
    assert found == [utc(2026, 6, 1, 12, 0, 20), utc(2026, 6, 1, 12, 0, 40), utc(2026, 6, 1, 12, 1)]
    daily = CronTrigger(check_cron("15 30 9 * * *"), NEW_YORK)
    assert daily.next_after(utc(2026, 6, 1)) == utc(2026, 6, 1, 13, 30, 15)  # 09:30:15 EDT


def test_six_field_expression_ticks_every_second_in_real_time_across_the_gap() -> None:
    trigger = CronTrigger("*/20 * * * * *", BERLIN)
    found = ticks(trigger, utc(2026, 3, 29, 0, 59, 30), utc(2026, 3, 29, 1, 0, 30))
    assert [t.astimezone(BERLIN).isoformat() for t in found] == [
        "2026-03-29T01:59:40+01:00",
        "2026-03-29T03:00:00+02:00",
        "2026-03-29T03:00:20+02:00",
    ]


@pytest.mark.parametrize(
    ("expression", "day", "expected"),
    [
        pytest.param("0 30 2 * * *", date(2026, 3, 29), [utc(2026, 3, 29, 1, 0)], id="spring"),
        pytest.param("0 30 2 * * *", date(2026, 10, 25), [utc(2026, 10, 25, 0, 30)], id="autumn"),
    ],
)
def test_six_field_fixed_time_follows_the_same_dst_rules_as_five_fields(
    expression: str, day: date, expected: list[datetime]
) -> None:
    five = CronTrigger("30 2 * * *", BERLIN)
    six = CronTrigger(expression, BERLIN)
    window = (local_midnight(day, BERLIN), local_midnight(day + _DAY, BERLIN))
    assert ticks(five, *window) == expected
    assert ticks(six, *window) == expected


def test_check_cron_normalises_whitespace_and_accepts_five_or_six_fields() -> None:
    assert check_cron("  30   2 * *   * ") == "30 2 * * *"
    assert check_cron("0 30 2 * * *") == "0 30 2 * * *"
    assert check_cron("0 9 * * MON-FRI") == "0 9 * * MON-FRI"


@pytest.mark.parametrize(
    "expression",
    [
        pytest.param("* * * *", id="4-fields"),
        pytest.param("* * * * * * *", id="7-fields"),
        pytest.param("", id="empty"),
        pytest.param("@daily", id="macro"),
        pytest.param("61 * * * *", id="minute-61"),
        pytest.param("0 24 * * *", id="hour-24"),
        pytest.param("60 * * * * *", id="second-60"),
        pytest.param("0 0 * 13 *", id="month-13"),
        pytest.param("0 0 30 2 *", id="never"),
        pytest.param("a b c d e", id="garbage"),
        pytest.param("*/0 * * * *", id="zero-step"),
    ],
)
def test_check_cron_rejects_bad_expressions_naming_the_field(expression: str) -> None:
    with pytest.raises(InvalidScheduleError) as info:
        check_cron(expression)
    assert info.value.field == "cronExpression"
    assert repr(expression) in info.value.reason


def test_unknown_zone_names_the_field() -> None:
    with pytest.raises(InvalidScheduleError) as info:
        zone("Mars/Olympus_Mons")
    assert info.value.field == "timezone"
    assert zone("Europe/Berlin") == BERLIN


CRON_EXPRESSIONS = [
    "30 2 * * *",
    "30 1 * * *",
    "0 * * * *",
    "*/15 * * * *",
    "15,45 1,2 * * *",
    "0 0 * * *",
    "0 3 * * 0",
    "*/20 * * * * *",
]
ZONES = [BERLIN, NEW_YORK, ZoneInfo("Australia/Lord_Howe"), ZoneInfo("UTC")]
near_a_change = st.builds(
    lambda change, offset: change + offset,
    st.sampled_from(CHANGES),
    st.timedeltas(min_value=-timedelta(days=3), max_value=timedelta(days=3)),
)
anywhere_in_2026 = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2026, 12, 31)
).map(lambda d: d.replace(tzinfo=UTC))


@settings(deadline=None)  # no wall-clock limits in this suite
@given(
    expression=st.sampled_from(CRON_EXPRESSIONS),
    tz=st.sampled_from(ZONES),
    moment=near_a_change | anywhere_in_2026,
    fraction=st.floats(min_value=0, max_value=1, exclude_max=True),
)
def test_cron_ticks_strictly_increase_and_none_is_skipped(
    expression: str, tz: ZoneInfo, moment: datetime, fraction: float
) -> None:
    trigger = CronTrigger(expression, tz)
    tick = trigger.next_after(moment)
    assert tick is not None
    assert tick > moment
    assert tick.utcoffset() == timedelta(0)
    following = trigger.next_after(tick)
    assert following is not None
    assert following > tick
    # `next_after` is a step function: from anywhere in [moment, tick) the next tick is `tick`.
    between = min(moment + (tick - moment) * fraction, tick - timedelta(microseconds=1))
    assert trigger.next_after(between) == tick
    assert trigger.next_after(tick - timedelta(microseconds=1)) == tick


@settings(deadline=None)  # no wall-clock limits in this suite
@given(tz=st.sampled_from([BERLIN, NEW_YORK]), moment=near_a_change)
def test_daily_cron_from_any_moment_gives_one_tick_per_consecutive_local_day(
    tz: ZoneInfo, moment: datetime
) -> None:
    trigger = CronTrigger("30 2 * * *", tz)
    first = trigger.next_after(moment)
    assert first is not None
    second = trigger.next_after(first)
    assert second is not None
    third = trigger.next_after(second)
    assert third is not None
    days = [t.astimezone(tz).date() for t in (first, second, third)]
    assert days == [days[0], days[0] + _DAY, days[0] + 2 * _DAY]
    assert all(t.astimezone(tz).time() in (time(2, 30), time(3, 0)) for t in (first, second))


# -- every -------------------------------------------------------------------------------------

ANCHOR = utc(2026, 6, 1, 9, 17, 23, 456789)


def test_every_is_anchored_to_its_creation_time_not_the_clock() -> None:
    trigger = EveryTrigger(timedelta(minutes=15), ANCHOR)
    found = ticks(trigger, ANCHOR, ANCHOR + timedelta(hours=1, seconds=1))
    assert found == [ANCHOR + timedelta(minutes=15 * k) for k in (1, 2, 3, 4)]
    assert found[0] == utc(2026, 6, 1, 9, 32, 23, 456789)  # not 09:30


def test_every_next_after_is_strictly_after_even_exactly_on_a_tick() -> None:
    trigger = EveryTrigger(timedelta(minutes=15), ANCHOR)
    tick = ANCHOR + timedelta(minutes=45)
    assert trigger.next_after(tick) == tick + timedelta(minutes=15)
    assert trigger.next_after(tick - timedelta(microseconds=1)) == tick
    assert trigger.next_after(ANCHOR) == ANCHOR + timedelta(minutes=15)


def test_every_before_its_anchor_starts_at_the_anchor() -> None:
    trigger = EveryTrigger(timedelta(hours=1), ANCHOR)
    assert trigger.next_after(ANCHOR - timedelta(days=3)) == ANCHOR
    assert trigger.next_after(ANCHOR - timedelta(microseconds=1)) == ANCHOR


def test_every_is_real_elapsed_time_across_a_dst_change() -> None:
    anchor = utc(2026, 3, 28, 12)
    trigger = EveryTrigger(timedelta(hours=24), anchor)
    found = ticks(trigger, anchor, anchor + timedelta(days=2, seconds=1))
    assert found == [utc(2026, 3, 29, 12), utc(2026, 3, 30, 12)]
    assert [t.astimezone(BERLIN).hour for t in found] == [14, 14]
    assert anchor.astimezone(BERLIN).hour == 13


def test_every_ticks_between_counts_both_ends() -> None:
    trigger = EveryTrigger(timedelta(hours=1), ANCHOR)
    start = ANCHOR + timedelta(hours=1)
    assert trigger.ticks_between(start, start) == 1
    assert trigger.ticks_between(start, start + timedelta(minutes=59)) == 1
    assert trigger.ticks_between(start, start + timedelta(hours=4)) == 5
    assert trigger.ticks_between(start, start + timedelta(hours=4, minutes=30)) == 5
    assert trigger.ticks_between(start, start - timedelta(seconds=1)) == 0


def test_every_ticks_between_is_exact_for_fractional_intervals() -> None:
    interval = timedelta(milliseconds=1100)
    trigger = EveryTrigger(interval, ANCHOR)
    assert trigger.ticks_between(ANCHOR + interval, ANCHOR + 4 * interval) == 4


@settings(deadline=None)  # no wall-clock limits in this suite
@given(
    interval_ms=st.integers(min_value=1000, max_value=10 * 86_400_000),
    offset=st.timedeltas(min_value=-timedelta(days=30), max_value=timedelta(days=3650)),
)
def test_every_ticks_are_anchor_plus_k_intervals_and_the_first_after(
    interval_ms: int, offset: timedelta
) -> None:
    interval = timedelta(milliseconds=interval_ms)
    trigger = EveryTrigger(interval, ANCHOR)
    after = ANCHOR + offset
    tick = trigger.next_after(after)
    assert tick is not None
    assert tick > after
    assert (tick - ANCHOR) % interval == timedelta(0)
    assert tick >= ANCHOR
    # ... and it is the first such tick: the one before it is not after `after`.
    assert tick == ANCHOR or tick - interval <= after


# -- at ----------------------------------------------------------------------------------------


def test_at_fires_once() -> None:
    at = utc(2026, 12, 1, 8)
    trigger = AtTrigger(at)
    assert trigger.next_after(at - timedelta(days=30)) == at
    assert trigger.next_after(at - timedelta(microseconds=1)) == at
    assert trigger.next_after(at) is None
    assert trigger.next_after(at + timedelta(days=1)) is None


# -- active hours: parsing ---------------------------------------------------------------------


def test_active_hours_parse_and_round_trip() -> None:
    hours = ActiveHours.parse({"start": "22:00", "end": "06:00", "daysOfWeek": [5, 1, 5]})
    assert hours == ActiveHours(time(22), time(6), frozenset({1, 5}))
    assert hours.to_json() == {"start": "22:00", "end": "06:00", "daysOfWeek": [1, 5]}
    plain = ActiveHours.parse({"start": "09:00", "end": "17:30"})
    assert plain.days_of_week is None
    assert plain.to_json() == {"start": "09:00", "end": "17:30"}
    assert ActiveHours.parse(plain.to_json()) == plain


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        pytest.param("09:00-17:00", "activeHours", id="not-an-object"),
        pytest.param({"start": "9:00", "end": "17:00"}, "activeHours.start", id="one-digit"),
        pytest.param({"start": "09:00", "end": "24:00"}, "activeHours.end", id="hour-24"),
        pytest.param({"start": "09:60", "end": "17:00"}, "activeHours.start", id="minute-60"),
        pytest.param({"start": "0900", "end": "17:00"}, "activeHours.start", id="no-colon"),
        pytest.param({"start": 9, "end": "17:00"}, "activeHours.start", id="number"),
        pytest.param({"end": "17:00"}, "activeHours.start", id="missing-start"),
        pytest.param({"start": "09:00"}, "activeHours.end", id="missing-end"),
        pytest.param({"start": "09:00", "end": "09:00"}, "activeHours", id="start-equals-end"),
        pytest.param(
            {"start": "09:00", "end": "17:00", "daysOfWeek": [0]},
            "activeHours.daysOfWeek",
            id="day-0",
        ),
        pytest.param(
            {"start": "09:00", "end": "17:00", "daysOfWeek": [1, 8]},
            "activeHours.daysOfWeek",
            id="day-8",
        ),
        pytest.param(
            {"start": "09:00", "end": "17:00", "daysOfWeek": []},
            "activeHours.daysOfWeek",
            id="no-days",
        ),
        pytest.param(
            {"start": "09:00", "end": "17:00", "daysOfWeek": [True]},
            "activeHours.daysOfWeek",
            id="bool-day",
        ),
        pytest.param(
            {"start": "09:00", "end": "17:00", "daysOfWeek": ["1"]},
            "activeHours.daysOfWeek",
            id="string-day",
        ),
        pytest.param(
            {"start": "09:00", "end": "17:00", "daysOfWeek": 1},
            "activeHours.daysOfWeek",
            id="not-a-list",
        ),
        pytest.param(
            {"start": "09:00", "end": "17:00", "timezone": "UTC"},
            "activeHours.timezone",
            id="unknown-key",
        ),
    ],
)
def test_active_hours_parse_errors_name_the_field(raw: Any, field: str) -> None:
    with pytest.raises(InvalidScheduleError) as info:
        ActiveHours.parse(raw)
    assert info.value.field == field


def test_active_hours_parse_errors_use_the_given_field_prefix() -> None:
    with pytest.raises(InvalidScheduleError) as info:
        ActiveHours.parse({"start": "xx", "end": "06:00"}, field="heartbeat.activeHours")
    assert info.value.field == "heartbeat.activeHours.start"


# -- active hours: membership ------------------------------------------------------------------


def berlin(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)


def test_daytime_window_includes_start_and_excludes_end() -> None:
    hours = ActiveHours(time(9), time(17))
    assert not hours.contains(berlin(2026, 6, 3, 8, 59, 59), BERLIN)
    assert hours.contains(berlin(2026, 6, 3, 9, 0), BERLIN)
    assert hours.contains(berlin(2026, 6, 3, 16, 59, 59), BERLIN)
    assert not hours.contains(berlin(2026, 6, 3, 17, 0), BERLIN)


def test_window_and_days_are_judged_in_the_schedules_zone_not_utc() -> None:
    hours = ActiveHours(time(9), time(17))
    assert hours.contains(utc(2026, 6, 1, 14), NEW_YORK)  # 10:00 EDT
    assert hours.contains(utc(2026, 6, 1, 20, 30), NEW_YORK)  # 16:30 EDT, 20:30 UTC
    assert not hours.contains(utc(2026, 6, 1, 10), NEW_YORK)  # 06:00 EDT, 10:00 UTC
    assert not hours.contains(utc(2026, 6, 1, 21), NEW_YORK)  # 17:00 EDT
    friday_evening = ActiveHours(time(20), time(23), frozenset({5}))
    saturday_utc = utc(2026, 6, 6, 1)  # Saturday 01:00 UTC is Friday 21:00 in New York
    assert saturday_utc.isoweekday() == 6
    assert friday_evening.contains(saturday_utc, NEW_YORK)
    assert not friday_evening.contains(saturday_utc, ZoneInfo("UTC"))


def test_overnight_window_belongs_to_the_day_it_starts_on() -> None:
    friday_night = ActiveHours.parse({"start": "22:00", "end": "06:00", "daysOfWeek": [5]})
    assert date(2026, 6, 5).isoweekday() == 5  # a Friday
    inside = [
        berlin(2026, 6, 5, 22, 0),
        berlin(2026, 6, 5, 23, 59, 59),
        berlin(2026, 6, 6, 0, 0),
        berlin(2026, 6, 6, 2, 0),  # 02:00 on Saturday is inside the Friday window
        berlin(2026, 6, 6, 5, 59, 59),
    ]
    outside = [
        berlin(2026, 6, 5, 2, 0),  # Friday early morning belongs to Thursday's window
        berlin(2026, 6, 5, 21, 59, 59),
        berlin(2026, 6, 6, 6, 0),
        berlin(2026, 6, 6, 12, 0),
        berlin(2026, 6, 6, 22, 0),  # Saturday's own night is not active
        berlin(2026, 6, 7, 2, 0),
    ]
    assert [friday_night.contains(m, BERLIN) for m in inside] == [True] * len(inside)
    assert [friday_night.contains(m, BERLIN) for m in outside] == [False] * len(outside)


def test_overnight_window_from_sunday_reaches_into_monday() -> None:
    sunday_night = ActiveHours(time(22), time(6), frozenset({7}))
    assert sunday_night.contains(berlin(2026, 6, 8, 3, 0), BERLIN)  # Monday 03:00
    assert not sunday_night.contains(berlin(2026, 6, 7, 3, 0), BERLIN)  # Sunday 03:00
    monday_night = ActiveHours(time(22), time(6), frozenset({1}))
    assert not monday_night.contains(berlin(2026, 6, 8, 3, 0), BERLIN)


def test_overnight_window_across_spring_forward_in_berlin() -> None:
    # Saturday 2026-03-28 22:00 CET (21:00Z) to Sunday 06:00 CEST (04:00Z): 7 real hours.
    saturday_night = ActiveHours(time(22), time(6), frozenset({6}))
    inside = [
        utc(2026, 3, 28, 21),
        utc(2026, 3, 29, 0, 59),
        utc(2026, 3, 29, 1),
        utc(2026, 3, 29, 3, 59),
    ]
    outside = [utc(2026, 3, 28, 20, 59), utc(2026, 3, 29, 4), utc(2026, 3, 29, 4, 30)]
    assert [saturday_night.contains(m, BERLIN) for m in inside] == [True] * 4
    # 04:30Z would be 05:30 in winter time; it is 06:30 CEST, after the window.
    assert [saturday_night.contains(m, BERLIN) for m in outside] == [False] * 3


def test_overnight_window_across_fall_back_in_berlin() -> None:
    # Saturday 2026-10-24 22:00 CEST (20:00Z) to Sunday 06:00 CET (05:00Z): 9 real hours.
    saturday_night = ActiveHours(time(22), time(6), frozenset({6}))
    inside = [
        utc(2026, 10, 24, 20),
        utc(2026, 10, 25, 0, 30),  # 02:30 CEST
        utc(2026, 10, 25, 1, 30),  # 02:30 CET, the repeated hour
        utc(2026, 10, 25, 4, 59),
    ]
    outside = [utc(2026, 10, 24, 19, 59), utc(2026, 10, 25, 5), utc(2026, 10, 25, 21)]
    assert [saturday_night.contains(m, BERLIN) for m in inside] == [True] * 4
    assert [saturday_night.contains(m, BERLIN) for m in outside] == [False] * 3


hhmm = st.builds(time, st.integers(0, 23), st.integers(0, 59))


@settings(deadline=None)  # no wall-clock limits in this suite
@given(
    start=hhmm,
    end=hhmm,
    moment=near_a_change | anywhere_in_2026,
    tz=st.sampled_from(ZONES),
)
def test_a_window_and_its_complement_partition_the_day(
    start: time, end: time, moment: datetime, tz: ZoneInfo
) -> None:
    if start == end:
        return
    window, complement = ActiveHours(start, end), ActiveHours(end, start)
    assert window.contains(moment, tz) != complement.contains(moment, tz)
    every_day = ActiveHours(start, end, frozenset(range(1, 8)))
    assert every_day.contains(moment, tz) == window.contains(moment, tz)


def test_midnight_to_midnight_with_days_means_whole_days() -> None:
    hours = ActiveHours.parse({"start": "00:00", "end": "00:00", "daysOfWeek": [5]})
    berlin = ZoneInfo("Europe/Berlin")
    friday_late = datetime(2026, 11, 27, 23, 59, 30, tzinfo=berlin)
    saturday = datetime(2026, 11, 28, 0, 0, 30, tzinfo=berlin)
    assert hours.contains(friday_late, berlin)
    assert not hours.contains(saturday, berlin)
    with pytest.raises(InvalidScheduleError):
        ActiveHours.parse({"start": "00:00", "end": "00:00"})
