"""Notifications: short messages for a person, pushed to every connected client and stored.

The `notification` event is what a connected client sees at once; `notification.list` reads the
stored ones back, so a client that was offline (or a channel catching up) misses nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from pydantic import Field

from hearth.protocol.base import ClientMessage, Event, Reply, WireModel

Level = Literal["info", "warning", "error"]


class Notification(Event):
    """Published by the `notify` tool, workflows and the gateway itself."""

    topic: ClassVar[str | None] = "notification"
    type: Literal["notification"] = "notification"
    message: str = Field(max_length=10_000)
    level: Level = "info"
    source: str | None = None
    timestamp: datetime
    notification_id: int | None = Field(
        default=None, description="The stored notification's id, as in `notification.list`."
    )
    execution_id: str | None = Field(default=None, description="The execution that sent it.")
    step_id: str | None = Field(default=None, description="The step that sent it.")


class StoredNotification(WireModel):
    notification_id: int
    message: str
    level: Level
    source: str | None = None
    timestamp: datetime
    execution_id: str | None = None
    step_id: str | None = None


class NotificationList(ClientMessage):
    type: Literal["notification.list"] = "notification.list"
    limit: int | None = Field(default=None, ge=1, le=1000, description="Default 50.")
    since: datetime | None = Field(
        default=None, description="Only notifications sent at or after this time."
    )
    execution_id: str | None = Field(
        default=None, min_length=1, max_length=64, description="Only this execution's."
    )


class NotificationListResult(Reply):
    type: Literal["notification.list.result"] = "notification.list.result"
    notifications: list[StoredNotification] = Field(description="Newest first.")


CLIENT_MESSAGES = (NotificationList,)
SERVER_MESSAGES = (Notification, NotificationListResult)
