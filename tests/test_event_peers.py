"""Events go to other gateway nodes only while there are other nodes (PostgreSQL).

A raw LISTEN connection on the gateway's channel sees what a node sends: presence beats, and
events only while another node is there. Beats are fast here (`peer_beat_s`), so "alone" takes
a fraction of a second to establish.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg

from hearth.client import GatewayClient
from hearth.events_pg import CHANNEL, asyncpg_dsn
from tests.support.gateway import RunningGateway, in_process_gateway
from tests.support.workflows import TERMINAL, reload, trigger, wait_status, write_workflow

BEAT_S = 0.2
#: Longer than the three beats after which a node counts as alone.
ALONE_S = 4 * BEAT_S

QUICK = """
    name: Quick
    steps:
      - {id: only, action: noop}
"""


@asynccontextmanager
async def channel(url: str) -> AsyncIterator[list[dict[str, Any]]]:
    """Every payload sent on the gateways' channel while inside, decoded."""
    seen: list[dict[str, Any]] = []
    conn = await asyncpg.connect(asyncpg_dsn(url))
    await conn.add_listener(CHANNEL, lambda *args: seen.append(json.loads(args[-1])))
    try:
        yield seen
    finally:
        await conn.close()


def node_dir(tmp_path: Path, name: str) -> Path:
    data_dir = tmp_path / name
    data_dir.mkdir()
    write_workflow(data_dir, "quick", QUICK)
    return data_dir


def events_from(seen: list[dict[str, Any]], node: str) -> list[str]:
    return [m["topic"] for m in seen if m.get("node") == node and "topic" in m]


def node(tmp_path: Path, url: str, name: str) -> AbstractAsyncContextManager[RunningGateway]:
    """Gateway `node-NAME` with fast presence beats."""
    return in_process_gateway(
        node_dir(tmp_path, name), url, node_id=f"node-{name}", database={"peer_beat_s": BEAT_S}
    )


@asynccontextmanager
async def lone_node(
    tmp_path: Path, url: str
) -> AsyncIterator[tuple[list[dict[str, Any]], RunningGateway, GatewayClient]]:
    """Node A, up long enough to know it is alone: what the channel saw, A, and A's client."""
    async with channel(url) as seen, node(tmp_path, url, "a") as node_a:
        client = await node_a.client()
        await reload(client)
        await asyncio.sleep(ALONE_S)
        yield seen, node_a, client


async def test_a_node_alone_sends_beats_but_no_events(tmp_path: Path, postgres_url: str) -> None:
    async with lone_node(tmp_path, postgres_url) as (seen, _node_a, client):
        before = len(events_from(seen, "node-a"))
        execution_id = await trigger(client, "quick")
        done = await wait_status(client, execution_id, TERMINAL)
        await asyncio.sleep(2 * BEAT_S)  # anything sent has arrived
    assert done.execution.status == "completed"  # its own client still saw every event
    assert events_from(seen, "node-a")[before:] == []
    presence = [m["peer"] for m in seen if m.get("node") == "node-a" and "peer" in m]
    assert presence[0] == "hello"
    assert presence.count("here") >= 3


async def test_a_joining_node_gets_events_at_once_and_a_leaving_one_stops_them(
    tmp_path: Path, postgres_url: str
) -> None:
    async with lone_node(tmp_path, postgres_url) as (seen, node_a, runner):
        async with node(tmp_path, postgres_url, "b") as node_b:
            watcher = await node_b.client()
            await watcher.subscribe(["workflow.status"])
            # No waiting: B said hello while starting, before it accepted this client.
            execution_id = await trigger(runner, "quick")
            async with asyncio.timeout(10):
                while True:
                    event = await watcher.next_event("workflow.status")
                    if event.execution_id == execution_id and event.status == "completed":  # type: ignore[attr-defined]
                        break
            assert node_a.hearth.bus.inner.peers == ["node-b"]  # type: ignore[attr-defined]
        await asyncio.sleep(ALONE_S)  # B's beats stop; A is alone again
        before = len(events_from(seen, "node-a"))
        again = await trigger(runner, "quick")
        await wait_status(runner, again, TERMINAL)
        await asyncio.sleep(2 * BEAT_S)
        assert node_a.hearth.bus.inner.peers == []  # type: ignore[attr-defined]
    assert events_from(seen, "node-a")[before:] == []
