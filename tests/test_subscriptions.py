"""Events go only to connections that want them: defaults, own requests, subscriptions.

Domain events are published on the gateway's real bus (as the scheduler and the engine do), so
these tests see exactly what the fanout delivers; the end-to-end paths with a real scheduler and
engine are covered in test_schedules.py and test_workflow_engine.py.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import pytest

from hearth.events import DomainEvent
from hearth.gateway.connection import Connection
from tests.support.gateway import RunningGateway, in_process_gateway
from tests.support.wire import RawPeer
from tests.support.workflows import reload, trigger, wait_status, write_workflow

NOOP = """
name: noop
steps:
  - {id: a, action: noop}
"""


@pytest.fixture
async def gw(data_dir: Path) -> AsyncIterator[RunningGateway]:
    write_workflow(data_dir, "noop", NOOP)
    limits = {"ws_ping_interval_s": 3600, "ws_ping_timeout_s": 3600, "stall_timeout_s": 2}
    async with in_process_gateway(data_dir, limits=limits) as gateway:
        yield gateway


def run_event(schedule_id: str, status: str, n: int, reason: str | None = None) -> DomainEvent:
    data: dict[str, Any] = {
        "scheduleId": schedule_id,
        "runId": f"run-{n}",
        "scheduledFor": datetime.now(UTC).isoformat(),
        "status": status,
    }
    if reason is not None:
        data["reason"] = reason
    return DomainEvent("schedule.run", data)


def marker(text: str) -> DomainEvent:
    """A notification: delivered to everyone by default, so it closes a sequence."""
    return DomainEvent(
        "notification", {"message": text, "timestamp": datetime.now(UTC).isoformat()}
    )


async def events_until_marker(peer: RawPeer, text: str) -> list[dict[str, Any]]:
    seen = []
    while True:
        frame = await peer.recv(timeout=30)
        seen.append(frame)
        if frame["type"] == "notification" and frame["message"] == text:
            return seen


async def subscribed(gw: RunningGateway, **subscribe: Any) -> RawPeer:
    peer = await RawPeer.open(gw.ws_url)
    await peer.hello(gw.token)
    if subscribe:
        reply = await peer.request({"type": "subscribe", "id": "s", **subscribe})
        assert reply["type"] == "subscribed", reply
    return peer


def gateway_connection(gw: RunningGateway, peer_count: int) -> list[Connection]:
    return list(gw.hearth.state.connections)[:peer_count]


async def test_events_reach_only_the_connections_that_want_them(gw: RunningGateway) -> None:
    plain = await subscribed(gw)
    every = await subscribed(gw, topics=["*"])
    some = await subscribed(gw, topics=["schedule.run"], filter={"scheduleIds": ["s1"]})
    bus = gw.hearth.bus
    for n, schedule_id in enumerate(["s1", "s2", "s1"]):
        bus.publish(run_event(schedule_id, "running", n))
    bus.publish(marker("end"))

    assert [f["type"] for f in await events_until_marker(plain, "end")] == ["notification"]
    runs = [f for f in await events_until_marker(every, "end") if f["type"] == "schedule.run"]
    assert [r["scheduleId"] for r in runs] == ["s1", "s2", "s1"]
    filtered = await events_until_marker(some, "end")
    assert [(f["type"], f.get("scheduleId")) for f in filtered] == [
        ("schedule.run", "s1"),
        ("schedule.run", "s1"),
        ("notification", None),
    ]
    assert [f["seq"] for f in filtered] == [1, 2, 3]
    for peer in (plain, every, some):
        await peer.close()


async def test_unsubscribe_stops_delivery_and_unknown_topics_are_named(
    gw: RunningGateway,
) -> None:
    peer = await subscribed(gw)
    refused = await peer.request(
        {"type": "subscribe", "id": "bad", "topics": ["schedule.run", "schedule.runs"]}
    )
    assert refused["type"] == "error"
    assert refused["code"] == "INVALID_REQUEST"
    assert "'schedule.runs'" in refused["message"]
    assert refused["details"] == {"path": "topics.1", "topic": "schedule.runs"}

    reply = await peer.request({"type": "subscribe", "id": "s", "topics": ["schedule.run"]})
    sub_id = reply["subscriptionId"]
    assert reply["topics"] == ["schedule.run"]
    gw.hearth.bus.publish(run_event("s1", "running", 1))
    gw.hearth.bus.publish(marker("one"))
    assert [f["type"] for f in await events_until_marker(peer, "one")] == [
        "schedule.run",
        "notification",
    ]
    gone = await peer.request({"type": "unsubscribe", "id": "u", "subscriptionId": sub_id})
    assert gone == {"type": "unsubscribed", "id": "u", "subscriptionId": sub_id, "removed": True}
    again = await peer.request({"type": "unsubscribe", "id": "u2", "subscriptionId": sub_id})
    assert again["removed"] is False
    gw.hearth.bus.publish(run_event("s1", "ok", 1))
    gw.hearth.bus.publish(marker("two"))
    assert [f["type"] for f in await events_until_marker(peer, "two")] == ["notification"]
    await peer.close()


async def test_a_connection_receives_the_status_of_its_own_execution_only(
    gw: RunningGateway,
) -> None:
    mine = await gw.client()
    other = await gw.client()
    await reload(mine)
    execution_id = await trigger(mine, "noop")
    seen = []
    async with asyncio.timeout(30):
        while not seen or seen[-1] != "completed":
            event = await mine.next_event("workflow.status")
            assert event.execution_id == execution_id  # type: ignore[attr-defined]
            seen.append(event.status)  # type: ignore[attr-defined]
    await wait_status(other, execution_id, {"completed"})
    gw.hearth.bus.publish(marker("done"))
    event = await other.next_event("notification")
    assert event.message == "done"  # type: ignore[attr-defined]
    # Nothing of the execution reached `other` before the marker.
    assert other._events.empty()


async def test_a_client_that_falls_behind_gets_the_latest_status_per_schedule(
    gw: RunningGateway,
) -> None:
    # A websockets client stops reading from the socket once a few frames wait unread, so
    # while this test does not call recv() the gateway's writes back up for real.
    peer = await RawPeer.open(gw.ws_url, max_queue=1)
    await peer.hello(gw.token)
    await peer.request({"type": "subscribe", "id": "s", "topics": ["schedule.run"]})
    (connection,) = gateway_connection(gw, 1)
    bus = gw.hearth.bus
    big = "x" * 200_000
    n = 0
    async with asyncio.timeout(60):  # a hang guard, not a performance threshold
        while connection.coalesced < 50:
            for schedule_id in ("a", "b", "c"):
                n += 1
                bus.publish(run_event(schedule_id, "running", n, big))
            await asyncio.sleep(0)
    last = n
    for schedule_id in ("a", "b", "c"):
        last += 1
        bus.publish(run_event(schedule_id, "ok", last))
    bus.publish(marker("end"))
    frames = await events_until_marker(peer, "end")
    assert not connection.closed.is_set()
    runs = [f for f in frames if f["type"] == "schedule.run"]
    assert len(runs) < n  # coalesced, not all delivered
    final = {r["scheduleId"]: r["status"] for r in runs}
    assert final == {"a": "ok", "b": "ok", "c": "ok"}
    seqs = [f["seq"] for f in frames]
    assert seqs == list(range(1, len(frames) + 1))  # no gaps where events were coalesced
    await peer.close()


def _server_side_open(port: int, client_port: int) -> bool:
    return any(
        c.laddr and c.raddr and c.laddr.port == port and c.raddr.port == client_port
        for c in psutil.Process().net_connections(kind="tcp")
    )


async def test_a_subscriber_that_stops_reading_entirely_is_closed(gw: RunningGateway) -> None:
    port = int(gw.url.rsplit(":", 1)[1])
    peer = await RawPeer.open(gw.ws_url, max_queue=1)
    sock = peer.ws.transport.get_extra_info("socket")
    client_port = sock.getsockname()[1]
    await peer.hello(gw.token)
    await peer.request({"type": "subscribe", "id": "s", "topics": ["*"]})
    (connection,) = gateway_connection(gw, 1)
    big = "x" * 200_000
    n = 0
    # One schedule only: its events coalesce into a single queued frame, so the queue never
    # fills; what closes the client is a write that stays blocked (stall_timeout_s = 2).
    async with asyncio.timeout(60):  # a hang guard
        while not connection.closed.is_set():
            n += 1
            gw.hearth.bus.publish(run_event("only", "running", n, big))
            await asyncio.sleep(0.01)
        while _server_side_open(port, client_port):
            await asyncio.sleep(0.1)
    assert connection.close_code == 4008
    assert connection.queued <= 1
    with contextlib.suppress(Exception):
        await peer.close()
