"""The hello handshake and every way it can fail."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from hearth.client import GatewayClient, GatewayError
from hearth.datadir import rotate_token
from hearth.gateway.auth import FailureLimiter
from hearth.protocol import ErrorCode, Ping, Pong
from tests.support.gateway import RunningGateway, in_process_gateway
from tests.support.wire import RawPeer


async def closed_code(peer: RawPeer) -> int | None:
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(peer.ws.recv(), 10)
    return peer.ws.close_code


async def test_hello_ok_lists_features(gateway: RunningGateway) -> None:
    peer = await RawPeer.open(gateway.ws_url)
    await peer.send(
        {
            "type": "hello",
            "id": "h1",
            "protocol": 1,
            "token": gateway.token,
            "client": {"name": "test", "version": "1"},
        }
    )
    reply = await peer.recv()
    assert reply["type"] == "hello.ok"
    assert reply["id"] == "h1"
    assert reply["protocol"] == 1
    assert reply["connectionId"].startswith("c-")
    assert {"hello", "ping", "gateway.status"} <= set(reply["features"])
    assert reply["server"]["name"] == "hearth"
    await peer.close()


async def test_wrong_token_is_unauthorized_and_closed(sqlite_gateway: RunningGateway) -> None:
    peer = await RawPeer.open(sqlite_gateway.ws_url)
    await peer.send({"type": "hello", "id": "h1", "protocol": 1, "token": "nope"})
    reply = await peer.recv()
    assert reply["type"] == "error"
    assert reply["code"] == ErrorCode.UNAUTHORIZED
    assert reply["id"] == "h1"
    assert await closed_code(peer) == 4401


@pytest.mark.parametrize(
    "first",
    [
        {"type": "ping", "id": "p1"},
        {"type": "hello", "id": "h1", "protocol": 1},
        "not json at all",
        {"id": "x"},
        {"id": "h1", "protocol": 1, "token": "TOKEN"},
        {"type": "hello", "id": "h1", "protocol": 1, "token": "TOKEN", "extra": True},
    ],
)
async def test_anything_but_hello_first_is_unauthenticated(
    sqlite_gateway: RunningGateway, first: object
) -> None:
    peer = await RawPeer.open(sqlite_gateway.ws_url)
    if isinstance(first, dict) and first.get("token") == "TOKEN":
        first = {**first, "token": sqlite_gateway.token}
    await peer.send(first)  # type: ignore[arg-type]
    reply = await peer.recv()
    assert reply["type"] == "error"
    assert reply["code"] == ErrorCode.UNAUTHENTICATED
    assert await closed_code(peer) == 4401


async def test_client_raises_on_wrong_token(sqlite_gateway: RunningGateway) -> None:
    client = GatewayClient(sqlite_gateway.url, "wrong-token")
    with pytest.raises(GatewayError) as info:
        await client.connect()
    assert info.value.code == ErrorCode.UNAUTHORIZED


async def test_unsupported_protocol_version(sqlite_gateway: RunningGateway) -> None:
    peer = await RawPeer.open(sqlite_gateway.ws_url)
    await peer.send({"type": "hello", "id": "h", "protocol": 99, "token": sqlite_gateway.token})
    reply = await peer.recv()
    assert reply["code"] == ErrorCode.UNSUPPORTED_PROTOCOL
    assert reply["details"]["supported"] == [1]
    assert await closed_code(peer) == 4426


async def test_no_hello_in_time_closes_4408(data_dir: Path) -> None:
    async with in_process_gateway(data_dir, limits={"hello_timeout_s": 0.3}) as gw:
        peer = await RawPeer.open(gw.ws_url)
        assert await closed_code(peer) == 4408


async def test_foreign_browser_origin_is_refused_before_upgrade(
    sqlite_gateway: RunningGateway,
) -> None:
    with pytest.raises(InvalidStatus) as info:
        await RawPeer.open(sqlite_gateway.ws_url, origin="http://evil.example")
    assert info.value.response.status_code == 403


async def test_own_origin_and_allowed_origins_are_accepted(data_dir: Path) -> None:
    async with in_process_gateway(data_dir, allowed_origins=["https://dash.example"]) as gw:
        own = gw.url  # http://127.0.0.1:PORT, as a page served by the gateway would send
        for origin in (own, "https://dash.example"):
            peer = await RawPeer.open(gw.ws_url, origin=origin)
            await peer.hello(gw.token)
            await peer.close()


async def _bad_hello(ws_url: str, **connect: Any) -> dict[str, Any]:
    peer = await RawPeer.open(ws_url, **connect)
    await peer.send({"type": "hello", "id": "h", "protocol": 1, "token": "bad"})
    reply = await peer.recv()
    assert await closed_code(peer) in (4401, 4429)
    return reply


def _from(source: str, port: int) -> socket.socket:
    """A TCP connection to the gateway from another loopback source address."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", port))
    return sock


async def test_repeated_failures_rate_limit_bad_hellos_never_the_right_token(
    data_dir: Path,
) -> None:
    async with in_process_gateway(
        data_dir, limits={"auth_failures_per_minute": 3, "auth_block_s": 60}
    ) as gw:
        for _ in range(3):
            assert (await _bad_hello(gw.ws_url))["code"] == ErrorCode.UNAUTHORIZED
        reply = await _bad_hello(gw.ws_url)
        assert reply["code"] == ErrorCode.RATE_LIMITED
        assert 0 < reply["details"]["retryAfterS"] <= 60
        # Another loopback address is the same bucket: rotating 127.0.0.x does not help.
        port = int(gw.url.rsplit(":", 1)[1])
        rotated = await _bad_hello(gw.ws_url, sock=_from("127.0.0.2", port))
        assert rotated["code"] == ErrorCode.RATE_LIMITED
        # The owner, presenting the right token, is never locked out.
        peer = await RawPeer.open(gw.ws_url)
        await peer.hello(gw.token)
        assert (await peer.request({"type": "ping", "id": "p"}))["type"] == "pong"
        await peer.close()


def test_limiter_blocks_remote_addresses_one_by_one_and_loopback_as_one() -> None:
    limiter = FailureLimiter(limit=3, window_s=60, block_s=300)
    for _ in range(3):
        limiter.record_failure("203.0.113.5", now=0)
    assert limiter.retry_after("203.0.113.5", now=1) == 299
    assert limiter.retry_after("203.0.113.6", now=1) == 0
    for address in ("127.0.0.1", "127.0.0.39", "::1"):
        limiter.record_failure(address, now=0)
    assert limiter.retry_after("127.0.0.2", now=1) == 299
    assert limiter.retry_after("::ffff:127.0.0.1", now=1) == 299
    assert limiter.retry_after("203.0.113.6", now=1) == 0


async def _upgrade_status(port: int, host: str, origin: str) -> int:
    """Send a raw WebSocket upgrade with chosen Host and Origin; return the HTTP status."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        (
            f"GET /ws HTTP/1.1\r\nHost: {host}\r\nOrigin: {origin}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    await writer.drain()
    status = int((await asyncio.wait_for(reader.readline(), 10)).split()[1])
    writer.close()
    return status


async def test_origin_is_not_judged_by_the_host_header(sqlite_gateway: RunningGateway) -> None:
    port = int(sqlite_gateway.url.rsplit(":", 1)[1])
    # What a DNS-rebound page sends: its own name in both Host and Origin.
    rebound = f"evil.example:{port}"
    assert await _upgrade_status(port, rebound, f"http://{rebound}") == 403
    assert await _upgrade_status(port, f"127.0.0.1:{port}", f"http://{rebound}") == 403
    for own in (f"http://127.0.0.1:{port}", f"http://localhost:{port}", f"http://[::1]:{port}"):
        assert await _upgrade_status(port, rebound, own) == 101
    assert await _upgrade_status(port, rebound, "http://127.0.0.1:1") == 403


async def test_rotated_token_applies_to_new_connections(sqlite_gateway: RunningGateway) -> None:
    old = await sqlite_gateway.client()
    new_token = rotate_token(sqlite_gateway.data_dir / "gateway.token")
    with pytest.raises(GatewayError):
        await GatewayClient(sqlite_gateway.url, sqlite_gateway.token).connect()
    fresh = GatewayClient(sqlite_gateway.url, new_token)
    await fresh.connect()
    await fresh.close()
    # The connection opened before the rotation keeps working.
    assert isinstance(await old.request(Ping(id="p"), Pong), Pong)


async def test_peer_that_never_answers_pings_is_dropped(data_dir: Path) -> None:
    """A half-dead peer (no pong) is disconnected by the WebSocket keepalive, not the hello
    timeout: that one is set far longer here."""
    limits = {"ws_ping_interval_s": 0.3, "ws_ping_timeout_s": 0.3, "hello_timeout_s": 120}
    async with in_process_gateway(data_dir, limits=limits) as gw:
        host, port = gw.url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(
            (
                f"GET /ws HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        await writer.drain()
        status = await reader.readline()
        assert b"101" in status
        # Read (and ignore) whatever the server sends, never answering its pings.
        async with asyncio.timeout(30):
            while await reader.read(1024):
                pass
        writer.close()
