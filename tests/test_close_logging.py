"""Closes are logged with their real code, in one line, and never as a traceback."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from tests.support.gateway import RunningGateway, in_process_gateway


def _raw_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    assert len(payload) < 65536
    size = bytes([0x80 | len(payload)]) if len(payload) < 126 else bytes([0x80 | 126])
    if len(payload) >= 126:
        size += len(payload).to_bytes(2, "big")
    return bytes([0x80 | opcode]) + size + b"\0\0\0\0" + payload


async def _open_raw(gw: RunningGateway) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    port = int(gw.url.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        (
            f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    await reader.readuntil(b"\r\n\r\n")
    hello = b'{"type":"hello","id":"h","protocol":1,"token":"' + gw.token.encode() + b'"}'
    writer.write(_raw_frame(hello))
    return reader, writer


async def _closed_lines(caplog: pytest.LogCaptureFixture, count: int) -> list[str]:
    async with asyncio.timeout(30):  # a hang guard
        while True:
            lines = [m for r in caplog.records if "connection closed" in (m := r.getMessage())]
            if len(lines) >= count:
                return lines
            await asyncio.sleep(0.05)


async def test_real_close_codes_are_logged_without_tracebacks(
    data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with in_process_gateway(data_dir, limits={"max_frame_bytes": 1024}) as gw:
        reader, writer = await _open_raw(gw)
        writer.write(_raw_frame(b'"' + b"x" * 2000 + b'"'))  # too big: 1009
        await reader.read()
        writer.close()
        reader, writer = await _open_raw(gw)
        writer.write(_raw_frame(b"\xff\xfe not utf-8"))  # invalid UTF-8: 1007
        await reader.read()
        writer.close()
        # A peer that sends a wrong hello and vanishes at once, mid-close.
        port = int(gw.url.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            (
                f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
            + _raw_frame(b'{"type":"hello","id":"h","protocol":1,"token":"wrong"}')
        )
        await writer.drain()
        writer.transport.abort()
        lines = await _closed_lines(caplog, 3)
    assert "connection closed (code 1009)" in lines
    assert "connection closed (code 1007)" in lines
    assert not [r for r in caplog.records if r.exc_info or "Exception in ASGI" in r.getMessage()]
