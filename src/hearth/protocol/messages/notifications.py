"""Notifications: short messages for a person, pushed to every connected client."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from pydantic import Field

from hearth.protocol.base import Event


class Notification(Event):
    """Published by the `notify` tool, workflows and the gateway itself."""

    topic: ClassVar[str | None] = "notification"
    type: Literal["notification"] = "notification"
    message: str = Field(max_length=10_000)
    level: Literal["info", "warning", "error"] = "info"
    source: str | None = None
    timestamp: datetime


CLIENT_MESSAGES = ()
SERVER_MESSAGES = (Notification,)
