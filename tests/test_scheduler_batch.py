"""Many schedules due at the same moment, in a real gateway on both backends.

On SQLite the scheduler claims every due schedule in one writer transaction; on PostgreSQL it
claims them one by one. The outcome must be the same: each tick fires exactly once, each
policy applies per schedule, and one schedule that cannot start fails only itself. The ticks
are handed to `Scheduler.run_due(now=...)` explicitly, an hour or more ahead of the real
clock, so that they are due together and the gateway's own loop leaves them alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from hearth.client import GatewayClient
from hearth.protocol.messages.schedules import (
    ActiveHoursSpec,
    ScheduleDisabled,
    ScheduleInfo,
    ScheduleList,
    ScheduleListResult,
    ScheduleRunInfo,
)
from tests.support.gateway import RunningGateway, in_process_gateway
from tests.support.schedules import NOOP, create, runs
from tests.support.workflows import reload, wait_status, write_workflow

HOUR = timedelta(hours=1)
GATED = """
    name: Gated
    steps:
      - {id: gate, action: noop, approval_required: true}
"""
NEEDS_WHO = """
    name: Needs who
    inputs:
      who: {type: string, required: true}
    steps:
      - {id: a, action: noop}
"""
READS_FLAG = """
    name: Reads a flag
    steps:
      - {id: read, action: tool, tool: file.read, args: {path: flag.txt}}
"""


@pytest.fixture
async def gw(data_dir: Path, database_url: str) -> AsyncIterator[RunningGateway]:
    """A gateway that disables a schedule at its first failed run (to see it in one pass)."""
    for workflow_id, text in (
        ("noop", NOOP),
        ("gated", GATED),
        ("doomed", NOOP),
        ("needs-who", NEEDS_WHO),
        ("reads-flag", READS_FLAG),
    ):
        write_workflow(data_dir, workflow_id, text)
    async with in_process_gateway(
        data_dir, database_url, schedules={"max_consecutive_failures": 1}
    ) as running:
        yield running


async def listing(client: GatewayClient) -> dict[str, ScheduleInfo]:
    result = await client.request(ScheduleList(id=client.next_id()), ScheduleListResult)
    return {item.id: item for item in result.schedules}


async def ticks(client: GatewayClient, ids: list[str]) -> dict[str, datetime]:
    """Each schedule's next run, as it was stored when created."""
    items = await listing(client)
    found: dict[str, datetime] = {}
    for schedule_id in ids:
        next_run = items[schedule_id].next_run
        assert next_run is not None
        found[schedule_id] = next_run
    return found


async def settled(
    client: GatewayClient, ids: list[str], timeout_s: float = 60
) -> dict[str, list[ScheduleRunInfo]]:
    """Every schedule's runs (oldest first) once none of them is `running` any more."""
    async with asyncio.timeout(timeout_s):
        while True:
            history = {schedule_id: await runs(client, schedule_id) for schedule_id in ids}
            if all(r.status != "running" for found in history.values() for r in found):
                return history
            await asyncio.sleep(0.1)


async def test_many_schedules_due_at_once_fire_exactly_once(gw: RunningGateway) -> None:
    client = await gw.client()
    count = 120
    ids = [
        await create(client, name=f"s{i}", every="1h", workflow_id="noop", overlap="allow")
        for i in range(count)
    ]
    due = await ticks(client, ids)
    moment = max(due.values())

    assert await gw.hearth.scheduler.run_due(now=moment) == count
    assert await gw.hearth.scheduler.run_due(now=moment) == 0  # nothing fires twice

    history = await settled(client, ids)
    items = await listing(client)
    executions = set()
    for schedule_id in ids:
        (run,) = history[schedule_id]
        assert (run.status, run.scheduled_for, run.fired_at) == ("ok", due[schedule_id], moment)
        assert run.execution_id is not None
        executions.add(run.execution_id)
        item = items[schedule_id]
        assert (item.state, item.run_count, item.consecutive_failures) == ("active", 1, 0)
        assert item.next_run == due[schedule_id] + HOUR
    assert len(executions) == count


async def test_a_schedule_that_cannot_start_fails_alone(gw: RunningGateway) -> None:
    watcher = await gw.client()
    await watcher.subscribe(["schedule.disabled"])
    client = await gw.client()
    good = [
        await create(client, name=f"good{i}", every="1h", workflow_id="noop") for i in range(20)
    ]
    doomed = await create(client, name="doomed", every="1h", workflow_id="doomed")
    strict = await create(
        client, name="strict", every="1h", workflow_id="needs-who", input={"who": "bob"}
    )
    # Both become impossible after they were saved: one workflow is gone, the other no longer
    # takes the input the schedule gives it.
    (gw.data_dir / "workflows" / "doomed.yaml").unlink()
    write_workflow(gw.data_dir, "needs-who", NOOP)
    await reload(client)
    due = await ticks(client, [*good, doomed, strict])
    moment = max(due.values())

    assert await gw.hearth.scheduler.run_due(now=moment) == len(good) + 2

    disabled: dict[str, str] = {}
    while len(disabled) < 2:
        event = await watcher.next_event("schedule.disabled", timeout_s=30)
        assert isinstance(event, ScheduleDisabled)
        disabled[event.schedule_id] = event.reason
    assert set(disabled) == {doomed, strict}
    assert "no workflow 'doomed'" in disabled[doomed]
    assert "who" in disabled[strict]

    history = await settled(client, [*good, doomed, strict])
    items = await listing(client)
    for schedule_id in (doomed, strict):
        (run,) = history[schedule_id]
        assert (run.status, run.execution_id, run.scheduled_for) == (
            "failed",
            None,
            due[schedule_id],
        )
        assert run.reason is not None
        assert disabled[schedule_id].endswith(run.reason)
        item = items[schedule_id]
        assert (item.state, item.enabled, item.next_run) == ("disabled", False, None)
        assert (item.run_count, item.consecutive_failures) == (1, 1)
        assert item.state_reason == disabled[schedule_id]
    for schedule_id in good:
        assert [r.status for r in history[schedule_id]] == ["ok"]
        item = items[schedule_id]
        assert (item.state, item.run_count, item.consecutive_failures) == ("active", 1, 0)
        assert item.next_run == due[schedule_id] + HOUR


async def test_each_policy_applies_per_schedule_in_one_pass(gw: RunningGateway) -> None:
    client = await gw.client()
    plain = await create(client, name="plain", every="1h", workflow_id="noop")
    skip = await create(client, name="skip", every="1h", workflow_id="noop", misfire="skip")
    once = await create(client, name="once", every="1h", workflow_id="noop", max_runs=1)
    short = await create(
        client, name="short grace", every="1h", workflow_id="noop", misfire_grace_s=60
    )
    ids = [plain, skip, once, short]
    due = await ticks(client, ids)
    # Ten minutes after the third tick of each: the first two were missed while "down", the
    # third is late but within the default grace of an hour.
    moment = max(due.values()) + 2 * HOUR + timedelta(minutes=10)
    # A window that is closed at that third tick.
    third = max(due.values()) + 2 * HOUR
    closed = await create(
        client,
        name="closed",
        every="1h",
        workflow_id="noop",
        active_hours=ActiveHoursSpec(
            start=(third + HOUR).strftime("%H:%M"), end=(third + 2 * HOUR).strftime("%H:%M")
        ),
        timezone="UTC",
    )
    # Created a moment later: its ticks are a moment later too, and still due at `moment`.
    due.update(await ticks(client, [closed]))
    ids.append(closed)

    assert await gw.hearth.scheduler.run_due(now=moment) == len(ids)

    history = await settled(client, ids)
    items = await listing(client)

    def shape(schedule_id: str) -> list[tuple[str, datetime, int | None]]:
        return [(r.status, r.scheduled_for, r.missed_count) for r in history[schedule_id]]

    for schedule_id in (plain, once):
        assert shape(schedule_id) == [
            ("missed", due[schedule_id], 2),
            ("ok", due[schedule_id] + 2 * HOUR, None),
        ]
    for schedule_id in (skip, short):
        assert shape(schedule_id) == [("missed", due[schedule_id], 3)]
    assert shape(closed) == [
        ("missed", due[closed], 2),
        ("skipped", due[closed] + 2 * HOUR, None),
    ]
    assert history[closed][-1].reason == "outside_active_hours"
    assert all(r.fired_at == moment for found in history.values() for r in found)

    assert (items[once].state, items[once].run_count, items[once].next_run) == (
        "completed",
        1,
        None,
    )
    for schedule_id in (plain, skip, short, closed):
        item = items[schedule_id]
        assert item.state == "active"
        assert item.next_run == due[schedule_id] + 3 * HOUR
        assert item.run_count == (1 if schedule_id == plain else 0)


async def test_overlap_is_judged_inside_the_pass(gw: RunningGateway) -> None:
    client = await gw.client()
    gated = await create(client, name="gated", every="1h", workflow_id="gated")
    plain = await create(client, name="plain", every="1h", workflow_id="noop")
    due = await ticks(client, [gated, plain])
    first = max(due.values())

    assert await gw.hearth.scheduler.run_due(now=first) == 2
    (waiting,) = await runs(client, gated)
    assert waiting.execution_id is not None
    await wait_status(client, waiting.execution_id, {"paused"})
    await settled(client, [plain])

    # The gated run still waits for its approval at the next tick; the plain one is done.
    assert await gw.hearth.scheduler.run_due(now=first + HOUR) == 2
    history = await settled(client, [plain])
    assert [r.status for r in history[plain]] == ["ok", "ok"]
    assert [(r.status, r.reason) for r in await runs(client, gated)] == [
        ("running", None),
        ("skipped", "overlap"),
    ]


async def test_a_success_after_a_failure_clears_the_count(
    data_dir: Path, database_url: str
) -> None:
    write_workflow(data_dir, "reads-flag", READS_FLAG)
    async with in_process_gateway(data_dir, database_url) as running:
        client = await running.client()
        flaky = await create(client, name="flaky", every="1h", workflow_id="reads-flag")
        steady = await create(client, name="steady", every="1h", workflow_id="reads-flag")
        due = await ticks(client, [flaky, steady])
        first = max(due.values())

        assert await running.hearth.scheduler.run_due(now=first) == 2
        await settled(client, [flaky, steady])
        items = await listing(client)
        assert [items[s].consecutive_failures for s in (flaky, steady)] == [1, 1]

        workspace = running.hearth.settings.workspace_dir
        (workspace / "flag.txt").write_text("up\n")
        assert await running.hearth.scheduler.run_due(now=first + HOUR) == 2
        history = await settled(client, [flaky, steady])
        items = await listing(client)
        for schedule_id in (flaky, steady):
            assert [r.status for r in history[schedule_id]] == ["failed", "ok"]
            assert items[schedule_id].consecutive_failures == 0
            assert items[schedule_id].state == "active"


async def test_housekeeping_prunes_the_history_of_schedules_that_fired(
    data_dir: Path, database_url: str
) -> None:
    write_workflow(data_dir, "noop", NOOP)
    async with in_process_gateway(data_dir, database_url, schedules={"history_max": 2}) as running:
        client = await running.client()
        ids = [await create(client, name=f"s{i}", every="1h", workflow_id="noop") for i in range(3)]
        due = await ticks(client, ids)
        first = max(due.values())
        for k in range(4):
            assert await running.hearth.scheduler.run_due(now=first + k * HOUR) == len(ids)
            await settled(client, ids)

        await running.hearth.scheduler.housekeep()

        for schedule_id in ids:
            kept = await runs(client, schedule_id)
            assert [r.scheduled_for for r in kept] == [
                due[schedule_id] + 2 * HOUR,
                due[schedule_id] + 3 * HOUR,
            ]
            assert {r.status for r in kept} == {"ok"}


async def test_ticks_claimed_ahead_start_at_their_time_not_before(gw: RunningGateway) -> None:
    """The live loop claims decided ticks a moment early (on every backend); each execution
    must still start at or after its tick, once, and its run say it fired at or after its
    tick. Overlap is allowed: on a loaded machine a no-op may still run at the next tick,
    which `skip` would (rightly) record as skipped; that is not what this test is about."""
    from tests.support.workflows import execution

    client = await gw.client()
    ids = [
        await create(
            client, name=f"live{i}", every="1s", workflow_id="noop", max_runs=3, overlap="allow"
        )
        for i in range(30)
    ]
    history = {
        schedule_id: await wait_runs_ok(client, schedule_id, 3, timeout_s=30) for schedule_id in ids
    }
    for schedule_id, done in history.items():
        assert [r.status for r in done] == ["ok", "ok", "ok"], schedule_id
        ticks = [r.scheduled_for for r in done]
        assert len(set(ticks)) == 3
        for run in done:
            assert run.execution_id is not None
            result = await execution(client, run.execution_id)
            (step,) = result.execution.steps
            assert step.started_at >= run.scheduled_for
            assert run.fired_at >= run.scheduled_for


async def wait_runs_ok(
    client: GatewayClient, schedule_id: str, count: int, timeout_s: float
) -> list[ScheduleRunInfo]:
    async with asyncio.timeout(timeout_s):
        while True:
            done = await runs(client, schedule_id)
            if len(done) >= count and all(r.status == "ok" for r in done):
                return done
            await asyncio.sleep(0.1)
