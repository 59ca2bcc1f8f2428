"""Schedules through the protocol on both backends: validation, firing, policies, history."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hearth.client import GatewayError
from hearth.protocol import ErrorCode
from hearth.protocol.messages.schedules import (
    ActiveHoursSpec,
    ScheduleDelete,
    ScheduleDeleted,
    ScheduleDisabled,
    ScheduleList,
    ScheduleListResult,
    ScheduleRuns,
    ScheduleTrigger,
    ScheduleTriggered,
    ScheduleUpdate,
    ScheduleUpdated,
)
from tests.support.gateway import RunningGateway, in_process_gateway
from tests.support.schedules import FAILING, NOOP, create, info, runs, wait_runs
from tests.support.workflows import reload, write_workflow

GATED = """
    name: Gated
    steps:
      - {id: gate, action: noop, approval_required: true}
"""


@pytest.fixture
async def noop_gateway(gateway: RunningGateway) -> RunningGateway:
    write_workflow(gateway.data_dir, "noop", NOOP)
    write_workflow(gateway.data_dir, "gated", GATED)
    client = await gateway.client()
    await reload(client)
    return gateway


async def test_every_schedule_fires_until_max_runs(noop_gateway: RunningGateway) -> None:
    client = await noop_gateway.client()
    schedule_id = await create(
        client, name="twice", every="1s", workflow_id="noop", max_runs=2, timezone="Europe/Berlin"
    )
    history = await wait_runs(client, schedule_id, 2, status={"ok"})
    assert [r.status for r in history] == ["ok", "ok"]
    assert all(r.execution_id for r in history)
    assert (history[1].scheduled_for - history[0].scheduled_for).total_seconds() == 1
    item = await info(client, schedule_id)
    assert (item.state, item.enabled, item.run_count, item.next_run) == (
        "completed",
        False,
        2,
        None,
    )
    assert item.last_run is not None
    assert item.last_run.status == "ok"
    assert item.timezone == "Europe/Berlin"
    await asyncio.sleep(1.5)
    assert len(await runs(client, schedule_id)) == 2


async def test_list_shows_times_in_the_schedule_zone(noop_gateway: RunningGateway) -> None:
    client = await noop_gateway.client()
    schedule_id = await create(
        client,
        name="morning",
        cron_expression="30 8 * * 1-5",
        timezone="America/New_York",
        workflow_id="noop",
    )
    item = await info(client, schedule_id)
    assert item.next_run is not None
    assert (item.next_run.hour, item.next_run.minute) == (8, 30)
    assert item.next_run.utcoffset() is not None
    assert item.next_run.isoweekday() <= 5
    assert (item.overlap, item.misfire, item.misfire_grace_s) == ("skip", "run_once", 3600)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"cron_expression": "61 * * * *"}, "cronExpression"),
        ({"cron_expression": "* * *"}, "cronExpression"),
        ({"every": "soon"}, "every"),
        ({"every": "0s"}, "every"),
        ({"at": "2020-01-01T09:00"}, "at"),
        ({"at": "tomorrow"}, "at"),
        ({"every": "5m", "timezone": "Mars/Olympus"}, "timezone"),
        ({"every": "5m", "cron_expression": "* * * * *"}, "cronExpression"),
        ({}, "cronExpression"),
        ({"every": "5m", "active_hours": {"start": "9am", "end": "18:00"}}, "activeHours.start"),
        ({"every": "5m", "active_hours": {"start": "09:00", "end": "09:00"}}, "activeHours"),
        (
            {
                "every": "5m",
                "active_hours": {"start": "09:00", "end": "18:00", "days_of_week": [0]},
            },
            "activeHours.daysOfWeek",
        ),
        ({"every": "5m", "max_runs": 0}, "maxRuns"),
        ({"every": "5m", "misfire_grace_s": -1}, "misfireGraceS"),
        ({"every": "5m", "input": {"unexpected": 1}}, "input.unexpected"),
    ],
)
async def test_invalid_fields_are_refused_and_nothing_is_saved(
    noop_gateway: RunningGateway, fields: dict[str, Any], field: str
) -> None:
    client = await noop_gateway.client()
    fields = dict(fields)
    if "active_hours" in fields:
        fields["active_hours"] = ActiveHoursSpec(**fields["active_hours"])
    with pytest.raises(GatewayError) as info_:
        await create(client, name="bad", workflow_id="noop", **fields)
    assert info_.value.code == ErrorCode.INVALID_SCHEDULE
    assert info_.value.details == {"field": field}
    listing = await client.request(ScheduleList(id="l"), ScheduleListResult)
    assert listing.schedules == []


async def test_unknown_workflow_and_unknown_schedule(noop_gateway: RunningGateway) -> None:
    client = await noop_gateway.client()
    with pytest.raises(GatewayError) as missing_workflow:
        await create(client, name="x", every="5m", workflow_id="nope")
    assert missing_workflow.value.code == ErrorCode.WORKFLOW_NOT_FOUND
    for message in (
        ScheduleDelete(id="d", schedule_id="nope"),
        ScheduleRuns(id="r", schedule_id="nope"),
        ScheduleTrigger(id="t", schedule_id="nope"),
        ScheduleUpdate(id="u", schedule_id="nope", enabled=False),
    ):
        with pytest.raises(GatewayError) as missing:
            await client.request(message)
        assert missing.value.code == ErrorCode.SCHEDULE_NOT_FOUND


async def test_overlap_skip_with_a_paused_execution(noop_gateway: RunningGateway) -> None:
    client = await noop_gateway.client()
    schedule_id = await create(client, name="gated", every="1s", workflow_id="gated")
    history = await wait_runs(client, schedule_id, 2, status={"skipped"})
    assert history[0].status == "running"  # the first run waits at its approval gate
    assert {r.reason for r in history[1:]} == {"overlap"}
    allow_id = await create(client, name="gated2", every="1s", workflow_id="gated", overlap="allow")
    allowed = await wait_runs(client, allow_id, 2)
    assert all(r.status == "running" for r in allowed)


async def test_consecutive_failures_disable_the_schedule(data_dir: Path) -> None:
    write_workflow(data_dir, "failing", FAILING)
    async with in_process_gateway(data_dir, schedules={"max_consecutive_failures": 2}) as gw:
        client = await gw.client()
        await client.subscribe(["schedule.disabled"])
        schedule_id = await create(client, name="bad", every="1s", workflow_id="failing")
        event = await client.next_event("schedule.disabled", timeout_s=30)
        assert isinstance(event, ScheduleDisabled)
        assert event.schedule_id == schedule_id
        assert "2 consecutive failed runs" in event.reason
        assert "nothing-here.txt" in event.reason
        item = await info(client, schedule_id)
        assert (item.state, item.enabled) == ("disabled", False)
        assert [r.status for r in await runs(client, schedule_id)] == ["failed", "failed"]
        # Resuming clears the failure count and fires again.
        await client.request(
            ScheduleUpdate(id="u", schedule_id=schedule_id, enabled=True), ScheduleUpdated
        )
        assert (await info(client, schedule_id)).state == "active"


async def test_manual_trigger_update_and_delete(noop_gateway: RunningGateway) -> None:
    client = await noop_gateway.client()
    schedule_id = await create(
        client,
        name="daily",
        cron_expression="0 3 * * *",
        timezone="UTC",
        workflow_id="noop",
        active_hours=ActiveHoursSpec(start="09:00", end="17:00"),
    )
    triggered = await client.request(
        ScheduleTrigger(id="t", schedule_id=schedule_id), ScheduleTriggered
    )
    assert triggered.execution_id
    history = await wait_runs(client, schedule_id, 1, status={"ok"})
    assert (history[0].status, history[0].reason) == ("ok", "manual")
    assert (await info(client, schedule_id)).run_count == 0  # manual runs don't use up maxRuns

    updated = await client.request(
        ScheduleUpdate(id="u", schedule_id=schedule_id, every="2h", active_hours=None),
        ScheduleUpdated,
    )
    item = await info(client, schedule_id)
    assert (item.every, item.cron_expression, item.active_hours) == ("2h", None, None)
    assert item.next_run == updated.next_run
    paused = await client.request(
        ScheduleUpdate(id="p", schedule_id=schedule_id, enabled=False), ScheduleUpdated
    )
    assert paused.next_run is None
    assert (await info(client, schedule_id)).state == "paused"
    await client.request(ScheduleDelete(id="d", schedule_id=schedule_id), ScheduleDeleted)
    listing = await client.request(ScheduleList(id="l"), ScheduleListResult)
    assert listing.schedules == []


async def test_schedule_run_events_reach_clients(noop_gateway: RunningGateway) -> None:
    watcher = await noop_gateway.client()
    await watcher.subscribe(["schedule.run"])
    client = await noop_gateway.client()
    schedule_id = await create(client, name="once", every="1s", workflow_id="noop", max_runs=1)
    seen = []
    while len(seen) < 2:
        event = await watcher.next_event("schedule.run", timeout_s=30)
        if event.schedule_id == schedule_id:  # type: ignore[attr-defined]
            seen.append(event.status)  # type: ignore[attr-defined]
    assert seen == ["running", "ok"]


async def test_resuming_an_at_schedule_after_its_time_is_refused(
    noop_gateway: RunningGateway,
) -> None:
    client = await noop_gateway.client()
    at = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    schedule_id = await create(client, name="later", at=at, workflow_id="noop", enabled=False)
    await asyncio.sleep(1.5)
    with pytest.raises(GatewayError) as refused:
        await client.request(
            ScheduleUpdate(id="u", schedule_id=schedule_id, enabled=True), ScheduleUpdated
        )
    assert refused.value.code == ErrorCode.INVALID_SCHEDULE
    assert refused.value.details == {"field": "at"}
    assert (await info(client, schedule_id)).state == "paused"
