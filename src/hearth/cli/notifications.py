"""`hearth notifications`: what `notify` told you, also while no client was connected."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from rich.markup import escape

from hearth.cli.common import DataDirOption, console, fail, run, with_client
from hearth.client import GatewayClient
from hearth.protocol.messages.notifications import (
    Notification,
    NotificationList,
    NotificationListResult,
    StoredNotification,
)

LEVEL_STYLE = {"info": "cyan", "warning": "yellow", "error": "red"}
_AGO = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*$", re.IGNORECASE)
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """`30m`, `2h`, `1d` (that long ago) or an ISO date/time (local time without a zone)."""
    match = _AGO.match(text)
    if match:
        seconds = float(match.group(1)) * _UNIT[match.group(2).lower()]
        return (now or datetime.now(UTC)) - timedelta(seconds=seconds)
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"--since {text!r} is neither a duration such as 30m, 2h or 1d nor a time such "
            "as 2026-12-03T08:00"
        ) from None
    if moment.tzinfo is None:
        moment = moment.astimezone()
    return moment.astimezone(UTC)


def line_for(item: StoredNotification | Notification, *, with_origin: bool = True) -> str:
    """One notification as one line of Rich markup: time, level, text, and where it came from."""
    when = item.timestamp.astimezone().strftime("%Y-%m-%d %H:%M:%S")
    style = LEVEL_STYLE.get(item.level, "")
    origin = ""
    if with_origin:
        parts = [item.source or ""]
        if item.execution_id:
            step = f" step {item.step_id}" if item.step_id else ""
            parts.append(f"execution {item.execution_id[:8]}{step}")
        origin = "  [dim]" + escape(", ".join(p for p in parts if p)) + "[/]"
    return f"{when}  [{style}]{item.level:<7}[/]  {escape(item.message)}{origin}"


def notifications(
    limit: Annotated[
        int, typer.Option(min=1, max=1000, help="How many of the newest to show.")
    ] = 20,
    since: Annotated[
        str | None,
        typer.Option(
            help="Only those sent since then: a duration ago (30m, 2h, 1d) or a time "
            "(2026-12-03T08:00, local time).",
            show_default=False,
        ),
    ] = None,
    follow: Annotated[
        bool,
        typer.Option("--follow", "-f", help="Then keep printing new ones until Ctrl-C."),
    ] = False,
    data_dir: DataDirOption = None,
) -> None:
    """Show the notifications workflows, chats and the heartbeat sent, oldest first."""
    try:
        since_at = parse_since(since) if since is not None else None
    except ValueError as exc:
        fail(str(exc), 2)

    async def go(client: GatewayClient) -> bool:
        listing = await client.request(
            NotificationList(id=client.next_id(), limit=limit, since=since_at),
            NotificationListResult,
        )
        for item in reversed(listing.notifications):
            console.print(line_for(item), highlight=False, soft_wrap=True)
        if not follow:
            if not listing.notifications:
                console.print("no notifications yet" if since is None else "none since then")
            return True
        newest = max((n.notification_id for n in listing.notifications), default=0)
        async for event in client.events():
            if not isinstance(event, Notification):
                continue
            if event.notification_id is not None:
                # Sent while the list was being read: already printed.
                if event.notification_id <= newest:
                    continue
                newest = event.notification_id
            console.print(line_for(event), highlight=False, soft_wrap=True)
        return False

    try:
        completed = run(with_client(data_dir, go))
    except KeyboardInterrupt:
        # Following ends with Ctrl-C: that is how a person stops it, not an error.
        raise typer.Exit(0) from None
    if not completed:
        fail("lost the connection to the gateway; run the command again to go on")
