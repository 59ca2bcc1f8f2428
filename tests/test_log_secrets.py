"""No piece of the token or of a stored key reaches the log, at any level (DEBUG included).

uvicorn's and websockets' frame logging at DEBUG prints the start of every frame, so a hello
puts part of the token into the log; redacting only the whole token misses it. The test runs
a real gateway process at DEBUG, speaks to it with a real client (right token, wrong token,
raw frames), and then looks for every 8-character piece of each secret in the captured log.
"""

from __future__ import annotations

import json
from pathlib import Path

import websockets

from hearth.client import GatewayClient
from hearth.protocol.messages.schedules import ScheduleList, ScheduleListResult
from hearth.secrets import SecretStore
from tests.support.gateway import start_gateway_process

STORED_KEY = "sk-stored-4f9a1c7e2b6d8035ae91c4d7f02b63e8"


def _pieces(secret: str, size: int = 8) -> set[str]:
    return {secret[i : i + size] for i in range(len(secret) - size + 1)}


async def test_debug_log_holds_no_piece_of_the_token_or_keys(data_dir: Path) -> None:
    SecretStore(data_dir / "secrets.json", use_keyring=False).set("openai", STORED_KEY)
    gateway = start_gateway_process(data_dir, env={"HEARTH_LOG_LEVEL": "DEBUG"})
    try:
        token = gateway.token
        client = GatewayClient(gateway.url, token)
        await client.connect()
        await client.request(ScheduleList(id="l"), ScheduleListResult)
        await client.close()
        ws_url = gateway.url.replace("http://", "ws://") + "/ws"
        async with websockets.connect(ws_url) as raw:
            # A wrong token that shares most of the real one, and an echo of both in an id.
            await raw.send(
                json.dumps(
                    {"type": "hello", "id": token[:20], "protocol": 1, "token": token[:-1] + "x"}
                )
            )
            await raw.recv()
        async with websockets.connect(ws_url) as raw:
            await raw.send(json.dumps({"type": "hello", "id": "h", "protocol": 1, "token": token}))
            await raw.recv()
            await raw.send(json.dumps({"type": "nope", "id": STORED_KEY}))
            await raw.recv()
    finally:
        gateway.stop()
    log = gateway.log()
    assert "DEBUG" in log, "the gateway did not log at DEBUG: the test proves nothing"
    assert "[redacted]" in log
    leaked = sorted(p for p in _pieces(token) | _pieces(STORED_KEY) if p in log)
    assert leaked == [], f"pieces of secrets in the log: {leaked}"
