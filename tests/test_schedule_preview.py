"""`schedule.preview`: the ticks a schedule would fire, from the scheduler's own planning code.

Through a real gateway on loopback; the 6-field DST fix is visible from outside, and what the
preview promises is what a created schedule does.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest

from hearth.client import GatewayClient, GatewayError
from hearth.protocol import ErrorCode
from hearth.protocol.messages.schedules import (
    ActiveHoursSpec,
    SchedulePreview,
    SchedulePreviewResult,
)
from tests.support.gateway import RunningGateway
from tests.support.schedules import NOOP, create, info
from tests.support.workflows import reload, write_workflow


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


async def preview(client: GatewayClient, **fields: Any) -> SchedulePreviewResult:
    return await client.request(
        SchedulePreview(id=client.next_id(), **fields), SchedulePreviewResult
    )


async def test_six_field_cron_keeps_the_repeated_autumn_hour(
    sqlite_gateway: RunningGateway,
) -> None:
    client = await sqlite_gateway.client()
    result = await preview(
        client,
        cron_expression="0 */30 * * * *",
        timezone="Europe/Berlin",
        from_="2025-10-26T01:00",  # no offset: Berlin time (CEST)
        count=6,
    )
    assert result.timezone == "Europe/Berlin"
    assert [t.at for t in result.ticks] == [
        utc(2025, 10, 25, 23, 30),
        utc(2025, 10, 26, 0, 0),
        utc(2025, 10, 26, 0, 30),
        utc(2025, 10, 26, 1, 0),
        utc(2025, 10, 26, 1, 30),
        utc(2025, 10, 26, 2, 0),
    ]
    assert [t.local.isoformat() for t in result.ticks] == [
        "2025-10-26T01:30:00+02:00",
        "2025-10-26T02:00:00+02:00",
        "2025-10-26T02:30:00+02:00",
        "2025-10-26T02:00:00+01:00",
        "2025-10-26T02:30:00+01:00",
        "2025-10-26T03:00:00+01:00",
    ]
    assert {t.at.utcoffset() for t in result.ticks} == {timedelta(0)}
    assert all(t.skipped is None for t in result.ticks)


async def test_ticks_outside_the_active_hours_are_marked_skipped(
    sqlite_gateway: RunningGateway,
) -> None:
    client = await sqlite_gateway.client()
    result = await preview(
        client,
        every="1h",
        timezone="Europe/Berlin",
        from_="2026-06-05T15:30+02:00",  # a Friday
        active_hours=ActiveHoursSpec(start="09:00", end="17:00", days_of_week=[1, 2, 3, 4, 5]),
        count=4,
    )
    # Anchored at `from`, as a schedule created then would be.
    assert [(t.local.isoformat(), t.skipped) for t in result.ticks] == [
        ("2026-06-05T16:30:00+02:00", None),
        ("2026-06-05T17:30:00+02:00", "active_hours"),
        ("2026-06-05T18:30:00+02:00", "active_hours"),
        ("2026-06-05T19:30:00+02:00", "active_hours"),
    ]


async def test_an_at_trigger_has_one_tick_or_none(sqlite_gateway: RunningGateway) -> None:
    client = await sqlite_gateway.client()
    once = await preview(
        client, at="2030-01-31T09:00", timezone="America/New_York", from_="2030-01-01", count=5
    )
    assert [t.at for t in once.ticks] == [utc(2030, 1, 31, 14, 0)]
    past = await preview(client, at="2030-01-31T09:00Z", from_="2030-02-01T00:00Z")
    assert past.ticks == []


async def test_the_default_zone_and_count(sqlite_gateway: RunningGateway) -> None:
    client = await sqlite_gateway.client()
    result = await preview(client, cron_expression="0 9 * * *")
    assert len(result.ticks) == 10
    assert result.ticks[0].at > datetime.now(UTC)
    assert result.timezone  # the gateway's default zone, named
    assert all(a.at < b.at for a, b in pairwise(result.ticks))


async def test_a_created_schedule_fires_at_the_previewed_tick(gateway: RunningGateway) -> None:
    write_workflow(gateway.data_dir, "noop", NOOP)
    client = await gateway.client()
    await reload(client)
    fields: dict[str, Any] = {"cron_expression": "17 3 * * *", "timezone": "Australia/Lord_Howe"}
    schedule_id = await create(client, name="nightly", workflow_id="noop", **fields)
    item = await info(client, schedule_id)
    result = await preview(client, **fields, count=2)
    assert item.next_run is not None
    assert result.ticks[0].at == item.next_run
    assert result.ticks[0].local == item.next_run


@pytest.mark.parametrize(
    ("fields", "field", "fragment"),
    [
        pytest.param(
            {"cron_expression": "61 * * * *"}, "cronExpression", "'61 * * * *'", id="cron"
        ),
        pytest.param({"cron_expression": "* * *"}, "cronExpression", "3 fields", id="fields"),
        pytest.param({"every": "0s"}, "every", "at least 1s", id="every"),
        pytest.param({"at": "tomorrow"}, "at", "ISO 8601", id="at"),
        pytest.param(
            {"every": "1m", "timezone": "Mars/Olympus_Mons"}, "timezone", "Mars", id="zone"
        ),
        pytest.param({"every": "1m", "count": 101}, "count", "1 to 100", id="count-101"),
        pytest.param({"every": "1m", "count": 0}, "count", "got 0", id="count-0"),
        pytest.param({"every": "1m", "from_": "noon"}, "from", "ISO 8601", id="from"),
        pytest.param({}, "cronExpression", "exactly one", id="no-trigger"),
        pytest.param(
            {"every": "1m", "cron_expression": "* * * * *"}, "cronExpression", "got", id="two"
        ),
        pytest.param(
            {"every": "1m", "active_hours": ActiveHoursSpec(start="9am", end="17:00")},
            "activeHours.start",
            "9am",
            id="hours",
        ),
    ],
)
async def test_bad_input_names_the_field(
    sqlite_gateway: RunningGateway, fields: dict[str, Any], field: str, fragment: str
) -> None:
    client = await sqlite_gateway.client()
    with pytest.raises(GatewayError) as caught:
        await preview(client, **fields)
    assert caught.value.code == ErrorCode.INVALID_SCHEDULE
    assert caught.value.details == {"field": field}
    assert field in caught.value.message
    assert fragment in caught.value.message
