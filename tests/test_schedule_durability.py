"""Schedules across real process deaths (SIGKILL) and several nodes on PostgreSQL."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hearth.client import GatewayClient
from tests.support.gateway import GatewayProcess, start_gateway_process
from tests.support.schedules import NOOP, create, info, runs, wait_runs
from tests.support.workflows import write_workflow

FAST_MISFIRE = "[schedules]\nmisfire_threshold_s = 0.5\n"


async def connect(gateway: GatewayProcess) -> GatewayClient:
    client = GatewayClient(gateway.url, gateway.token)
    await client.connect()
    return client


async def test_at_schedule_fires_once_across_restarts(data_dir: Path) -> None:
    write_workflow(data_dir, "noop", NOOP)
    first = start_gateway_process(data_dir)
    try:
        client = await connect(first)
        at = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
        schedule_id = await create(client, name="once", at=at, workflow_id="noop")
        await client.close()
    finally:
        first.kill()  # down while the time passes
    await asyncio.sleep(3)
    second = start_gateway_process(data_dir)
    try:
        client = await connect(second)
        history = await wait_runs(client, schedule_id, 1, status={"ok"})
        await client.close()
    finally:
        second.kill()
    assert [r.status for r in history] == ["ok"]  # the catch-up run, within the grace period
    third = start_gateway_process(data_dir)
    try:
        client = await connect(third)
        await asyncio.sleep(1.5)
        item = await info(client, schedule_id)
        history = await runs(client, schedule_id)
        await client.close()
    finally:
        third.stop()
    assert [r.status for r in history] == ["ok"]
    assert (item.state, item.run_count, item.next_run) == ("completed", 1, None)


async def test_max_runs_is_counted_durably(data_dir: Path) -> None:
    write_workflow(data_dir, "noop", NOOP)
    first = start_gateway_process(data_dir)
    try:
        client = await connect(first)
        schedule_id = await create(
            client, name="thrice", every="1s", workflow_id="noop", max_runs=3
        )
        await wait_runs(client, schedule_id, 2, status={"ok", "running"})
        await client.close()
    finally:
        first.kill()
    second = start_gateway_process(data_dir)
    try:
        client = await connect(second)
        await wait_runs(client, schedule_id, 3, status={"ok"})
        await asyncio.sleep(2)
        history = await runs(client, schedule_id)
        item = await info(client, schedule_id)
        await client.close()
    finally:
        second.stop()
    fired = [r for r in history if r.status in ("ok", "running", "failed")]
    assert len(fired) == 3
    assert (item.state, item.run_count) == ("completed", 3)


@pytest.mark.parametrize(("misfire", "catch_up"), [("run_once", 1), ("skip", 0)])
async def test_misfire_after_downtime(data_dir: Path, misfire: str, catch_up: int) -> None:
    (data_dir / "config.toml").write_text(FAST_MISFIRE)
    write_workflow(data_dir, "noop", NOOP)
    first = start_gateway_process(data_dir)
    try:
        client = await connect(first)
        schedule_id = await create(
            client, name="tick", every="1s", workflow_id="noop", misfire=misfire
        )
        await wait_runs(client, schedule_id, 1, status={"ok"})
        await client.close()
    finally:
        first.kill()
    killed_at = datetime.now(UTC)
    await asyncio.sleep(4)
    second = start_gateway_process(data_dir)
    try:
        client = await connect(second)
        history = await wait_runs(client, schedule_id, 1, status={"missed"})
        await asyncio.sleep(0.2)
        history = await runs(client, schedule_id)
        await client.close()
    finally:
        second.stop()
    missed = [r for r in history if r.status == "missed"]
    assert len(missed) == 1  # one record with a count, never one per tick
    assert missed[0].missed_count is not None
    assert missed[0].missed_count >= 3
    # The catch-up run (if any) was claimed together with the missed record.
    during = [
        r
        for r in history
        if r.status in ("ok", "running", "failed") and r.fired_at == missed[0].fired_at
    ]
    assert all(r.scheduled_for > killed_at for r in during)
    # A tick no later than misfire_threshold_s is on time under either policy, so `skip` may
    # still fire the tick that fell due just as the gateway came back, never an older one.
    late = [r for r in during if (r.fired_at - r.scheduled_for).total_seconds() > 0.5]
    if catch_up:
        assert len(during) == 1  # exactly one catch-up, for the latest tick
    else:
        assert late == []
        assert len(during) <= 1


async def test_three_nodes_fire_each_tick_once_and_survive_a_kill(
    tmp_path: Path, postgres_url: str
) -> None:
    nodes = []
    for name in ("a", "b", "c"):
        data_dir = tmp_path / name
        data_dir.mkdir()
        write_workflow(data_dir, "noop", NOOP)
        nodes.append(start_gateway_process(data_dir, "--database-url", postgres_url))
    try:
        client = await connect(nodes[0])
        schedule_id = await create(
            client, name="every-second", every="1s", workflow_id="noop", overlap="allow"
        )
        await client.close()
        await asyncio.sleep(5)
        nodes[0].kill()
        await asyncio.sleep(5)
        client = await connect(nodes[1])
        history = await runs(client, schedule_id)
        item = await info(client, schedule_id)
        checked_at = datetime.now(UTC)
        await client.close()
    finally:
        for node in nodes:
            node.stop()
    ticks = [r.scheduled_for for r in history if r.status != "missed"]
    assert len(ticks) == len(set(ticks))  # no tick fired twice
    assert len(ticks) >= 8
    gaps = {(b - a).total_seconds() for a, b in itertools.pairwise(ticks)}
    assert gaps == {1.0}  # none lost, even across the kill
    assert not [r for r in history if r.status == "missed"]
    assert item.run_count == len(ticks)
    # Still firing after the kill: the last tick is recent.
    assert ticks[-1] > checked_at - timedelta(seconds=5)
