"""`notify`: tell the person something, on every client they have connected.

The tool only publishes a domain event; the gateway's fan-out turns it into the protocol's
`notification` message and channels (Telegram, …) relay it, so this module knows nothing about
who is listening.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field

from hearth.events import DomainEvent
from hearth.tools.base import Risk, Tool, ToolArgs, ToolContext

#: Same limit as the protocol's `Notification.message`, so every event we publish is sendable.
MAX_MESSAGE_CHARS = 10_000
TOPIC = "notification"


class NotifyArgs(ToolArgs):
    """Send a short notification to the person on all their connected clients."""

    message: str = Field(
        min_length=1, max_length=MAX_MESSAGE_CHARS, description="What to tell the person."
    )
    level: Literal["info", "warning", "error"] = Field(
        default="info", description="How urgent it is."
    )


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

    async def run(self, args: NotifyArgs, ctx: ToolContext) -> dict[str, Any]:
        ctx.bus.publish(
            DomainEvent(
                TOPIC,
                {
                    "message": args.message,
                    "level": args.level,
                    "source": ctx.source,
                    "timestamp": datetime.now(UTC).isoformat(),
                },
            )
        )
        return {"delivered": True}
