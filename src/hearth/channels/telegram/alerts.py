"""Heartbeat alerts, `notify` notifications and disabled schedules, sent to `alert_users`.

Each is claimed in the ledger by what it is (`alert:<id>`, `notification:<id or hash>`,
`schedule.disabled:<id>:<time>`) per chat before it is sent, so an event seen twice (two nodes
on one database, a redelivery) still reaches each person once.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from hearth.channels.telegram.api import TelegramApi
from hearth.channels.telegram.format import RichText, clip
from hearth.events import DomainEvent
from hearth.store.telegram import TelegramRepository

log = logging.getLogger("hearth.channels.telegram")

ALERT = "alert"
TOPICS = ("heartbeat.alert", "notification", "schedule.disabled")
LEVEL_MARK = {"info": "\N{INFORMATION SOURCE}\ufe0f", "warning": "⚠️", "error": "🛑"}


def _now() -> datetime:
    return datetime.now(UTC)


def _digest(*parts: Any) -> str:
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:24]


def describe(event: DomainEvent) -> tuple[str, RichText] | None:
    """The ledger cause and the message for an event, None for topics not relayed."""
    data = event.data
    rich = RichText()
    if event.topic == "heartbeat.alert":
        alert_id = str(data.get("alertId") or _digest(data.get("timestamp"), data.get("checks")))
        rich.add("🔔 Heartbeat\n", "bold")
        if data.get("message"):
            rich.add(clip(str(data["message"]), 1500) + "\n")
        for check in data.get("checks") or []:
            if not isinstance(check, dict) or not check.get("actionNeeded", True):
                continue
            rich.add("• ").add(clip(str(check.get("description", "")), 300), "bold")
            if check.get("details"):
                rich.add(" — " + clip(str(check["details"]), 500))
            rich.add("\n")
        return f"alert:{alert_id}", rich
    if event.topic == "notification":
        ident = data.get("notificationId") or data.get("id")
        key = str(ident) if ident else _digest(data.get("timestamp"), data.get("source"), data)
        mark = LEVEL_MARK.get(str(data.get("level", "info")), "\N{INFORMATION SOURCE}\ufe0f")
        rich.add(f"{mark} ").add(clip(str(data.get("message", "")), 3500))
        if data.get("source"):
            rich.add(f"\n— {data['source']}", "italic")
        return f"notification:{key}", rich
    if event.topic == "schedule.disabled":
        schedule_id = str(data.get("scheduleId", "?"))
        rich.add("⏸ Schedule disabled\n", "bold")
        rich.add("Schedule ").add(schedule_id, "code")
        rich.add(f" was disabled: {clip(str(data.get('reason', '')), 1000)}")
        return f"schedule.disabled:{schedule_id}:{_digest(event.at.isoformat())}", rich
    return None


class AlertRelay:
    def __init__(
        self,
        *,
        api: TelegramApi,
        repo: TelegramRepository,
        bot_id: str,
        recipients: Callable[[], Awaitable[list[int]]],
    ) -> None:
        self.api = api
        self.repo = repo
        self.bot_id = bot_id
        self.recipients = recipients

    async def deliver(self, event: DomainEvent) -> int:
        """Send the event to every alert user who has not had it; returns how many got it."""
        described = describe(event)
        if described is None:
            return 0
        cause, rich = described
        delivered = 0
        for chat_id in await self.recipients():
            claimed = await self.repo.claim(
                self.bot_id, chat_id, cause, kind=ALERT, ref=None, text=rich.text, now=_now()
            )
            if claimed is not None:
                continue
            try:
                shown = await self.api.send(chat_id, rich.text, rich.entities)
            except Exception:
                await self.repo.release(self.bot_id, chat_id, cause)
                log.exception("could not send %s to Telegram chat %s", cause, chat_id)
                continue
            await self.repo.record(
                self.bot_id,
                chat_id,
                cause,
                message_id=shown.message_id,
                text=shown.text,
                entities=shown.entities,
                now=_now(),
            )
            delivered += 1
        return delivered
