"""A raw WebSocket peer that checks every frame the gateway sends against the published schema."""

from __future__ import annotations

import asyncio
import json
from functools import cache
from typing import Any

import jsonschema
from websockets.asyncio.client import ClientConnection, connect

from hearth.protocol import protocol_schema


@cache
def server_validator() -> jsonschema.protocols.Validator:
    schema = protocol_schema()["server"]
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def check_server_frame(raw: str | bytes) -> dict[str, Any]:
    """Parse a frame the gateway sent and fail the test if the schema does not allow it."""
    data = json.loads(raw)
    server_validator().validate(data)
    return data  # type: ignore[no-any-return]


class RawPeer:
    """Speaks JSON frames directly, for tests that must send what GatewayClient never would."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.received: list[dict[str, Any]] = []

    @classmethod
    async def open(cls, ws_url: str, **kwargs: Any) -> RawPeer:
        return cls(await connect(ws_url, compression=None, **kwargs))

    async def send(self, frame: str | bytes | dict[str, Any]) -> None:
        await self.ws.send(json.dumps(frame) if isinstance(frame, dict) else frame)

    async def recv(self, timeout: float = 10) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.ws.recv(), timeout)
        frame = check_server_frame(raw)
        self.received.append(frame)
        return frame

    async def hello(self, token: str, msg_id: str = "h1") -> dict[str, Any]:
        await self.send({"type": "hello", "id": msg_id, "protocol": 1, "token": token})
        reply = await self.recv()
        assert reply["type"] == "hello.ok", reply
        return reply

    async def request(self, frame: dict[str, Any]) -> dict[str, Any]:
        await self.send(frame)
        return await self.recv()

    async def close(self) -> None:
        await self.ws.close()
