"""notification.list: the stored notifications, newest first."""

from __future__ import annotations

from datetime import UTC

from hearth.gateway.dispatch import HandlerContext, handles
from hearth.protocol.messages.notifications import (
    NotificationList,
    NotificationListResult,
    StoredNotification,
)

DEFAULT_LIMIT = 50


@handles(NotificationList)
async def list_notifications(
    message: NotificationList, ctx: HandlerContext
) -> NotificationListResult:
    since = message.since
    if since is not None and since.tzinfo is None:
        # A time without a zone is read as UTC, like every timestamp on the wire.
        since = since.replace(tzinfo=UTC)
    records = await ctx.state.notifications.recent(
        limit=message.limit or DEFAULT_LIMIT, since=since, execution_id=message.execution_id
    )
    return NotificationListResult(
        id=message.id,
        notifications=[
            StoredNotification(
                notification_id=r.id,
                message=r.message,
                level=r.level,
                source=r.source,
                timestamp=r.created_at,
                execution_id=r.execution_id,
                step_id=r.step_id,
            )
            for r in records
        ],
    )
