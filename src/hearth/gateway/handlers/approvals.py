"""approval.list: everything waiting for a person, from any feature."""

from __future__ import annotations

from hearth.gateway.dispatch import HandlerContext, handles
from hearth.protocol.messages.approvals import (
    AnsweredBy,
    ApprovalKind,
    ApprovalList,
    ApprovalListResult,
    PendingApproval,
)
from hearth.store.approvals import ApprovalRepository
from hearth.store.records import ApprovalRecord


def _audit(record: ApprovalRecord) -> dict[str, object]:
    """The history fields of an answered approval (empty for a pending one)."""
    if record.status == "pending":
        return {}
    who = AnsweredBy(
        client=record.answered_client,
        channel=record.answered_channel,
        user=record.answered_user,
        address=record.answered_address,
    )
    return {
        "status": record.status,
        "resolved_at": record.resolved_at,
        "comment": record.comment,
        "answered_by": who if who.model_dump(exclude_none=True) else None,
    }


_KINDS: dict[str, ApprovalKind] = {"workflow": "workflow", "interrupted": "interrupted"}


@handles(ApprovalList)
async def list_pending(message: ApprovalList, ctx: HandlerContext) -> ApprovalListResult:
    engine = ctx.state.workflows
    if message.history:
        async with ctx.state.db.begin() as conn:
            pending = await ApprovalRepository().answered(conn, message.limit or 100)
    else:
        pending = await engine.pending_approvals()
    workflows = await engine.executions.workflow_ids(
        record.execution_id for record in pending if record.execution_id
    )
    items: list[PendingApproval] = []
    for record in pending:
        workflow_id = workflows.get(record.execution_id) if record.execution_id else None
        items.append(
            PendingApproval(
                approval_id=record.id,
                kind=_KINDS.get(record.kind, "tool"),
                title=record.title,
                args=record.args,
                requested_at=record.requested_at,
                expires_at=record.expires_at,
                execution_id=record.execution_id,
                workflow_id=workflow_id,
                step_id=record.step_id,
                session_id=record.session_id,
                tool_call_id=record.tool_call_id,
                tool_name=record.tool_name,
                risk=record.risk,
                **_audit(record),
            )
        )
    return ApprovalListResult(id=message.id, approvals=items)
