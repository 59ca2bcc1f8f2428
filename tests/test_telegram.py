"""The Telegram channel against the fake Bot API: access, chat, commands, approvals, alerts."""

from __future__ import annotations

from pathlib import Path

from hearth.channels.telegram.access import CODE_ALPHABET, CODE_LENGTH
from hearth.protocol import GatewayStatus, GatewayStatusResult
from hearth.protocol.messages.telegram import (
    TelegramPair,
    TelegramUserChanged,
    TelegramUsers,
    TelegramUsersResult,
)
from tests.support.fake_openai import FakeOpenAI, Text
from tests.support.fake_telegram import FakeTelegram
from tests.support.gateway import in_process_gateway
from tests.support.telegram import ADA, EVE, model_settings, telegram_settings


async def test_an_unknown_user_gets_a_pairing_code_and_nothing_else(data_dir: Path) -> None:
    async with (
        FakeTelegram() as fake,
        FakeOpenAI() as model,
        in_process_gateway(
            data_dir, telegram=telegram_settings(fake), **model_settings(model)
        ) as gateway,
    ):
        fake.push_message(EVE, "hello, who are you?", name="Eve")
        await fake.wait_for(lambda: fake.chat(EVE))
        [message] = fake.chat(EVE)
        code = message.text.split("hearth telegram pair ", 1)[1].split()[0]
        assert len(code) == CODE_LENGTH
        assert set(code) <= set(CODE_ALPHABET)
        assert not set(code) & set("0O1I")
        assert model.calls == 0

        client = await gateway.client()
        listed = await client.request(TelegramUsers(id="u"), TelegramUsersResult)
        assert [p.user_id for p in listed.pending] == [EVE]
        assert [u.user_id for u in listed.users] == [ADA]
        paired = await client.request(TelegramPair(id="p", code=code.lower()), TelegramUserChanged)
        assert paired.user.user_id == EVE
        assert paired.user.source == "paired"

        model.script(Text("Hello Eve!"))
        fake.push_message(EVE, "now?", name="Eve")
        await fake.wait_for(lambda: any(m.text == "Hello Eve!" for m in fake.chat(EVE)))
        status = await client.request(GatewayStatus(id="s"), GatewayStatusResult)
        assert status.telegram is not None
        assert status.telegram.state == "ok"
        assert status.telegram.polling
