"""Chat end to end: a real gateway, real clients, the real OpenAI provider path to a fake server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hearth.client import GatewayClient, GatewayError
from hearth.protocol import Error, ErrorCode
from hearth.protocol.base import ServerMessage
from hearth.protocol.messages.approvals import ApprovalList, ApprovalListResult
from hearth.protocol.messages.chat import (
    ChatCancel,
    ChatCancelled,
    ChatSend,
    ChatStreamEnd,
    ChatStreamStart,
    SessionDelete,
    SessionDeleted,
    SessionHistory,
    SessionHistoryResult,
    SessionList,
    SessionListResult,
    ToolApprovalRequest,
    ToolApprovalResolved,
    ToolApprovalResponse,
    UsageQuery,
    UsageReport,
)
from tests.support.fake_openai import (
    Delay,
    FakeOpenAI,
    HttpError,
    Text,
    ToolCall,
    tool_results,
)
from tests.support.gateway import RunningGateway, in_process_gateway


def model_settings(fake: FakeOpenAI, **extra: Any) -> dict[str, Any]:
    return {
        "providers": {"local": {"kind": "openai", "base_url": fake.base_url}},
        "models": {"default": "local:fake-model"},
        **extra,
    }


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server


@pytest.fixture
async def chat_gateway(
    data_dir: Path, database_url: str, fake: FakeOpenAI
) -> AsyncIterator[RunningGateway]:
    async with in_process_gateway(data_dir, database_url, **model_settings(fake)) as gw:
        yield gw


async def send(client: GatewayClient, content: str, **fields: Any) -> ChatStreamStart:
    return await client.request(
        ChatSend(id=client.next_id(), content=content, **fields), ChatStreamStart
    )


async def collect(client: GatewayClient, request_id: str) -> list[ServerMessage]:
    """Every event of one request up to and including its chat.stream.end."""
    seen: list[ServerMessage] = []
    async with asyncio.timeout(30):
        async for event in client.events():
            if getattr(event, "request_id", None) != request_id:
                continue
            seen.append(event)
            if isinstance(event, ChatStreamEnd):
                return seen
    raise AssertionError("stream did not end")


def text_of(events: list[ServerMessage]) -> str:
    return "".join(getattr(e, "delta", "") for e in events if e.type == "chat.stream.delta")


async def test_reply_streams_in_order_and_ends_once(
    chat_gateway: RunningGateway, fake: FakeOpenAI
) -> None:
    fake.script(
        Text("Hello there, how can I help?", chunks=["Hello", " there,", " how can", " I help?"])
    )
    client = await chat_gateway.client()
    start = await send(client, "hi")
    created = await client.next_event("session.created")
    assert created.session_id == start.session_id  # type: ignore[attr-defined]
    events = await collect(client, start.request_id)
    assert text_of(events) == "Hello there, how can I help?"
    assert [e.type for e in events][-1] == "chat.stream.end"
    assert sum(e.type == "chat.stream.end" for e in events) == 1
    end = events[-1]
    assert isinstance(end, ChatStreamEnd)
    assert end.status == "completed"
    assert end.usage.input_tokens > 0
    assert end.usage.output_tokens > 0
    assert end.usage.total_tokens == end.usage.input_tokens + end.usage.output_tokens
    assert fake.requests[0]["stream"] is True


async def test_history_is_sent_once_per_message(
    chat_gateway: RunningGateway, fake: FakeOpenAI
) -> None:
    fake.script(Text("first answer"), Text("second answer"))
    client = await chat_gateway.client()
    first = await send(client, "first question")
    await collect(client, first.request_id)
    second = await send(client, "second question", session_id=first.session_id)
    assert second.session_id == first.session_id
    await collect(client, second.request_id)
    messages = fake.requests[1]["messages"]
    user_texts = [m["content"] for m in messages if m["role"] == "user"]
    assert user_texts == ["first question", "second question"]
    assistant = [m.get("content") for m in messages if m["role"] == "assistant"]
    assert assistant == ["first answer"]

    history = await client.request(
        SessionHistory(id="h", session_id=first.session_id), SessionHistoryResult
    )
    assert [(m.role, m.content) for m in history.messages] == [
        ("user", "first question"),
        ("assistant", "first answer"),
        ("user", "second question"),
        ("assistant", "second answer"),
    ]
    sessions = await client.request(SessionList(id="l"), SessionListResult)
    assert [(s.session_id, s.message_count, s.title) for s in sessions.sessions] == [
        (first.session_id, 4, "first question")
    ]


async def test_one_stream_per_session_and_cancel(
    chat_gateway: RunningGateway, fake: FakeOpenAI
) -> None:
    fake.script(Delay(60, then=Text("too late")), Text("other session works"))
    client = await chat_gateway.client()
    slow = await send(client, "take your time")
    with pytest.raises(GatewayError) as busy:
        await send(client, "again", session_id=slow.session_id)
    assert busy.value.code == ErrorCode.SESSION_BUSY
    other = await send(client, "meanwhile")  # a different session streams concurrently
    assert text_of(await collect(client, other.request_id)) == "other session works"
    cancelled = await client.request(ChatCancel(id="c", request_id=slow.request_id), ChatCancelled)
    assert cancelled.cancelled
    events = await collect(client, slow.request_id)
    end = events[-1]
    assert isinstance(end, ChatStreamEnd)
    assert end.status == "cancelled"
    assert text_of(events) == ""
    # The session is free again.
    fake.script(Text("back"))
    again = await send(client, "still there?", session_id=slow.session_id)
    assert text_of(await collect(client, again.request_id)) == "back"


def answered_tool(body: dict[str, Any]) -> bool:
    """Is the newest message a tool result (so the model should now answer in text)?"""
    return body["messages"][-1]["role"] == "tool"


def write_then_answer(body: dict[str, Any]) -> Any:
    if answered_tool(body):
        return Text("done: " + str(tool_results(body)[-1]["content"])[:200])
    return ToolCall(
        "file_write", {"path": "note.txt", "content": "hi", "mode": "overwrite"}, id="call-write"
    )


async def test_approval_from_a_second_connection_runs_the_tool(
    chat_gateway: RunningGateway, fake: FakeOpenAI
) -> None:
    fake.script_forever(write_then_answer)
    laptop = await chat_gateway.client()
    phone = await chat_gateway.client()
    start = await send(laptop, "write a note")
    request = await phone.next_event("tool.approval.request")
    assert isinstance(request, ToolApprovalRequest)
    assert (request.tool_name, request.tool_call_id, request.risk) == (
        "file.write",
        "call-write",
        "medium",
    )
    assert request.args == {"path": "note.txt", "content": "hi", "mode": "overwrite"}
    pending = await phone.request(ApprovalList(id="a"), ApprovalListResult)
    assert [(a.kind, a.tool_call_id) for a in pending.approvals] == [("tool", "call-write")]
    assert not (chat_gateway.data_dir / "workspace" / "note.txt").exists()
    await phone.request(
        ToolApprovalResponse(id="r", tool_call_id="call-write", approved=True),
        ToolApprovalResolved,
    )
    with pytest.raises(GatewayError) as again:
        await laptop.request(
            ToolApprovalResponse(id="r2", tool_call_id="call-write", approved=False)
        )
    assert again.value.code == ErrorCode.NO_PENDING_APPROVAL
    events = await collect(laptop, start.request_id)
    kinds = [e.type for e in events]
    assert kinds.index("tool.approval.request") < kinds.index("tool.call")
    assert kinds.index("tool.call") < kinds.index("tool.result") < kinds.index("chat.stream.end")
    assert (chat_gateway.data_dir / "workspace" / "note.txt").read_text() == "hi"
    assert text_of(events).startswith("done:")


async def test_denied_tool_never_runs_and_the_model_is_told(
    chat_gateway: RunningGateway, fake: FakeOpenAI
) -> None:
    fake.script_forever(write_then_answer)
    client = await chat_gateway.client()
    start = await send(client, "write a note")
    await client.next_event("tool.approval.request")
    await client.request(
        ToolApprovalResponse(id="r", tool_call_id="call-write", approved=False),
        ToolApprovalResolved,
    )
    events = await collect(client, start.request_id)
    errors = [e for e in events if e.type == "tool.error"]
    assert len(errors) == 1
    assert errors[0].denied  # type: ignore[attr-defined]
    assert "tool.call" not in [e.type for e in events]
    assert not (chat_gateway.data_dir / "workspace" / "note.txt").exists()
    told = tool_results(fake.requests[-1])
    assert "did not approve" in str(told[-1]["content"])


async def test_unanswered_approval_times_out_as_denied(data_dir: Path, fake: FakeOpenAI) -> None:
    fake.script_forever(write_then_answer)
    settings = model_settings(fake, tools={"approval_timeout_s": 0.5})
    async with in_process_gateway(data_dir, **settings) as gw:
        client = await gw.client()
        start = await send(client, "write a note")
        events = await collect(client, start.request_id)
    assert [e.type for e in events if e.type.startswith("tool.")] == [
        "tool.approval.request",
        "tool.error",
    ]
    assert not (data_dir / "workspace" / "note.txt").exists()


async def test_read_only_tools_run_without_asking_and_session_approval_sticks(
    chat_gateway: RunningGateway, fake: FakeOpenAI
) -> None:
    (chat_gateway.data_dir / "workspace" / "todo.txt").write_text("buy milk")

    def read_then_answer(body: dict[str, Any]) -> Any:
        if answered_tool(body):
            return Text("read it")
        return ToolCall("file_read", {"path": "todo.txt"}, id="call-read")

    fake.script_forever(read_then_answer)
    client = await chat_gateway.client()
    start = await send(client, "what's on my list?")
    events = await collect(client, start.request_id)
    assert [e.type for e in events if e.type.startswith("tool.")] == ["tool.call", "tool.result"]
    result = next(e for e in events if e.type == "tool.result")
    assert result.result["content"] == "buy milk"  # type: ignore[attr-defined]

    fake.script_forever(write_then_answer)
    first = await send(client, "write", session_id=start.session_id)
    await client.next_event("tool.approval.request")
    await client.request(
        ToolApprovalResponse(
            id="r", tool_call_id="call-write", approved=True, session_approve=True
        ),
        ToolApprovalResolved,
    )
    await collect(client, first.request_id)
    second = await send(client, "write again", session_id=start.session_id)
    events = await collect(client, second.request_id)
    assert "tool.approval.request" not in [e.type for e in events]
    assert "tool.result" in [e.type for e in events]


async def test_model_error_sends_error_then_one_end(
    chat_gateway: RunningGateway, fake: FakeOpenAI
) -> None:
    fake.script_forever(HttpError(400, "context length exceeded"))
    client = await chat_gateway.client()
    start = await send(client, "hi")
    events = await collect(client, start.request_id)
    assert [e.type for e in events] == ["error", "chat.stream.end"]
    error = events[0]
    assert isinstance(error, Error)
    assert (error.code, error.request_id, error.id) == (
        ErrorCode.MODEL_ERROR,
        start.request_id,
        None,
    )
    assert "context length exceeded" in error.message
    assert events[1].status == "error"  # type: ignore[attr-defined]


async def test_model_not_configured_says_how(data_dir: Path) -> None:
    async with in_process_gateway(data_dir) as gw:
        client = await gw.client()
        with pytest.raises(GatewayError) as info:
            await send(client, "hi")
    assert info.value.code == ErrorCode.MODEL_NOT_CONFIGURED
    assert "[models] default" in info.value.message


async def test_unknown_session_usage_and_delete(
    chat_gateway: RunningGateway, fake: FakeOpenAI
) -> None:
    client = await chat_gateway.client()
    with pytest.raises(GatewayError) as missing:
        await send(client, "hi", session_id="nope")
    assert missing.value.code == ErrorCode.SESSION_NOT_FOUND
    fake.script(Text("one"), Text("two"))
    a = await send(client, "a")
    await collect(client, a.request_id)
    b = await send(client, "b")
    await collect(client, b.request_id)
    report = await client.request(UsageQuery(id="u"), UsageReport)
    assert [(m.model, m.requests) for m in report.models] == [("local:fake-model", 2)]
    assert report.total.total_tokens > 0
    only_a = await client.request(UsageQuery(id="u2", session_id=a.session_id), UsageReport)
    assert only_a.models[0].requests == 1
    await client.request(SessionDelete(id="d", session_id=a.session_id), SessionDeleted)
    sessions = await client.request(SessionList(id="l"), SessionListResult)
    assert [s.session_id for s in sessions.sessions] == [b.session_id]
