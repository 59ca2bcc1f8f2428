"""Requests after the handshake: results, errors, bad frames, limits, concurrency."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed

from hearth.protocol import ErrorCode, GatewayStatus, GatewayStatusResult, Ping, Pong
from tests.support.gateway import RunningGateway
from tests.support.wire import RawPeer


async def authed_peer(gw: RunningGateway, **kwargs: Any) -> RawPeer:
    peer = await RawPeer.open(gw.ws_url, **kwargs)
    await peer.hello(gw.token)
    return peer


async def test_ping_and_status_on_each_backend(gateway: RunningGateway) -> None:
    client = await gateway.client()
    pong = await client.request(Ping(id="p1"), Pong)
    assert pong.id == "p1"
    status = await client.request(GatewayStatus(id="s1"), GatewayStatusResult)
    expected = "sqlite" if gateway.hearth.db.backend == "sqlite" else "postgresql"
    assert status.database == expected
    assert status.connections == 1
    assert status.protocol == 1
    assert status.uptime_s >= 0
    assert status.nodes == 1


async def test_status_counts_connections(sqlite_gateway: RunningGateway) -> None:
    first = await sqlite_gateway.client()
    await sqlite_gateway.client()
    status = await first.request(GatewayStatus(id="s"), GatewayStatusResult)
    assert status.connections == 2


@pytest.mark.parametrize(
    ("frame", "path"),
    [
        ("{", "(frame)"),
        ('{"type":"nope","id":"a"}', "type"),
        ('{"id":"a"}', "type"),
        ('{"type":"ping"}', "id"),
        ('{"type":"ping","id":"a","extra":1}', "extra"),
        ('{"type":"ping","id":""}', "id"),
        ('{"type":"ping","id":5}', "id"),
        ("[1,2,3]", "(frame)"),
        ("null", "(frame)"),
    ],
)
async def test_bad_frames_get_invalid_message_with_path(
    sqlite_gateway: RunningGateway, frame: str, path: str
) -> None:
    peer = await authed_peer(sqlite_gateway)
    reply = await peer.request(frame)  # type: ignore[arg-type]
    assert reply["type"] == "error"
    assert reply["code"] == ErrorCode.INVALID_MESSAGE
    paths = [e["path"] for e in reply["details"]["errors"]]
    assert path in paths, reply
    # The id is echoed whenever the frame had a usable one.
    if '"id":"a"' in frame:
        assert reply["id"] == "a"
    assert (await peer.request({"type": "ping", "id": "after"}))["type"] == "pong"
    await peer.close()


async def test_binary_frame_and_second_hello_are_refused(sqlite_gateway: RunningGateway) -> None:
    peer = await authed_peer(sqlite_gateway)
    reply = await peer.request(b"\x00\x01")  # type: ignore[arg-type]
    assert reply["code"] == ErrorCode.INVALID_MESSAGE
    again = {"type": "hello", "id": "h2", "protocol": 1, "token": sqlite_gateway.token}
    reply = await peer.request(again)
    assert (reply["code"], reply["id"]) == (ErrorCode.INVALID_MESSAGE, "h2")
    assert (await peer.request({"type": "ping", "id": "ok"}))["type"] == "pong"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
near_valid = st.fixed_dictionaries(
    {"type": st.sampled_from(["ping", "gateway.status", "hello", "pong", "PING", ""])},
    optional={
        "id": st.one_of(st.text(max_size=200), st.integers(), st.none()),
        "extra": json_values,
        "token": st.text(max_size=10),
        "protocol": json_values,
    },
)
frames = st.one_of(
    st.text(max_size=300),
    json_values.map(json.dumps),
    near_valid.map(json.dumps),
)


async def test_arbitrary_frames_each_get_one_reply_and_connection_survives(
    sqlite_gateway: RunningGateway,
) -> None:
    peer = await authed_peer(sqlite_gateway)
    seen: list[str] = []

    @settings(
        max_examples=150,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(frame=frames)
    def check(frame: str) -> None:
        seen.append(frame)

    check()
    for frame in seen:
        reply = await peer.request(frame)  # validated against the published schema
        data = None
        with contextlib.suppress(ValueError):
            data = json.loads(frame)
        valid_ping = (
            isinstance(data, dict)
            and set(data) == {"type", "id"}
            and data["type"] in ("ping", "gateway.status")
            and isinstance(data["id"], str)
            and 0 < len(data["id"]) <= 128
        )
        if valid_ping:
            assert reply["type"] != "error", (frame, reply)
            assert reply["id"] == data["id"]
        else:
            assert reply["type"] == "error", (frame, reply)
            assert reply["code"] == ErrorCode.INVALID_MESSAGE
        pong = await peer.request({"type": "ping", "id": "still-alive"})
        assert pong == {"type": "pong", "id": "still-alive"}
    assert len(seen) > 50


async def test_oversize_frame_closes_that_connection_only(
    sqlite_gateway: RunningGateway,
) -> None:
    bystander = await sqlite_gateway.client()
    peer = await authed_peer(sqlite_gateway, max_size=None)
    huge = json.dumps({"type": "ping", "id": "x", "pad": "a" * (1024 * 1024 + 10)})
    await peer.send(huge)
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(peer.ws.recv(), 10)
    assert peer.ws.close_code == 1009
    assert isinstance(await bystander.request(Ping(id="b"), Pong), Pong)


async def test_fifty_concurrent_requests_each_answered_once(gateway: RunningGateway) -> None:
    peer = await authed_peer(gateway)
    ids = [f"req-{i}" for i in range(50)]
    for i, msg_id in enumerate(ids):
        kind = "ping" if i % 2 else "gateway.status"
        await peer.send({"type": kind, "id": msg_id})
    replies = [await peer.recv() for _ in ids]
    assert sorted(r["id"] for r in replies) == sorted(ids)
    assert all(r["type"] in ("pong", "gateway.status.result") for r in replies)
    # Nothing more arrives: exactly one reply each.
    with pytest.raises(TimeoutError):
        await peer.recv(timeout=0.3)


async def test_client_correlates_concurrent_requests(sqlite_gateway: RunningGateway) -> None:
    client = await sqlite_gateway.client()
    replies = await asyncio.gather(*(client.request(Ping(id=f"p{i}"), Pong) for i in range(50)))
    assert [r.id for r in replies] == [f"p{i}" for i in range(50)]
