"""With active hours, "next run" must name the tick that will fire, not one that is skipped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hearth.protocol.messages.schedules import ActiveHoursSpec
from hearth.scheduling.active_hours import ActiveHours
from hearth.scheduling.triggers import CronTrigger, EveryTrigger
from tests.support.gateway import RunningGateway
from tests.support.schedules import NOOP, create, info
from tests.support.workflows import reload, write_workflow

BERLIN = ZoneInfo("Europe/Berlin")
SECONDLY = EveryTrigger(timedelta(seconds=1), datetime(2026, 11, 1, tzinfo=UTC))


def test_an_every_second_schedule_jumps_over_the_weekend() -> None:
    weekdays = ActiveHours.parse({"start": "09:00", "end": "18:00", "daysOfWeek": [1, 2, 3, 4, 5]})
    friday_night = datetime(2026, 11, 27, 21, 0, tzinfo=BERLIN)
    found = weekdays.next_inside(friday_night, SECONDLY.next_after, BERLIN)
    assert found == datetime(2026, 11, 30, 9, 0, tzinfo=BERLIN)


def test_an_overnight_window_belongs_to_the_day_it_starts() -> None:
    friday_nights = ActiveHours.parse({"start": "22:00", "end": "06:00", "daysOfWeek": [5]})
    thursday_noon = datetime(2026, 11, 26, 12, 0, tzinfo=BERLIN)
    found = friday_nights.next_inside(thursday_noon, SECONDLY.next_after, BERLIN)
    assert found == datetime(2026, 11, 27, 22, 0, tzinfo=BERLIN)
    saturday_3am = datetime(2026, 11, 28, 3, 0, tzinfo=BERLIN)
    assert friday_nights.next_inside(saturday_3am, SECONDLY.next_after, BERLIN) == saturday_3am


def test_a_cron_tick_inside_is_kept_and_one_that_never_falls_inside_gives_none() -> None:
    mornings = ActiveHours.parse({"start": "08:00", "end": "12:00"})
    daily_10 = CronTrigger("0 10 * * *", BERLIN)
    tick = daily_10.next_after(datetime(2026, 11, 26, 12, 0, tzinfo=BERLIN))
    assert tick is not None
    assert mornings.next_inside(tick, daily_10.next_after, BERLIN) == tick
    daily_20 = CronTrigger("0 20 * * *", BERLIN)
    evening = daily_20.next_after(datetime(2026, 11, 26, 12, 0, tzinfo=BERLIN))
    assert evening is not None
    assert mornings.next_inside(evening, daily_20.next_after, BERLIN) is None


async def test_list_gives_the_first_tick_inside_the_active_hours(gateway: RunningGateway) -> None:
    write_workflow(gateway.data_dir, "noop", NOOP)
    client = await gateway.client()
    await reload(client)
    now = datetime.now(UTC)
    opens = (now + timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
    closes = opens + timedelta(hours=1)
    schedule_id = await create(
        client,
        name="later",
        every="15m",
        workflow_id="noop",
        timezone="UTC",
        active_hours=ActiveHoursSpec(start=opens.strftime("%H:%M"), end=closes.strftime("%H:%M")),
    )
    item = await info(client, schedule_id)
    assert item.next_run is not None
    assert item.next_active_run is not None
    assert item.next_run < opens  # the next tick is skipped: it is before the window opens
    assert opens <= item.next_active_run < opens + timedelta(minutes=15)
    assert (item.next_active_run - item.next_run) % timedelta(minutes=15) == timedelta(0)
