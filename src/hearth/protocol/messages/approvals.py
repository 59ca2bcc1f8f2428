"""Everything that waits for a person, across workflows and (later) chat tool calls."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from hearth.protocol.base import ClientMessage, Reply, WireModel

#: `workflow`: a step's approval gate; `interrupted`: a workflow step the gateway stopped in,
#: asking whether to run it again (answered with `workflow.approval` like a gate); `tool`: a
#: chat tool call.
ApprovalKind = Literal["workflow", "interrupted", "tool"]


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


class ApprovalList(ClientMessage):
    type: Literal["approval.list"] = "approval.list"


class ApprovalListResult(Reply):
    type: Literal["approval.list.result"] = "approval.list.result"
    approvals: list[PendingApproval]


CLIENT_MESSAGES = (ApprovalList,)
SERVER_MESSAGES = (ApprovalListResult,)
