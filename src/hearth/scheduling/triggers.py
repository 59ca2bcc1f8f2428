"""When a schedule fires: cron (via cronsim), every-N anchored to creation, or once at a time.

All arithmetic happens on aware datetimes. Cron expressions are evaluated in the schedule's own
zone so daylight-saving changes follow Debian cron: a time inside the skipped spring hour runs
once right after the gap, a time inside the repeated autumn hour runs once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from hearth.scheduling.errors import InvalidScheduleError


def zone(name: str, field: str = "timezone") -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidScheduleError(
            field, f"unknown time zone {name!r}: use an IANA name such as 'Europe/Berlin'"
        ) from None


def check_cron(expression: str) -> str:
    text = " ".join(expression.split())
    fields = len(text.split())
    if fields not in (5, 6):
        raise InvalidScheduleError(
            "cronExpression",
            f"{expression!r} has {fields} fields; use 5 (minute hour day month weekday) or 6 "
            "(second first)",
        )
    try:
        CronSim(text, datetime.now(UTC))
    except (CronSimError, ValueError, KeyError, IndexError) as exc:
        raise InvalidScheduleError("cronExpression", f"{expression!r}: {exc}") from None
    return text


@dataclass(frozen=True)
class CronTrigger:
    expression: str
    tz: ZoneInfo

    def next_after(self, after: datetime) -> datetime | None:
        """The first tick strictly after `after`, in UTC."""
        local = after.astimezone(self.tz)
        for tick in CronSim(self.expression, local):
            if tick.astimezone(UTC) > after:
                return tick.astimezone(UTC)
        return None  # pragma: no cover - cron iterators are infinite


@dataclass(frozen=True)
class EveryTrigger:
    interval: timedelta
    anchor: datetime

    def next_after(self, after: datetime) -> datetime | None:
        step = self.interval.total_seconds()
        elapsed = (after - self.anchor).total_seconds()
        if elapsed < 0:
            return self.anchor
        count = math.floor(elapsed / step) + 1
        tick = self.anchor + timedelta(seconds=count * step)
        while tick <= after:  # guard against float rounding at the boundary
            count += 1
            tick = self.anchor + timedelta(seconds=count * step)
        return tick

    def ticks_between(self, start: datetime, end: datetime) -> int:
        """How many ticks fall in [start, end] (start being a tick)."""
        if end < start:
            return 0
        return math.floor((end - start).total_seconds() / self.interval.total_seconds()) + 1


@dataclass(frozen=True)
class AtTrigger:
    at: datetime

    def next_after(self, after: datetime) -> datetime | None:
        return self.at if self.at > after else None


Trigger = CronTrigger | EveryTrigger | AtTrigger
