"""Chat tool approvals are keyed by session and call, not by the provider's call id alone.

Local model servers number tool calls per conversation (`call_0`, `call-write`), so two
sessions can wait on the same `toolCallId` at once. An answer must reach the call it was
meant for, and an answer that does not say which session must not guess.
"""

from __future__ import annotations

from typing import Any

import pytest

from hearth.client import GatewayError
from hearth.protocol import ErrorCode
from hearth.protocol.messages.approvals import ApprovalList, ApprovalListResult
from hearth.protocol.messages.chat import (
    ToolApprovalRequest,
    ToolApprovalResolved,
    ToolApprovalResponse,
)
from tests.support.fake_openai import FakeOpenAI, Text, ToolCall, tool_results
from tests.support.gateway import RunningGateway
from tests.test_chat import chat_gateway, collect, fake, send, text_of

__all__ = ["chat_gateway", "fake"]  # fixtures used by name below


def same_call_id(body: dict[str, Any]) -> Any:
    """Every session's first tool call gets the same id, as a local server would give."""
    if body["messages"][-1]["role"] == "tool":
        return Text("done: " + str(tool_results(body)[-1]["content"])[:100])
    note = str(body["messages"][-1]["content"])
    return ToolCall("file_write", {"path": f"{note}.txt", "content": note}, id="call_0")


async def test_two_sessions_waiting_on_the_same_call_id_are_told_apart(
    chat_gateway: RunningGateway, fake: FakeOpenAI
) -> None:
    fake.script_forever(same_call_id)
    client = await chat_gateway.client()
    first = await send(client, "alpha")
    first_request = await client.next_event("tool.approval.request")
    second = await send(client, "beta")
    second_request = await client.next_event("tool.approval.request")
    assert isinstance(first_request, ToolApprovalRequest)
    assert isinstance(second_request, ToolApprovalRequest)
    assert first_request.tool_call_id == second_request.tool_call_id == "call_0"
    assert first_request.session_id != second_request.session_id

    with pytest.raises(GatewayError) as ambiguous:
        await client.request(ToolApprovalResponse(id="r0", tool_call_id="call_0", approved=True))
    assert ambiguous.value.code == ErrorCode.NO_PENDING_APPROVAL
    assert "sessionId" in str(ambiguous.value)

    await client.request(
        ToolApprovalResponse(
            id="r1", tool_call_id="call_0", approved=True, session_id=second.session_id
        ),
        ToolApprovalResolved,
    )
    second_events = await collect(client, second.request_id)
    assert text_of(second_events).startswith("done:")
    workspace = chat_gateway.data_dir / "workspace"
    assert (workspace / "beta.txt").read_text() == "beta"
    assert not (workspace / "alpha.txt").exists()
    waiting = await client.request(ApprovalList(id="l"), ApprovalListResult)
    assert [(a.tool_call_id, a.session_id) for a in waiting.approvals] == [
        ("call_0", first.session_id)
    ]
    # Now only one session waits on call_0, so the plain answer is unambiguous.
    await client.request(
        ToolApprovalResponse(id="r2", tool_call_id="call_0", approved=False),
        ToolApprovalResolved,
    )
    first_events = await collect(client, first.request_id)
    assert [e for e in first_events if e.type == "tool.error"]
    assert not (workspace / "alpha.txt").exists()
