"""Everything that waits for a person, across workflows and (later) chat tool calls."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import Field

from hearth.protocol.base import ClientMessage, Event, Reply, WireModel

#: `workflow`: a step's approval gate; `interrupted`: a workflow step the gateway stopped in,
#: asking whether to run it again (answered with `workflow.approval` like a gate); `tool`: a
#: chat tool call.
ApprovalKind = Literal["workflow", "interrupted", "tool"]


class AnsweredBy(WireModel):
    """Who answered an approval: the connection's client name (from hello), the channel
    (`ws`, `cli`, `telegram`), the user where the channel knows one, and the peer address."""

    client: str | None = None
    channel: str | None = None
    user: str | None = None
    address: str | None = None


class PendingApproval(WireModel):
    approval_id: str
    kind: ApprovalKind
    title: str
    args: Any = None
    requested_at: datetime
    expires_at: datetime | None = None
    execution_id: str | None = None
    workflow_id: str | None = None
    step_id: str | None = None
    session_id: str | None = None
    tool_call_id: str | None = None
    tool_name: str | None = None
    risk: str | None = None
    #: Set in the history (`approval.list {history: true}`): the outcome and its audit.
    status: str | None = None
    resolved_at: datetime | None = None
    answered_by: AnsweredBy | None = None
    comment: str | None = None


class ApprovalList(ClientMessage):
    type: Literal["approval.list"] = "approval.list"
    history: bool | None = Field(
        default=None, description="List answered approvals (newest first) instead of pending."
    )
    limit: int | None = Field(default=None, ge=1, le=1000, description="History entries.")


class ApprovalListResult(Reply):
    type: Literal["approval.list.result"] = "approval.list.result"
    approvals: list[PendingApproval]


class ApprovalResolved(Event):
    """An approval was answered (from any client or channel): lets every inbox drop it live
    and say who answered. Delivered to every connection, like the approval requests."""

    topic: ClassVar[str | None] = "approval.resolved"
    type: Literal["approval.resolved"] = "approval.resolved"
    approval_id: str
    kind: ApprovalKind
    status: str = Field(description="approved or denied")
    execution_id: str | None = None
    step_id: str | None = None
    session_id: str | None = None
    tool_call_id: str | None = None
    answered_by: AnsweredBy | None = None
    comment: str | None = None


CLIENT_MESSAGES = (ApprovalList,)
SERVER_MESSAGES = (ApprovalListResult, ApprovalResolved)
