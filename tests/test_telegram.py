"""The Telegram channel against the fake Bot API: access, chat, commands, approvals, alerts."""

from __future__ import annotations

import itertools
from pathlib import Path

import telegramify_markdown

from hearth.channels.telegram.access import CODE_ALPHABET, CODE_LENGTH
from hearth.channels.telegram.render import MAX_UTF16, render, utf16_len
from hearth.client import GatewayClient
from hearth.protocol import GatewayStatus, GatewayStatusResult
from hearth.protocol.messages.approvals import ApprovalList, ApprovalListResult
from hearth.protocol.messages.chat import SessionList, SessionListResult
from hearth.protocol.messages.telegram import (
    TelegramPair,
    TelegramUserChanged,
    TelegramUsers,
    TelegramUsersResult,
)
from hearth.protocol.messages.workflows import WorkflowApproval, WorkflowApprovalResolved
from tests.support.fake_openai import FakeOpenAI, Text, ToolCall, last_user_text
from tests.support.fake_telegram import FakeTelegram, SentMessage
from tests.support.gateway import in_process_gateway
from tests.support.paced_model import PacedModel, PacedReply
from tests.support.telegram import ADA, EVE, model_settings, telegram_settings
from tests.support.workflows import reload, trigger, wait_status, write_workflow


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


async def test_a_streamed_reply_is_edited_at_most_once_per_interval(data_dir: Path) -> None:
    interval = 0.3
    words = tuple(f"word{i} " for i in range(60))
    async with (
        FakeTelegram() as fake,
        PacedModel() as model,
        in_process_gateway(
            data_dir,
            telegram=telegram_settings(fake, edit_interval_s=interval),
            **model_settings(model),
        ),
    ):
        model.script(PacedReply(words, gap_s=0.03))
        fake.push_message(ADA, "count for me")
        final = render("".join(words))[0].text
        await fake.wait_for(lambda: any(m.text == final for m in fake.chat(ADA)), timeout=30)
        [message] = fake.chat(ADA)
    # Streamed: the chat showed growing text in several edits, never the same text twice.
    assert len(message.versions) >= 3
    assert all(a != b for a, b in itertools.pairwise(message.versions))
    assert all(final.startswith(v.rstrip()) for v in message.versions)
    assert message.versions[-1] == final
    # Paced: one call per chat per interval (the fake notes when each edit arrived).
    calls = [c.at for c in fake.calls if c.method in ("sendMessage", "editMessageText")]
    assert all(b - a >= interval * 0.8 for a, b in itertools.pairwise(calls)), calls


async def test_a_10000_character_reply_is_split_at_4096_utf16_units(data_dir: Path) -> None:
    line = "Ünïcödé 😀 **bold** and `code`, a line of a long reply.\n"
    text = (line * (10_000 // len(line) + 1))[:10_000]
    async with (
        FakeTelegram() as fake,
        FakeOpenAI() as model,
        in_process_gateway(data_dir, telegram=telegram_settings(fake), **model_settings(model)),
    ):
        model.script(Text(text))
        fake.push_message(ADA, "write a lot")
        expected = render(text)
        await fake.wait_for(
            lambda: [m.text for m in fake.chat(ADA)] == [c.text for c in expected], timeout=30
        )
        messages = fake.chat(ADA)
    assert len(expected) == 3
    assert all(utf16_len(m.text) <= MAX_UTF16 for m in messages)
    assert [m.entities for m in messages] == [c.entity_list() for c in expected]
    converted, _ = telegramify_markdown.convert(text)
    assert "".join(m.text for m in messages).replace("\n", "") == converted.replace("\n", "")


async def test_refused_formatting_is_resent_as_plain_text_and_429_is_honoured(
    data_dir: Path,
) -> None:
    async with (
        FakeTelegram() as fake,
        PacedModel() as model,
        in_process_gateway(data_dir, telegram=telegram_settings(fake), **model_settings(model)),
    ):
        fake.fail_next("sendMessage", 400, "Bad Request: can't parse entities: unsupported")
        fake.fail_next("editMessageText", 429, "Too Many Requests: retry after 1", 1)
        deltas = ("**Hello** ", "there, ", "this ", "is ", "slow.")
        model.script(PacedReply(deltas, gap_s=0.3))
        fake.push_message(ADA, "hi")
        await fake.wait_for(
            lambda: any(m.text == "Hello there, this is slow." for m in fake.chat(ADA))
        )
        [message] = fake.chat(ADA)
        sends = fake.calls_of("sendMessage")
        edits = fake.calls_of("editMessageText")
    # The first send was refused for its entities, the same text went out again without them.
    assert sends[0].params.get("entities")
    assert not sends[1].params.get("entities")
    assert sends[0].params["text"] == sends[1].params["text"]
    # After the 429 the next call waited retry_after (1 s).
    refused = edits[0].at
    assert all(c.at - refused >= 0.9 for c in edits[1:])
    assert message.versions[-1] == "Hello there, this is slow."


async def test_groups_are_ignored_unless_allowed_and_addressed(data_dir: Path) -> None:
    group, other = -100123, -100999
    async with (
        FakeTelegram() as fake,
        FakeOpenAI() as model,
        in_process_gateway(
            data_dir,
            telegram=telegram_settings(fake, allowed_groups=[group]),
            **model_settings(model),
        ),
    ):
        model.script_forever(Text("Hi group"))
        fake.push_message(ADA, "hello @hearth_test_bot", chat_id=other, chat_type="group")
        fake.push_message(ADA, "no mention here", chat_id=group, chat_type="group")
        fake.push_message(EVE, "hey @hearth_test_bot", chat_id=group, chat_type="group")
        fake.push_message(ADA, "hey @hearth_test_bot", chat_id=group, chat_type="group")
        await fake.wait_for(lambda: any(m.text == "Hi group" for m in fake.chat(group)))
        fake.push_message(ADA, "and again", chat_id=group, chat_type="group", reply_to_bot=True)
        await fake.wait_for(lambda: [m.text for m in fake.chat(group)] == ["Hi group"] * 2)
        await fake.wait_for(lambda: fake.pending_updates == 0)
    assert fake.chat(other) == []
    assert [m.text for m in fake.chat(group)] == ["Hi group", "Hi group"]
    assert [last_user_text(r) for r in model.requests] == ["hey", "and again"]


async def test_commands_are_registered_and_answered(data_dir: Path) -> None:
    async with (
        FakeTelegram() as fake,
        FakeOpenAI() as model,
        in_process_gateway(
            data_dir, telegram=telegram_settings(fake), **model_settings(model)
        ) as gateway,
    ):
        await fake.wait_for(lambda: fake.commands)
        assert [c["command"] for c in fake.commands] == [
            "new",
            "stop",
            "status",
            "approvals",
            "help",
        ]
        model.script(Text("first"), Text("second"), Text("third"))
        fake.push_message(ADA, "one")
        await fake.wait_for(lambda: any(m.text == "first" for m in fake.chat(ADA)))
        fake.push_message(ADA, "two")
        await fake.wait_for(lambda: any(m.text == "second" for m in fake.chat(ADA)))
        fake.push_message(ADA, "/new")
        await fake.wait_for(lambda: any("new chat" in m.text for m in fake.chat(ADA)))
        fake.push_message(ADA, "three")
        await fake.wait_for(lambda: any(m.text == "third" for m in fake.chat(ADA)))
        for command in ("/status", "/approvals", "/help", "/stop"):
            fake.push_message(ADA, command)
        await fake.wait_for(lambda: len(fake.chat(ADA)) == 8)
        texts = [m.text for m in fake.chat(ADA)]
        client = await gateway.client()
        sessions = await client.request(SessionList(id="l"), SessionListResult)
    assert "Telegram polling: ok" in texts[4]
    assert "Nothing is waiting" in texts[5]
    assert "/approvals" in texts[6]
    assert "Nothing is being written" in texts[7]
    # The second message continued the first chat; /new started another.
    assert sorted(s.message_count for s in sessions.sessions) == [2, 4]


async def test_a_tool_approved_in_telegram_is_resolved_for_websocket_clients(
    data_dir: Path,
) -> None:
    async with (
        FakeTelegram() as fake,
        FakeOpenAI() as model,
        in_process_gateway(
            data_dir,
            telegram=telegram_settings(fake, allowed=(ADA, EVE)),
            **model_settings(model),
        ) as gateway,
    ):
        client = await gateway.client()
        await client.subscribe(["tool.call"])  # the Telegram chat's, not this client's own
        model.script(
            ToolCall("file_write", {"path": "note.txt", "content": "hi"}), Text("Written.")
        )
        fake.push_message(ADA, "write a note")
        await fake.wait_for(lambda: all(prompts(fake, u) for u in (ADA, EVE)))
        request = await client.next_event("tool.approval.request")
        prompt = prompts(fake, ADA)[0]
        assert [b["text"] for b in prompt.buttons] == [
            "Approve",
            "Deny",
            "Always (this chat session)",
        ]
        approve, deny = (b["callback_data"] for b in prompt.buttons[:2])
        assert all(len(b["callback_data"].encode()) <= 64 for b in prompt.buttons)
        assert "file.write" in prompt.text

        # Someone not allowed presses the button: refused, nothing resolved.
        fake.push_callback(666, prompt, approve)
        await fake.wait_for(lambda: fake.callback_answers)
        assert fake.callback_answers[0]["show_alert"] in (True, "true", "True")
        assert "not allowed" in fake.callback_answers[0]["text"]
        assert await pending_approvals(client) == 1
        fake.push_callback(ADA, prompt, approve)
        await fake.wait_for(lambda: any(m.text == "Written." for m in fake.chat(ADA)))
        assert (data_dir / "workspace" / "note.txt").read_text() == "hi"
        assert getattr(request, "tool_call_id", None)
        # The WebSocket client sees the call run, and nothing is waiting any more.
        call = await client.next_event("tool.call")
        assert getattr(call, "tool_name", None) == "file.write"
        assert await pending_approvals(client) == 0
        # Every prompt now says who answered, without buttons.
        await fake.wait_for(lambda: all(settled(p, "Approved by telegram:Ada") for p in both(fake)))
        # A late press on an answered prompt is told so.
        fake.push_callback(EVE, prompts(fake, EVE)[0], deny)
        await fake.wait_for(lambda: len(fake.callback_answers) == 3)
        assert "Already answered" in fake.callback_answers[-1]["text"]
    assert len(fake.calls_of("sendMessage")) == 3  # two prompts and one reply: nothing twice


GATED = """
    name: Gated
    steps:
      - id: write
        action: tool
        tool: file.write
        approval_required: true
        approval_prompt: "Write the report?"
        args: {path: report.txt, content: "done"}
"""


async def test_a_workflow_approved_over_websocket_updates_the_telegram_prompt(
    data_dir: Path,
) -> None:
    write_workflow(data_dir, "gated", GATED)
    async with (
        FakeTelegram() as fake,
        in_process_gateway(
            data_dir, telegram=telegram_settings(fake, allowed=(ADA, EVE))
        ) as gateway,
    ):
        client = await gateway.client()
        await reload(client)
        execution_id = await trigger(client, "gated")
        await fake.wait_for(lambda: all(prompts(fake, u) for u in (ADA, EVE)))
        prompt = prompts(fake, ADA)[0]
        assert "Write the report?" in prompt.text
        assert [b["text"] for b in prompt.buttons] == ["Approve", "Deny"]
        approve = prompt.buttons[0]["callback_data"]
        await client.request(
            WorkflowApproval(id="a", execution_id=execution_id, step_id="write", approved=True),
            WorkflowApprovalResolved,
        )
        await fake.wait_for(lambda: all(settled(p, "Approved by") for p in both(fake)))
        await wait_status(client, execution_id, {"completed"})
        fake.push_callback(ADA, prompt, approve)
        await fake.wait_for(lambda: fake.callback_answers)
        assert "Already answered" in fake.callback_answers[0]["text"]

        # And the other way round: a Telegram press resolves it for the WebSocket client.
        second = await trigger(client, "gated")
        await fake.wait_for(lambda: len(prompts(fake, EVE)) == 2)
        fresh = prompts(fake, EVE)[1]
        fake.push_callback(EVE, fresh, fresh.buttons[1]["callback_data"])
        result = await wait_status(client, second, {"cancelled"})
        assert "denied" in (result.execution.error or "")
        await fake.wait_for(lambda: settled(prompts(fake, ADA)[1], "Denied by telegram:Ada"))


def prompts(fake: FakeTelegram, chat_id: int) -> list[SentMessage]:
    return [m for m in fake.chat(chat_id) if "approval" in m.text.split("\n", 1)[0]]


def both(fake: FakeTelegram) -> list[SentMessage]:
    return prompts(fake, ADA) + prompts(fake, EVE)


def settled(message: SentMessage, line: str) -> bool:
    return not message.buttons and line in message.text


async def pending_approvals(client: GatewayClient) -> int:
    listed = await client.request(ApprovalList(id=client.next_id()), ApprovalListResult)
    return len(listed.approvals)
