"""Claiming ticks on PostgreSQL: batches locked with FOR UPDATE SKIP LOCKED, several nodes.

Two real gateways share one real PostgreSQL database. Their schedulers are handed the same
`now` explicitly (an hour or more ahead of the real clock, so their own loops stay idle) and
race for the same due ticks; every tick must be claimed by exactly one of them, with one run
and one execution. A pass must also skip rows another transaction holds rather than wait for
them, which is what lets nodes share a second's worth of ticks.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from hearth.store.tables import schedules, workflow_executions
from tests.support.gateway import RunningGateway, in_process_gateway
from tests.support.schedules import NOOP, create, runs
from tests.support.workflows import write_workflow

HOUR = timedelta(hours=1)


@pytest.fixture
async def two_nodes(tmp_path: Path, postgres_url: str) -> AsyncIterator[list[RunningGateway]]:
    async with AsyncExitStack() as stack:
        nodes = []
        for name in ("a", "b"):
            data_dir = tmp_path / name
            data_dir.mkdir()
            write_workflow(data_dir, "noop", NOOP)
            nodes.append(
                await stack.enter_async_context(in_process_gateway(data_dir, postgres_url))
            )
        yield nodes


async def test_two_nodes_racing_claim_each_tick_once(two_nodes: list[RunningGateway]) -> None:
    a, b = two_nodes
    client = await a.client()
    count = 600  # more than one pass's batch, so both nodes loop over several batches
    ids = [
        await create(client, name=f"s{i}", every="1h", workflow_id="noop", overlap="allow")
        for i in range(count)
    ]
    async with a.hearth.db.connect() as conn:
        moment = (await conn.execute(sa.select(sa.func.max(schedules.c.next_run)))).scalar()
    assert moment is not None

    claimed = await asyncio.gather(
        a.hearth.scheduler.run_due(now=moment), b.hearth.scheduler.run_due(now=moment)
    )
    assert sum(claimed) == count
    again = await asyncio.gather(
        a.hearth.scheduler.run_due(now=moment), b.hearth.scheduler.run_due(now=moment)
    )
    assert again == [0, 0]

    async with a.hearth.db.connect() as conn:
        started = (
            await conn.execute(
                sa.select(sa.func.count()).where(workflow_executions.c.triggered_by == "cron")
            )
        ).scalar()
        run_counts = (
            await conn.execute(sa.select(schedules.c.run_count).where(schedules.c.id.in_(ids)))
        ).scalars()
        assert set(run_counts) == {1}
    assert started == count
    for schedule_id in ids[:20]:
        history = await runs(client, schedule_id)
        assert len(history) == 1


async def test_a_pass_skips_rows_another_transaction_holds(
    two_nodes: list[RunningGateway],
) -> None:
    a, b = two_nodes
    client = await a.client()
    ids = [
        await create(client, name=f"s{i}", every="1h", workflow_id="noop", overlap="allow")
        for i in range(10)
    ]
    held = ids[:4]
    async with a.hearth.db.connect() as conn:
        moment = (await conn.execute(sa.select(sa.func.max(schedules.c.next_run)))).scalar()
    assert moment is not None
    # Another node's pass, still open: it has locked four of the due rows.
    async with a.hearth.db.engine.connect() as other:
        await other.begin()
        await other.execute(
            sa.select(schedules.c.id).where(schedules.c.id.in_(held)).with_for_update()
        )
        async with asyncio.timeout(20):  # waiting for the lock would hang here
            assert await b.hearth.scheduler.run_due(now=moment) == len(ids) - len(held)
        await other.rollback()
    for schedule_id in held:
        assert await runs(client, schedule_id) == []
    # Released: the next pass takes them.
    assert await b.hearth.scheduler.run_due(now=moment) == len(held)
