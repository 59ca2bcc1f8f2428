"""Domain events reach every connection as server events, and slow readers are cut off."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from hearth.events import DomainEvent
from hearth.protocol import Ping, Pong
from hearth.protocol.messages.notifications import Notification
from tests.support.gateway import RunningGateway, in_process_gateway
from tests.support.wire import RawPeer


def notification(text: str) -> DomainEvent:
    return DomainEvent(
        "notification",
        {"message": text, "level": "info", "timestamp": datetime.now(UTC).isoformat()},
    )


async def test_events_fan_out_with_per_connection_seq(gateway: RunningGateway) -> None:
    first = await gateway.client()
    second = await gateway.client()
    for i in range(3):
        gateway.hearth.bus.publish(notification(f"n{i}"))
    for client in (first, second):
        got = [await client.next_event("notification") for _ in range(3)]
        assert [e.seq for e in got] == [1, 2, 3]
        assert [e.message for e in got if isinstance(e, Notification)] == ["n0", "n1", "n2"]


async def test_events_validate_against_schema(sqlite_gateway: RunningGateway) -> None:
    peer = await RawPeer.open(sqlite_gateway.ws_url)
    await peer.hello(sqlite_gateway.token)
    sqlite_gateway.hearth.bus.publish(notification("hello"))
    event = await peer.recv()  # validated against the published schema
    assert event["type"] == "notification"
    assert event["seq"] == 1
    assert "id" not in event


async def test_event_that_breaks_the_protocol_is_dropped_not_sent(
    sqlite_gateway: RunningGateway,
) -> None:
    client = await sqlite_gateway.client()
    sqlite_gateway.hearth.bus.publish(DomainEvent("notification", {"message": 5}))
    sqlite_gateway.hearth.bus.publish(notification("good"))
    event = await client.next_event("notification")
    assert isinstance(event, Notification)
    assert event.message == "good"


async def test_slow_consumer_is_dropped_and_does_not_stall_others(data_dir: Path) -> None:
    async with in_process_gateway(data_dir, limits={"outbound_queue": 64}) as gw:
        fast = await gw.client()
        # A peer that never reads: its library stops reading the socket once 1 frame waits.
        slow = await connect(gw.ws_url, max_queue=1, compression=None)
        await slow.send(f'{{"type":"hello","id":"h","protocol":1,"token":"{gw.token}"}}')
        received = 0
        total = 1500
        payload = "x" * 9_000

        async def drain() -> None:
            nonlocal received
            while received < total:
                await fast.next_event("notification", timeout_s=30)
                received += 1

        reader = asyncio.create_task(drain())
        for i in range(total):
            gw.hearth.bus.publish(notification(f"{i}:{payload}"))
            # Pace like a real producer so a reading client keeps up; the slow one never does.
            await asyncio.sleep(0.001 if i % 10 == 0 else 0)
        await asyncio.wait_for(reader, 60)
        assert received == total
        # The fast client is still served promptly after the flood.
        assert isinstance(await fast.request(Ping(id="after"), Pong), Pong)
        # The slow one was disconnected with the slow-consumer code.
        try:
            async with asyncio.timeout(20):
                while True:
                    await slow.recv()
        except ConnectionClosed:
            pass
        assert slow.close_code == 4008
        assert len(gw.hearth.state.connections) == 1


async def test_subscription_filter_keeps_refused_events_out_of_the_queue() -> None:
    """`accept` runs at publish time, so a narrow subscriber is never woken for the rest."""
    from hearth.events import LocalEventBus

    bus = LocalEventBus()
    wanted = bus.subscribe(
        "notification", maxsize=3, accept=lambda event: event.data["message"].startswith("keep")
    )
    everything = bus.subscribe("notification", maxsize=10)
    for text in ("drop-1", "keep-1", "drop-2", "drop-3", "keep-2"):
        bus.publish(notification(text))
    bus.close()
    assert [e.data["message"] async for e in wanted] == ["keep-1", "keep-2"]
    assert wanted.dropped == 0  # refused events never took a place in the bounded queue
    assert len([e async for e in everything]) == 5


async def test_events_published_with_nobody_connected_are_not_queued_for_fanout(
    sqlite_gateway: RunningGateway,
) -> None:
    for i in range(20_000):  # more than the fanout queue holds
        sqlite_gateway.hearth.bus.publish(notification(f"unseen-{i}"))
    # Queued, the fan-out would have overflowed and dropped half of them.
    assert sqlite_gateway.hearth.fanout.subscription is not None
    assert sqlite_gateway.hearth.fanout.subscription.dropped == 0
    client = await sqlite_gateway.client()
    sqlite_gateway.hearth.bus.publish(notification("seen"))
    event = await client.next_event("notification")
    assert isinstance(event, Notification)
    assert event.message == "seen"
