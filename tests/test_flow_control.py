"""Inbound flow control on the direct path: no pause per frame, a real pause above the limit.

uvicorn's sans-I/O protocol paused reading the socket after every received message and resumed
when the app took it (two epoll_ctl calls per frame). The gateway now reads frames as they are
parsed and pauses only when `max_in_flight` requests of a connection are running. These tests
watch the server side of the connection (its asyncio transport, which the test's own event
loop runs) while a real client sends pipelined requests, and check that every request still
gets exactly one reply. A client that stops reading is covered by test_slow_consumer.py and
test_subscriptions.py.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect

from hearth.gateway.connection import Connection
from tests.support.gateway import RunningGateway, in_process_gateway


@pytest.fixture
async def gw(data_dir: Path) -> AsyncIterator[RunningGateway]:
    limits = {"max_in_flight": 2, "ws_ping_interval_s": 3600, "ws_ping_timeout_s": 3600}
    async with in_process_gateway(data_dir, limits=limits) as gateway:
        yield gateway


class PauseCounter:
    """Counts `pause_reading` calls on the gateway's side of one connection."""

    def __init__(self, connection: Connection) -> None:
        assert connection.wire is not None
        self.transport = connection.wire.transport
        self.pauses = 0
        original = self.transport.pause_reading

        def counted() -> None:
            self.pauses += 1
            original()

        self.transport.pause_reading = counted  # type: ignore[method-assign]


async def pipelined(gw: RunningGateway, frames: list[dict[str, Any]]) -> tuple[Counter[str], int]:
    """Send every frame without waiting, then read one reply per frame; (replies by id, pauses)."""
    async with connect(gw.ws_url, compression=None) as ws:
        await ws.send(json.dumps({"type": "hello", "id": "h", "protocol": 1, "token": gw.token}))
        assert json.loads(await ws.recv())["type"] == "hello.ok"
        (connection,) = list(gw.hearth.state.connections)
        counter = PauseCounter(connection)
        for frame in frames:
            await ws.send(json.dumps(frame))
        replies: Counter[str] = Counter()
        async with asyncio.timeout(60):  # a hang guard
            while sum(replies.values()) < len(frames):
                reply = json.loads(await ws.recv())
                assert reply["type"] != "error", reply
                replies[reply["id"]] += 1
        # Nothing more arrives after the last reply: a ping sent now is the next frame back.
        await ws.send(json.dumps({"type": "ping", "id": "last"}))
        assert json.loads(await ws.recv())["id"] == "last"
        return replies, counter.pauses


async def test_pipelined_pings_never_pause_reading(gw: RunningGateway) -> None:
    frames = [{"type": "ping", "id": f"p{n}"} for n in range(500)]
    replies, pauses = await pipelined(gw, frames)
    assert replies == Counter({f"p{n}": 1 for n in range(500)})
    assert pauses == 0


async def test_requests_above_max_in_flight_pause_reading_and_all_get_one_reply(
    gw: RunningGateway,
) -> None:
    # `gateway.status` reads the database, so it runs as a task: with max_in_flight = 2 the
    # rest wait in the connection's backlog and the socket is not read meanwhile.
    frames: list[dict[str, Any]] = []
    for n in range(200):
        frames.append({"type": "gateway.status", "id": f"s{n}"})
        frames.append({"type": "ping", "id": f"p{n}"})
    replies, pauses = await pipelined(gw, frames)
    assert replies == Counter({f["id"]: 1 for f in frames})
    assert pauses >= 1
