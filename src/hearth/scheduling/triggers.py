"""When a schedule fires: cron (via cronsim), every-N anchored to creation, or once at a time.

All arithmetic happens on aware datetimes. Cron expressions are evaluated in the schedule's own
zone so daylight-saving changes follow Debian cron: a time inside the skipped spring hour runs
once right after the gap, a time inside the repeated autumn hour runs once.
"""

from __future__ import annotations

from collections.abc import Iterator
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

    def ticks(self, after: datetime) -> Iterator[datetime]:
        """UTC ticks strictly after `after`, in order (one iterator, cheap to advance)."""
        parts = self.expression.split()
        if len(parts) == 5:
            for tick in CronSim(self.expression, after.astimezone(self.tz)):
                moment = tick.astimezone(UTC)
                if moment > after:
                    yield moment
            return
        # cronsim applies Debian's DST rules to 5-field expressions only. For 6 fields walk
        # the 5-field minute ticks (which get the rules) and add each allowed second in real
        # (UTC) time: local arithmetic would drop `fold`, turning the second pass through a
        # repeated autumn hour into the first (lost ticks, and a sequence that goes back).
        seconds = [timedelta(seconds=s) for s in sorted(CronSim(self.expression, after).seconds)]
        minute_expr = " ".join(parts[1:])
        start = (after - timedelta(minutes=1)).astimezone(self.tz)
        last = after
        for minute in CronSim(minute_expr, start):
            base = minute.astimezone(UTC)
            for second in seconds:
                moment = base + second
                if moment > last:
                    last = moment
                    yield moment

    def next_after(self, after: datetime) -> datetime | None:
        """The first tick strictly after `after`, in UTC."""
        return next(self.ticks(after), None)


@dataclass(frozen=True)
class EveryTrigger:
    interval: timedelta
    anchor: datetime

    def next_after(self, after: datetime) -> datetime | None:
        if after < self.anchor:
            return self.anchor
        # timedelta arithmetic is exact (microseconds); float seconds are not.
        count = (after - self.anchor) // self.interval + 1
        return self.anchor + self.interval * count

    def ticks_between(self, start: datetime, end: datetime) -> int:
        """How many ticks fall in [start, end] (start being a tick)."""
        if end < start:
            return 0
        return (end - start) // self.interval + 1


@dataclass(frozen=True)
class AtTrigger:
    at: datetime

    def next_after(self, after: datetime) -> datetime | None:
        return self.at if self.at > after else None


Trigger = CronTrigger | EveryTrigger | AtTrigger
