"""GatewayClient behaviour that needs a gateway to disappear and come back."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from hearth.client import ConnectionLostError, GatewayClient, GatewayUnavailableError
from hearth.datadir import DataDirError
from hearth.protocol import Ping, Pong
from tests.support.gateway import start_gateway_process


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_reconnects_after_the_gateway_restarts(data_dir: Path) -> None:
    port = str(free_port())
    first = start_gateway_process(data_dir, "--port", port)
    client = GatewayClient.from_data_dir(data_dir, reconnect=True)
    try:
        await client.connect()
        assert isinstance(await client.request(Ping(id="a"), Pong), Pong)
        first.kill()
        async with asyncio.timeout(10):
            while client.connected:
                await asyncio.sleep(0.05)
        # A request made while the gateway is down waits for the reconnect.
        during = asyncio.create_task(client.request(Ping(id="during"), Pong))
        second = start_gateway_process(data_dir, "--port", port)
        try:
            assert (await asyncio.wait_for(during, 30)).id == "during"
            assert isinstance(await client.request(Ping(id="b"), Pong), Pong)
        finally:
            second.stop()
    finally:
        await client.close()
        first.stop()


async def test_without_reconnect_a_dropped_connection_fails_requests(data_dir: Path) -> None:
    gateway = start_gateway_process(data_dir)
    client = GatewayClient.from_data_dir(data_dir)
    try:
        await client.connect()
        gateway.kill()
        async with asyncio.timeout(10):
            while client.connected:
                await asyncio.sleep(0.05)
        with pytest.raises(ConnectionLostError):
            await client.request(Ping(id="x"), Pong)
        events = [e async for e in client.events()]
        assert events == []  # the event stream ends instead of hanging
    finally:
        await client.close()
        gateway.stop()


async def test_from_data_dir_without_gateway(data_dir: Path) -> None:
    with pytest.raises(DataDirError, match="not running"):
        GatewayClient.from_data_dir(data_dir)


async def test_unreachable_url_says_so() -> None:
    client = GatewayClient(f"http://127.0.0.1:{free_port()}", "t")
    with pytest.raises(GatewayUnavailableError, match="hearth serve"):
        await client.connect()
