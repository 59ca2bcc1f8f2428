"""The `approval.resolved` domain event, published wherever an approval is answered.

Workflow gates and chat tool calls are answered in different services; both announce the
answer the same way so that every inbox (dashboard, CLI, channels) can drop the item and say
who answered, whichever client it came from.
"""

from __future__ import annotations

from typing import Any

from hearth.events import DomainEvent, EventBus
from hearth.store.audit import current_answerer
from hearth.store.records import ApprovalRecord

TOPIC = "approval.resolved"


def publish_resolved(
    bus: EventBus, approval: ApprovalRecord, status: str, comment: str | None = None
) -> None:
    answerer = current_answerer.get()
    who: dict[str, Any] | None = None
    if answerer is not None:
        who = {
            k: v
            for k, v in {
                "client": answerer.client,
                "channel": answerer.channel,
                "user": answerer.user,
                "address": answerer.address,
            }.items()
            if v is not None
        } or None
    data: dict[str, Any] = {
        "approvalId": approval.id,
        "kind": approval.kind if approval.kind in ("workflow", "interrupted") else "tool",
        "status": status,
        "executionId": approval.execution_id,
        "stepId": approval.step_id,
        "sessionId": approval.session_id,
        "toolCallId": approval.tool_call_id,
        "answeredBy": who,
        "comment": comment,
    }
    bus.publish(DomainEvent(TOPIC, data))
