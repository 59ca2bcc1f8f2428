"""Chat sessions survive a SIGKILL; the CLI chats through a real gateway process."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from hearth.client import GatewayClient
from hearth.protocol.messages.chat import (
    ChatSend,
    ChatStreamStart,
    SessionHistory,
    SessionHistoryResult,
    SessionList,
    SessionListResult,
)
from tests.support.fake_openai import Delay, FakeOpenAI, Text
from tests.support.gateway import start_gateway_process


async def hearth(data_dir: Path, *args: str) -> tuple[int, str, str]:
    """Run the CLI without blocking this event loop (the fake model server lives in it)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEARTH_")}
    env["HEARTH_DATA_DIR"] = str(data_dir)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "hearth",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), 60)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_sessions_survive_sigkill_and_the_cli_continues_them(data_dir: Path) -> None:
    async with FakeOpenAI() as fake:
        (data_dir / "config.toml").write_text(
            f'[models]\ndefault = "local:fake-model"\n\n'
            f'[providers.local]\nkind = "openai"\nbase_url = "{fake.base_url}"\n'
        )
        fake.script(Text("Nice to meet you, Ada."), Text("Your name is Ada."))
        first = start_gateway_process(data_dir)
        try:
            code, out, err = await hearth(data_dir, "chat", "-m", "My name is Ada.")
            assert code == 0, err
            assert "Nice to meet you, Ada." in out
        finally:
            first.kill()

        second = start_gateway_process(data_dir)
        try:
            client = GatewayClient(second.url, second.token)
            await client.connect()
            sessions = await client.request(SessionList(id="l"), SessionListResult)
            assert len(sessions.sessions) == 1
            session = sessions.sessions[0]
            assert session.message_count == 2
            history = await client.request(
                SessionHistory(id="h", session_id=session.session_id), SessionHistoryResult
            )
            assert [m.content for m in history.messages] == [
                "My name is Ada.",
                "Nice to meet you, Ada.",
            ]
            await client.close()
            code, out, err = await hearth(
                data_dir, "chat", "-m", "What is my name?", "--session", session.session_key
            )
            assert code == 0, err
            assert "Your name is Ada." in out
        finally:
            second.stop()
    sent = fake.requests[-1]["messages"]
    assert [m["content"] for m in sent if m["role"] in ("user", "assistant")] == [
        "My name is Ada.",
        "Nice to meet you, Ada.",
        "What is my name?",
    ]


async def test_cli_chat_without_a_model_says_how_to_configure(data_dir: Path) -> None:
    gateway = start_gateway_process(data_dir)
    try:
        code, out, err = await hearth(data_dir, "chat", "-m", "hi")
    finally:
        gateway.stop()
    assert code != 0
    assert "MODEL_NOT_CONFIGURED" in err
    assert "[models] default" in " ".join(err.split())
    assert "Traceback" not in err + out


async def test_keys_are_stored_privately_and_never_printed(data_dir: Path) -> None:
    code, _out, err = await hearth(data_dir, "keys", "set", "openai", "--value", "sk-secret-1")
    assert code == 0, err
    secrets = data_dir / "secrets.json"
    assert secrets.stat().st_mode & 0o777 == 0o600
    code, out, _ = await hearth(data_dir, "keys", "list")
    assert code == 0
    assert "openai" in out
    assert "sk-secret-1" not in out
    assert str(secrets) in " ".join(out.split()) or "secrets.json" in out
    code, _out, err = await hearth(data_dir, "keys", "set", "nosuch", "--value", "x")
    assert code == 2
    assert "unknown provider" in err
    code, _out, _err = await hearth(data_dir, "keys", "rm", "openai")
    assert code == 0
    code, out, _ = await hearth(data_dir, "keys", "list")
    assert "not set" in out


async def test_a_stream_cut_by_sigkill_does_not_leave_its_session_busy(data_dir: Path) -> None:
    async with FakeOpenAI() as fake:
        (data_dir / "config.toml").write_text(
            f'[models]\ndefault = "local:fake-model"\n\n'
            f'[providers.local]\nkind = "openai"\nbase_url = "{fake.base_url}"\n'
        )
        fake.script(Delay(120, then=Text("never")), Text("back again"))
        first = start_gateway_process(data_dir)
        try:
            client = GatewayClient(first.url, first.token)
            await client.connect()
            start = await client.request(ChatSend(id="s", content="hold on"), ChatStreamStart)
            await fake.wait_for_calls(1)
            await client.close()
        finally:
            first.kill()
        second = start_gateway_process(data_dir)
        try:
            client = GatewayClient(second.url, second.token)
            await client.connect()
            again = await client.request(
                ChatSend(id="t", content="still there?", session_id=start.session_id),
                ChatStreamStart,
            )
            end = await client.next_event("chat.stream.end", timeout_s=30)
            await client.close()
        finally:
            second.stop()
    assert again.session_id == start.session_id
    assert end.status == "completed"  # type: ignore[attr-defined]
