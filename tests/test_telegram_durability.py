"""SIGKILL of a real gateway process with the Telegram channel: no duplicate, no loss.

The gateway runs as a child process against the fake Bot API and a model server in this
test's event loop; it is killed at the two places where a careless bot duplicates or drops:
after it has received an update but before it answered, and in the middle of a reply.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from hearth.channels.telegram.stream import INTERRUPTED_NOTE
from tests.support.fake_openai import FakeOpenAI, Text
from tests.support.fake_telegram import FakeTelegram
from tests.support.gateway import GatewayProcess, start_gateway_process
from tests.support.paced_model import PacedModel, PacedReply
from tests.support.telegram import ADA, EVE, write_config


def start(data_dir: Path, fake: FakeTelegram) -> GatewayProcess:
    return start_gateway_process(data_dir, env={"HEARTH_TELEGRAM__TOKEN": fake.token})


async def hearth(data_dir: Path, *args: str) -> tuple[int, str, str]:
    """Run the CLI without blocking this event loop (the fake servers live in it)."""
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
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_sigkill_between_receiving_and_answering_an_update(data_dir: Path) -> None:
    async with FakeTelegram() as fake, FakeOpenAI() as model:
        write_config(data_dir, fake, model)
        model.script(Text("Hello Ada."))
        # "typing…" is sent after the update is stored and before the model is asked: hold it
        # there and kill the gateway.
        fake.hold("sendChatAction")
        first = start(data_dir, fake)
        try:
            fake.push_message(ADA, "hi")
            await fake.wait_for(lambda: fake.calls_of("sendChatAction"))
        finally:
            first.kill()
        fake.release("sendChatAction")
        assert model.calls == 0
        second = start(data_dir, fake)
        try:
            await fake.wait_for(lambda: [m.text for m in fake.chat(ADA)] == ["Hello Ada."])
            await fake.wait_for(lambda: fake.pending_updates == 0)
            # Telegram redelivered the update the first process never confirmed; the inbox
            # knew it, so it was answered once.
            await asyncio.sleep(0.5)
        finally:
            second.stop()
    assert [m.text for m in fake.chat(ADA)] == ["Hello Ada."]
    assert model.calls == 1
    for gateway in (first, second):
        # HTTPX's per-request URL lines (the Bot API path holds the token) are not logged.
        assert fake.token.split(":", 1)[1] not in gateway.log()


async def test_sigkill_mid_stream_finishes_the_reply_with_a_note(data_dir: Path) -> None:
    async with FakeTelegram() as fake, PacedModel() as model:
        write_config(data_dir, fake, None, extra="")
        config = (data_dir / "config.toml").read_text()
        (data_dir / "config.toml").write_text(
            f'[models]\ndefault = "local:fake-model"\n\n[providers.local]\nkind = "openai"\n'
            f'base_url = "{model.base_url}"\n\n{config}'
        )
        model.script(
            PacedReply(("Part one. ", "Part two. ", "never ", "seen."), gap_s=0.05, hold_after=2)
        )
        first = start(data_dir, fake)
        try:
            fake.push_message(ADA, "tell me")
            await model.held.wait()
            await fake.wait_for(
                lambda: any(m.text == "Part one. Part two." for m in fake.chat(ADA))
            )
        finally:
            first.kill()
        second = start(data_dir, fake)
        try:
            await fake.wait_for(lambda: any(INTERRUPTED_NOTE in m.text for m in fake.chat(ADA)))
            await fake.wait_for(lambda: fake.pending_updates == 0)
            code, out, err = await hearth(data_dir, "status")
        finally:
            second.stop()
    [message] = fake.chat(ADA)
    assert message.text == f"Part one. Part two.\n\n{INTERRUPTED_NOTE}"
    assert len(fake.calls_of("sendMessage")) == 1
    assert len(model.requests) == 1  # finished with a note, not asked again
    assert code == 0, err
    assert "telegram" in out


async def test_pairing_from_the_command_line_survives_a_restart(data_dir: Path) -> None:
    async with FakeTelegram() as fake, FakeOpenAI() as model:
        write_config(data_dir, fake, model)
        model.script(Text("Welcome, Eve."))
        first = start(data_dir, fake)
        try:
            fake.push_message(EVE, "let me in", name="Eve")
            await fake.wait_for(lambda: fake.chat(EVE))
            code = fake.chat(EVE)[0].text.split("pair ", 1)[1].split()[0]
            status, out, err = await hearth(data_dir, "telegram", "pair", code)
            assert status == 0, err
            assert "paired Telegram user 6666" in out
            status, _out, err = await hearth(data_dir, "telegram", "pair", code)
            assert status == 1
            assert "PAIRING_CODE_INVALID" in err
        finally:
            first.kill()
        second = start(data_dir, fake)
        try:
            fake.push_message(EVE, "hello")
            await fake.wait_for(lambda: any(m.text == "Welcome, Eve." for m in fake.chat(EVE)))
            status, out, err = await hearth(data_dir, "telegram", "users")
        finally:
            second.stop()
    assert status == 0, err
    assert "6666" in out
    assert "paired" in out
    assert len(fake.chat(EVE)) == 2
