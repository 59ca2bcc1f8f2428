"""No piece of the token or of a stored key reaches the log, at any level (DEBUG included).

uvicorn's and websockets' frame logging at DEBUG prints the start of every frame, so a hello
puts part of the token into the log; redacting only the whole token misses it. The test runs
a real gateway process at DEBUG, speaks to it with a real client (right token, wrong token,
raw frames), and then looks for every 8-character piece of each secret in the captured log.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import websockets

from hearth.client import GatewayClient
from hearth.protocol.messages.schedules import ScheduleList, ScheduleListResult
from hearth.secrets import SecretStore
from tests.support.fake_openai import FakeOpenAI
from tests.support.fake_telegram import FakeTelegram
from tests.support.gateway import start_gateway_process
from tests.support.workflows import trigger, wait_status, write_workflow

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


async def test_debug_log_holds_no_piece_of_the_telegram_token(data_dir: Path) -> None:
    """The Bot API puts the bot token in every request's path; HTTPX and python-telegram-bot
    log such URLs. Run the channel at DEBUG against the fake Bot API and look for it."""
    async with FakeTelegram() as bot:
        (data_dir / "config.toml").write_text(
            f'[telegram]\nenabled = true\napi_base_url = "{bot.base_url}"\npoll_timeout_s = 1\n'
        )
        gateway = start_gateway_process(
            data_dir,
            env={"HEARTH_LOG_LEVEL": "DEBUG", "HEARTH_TELEGRAM__TOKEN": bot.token},
            wait=False,
        )
        try:
            await asyncio.to_thread(gateway.wait_ready)
            async with asyncio.timeout(30):
                while len(bot.calls_of("getUpdates")) < 3:
                    await asyncio.sleep(0.1)
        finally:
            gateway.stop()
    log = gateway.log()
    assert "DEBUG" in log
    secret = bot.token.split(":", 1)[1]
    leaked = sorted(p for p in _pieces(secret) if p in log)
    assert leaked == [], f"pieces of the bot token in the log: {leaked}"


async def test_a_request_url_with_a_key_in_its_query_is_not_logged(data_dir: Path) -> None:
    """HTTPX logs each request's full URL at INFO; a workflow calling an API with its key in
    the query string must not put that key into the gateway's log."""
    secret = "qk-9d2f61c0e8b74a35"
    async with FakeOpenAI() as service:
        (data_dir / "config.toml").write_text('[tools.http]\nallow = ["127.0.0.1"]\n')
        write_workflow(
            data_dir,
            "call",
            "name: Call\nsteps:\n  - id: get\n    action: tool\n    tool: http.request\n"
            f'    args: {{method: GET, url: "{service.base_url}/models?api_key={secret}"}}\n',
        )
        gateway = start_gateway_process(data_dir, wait=False)
        try:
            await asyncio.to_thread(gateway.wait_ready)
            async with GatewayClient(gateway.url, gateway.token) as client:
                execution_id = await trigger(client, "call")
                done = await wait_status(client, execution_id, {"completed", "failed"})
            assert done.execution.status == "completed", done.execution.error
        finally:
            gateway.stop()
    assert secret not in gateway.log()
