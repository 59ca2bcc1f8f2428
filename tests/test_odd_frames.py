"""Frames that used to end a connection silently now get INVALID_MESSAGE (or, first, 4401).

1000 levels of nesting, lone surrogates in `id` or `type` and 5000-digit numbers made the
reader raise outside its error handling; the connection closed with 1000, no reply, no log.
"""

from __future__ import annotations

import asyncio

import pytest
from websockets.exceptions import ConnectionClosed

from hearth.protocol import ErrorCode
from tests.support.gateway import RunningGateway
from tests.support.wire import RawPeer

NESTED = '{"type":"ping","id":"deep","x":' + "[" * 1000 + "]" * 1000 + "}"
ODD_FRAMES = [
    (NESTED, "deep"),
    ('{"type":"ping","id":"\\ud800"}', None),
    ('{"type":"\\udc00","id":"t1"}', "t1"),
    ('{"type":"ping","id":"big","n":' + "9" * 5000 + "}", "big"),
    ('{"type":"ping","id":' + "9" * 5000 + "}", None),
]


@pytest.mark.parametrize(("frame", "expected_id"), ODD_FRAMES)
async def test_odd_frames_get_invalid_message_and_the_connection_stays(
    sqlite_gateway: RunningGateway, frame: str, expected_id: str | None
) -> None:
    peer = await RawPeer.open(sqlite_gateway.ws_url)
    await peer.hello(sqlite_gateway.token)
    await peer.send(frame)
    reply = await peer.recv()
    assert reply["type"] == "error"
    assert reply["code"] == ErrorCode.INVALID_MESSAGE
    assert reply.get("id") == expected_id
    assert (await peer.request({"type": "ping", "id": "after"}))["type"] == "pong"
    await peer.close()


@pytest.mark.parametrize(("frame", "expected_id"), ODD_FRAMES)
async def test_odd_first_frames_are_unauthenticated_and_closed_4401(
    sqlite_gateway: RunningGateway, frame: str, expected_id: str | None
) -> None:
    peer = await RawPeer.open(sqlite_gateway.ws_url)
    await peer.send(frame)
    reply = await peer.recv()
    assert reply["code"] == ErrorCode.UNAUTHENTICATED
    assert reply.get("id") == expected_id
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(peer.ws.recv(), 10)
    assert peer.ws.close_code == 4401
