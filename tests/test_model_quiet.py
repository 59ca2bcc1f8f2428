"""The gateway owns its output: pydantic-ai's first-run banner (a Logfire advert) never appears.

pydantic-ai prints the banner on the first agent run of a process when stderr is a terminal or a
coding agent runs the process, unless `pydantic_ai.BANNER_ENABLED` is False (or pytest or CI is
detected). The test runs a real gateway process with the environment of a person's terminal as
pydantic-ai sees it (no PYTEST_VERSION, no CI; AI_AGENT=1 stands in for the terminal, as the
log is a file) and makes it call a model.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hearth.client import GatewayClient
from hearth.protocol.messages.chat import ChatSend, ChatStreamEnd, ChatStreamStart
from tests.support.fake_openai import FakeOpenAI, Text
from tests.support.gateway import GatewayProcess
from tests.support.heartbeat import model_config_toml

pytestmark = pytest.mark.slow

#: What pydantic-ai itself reads to decide against the banner; none may reach the gateway here.
PORT = ("--port", "0")
SUPPRESSING = ("PYTEST_VERSION", "CI", "PYDANTIC_AI_NO_BANNER", "PYTEST_CURRENT_TEST")


async def test_no_logfire_advert_in_the_gateway_output(data_dir: Path, tmp_path: Path) -> None:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("HEARTH_") and k not in SUPPRESSING
    }
    env["AI_AGENT"] = "1"
    log_path = tmp_path / "gateway.log"
    async with FakeOpenAI() as fake:
        fake.script_forever(Text("hello"))
        (data_dir / "config.toml").write_text(model_config_toml(fake, "tools = false\n"))
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "hearth", "serve", "--data-dir", str(data_dir), *PORT],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
            )
        gateway = GatewayProcess(data_dir, process, log_path)
        try:
            await asyncio.to_thread(gateway.wait_ready)
            client = GatewayClient(gateway.url, gateway.token)
            await client.connect()
            try:
                start = await client.request(ChatSend(id="c", content="hi"), ChatStreamStart)
                async with asyncio.timeout(30):
                    async for event in client.events():
                        if isinstance(event, ChatStreamEnd):
                            assert event.request_id == start.request_id
                            assert event.status == "completed"
                            break
            finally:
                await client.close()
        finally:
            gateway.stop()
    output = gateway.log()
    assert fake.calls == 1
    # The banner's words (its heading and its Logfire line); the data dir's path has neither.
    assert "Pydantic Logfire" not in output
    assert "observability: off" not in output
