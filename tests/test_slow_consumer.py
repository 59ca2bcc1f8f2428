"""A client that stops reading is cut off for real (4008 or a reset), and nobody else suffers.

Before, the gateway logged the 4008 close, but the close frame sat behind megabytes the
client would never read and `transport.close()` waited for that buffer to drain: the socket
stayed ESTABLISHED indefinitely. The test floods replies at a client that never reads, then
watches the gateway's side of that TCP connection (it runs in this process) until it is gone,
while another client keeps getting answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from pathlib import Path

import psutil

from tests.support.gateway import in_process_gateway
from tests.support.wire import RawPeer


def _frame(text: str) -> bytes:
    """A masked client text frame (the all-zero mask leaves the payload as it is)."""
    payload = text.encode()
    n = len(payload)
    if n < 126:
        head = bytes([0x81, 0x80 | n])
    elif n < 65536:
        head = bytes([0x81, 0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([0x81, 0x80 | 127]) + n.to_bytes(8, "big")
    return head + b"\0\0\0\0" + payload


def _server_side_open(gateway_port: int, client_port: int) -> bool:
    return any(
        c.laddr and c.raddr and c.laddr.port == gateway_port and c.raddr.port == client_port
        for c in psutil.Process().net_connections(kind="tcp")
    )


async def test_a_client_that_stops_reading_is_really_disconnected(data_dir: Path) -> None:
    limits = {"outbound_queue": 8, "ws_ping_interval_s": 3600, "ws_ping_timeout_s": 3600}
    async with in_process_gateway(data_dir, limits=limits) as gw:
        port = int(gw.url.rsplit(":", 1)[1])
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", port))
        reader, writer = await asyncio.open_connection(sock=sock, limit=1024)
        writer.write(
            (
                f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        assert b" 101 " in await reader.readuntil(b"\r\n\r\n")
        hello = {"type": "hello", "id": "h", "protocol": 1, "token": gw.token}
        writer.write(_frame(json.dumps(hello)))
        # Each of these is answered with an error that repeats the (unknown) type: ~1 MB
        # of replies per 0.5 MB frame, none of which this client ever reads.
        client_port = sock.getsockname()[1]
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):  # cut off mid-flood
            for n in range(40):
                writer.write(_frame(json.dumps({"type": "x" * 400_000, "id": str(n)})))
                await writer.drain()

        other = await RawPeer.open(gw.ws_url)
        await other.hello(gw.token)
        async with asyncio.timeout(60):  # a hang guard, not a performance threshold
            n = 0
            while _server_side_open(port, client_port):
                n += 1
                reply = await other.request({"type": "ping", "id": f"p{n}"})
                assert reply["type"] == "pong"
                await asyncio.sleep(0.1)
        assert (await other.request({"type": "ping", "id": "last"}))["type"] == "pong"
        await other.close()
        # What the slow client finally sees: its buffered replies and then a 4008 close, or
        # a reset. Never an open connection.
        ended_with: str | None = None
        try:
            async with asyncio.timeout(60):
                data = await reader.read()  # to the end of the stream
            # Without a close frame the stream was cut by the abort (a reset; Linux may report
            # it as the end of the stream once the buffered bytes are read).
            ended_with = "4008" if b"\x88\x02\x0f\xa8" in data else "reset"
        except ConnectionResetError:
            ended_with = "reset"
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):
            writer.close()
        assert ended_with in ("4008", "reset")
