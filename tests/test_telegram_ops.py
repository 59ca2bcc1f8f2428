"""The Telegram poller's health and lease, alerts, and access rules around the channel."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

import pytest

from hearth.channels.telegram.access import MAX_PENDING
from hearth.client import GatewayClient
from hearth.client.errors import GatewayError
from hearth.config import ConfigError, load_settings
from hearth.protocol import GatewayStatus, GatewayStatusResult
from hearth.protocol.messages.heartbeat import (
    HeartbeatConfigure,
    HeartbeatConfigured,
    HeartbeatRun,
    HeartbeatRunResult,
)
from hearth.protocol.messages.telegram import (
    TelegramAllow,
    TelegramRevoke,
    TelegramStatusInfo,
    TelegramUserChanged,
    TelegramUsers,
    TelegramUsersResult,
)
from tests.support.fake_openai import FakeOpenAI, Text, ToolCall
from tests.support.fake_telegram import FakeTelegram
from tests.support.gateway import in_process_gateway
from tests.support.heartbeat import fake_answer, write_checklist
from tests.support.telegram import ADA, EVE, model_settings, telegram_settings


async def telegram_status(client: GatewayClient) -> TelegramStatusInfo:
    status = await client.request(GatewayStatus(id=client.next_id()), GatewayStatusResult)
    assert status.telegram is not None
    return status.telegram


async def wait_state(client: GatewayClient, state: str, timeout_s: float = 30) -> None:
    async with asyncio.timeout(timeout_s):
        while (await telegram_status(client)).state != state:
            await asyncio.sleep(0.05)


async def test_409_conflict_is_reported_once_and_polling_recovers(
    data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "hearth.channels.telegram")
    async with (
        FakeTelegram() as fake,
        in_process_gateway(data_dir, telegram=telegram_settings(fake)) as gateway,
    ):
        client = await gateway.client()
        await wait_state(client, "ok")
        fake.conflict = True
        await wait_state(client, "conflict")
        status = await telegram_status(client)
        assert status.problem is not None
        assert "409" in status.problem
        before = len(fake.calls_of("getUpdates"))
        await fake.wait_for(lambda: len(fake.calls_of("getUpdates")) >= before + 2)
        fake.conflict = False
        await wait_state(client, "ok")
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert any("works again" in r.getMessage() for r in caplog.records)


async def test_a_stall_is_reported_and_cleared(
    data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "hearth.channels.telegram")
    async with (
        FakeTelegram() as fake,
        in_process_gateway(
            data_dir, telegram=telegram_settings(fake, stall_after_s=0.5)
        ) as gateway,
    ):
        client = await gateway.client()
        await wait_state(client, "ok")
        fake.stalled = True
        await wait_state(client, "stalled")
        status = await telegram_status(client)
        assert "no successful getUpdates" in (status.problem or "")
        fake.stalled = False
        await wait_state(client, "ok")
    stalls = [r for r in caplog.records if "stalled" in r.getMessage() and r.levelno > logging.INFO]
    assert len(stalls) == 1


async def test_one_node_polls_a_bot_and_another_takes_over(
    tmp_path: Path, database_url: str
) -> None:
    url = database_url
    dirs = [tmp_path / "one", tmp_path / "two"]
    for path in dirs:
        path.mkdir()
    async with FakeTelegram() as fake, FakeOpenAI() as model:
        settings = telegram_settings(fake, lease_s=1.5)
        model.script_forever(Text("pong"))
        async with contextlib.AsyncExitStack() as later:
            async with contextlib.AsyncExitStack() as earlier:
                first = await earlier.enter_async_context(
                    in_process_gateway(dirs[0], url, telegram=settings, **model_settings(model))
                )
                first_client = await first.client()
                await wait_state(first_client, "ok")
                second = await later.enter_async_context(
                    in_process_gateway(dirs[1], url, telegram=settings, **model_settings(model))
                )
                second_client = await second.client()
                await wait_state(second_client, "standby")
                assert (await telegram_status(first_client)).polling
                fake.push_message(ADA, "ping")
                await fake.wait_for(lambda: [m.text for m in fake.chat(ADA)] == ["pong"])
            # The polling node stopped (and released its lease): the other one takes over.
            await wait_state(second_client, "ok")
            fake.push_message(ADA, "ping again")
            await fake.wait_for(lambda: [m.text for m in fake.chat(ADA)] == ["pong", "pong"])
    assert len(model.requests) == 2


async def run_heartbeat(client: GatewayClient) -> HeartbeatRunResult:
    await client.request(HeartbeatConfigure(id=client.next_id()), HeartbeatConfigured)
    return await client.request(HeartbeatRun(id=client.next_id()), HeartbeatRunResult)


async def test_alerts_and_notifications_reach_alert_users_once(data_dir: Path) -> None:
    write_checklist(data_dir / "HEARTBEAT.md", ["Disk full?", "Backup ran?"])
    async with (
        FakeTelegram() as fake,
        FakeOpenAI() as model,
        in_process_gateway(
            data_dir,
            telegram=telegram_settings(fake, allowed=(ADA, EVE), alert_users=[EVE]),
            **model_settings(model),
        ) as gateway,
    ):
        client = await gateway.client()
        await wait_state(client, "ok")
        model.script_forever(fake_answer(lambda item: "91 % used" if "Disk" in item else None))
        first = await run_heartbeat(client)
        second = await run_heartbeat(client)  # the same alert within the dedupe window
        assert first.alerted
        assert not second.alerted
        await fake.wait_for(lambda: any("Heartbeat" in m.text for m in fake.chat(EVE)))

        model.script(ToolCall("notify", {"message": "The backup failed", "level": "error"}))
        model.script(Text("I told you."))
        fake.push_message(ADA, "tell me about the backup")
        await fake.wait_for(lambda: any(m.text == "I told you." for m in fake.chat(ADA)))
        await fake.wait_for(lambda: any("backup failed" in m.text for m in fake.chat(EVE)))
        await fake.wait_for(lambda: fake.pending_updates == 0)
    eve = [m.text for m in fake.chat(EVE)]
    assert len(eve) == 2
    assert "Disk full?" in eve[0]
    assert "91 % used" in eve[0]
    assert "Backup ran?" not in eve[0]
    assert [m.text for m in fake.chat(ADA)] == ["I told you."]


async def test_users_are_allowed_and_revoked_over_the_protocol(data_dir: Path) -> None:
    async with (
        FakeTelegram() as fake,
        FakeOpenAI() as model,
        in_process_gateway(
            data_dir, telegram=telegram_settings(fake), **model_settings(model)
        ) as gateway,
    ):
        client = await gateway.client()
        model.script_forever(Text("hello"))
        allowed = await client.request(TelegramAllow(id="a", user_id=EVE), TelegramUserChanged)
        assert (allowed.user.source, allowed.allowed) == ("allowed", True)
        fake.push_message(EVE, "hi")
        await fake.wait_for(lambda: [m.text for m in fake.chat(EVE)] == ["hello"])
        revoked = await client.request(TelegramRevoke(id="r", user_id=EVE), TelegramUserChanged)
        assert not revoked.allowed
        for n in range(MAX_PENDING + 1):
            fake.push_message(EVE, f"let me in {n}")
        await fake.wait_for(lambda: len(fake.chat(EVE)) == 1 + MAX_PENDING + 1)
        texts = [m.text for m in fake.chat(EVE)]
        listed = await client.request(TelegramUsers(id="u"), TelegramUsersResult)
        refused = await gateway_error(client, TelegramRevoke(id="x", user_id=ADA))
        missing = await gateway_error(client, TelegramRevoke(id="y", user_id=12345))
    assert all("hearth telegram pair" in t for t in texts[1 : 1 + MAX_PENDING])
    assert "already have 3 pairing codes" in texts[-1]
    assert [p.user_id for p in listed.pending] == [EVE] * MAX_PENDING
    assert [u.user_id for u in listed.users] == [ADA]
    assert "telegram.allowed_users" in refused
    assert "TELEGRAM_USER_NOT_FOUND" in missing


async def gateway_error(client: GatewayClient, message: TelegramRevoke) -> str:
    with pytest.raises(GatewayError) as caught:
        await client.request(message, TelegramUserChanged)
    return str(caught.value)


def test_a_token_in_config_toml_is_refused(data_dir: Path) -> None:
    (data_dir / "config.toml").write_text('[telegram]\nenabled = true\ntoken = "1:secret"\n')
    with pytest.raises(ConfigError, match="hearth keys set telegram"):
        load_settings(data_dir=data_dir)


async def test_enabled_without_a_token_says_how_to_set_one(data_dir: Path) -> None:
    async with in_process_gateway(data_dir, telegram={"enabled": True}) as gateway:
        client = await gateway.client()
        status = await telegram_status(client)
    assert status.state == "error"
    assert "hearth keys set telegram" in (status.problem or "")
