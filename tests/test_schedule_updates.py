"""`schedule.update` while the schedule fires: a change never undoes a claimed tick.

Review found the update read the row, then wrote every column back: a tick claimed in between
lost its run count (and last execution, failure count, disabled state), so a `maxRuns`
schedule ran more often than it said. Updates now write only the columns they change, and
only over the version they read. These run on a real gateway with the real clock, on both
backends.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hearth.client import GatewayClient
from hearth.protocol.messages.heartbeat import HeartbeatConfigure, HeartbeatConfigured
from hearth.protocol.messages.schedules import ScheduleUpdate, ScheduleUpdated
from tests.support.fake_openai import FakeOpenAI
from tests.support.gateway import RunningGateway, in_process_gateway
from tests.support.heartbeat import fake_answer, model_settings, write_checklist
from tests.support.schedules import NOOP, create, info, runs
from tests.support.workflows import reload, write_workflow

UPDATERS = 4
AT_LEAST = 200
#: The schedule completes in about three seconds; a broken one keeps firing, so the updates
#: stop after this long whatever happens.
GIVE_UP_S = 15
FIRED = {"ok", "running", "failed"}


async def _update(client: GatewayClient, schedule_id: str, **fields: Any) -> ScheduleUpdated:
    return await client.request(
        ScheduleUpdate(id=client.next_id(), schedule_id=schedule_id, **fields), ScheduleUpdated
    )


async def _hammer(client: GatewayClient, schedule_id: str, number: int, stop: asyncio.Event) -> int:
    """Change one harmless field after another, back to back, until told to stop; returns
    how many updates were answered."""
    answered = 0
    while not stop.is_set():
        choice = (number + answered) % 4
        if choice == 0:
            await _update(client, schedule_id, name=f"thrice {number}-{answered}")
        elif choice == 1:
            await _update(client, schedule_id, misfire_grace_s=60 + answered)
        elif choice == 2:
            await _update(client, schedule_id, overlap="allow" if answered % 4 else "skip")
        else:
            await _update(client, schedule_id, max_runs=3)
        answered += 1
    return answered


async def test_200_updates_while_a_max_runs_schedule_fires_leave_exactly_its_runs(
    gateway: RunningGateway,
) -> None:
    write_workflow(gateway.data_dir, "noop", NOOP)
    client = await gateway.client()
    await reload(client)
    schedule_id = await create(client, name="thrice", every="1s", workflow_id="noop", max_runs=3)
    clients = [await gateway.client() for _ in range(UPDATERS)]
    stop = asyncio.Event()
    hammers = [
        asyncio.create_task(_hammer(other, schedule_id, number, stop))
        for number, other in enumerate(clients)
    ]
    try:
        async with asyncio.timeout(GIVE_UP_S):
            while (await info(client, schedule_id)).state != "completed":
                await asyncio.sleep(0.1)
        # Updates go on past the point where a 4th tick would come, had one re-enabled it.
        await asyncio.sleep(2.5)
    except TimeoutError:
        pass
    finally:
        stop.set()
    answered = await asyncio.gather(*hammers)
    assert sum(answered) >= AT_LEAST
    await asyncio.sleep(1.5)
    item = await info(client, schedule_id)
    fired = [r for r in await runs(client, schedule_id) if r.status in FIRED]
    assert len(fired) == 3, [(r.scheduled_for, r.status) for r in fired]
    assert (item.state, item.run_count, item.enabled, item.next_run) == (
        "completed",
        3,
        False,
        None,
    )
    assert len({r.execution_id for r in fired}) == 3


# -- heartbeat.configure ------------------------------------------------------------------------

CONFIGURES = 100


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server


async def _configure(client: GatewayClient, **fields: Any) -> str:
    reply = await client.request(
        HeartbeatConfigure(id=client.next_id(), **fields), HeartbeatConfigured
    )
    return reply.schedule_id


async def test_configuring_the_heartbeat_while_it_fires_keeps_its_run_count(
    data_dir: Path, database_url: str, fake: FakeOpenAI
) -> None:
    """Each configure restates the whole configuration; it used to write the heartbeat's
    schedule back whole (undoing the run count of a tick claimed meanwhile) and re-anchor it."""
    write_checklist(data_dir / "HEARTBEAT.md", ["Disk full?"])
    fake.script_forever(fake_answer(lambda item: None))
    async with in_process_gateway(data_dir, database_url, **model_settings(fake)) as gw:
        client = await gw.client()
        schedule_id = await _configure(client, interval="1s", timezone="Europe/Berlin")
        before = await info(client, schedule_id)

        async def configure_often(other: GatewayClient, number: int) -> None:
            for i in range(CONFIGURES // 2):
                zone = "Europe/Berlin" if (i + number) % 2 else "Europe/Paris"
                await _configure(other, interval="1s", timezone=zone)

        others = [await gw.client(), await gw.client()]
        await asyncio.gather(*(configure_often(o, n) for n, o in enumerate(others)))
        await asyncio.sleep(1.5)  # a few more ticks, untouched
        await _configure(client, interval="1s", enabled=False)
        await asyncio.sleep(1.5)  # the last run ends
        item = await info(client, schedule_id)
        fired = [r for r in await runs(client, schedule_id) if r.execution_id is not None]
    assert fired, "the heartbeat never fired"
    assert item.run_count == len(fired)
    assert len({r.scheduled_for for r in fired}) == len(fired)
    # Restating the same interval keeps the ticks where they were (on the creation anchor).
    assert before.next_run is not None
    offsets = {(r.scheduled_for - before.next_run).total_seconds() % 1 for r in fired}
    assert offsets == {0.0}
