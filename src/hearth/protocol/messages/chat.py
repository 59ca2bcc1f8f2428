"""Chat: sessions, streamed replies, tool calls a person approves, usage."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import Field

from hearth.protocol.base import (
    ClientMessage,
    Event,
    NextCursor,
    PageCursor,
    Reply,
    WireModel,
)


class Usage(WireModel):
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0


class ChatSend(ClientMessage):
    type: Literal["chat.send"] = "chat.send"
    content: str = Field(min_length=1, max_length=200_000)
    session_id: str | None = Field(default=None, max_length=64)
    model: str | None = Field(default=None, max_length=200)
    agent_id: str | None = Field(default=None, max_length=64)


class ChatCancel(ClientMessage):
    type: Literal["chat.cancel"] = "chat.cancel"
    request_id: str = Field(min_length=1, max_length=64)


class ToolApprovalResponse(ClientMessage):
    type: Literal["tool.approval.response"] = "tool.approval.response"
    tool_call_id: str = Field(min_length=1, max_length=128)
    approved: bool
    session_approve: bool | None = Field(
        default=None, description="Also allow this tool without asking for the rest of the session."
    )
    session_id: str | None = Field(
        default=None,
        max_length=128,
        description="The session the call belongs to (from tool.approval.request); required "
        "when the same toolCallId waits in several sessions.",
    )


class SessionList(ClientMessage):
    """One page of sessions, most recently updated first; follow `nextCursor` for older ones."""

    type: Literal["session.list"] = "session.list"
    limit: int = Field(default=100, ge=1, le=1000, description="Sessions per page.")
    cursor: PageCursor = None


class SessionHistory(ClientMessage):
    type: Literal["session.history"] = "session.history"
    session_id: str = Field(min_length=1, max_length=64)
    limit: int | None = Field(default=None, ge=1, le=10_000)


class SessionDelete(ClientMessage):
    type: Literal["session.delete"] = "session.delete"
    session_id: str = Field(min_length=1, max_length=64)


class UsageQuery(ClientMessage):
    type: Literal["usage.query"] = "usage.query"
    session_id: str | None = Field(default=None, max_length=64)


# -- replies --------------------------------------------------------------------------------


class ChatStreamStart(Reply):
    type: Literal["chat.stream.start"] = "chat.stream.start"
    request_id: str
    session_id: str
    model: str


class ChatCancelled(Reply):
    type: Literal["chat.cancelled"] = "chat.cancelled"
    request_id: str
    cancelled: bool = Field(description="False when the stream had already ended.")


class ToolApprovalResolved(Reply):
    type: Literal["tool.approval.resolved"] = "tool.approval.resolved"
    tool_call_id: str
    approved: bool


class SessionInfo(WireModel):
    session_id: str
    session_key: str
    title: str | None = None
    model: str
    created_at: datetime
    updated_at: datetime
    message_count: int


class SessionListResult(Reply):
    type: Literal["session.list.result"] = "session.list.result"
    sessions: list[SessionInfo]
    next_cursor: NextCursor = None
    total: int = Field(description="Sessions on every page.")


class HistoryEntry(WireModel):
    role: Literal["user", "assistant", "tool", "system"]
    content: str | None = None
    tool_name: str | None = None
    tool_call_id: str | None = None
    args: Any = None
    timestamp: datetime | None = None


class SessionHistoryResult(Reply):
    type: Literal["session.history.result"] = "session.history.result"
    session_id: str
    messages: list[HistoryEntry]


class SessionDeleted(Reply):
    type: Literal["session.deleted"] = "session.deleted"
    session_id: str


class ModelUsage(Usage):
    model: str
    requests: int = Field(description="Chat requests (each may call the model several times).")


class UsageReport(Reply):
    type: Literal["usage.report"] = "usage.report"
    session_id: str | None = None
    models: list[ModelUsage]
    total: Usage


# -- events ---------------------------------------------------------------------------------


class SessionCreated(Event):
    topic: ClassVar[str | None] = "session.created"
    type: Literal["session.created"] = "session.created"
    session_id: str
    session_key: str


class ChatStreamDelta(Event):
    topic: ClassVar[str | None] = "chat.stream.delta"
    type: Literal["chat.stream.delta"] = "chat.stream.delta"
    request_id: str
    delta: str


class ChatStreamEnd(Event):
    """Always exactly one per request, also after an error or a cancel."""

    topic: ClassVar[str | None] = "chat.stream.end"
    type: Literal["chat.stream.end"] = "chat.stream.end"
    request_id: str
    session_id: str | None = None
    usage: Usage
    cost: float | None = None
    status: Literal["completed", "error", "cancelled"] = "completed"


class ToolCallEvent(Event):
    topic: ClassVar[str | None] = "tool.call"
    type: Literal["tool.call"] = "tool.call"
    request_id: str
    tool_call_id: str
    tool_name: str
    args: Any = None


class ToolResultEvent(Event):
    topic: ClassVar[str | None] = "tool.result"
    type: Literal["tool.result"] = "tool.result"
    request_id: str
    tool_call_id: str
    tool_name: str
    result: Any = None


class ToolErrorEvent(Event):
    topic: ClassVar[str | None] = "tool.error"
    type: Literal["tool.error"] = "tool.error"
    request_id: str
    tool_call_id: str
    tool_name: str
    error: str
    denied: bool = False


class ToolApprovalRequest(Event):
    topic: ClassVar[str | None] = "tool.approval.request"
    type: Literal["tool.approval.request"] = "tool.approval.request"
    request_id: str
    tool_call_id: str
    tool_name: str
    args: Any = None
    risk: str
    session_id: str | None = None
    expires_at: datetime | None = None


CLIENT_MESSAGES = (
    ChatSend,
    ChatCancel,
    ToolApprovalResponse,
    SessionList,
    SessionHistory,
    SessionDelete,
    UsageQuery,
)
SERVER_MESSAGES = (
    ChatStreamStart,
    ChatCancelled,
    ToolApprovalResolved,
    SessionListResult,
    SessionHistoryResult,
    SessionDeleted,
    UsageReport,
    SessionCreated,
    ChatStreamDelta,
    ChatStreamEnd,
    ToolCallEvent,
    ToolResultEvent,
    ToolErrorEvent,
    ToolApprovalRequest,
)
