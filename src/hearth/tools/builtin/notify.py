"""`notify`: tell the person something, on every client they have connected, and keep it.

The tool stores the notification (when it was given a store) and then publishes a domain event;
the gateway's fan-out turns that into the protocol's `notification` message and channels
(Telegram, the dashboard, …) relay it, so this module knows nothing about who is listening. The
store is what lets a person read a notification that was sent while no client was connected.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal, Protocol

from pydantic import BaseModel, Field

from hearth.events import DomainEvent
from hearth.tools.base import Risk, Tool, ToolArgs, ToolContext

#: Same limit as the protocol's `Notification.message`, so every event we publish is sendable.
MAX_MESSAGE_CHARS = 10_000
TOPIC = "notification"
#: Longest idempotency key stored as is; longer ones are stored as their SHA-256.
MAX_DEDUPE_KEY_CHARS = 200


class NotificationStore(Protocol):
    """Where notifications are kept (`hearth.store.notifications.NotificationRepository`)."""

    async def add(
        self,
        *,
        message: str,
        level: str,
        created_at: datetime,
        source: str | None = None,
        execution_id: str | None = None,
        step_id: str | None = None,
        dedupe_key: str | None = None,
    ) -> tuple[int, bool]:
        """Store one; (its id, False when the dedupe key was stored before)."""


class NotifyArgs(ToolArgs):
    """Send a short notification to the person on all their connected clients."""

    message: str = Field(
        min_length=1, max_length=MAX_MESSAGE_CHARS, description="What to tell the person."
    )
    level: Literal["info", "warning", "error"] = Field(
        default="info", description="How urgent it is."
    )


def _dedupe_key(key: str | None) -> str | None:
    if key is None or len(key) <= MAX_DEDUPE_KEY_CHARS:
        return key
    return hashlib.sha256(key.encode()).hexdigest()


class NotifyTool(Tool):
    name: ClassVar[str] = "notify"
    description: ClassVar[str] = (
        "Send a notification (level info, warning or error) to every client the person has "
        "connected."
    )
    args_model: ClassVar[type[BaseModel]] = NotifyArgs
    risk: ClassVar[Risk] = Risk.LOW
    # It changes nothing a person would have to undo.
    read_only: ClassVar[bool] = True

    def __init__(self, store: NotificationStore | None = None) -> None:
        self.store = store

    async def run(self, args: NotifyArgs, ctx: ToolContext) -> dict[str, Any]:
        now = datetime.now(UTC)
        data: dict[str, Any] = {
            "message": args.message,
            "level": args.level,
            "source": ctx.source,
            "timestamp": now.isoformat(),
        }
        if ctx.execution_id is not None:
            data["executionId"] = ctx.execution_id
        if ctx.step_id is not None:
            data["stepId"] = ctx.step_id
        if self.store is None:
            ctx.bus.publish(DomainEvent(TOPIC, data))
            return {"delivered": True}
        notification_id, new = await self.store.add(
            message=args.message,
            level=args.level,
            created_at=now,
            source=ctx.source,
            execution_id=ctx.execution_id,
            step_id=ctx.step_id,
            dedupe_key=_dedupe_key(ctx.idempotency_key),
        )
        # A step run again after a crash finds its notification stored already: the person
        # was (or can still be) told once, so it is not sent a second time.
        if new:
            ctx.bus.publish(DomainEvent(TOPIC, {**data, "notificationId": notification_id}))
        return {"delivered": True, "notificationId": notification_id}
