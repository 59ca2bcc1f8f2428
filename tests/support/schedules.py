"""Helpers for schedule tests."""

from __future__ import annotations

import asyncio
from typing import Any

from hearth.client import GatewayClient
from hearth.protocol.messages.schedules import (
    ScheduleCreate,
    ScheduleCreated,
    ScheduleInfo,
    ScheduleList,
    ScheduleListResult,
    ScheduleRunInfo,
    ScheduleRuns,
    ScheduleRunsResult,
)

NOOP = "name: Noop\nsteps:\n  - {id: a, action: noop}\n"
#: Fails every run: the file it reads is not in the workspace.
FAILING = """
    name: Failing
    steps:
      - {id: read, action: tool, tool: file.read, args: {path: nothing-here.txt}}
"""


async def create(client: GatewayClient, **fields: Any) -> str:
    reply = await client.request(ScheduleCreate(id=client.next_id(), **fields), ScheduleCreated)
    return reply.schedule_id


async def paused(client: GatewayClient, *names: str) -> list[str]:
    """Hourly schedules that never fire during a test (created disabled), ids in order."""
    return [
        await create(client, name=name, every="1h", workflow_id="noop", enabled=False)
        for name in names
    ]


async def info(client: GatewayClient, schedule_id: str) -> ScheduleInfo:
    listing = await client.request(
        ScheduleList(id=client.next_id(), match=schedule_id), ScheduleListResult
    )
    return next(s for s in listing.schedules if s.id == schedule_id)


async def runs(client: GatewayClient, schedule_id: str, limit: int = 1000) -> list[ScheduleRunInfo]:
    """Oldest first."""
    result = await client.request(
        ScheduleRuns(id=client.next_id(), schedule_id=schedule_id, limit=limit),
        ScheduleRunsResult,
    )
    return list(reversed(result.runs))


async def wait_runs(
    client: GatewayClient,
    schedule_id: str,
    count: int,
    *,
    status: set[str] | None = None,
    timeout_s: float = 30,
) -> list[ScheduleRunInfo]:
    """Poll until at least `count` runs (with one of `status`) are recorded."""
    async with asyncio.timeout(timeout_s):
        while True:
            found = await runs(client, schedule_id)
            matching = [r for r in found if status is None or r.status in status]
            if len(matching) >= count:
                return found
            await asyncio.sleep(0.1)
